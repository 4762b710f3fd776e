"""[tls] configuration: loading, one-line errors, SNI, versions and ciphers, reload and SIGHUP."""

from __future__ import annotations

import datetime
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from OpenSSL import SSL
from tls_support import (  # noqa: F401 - pki_fixture, tls_server_fixture
    NOW,
    TIMEOUT,
    client_context,
    peer_certificate,
    pki_fixture,
    start_tls_server,
    tls_config,
)

from exchmail.errors import ConfigError
from exchmail.service.config import load_config
from exchmail.tls.config import TLSIdentity
from exchmail.tls.context import ServerTLS, build_context

TWISTD = str(Path(sys.executable).parent / "twistd")


def one_line_error(f, *args) -> str:
    with pytest.raises(ConfigError) as info:
        f(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exchmail.toml"
    path.write_text(text)
    return path


def test_tls_table_loads(tmp_path, pki):
    config = load_config(
        write_config(
            tmp_path,
            f"""
[imap]
tls_listen = ["tcp:0:interface=127.0.0.1"]
[pop3]
tls_listen = ["tcp:0:interface=127.0.0.1"]
[tls]
certificate = "{pki.folder / "server.pem"}"
private_key = "{pki.folder / "server.key"}"
min_version = "TLSv1.3"
[tls.sni."Mail.Example.org"]
certificate = "{pki.folder / "other.pem"}"
private_key = "{pki.folder / "other.key"}"
""",
        )
    )
    assert config.tls is not None
    assert config.tls.min_version == "TLSv1.3"
    assert config.tls.identity.certificate == pki.folder / "server.pem"
    assert set(config.tls.sni) == {"mail.example.org"}
    assert config.imap.tls_listen == ("tcp:0:interface=127.0.0.1",)
    assert config.profile.imap.login_type.value == "SecureLogin"  # the default (V0022)
    build_context(config.tls)


def test_no_tls_table_means_no_tls(tmp_path):
    config = load_config(write_config(tmp_path, ""))
    assert config.tls is None
    assert config.imap.tls_listen == ()


@pytest.mark.parametrize(
    "text, message",
    [
        ('[tls]\ncertificate = "c.pem"\n', "tls.private_key: required (a PEM file)"),
        ('[tls]\ncertificate = "c"\nprivate_key = "k"\nkey = 1\n', "tls.key: unknown key"),
        (
            '[tls]\ncertificate = "c"\nprivate_key = "k"\nmin_version = "SSLv3"\n',
            "tls.min_version: unknown version 'SSLv3' (choose TLSv1, TLSv1.1, TLSv1.2, TLSv1.3)",
        ),
        (
            '[tls]\ncertificate = "c"\nprivate_key = "k"\n[tls.sni."a.b"]\ncertificate = "c"\n',
            'tls.sni."a.b".private_key: required (a PEM file)',
        ),
        ('[imap]\ntls_listen = ["tcp:993"]\n', "imap.tls_listen: needs a [tls] table"),
        (
            '[pop3]\ntls_listen = "nonsense:1"\n[tls]\ncertificate = "c"\nprivate_key = "k"\n',
            "pop3.tls_listen[0]: bad endpoint",
        ),
    ],
)
def test_bad_tls_tables(tmp_path, text, message):
    assert message in one_line_error(load_config, write_config(tmp_path, text))


@pytest.fixture
def bad(tmp_path, pki):
    """Identities that must each be refused with a one-line error."""
    expired = pki.issue(
        "expired", not_before=NOW - datetime.timedelta(days=10), not_after=NOW - datetime.timedelta(days=1)
    )
    future = pki.issue("future", not_before=NOW + datetime.timedelta(days=1))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    server = TLSIdentity(pki.folder / "server.pem", pki.folder / "server.key")
    return {
        "missing": (replace(server, certificate=tmp_path / "none.pem"), "tls.certificate: cannot read"),
        "unreadable": (replace(server, private_key=tmp_path), "tls.private_key: cannot read"),
        "not PEM": (replace(server, certificate=garbage), "holds no PEM certificate"),
        "bad key": (replace(server, private_key=garbage), "holds no unencrypted PEM private key"),
        "expired": (expired, "expired on"),
        "not yet valid": (future, "is not valid before"),
        "mismatched": (
            replace(server, private_key=pki.folder / "other.key"),
            "tls.private_key: " + str(pki.folder / "other.key") + " does not match the certificate",
        ),
    }


@pytest.mark.parametrize(
    "case", ["missing", "unreadable", "not PEM", "bad key", "expired", "not yet valid", "mismatched"]
)
def test_bad_certificate_files_give_one_line(bad, pki, case):
    identity, message = bad[case]
    assert message in one_line_error(ServerTLS, tls_config(pki, identity=identity))


def test_bad_sni_entry_names_it(bad, pki):
    identity, _ = bad["expired"]
    message = one_line_error(ServerTLS, tls_config(pki, sni={"mail.example.org": identity}))
    assert message.startswith('tls.sni."mail.example.org".certificate: ')


def test_bad_cipher_string(pki):
    message = one_line_error(ServerTLS, tls_config(pki, ciphers="NOSUCHCIPHER"))
    assert message == "tls.ciphers: OpenSSL knows no cipher in 'NOSUCHCIPHER'"


@pytest.mark.slow
def test_twistd_refuses_bad_certificate_in_one_line(tmp_path, pki):
    path = write_config(
        tmp_path,
        f"""
[imap]
listen = ["tcp:0:interface=127.0.0.1"]
[pop3]
listen = []
[tls]
certificate = "{pki.folder / "server.pem"}"
private_key = "{pki.folder / "other.key"}"
""",
    )
    result = subprocess.run(
        [TWISTD, "-n", "--pidfile=", "--logfile=-", "exchmail", "--config", str(path)],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert lines == [
        f"exchmail: configuration error: tls.private_key: {pki.folder / 'other.key'} "
        f"does not match the certificate in {pki.folder / 'server.pem'}"
    ], lines


# -- versions and ciphers (MS-STANXIMAP 2.1.8, V0056, V0057) ------------------------------------


def _offered_ciphers(pki, **changes) -> list[str]:
    return SSL.Connection(build_context(tls_config(pki, **changes)), None).get_cipher_list()


@pytest.mark.parametrize("ciphers", [None, "ALL:eNULL:RC4:EXP:LOW:3DES"])
def test_2_1_8_V0056_V0057_no_weak_cipher_suites(pki, ciphers):
    """Cipher suites come from OpenSSL: never RC4, NULL, export or anonymous ones (not even
    when the configuration asks for them); by default no 3DES or MD5 either."""
    offered = _offered_ciphers(pki, **({"ciphers": ciphers} if ciphers else {}))
    assert offered
    for name in offered:
        assert "RC4" not in name and "NULL" not in name and "EXP" not in name
        assert "ADH" not in name and "AECDH" not in name
        if ciphers is None:
            assert "DES" not in name and "MD5" not in name
    assert "TLS_AES_256_GCM_SHA384" in offered  # TLS 1.3


def test_min_version_is_configurable(tmp_path, reactor_thread, pki):
    server = start_tls_server(tmp_path, tls_config(pki, min_version="TLSv1.3"))
    try:
        ctx = client_context(pki)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", server.imaps_port), timeout=TIMEOUT) as raw:
            with pytest.raises(ssl.SSLError):
                ctx.wrap_socket(raw, server_hostname="localhost")
        ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        with socket.create_connection(("127.0.0.1", server.imaps_port), timeout=TIMEOUT) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.version() == "TLSv1.3"
    finally:
        server.stop()


# -- SNI ----------------------------------------------------------------------------------


def test_sni_chooses_the_certificate_by_server_name(tmp_path, reactor_thread, pki):
    wildcard = pki.issue("wildcard", ("*.example.net",))
    server = start_tls_server(
        tmp_path,
        tls_config(
            pki,
            sni={
                "mail.example.org": TLSIdentity(pki.folder / "other.pem", pki.folder / "other.key"),
                "*.example.net": wildcard,
            },
        ),
    )
    try:
        for port in (server.imaps_port, server.pop3s_port):
            default = peer_certificate(port, pki, "localhost")
            assert default.subject.rfc4514_string() == "CN=server"
            assert peer_certificate(port, pki, "mail.example.org").subject.rfc4514_string() == "CN=other"
            assert peer_certificate(port, pki, "imap.example.net").subject.rfc4514_string() == "CN=wildcard"
        # STARTTLS chooses too
        with socket.create_connection(("127.0.0.1", server.imap_port), timeout=TIMEOUT) as raw:
            raw.recv(1024)
            raw.sendall(b"a STARTTLS\r\n")
            assert raw.recv(1024).startswith(b"a OK")
            with client_context(pki).wrap_socket(raw, server_hostname="MAIL.example.org") as tls:
                assert tls.getpeercert()["subject"] == ((("commonName", "other"),),)
    finally:
        server.stop()


# -- reload ------------------------------------------------------------------------------------


def test_reload_serves_new_connections_and_keeps_sessions(tmp_path, reactor_thread, pki):
    live = tmp_path / "live"
    live.mkdir()
    cert, key = live / "cert.pem", live / "key.pem"
    cert.write_bytes((pki.folder / "server.pem").read_bytes())
    key.write_bytes((pki.folder / "server.key").read_bytes())
    server = start_tls_server(tmp_path / "srv", tls_config(pki, identity=TLSIdentity(cert, key)))
    try:
        before = peer_certificate(server.imaps_port, pki)
        raw = socket.create_connection(("127.0.0.1", server.imaps_port), timeout=TIMEOUT)
        session = client_context(pki).wrap_socket(raw, server_hostname="localhost")
        session.recv(1024)
        renewed = pki.issue("renewed")
        cert.write_bytes(renewed.certificate.read_bytes())
        key.write_bytes(renewed.private_key.read_bytes())
        from conftest import in_reactor

        assert in_reactor(server.tls_service().reload) is True
        after = peer_certificate(server.imaps_port, pki)
        assert after.serial_number != before.serial_number
        assert after.subject.rfc4514_string() == "CN=renewed"
        session.sendall(b"a NOOP\r\n")  # the open session goes on with its certificate
        assert session.recv(1024).startswith(b"a OK")
        session.close()
        # A broken file: the reload fails, is logged, and the current certificate stays.
        key.write_text("broken\n")
        assert in_reactor(server.tls_service().reload) is False
        assert peer_certificate(server.pop3s_port, pki).serial_number == after.serial_number
    finally:
        server.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this system")
def test_sighup_reloads_twistd(tmp_path, pki):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes((pki.folder / "server.pem").read_bytes())
    key.write_bytes((pki.folder / "server.key").read_bytes())
    port = _free_port()
    path = write_config(
        tmp_path,
        f"""
[server]
data_dir = "data"
[imap]
listen = []
tls_listen = ["tcp:{port}:interface=127.0.0.1"]
[pop3]
listen = []
[tls]
certificate = "cert.pem"
private_key = "key.pem"
""",
    )
    log = tmp_path / "twistd.log"
    proc = subprocess.Popen(
        [TWISTD, "-n", "--pidfile=", "--logfile", str(log), "exchmail", "--config", str(path)], cwd=tmp_path
    )
    try:
        deadline = time.monotonic() + 30
        first = None
        while first is None and time.monotonic() < deadline:
            try:
                first = peer_certificate(port, pki)
            except OSError:
                time.sleep(0.1)
        assert first is not None, log.read_text() if log.exists() else "no log"
        renewed = pki.issue("renewed-by-hup")
        cert.write_bytes(renewed.certificate.read_bytes())
        key.write_bytes(renewed.private_key.read_bytes())
        os.kill(proc.pid, signal.SIGHUP)
        current = first
        while current.serial_number == first.serial_number and time.monotonic() < deadline:
            time.sleep(0.1)
            current = peer_certificate(port, pki)
        assert current.subject.rfc4514_string() == "CN=renewed-by-hup"
        assert proc.poll() is None  # still running
        assert "TLS certificates reloaded" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
