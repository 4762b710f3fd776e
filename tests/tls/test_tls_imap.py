"""IMAP over TLS with real peers: STARTTLS (RFC 3501 §6.2.1, RFC 2595) and IMAPS.

Clients verify the server against a test CA: stdlib imaplib, ``openssl
s_client`` and curl.  Also: pipelined input after STARTTLS is discarded,
SecureLogin (MS-STANXIMAP 2.1.5, V0022), old TLS versions are refused.
"""

from __future__ import annotations

import imaplib
import socket
import ssl
import subprocess

import pytest
from conftest import PASSWORD
from tls_support import (  # noqa: F401 - pki_fixture, tls_server_fixture
    TIMEOUT,
    client_context,
    curl,
    openssl,
    pki_fixture,
    recv_until,
    start_tls_server,
    tls_config,
    tls_server_fixture,
)


def test_V0020_starttls_reevaluates_capabilities(tls_server, pki):
    with imaplib.IMAP4("127.0.0.1", tls_server.imap_port, timeout=TIMEOUT) as client:
        assert "STARTTLS" in client.capabilities
        assert "AUTH=PLAIN" not in client.capabilities  # SecureLogin: not before TLS
        assert client.starttls(ssl_context=client_context(pki))[0] == "OK"
        assert "STARTTLS" not in client.capabilities
        assert "AUTH=PLAIN" in client.capabilities
        assert "LOGINDISABLED" not in client.capabilities
        assert client.login("alice", PASSWORD)[0] == "OK"
        assert client.select("INBOX")[0] == "OK"


def test_imaps_listener_with_imaplib(tls_server, pki):
    with imaplib.IMAP4_SSL(
        "127.0.0.1", tls_server.imaps_port, ssl_context=client_context(pki), timeout=TIMEOUT
    ) as client:
        assert "STARTTLS" not in client.capabilities  # already TLS
        assert "AUTH=PLAIN" in client.capabilities
        assert client.login("alice", PASSWORD)[0] == "OK"
        assert client.append("INBOX", None, None, b"Subject: tls\r\n\r\nbody\r\n")[0] == "OK"
        assert client.select("INBOX") == ("OK", [b"1"])


def test_starttls_on_an_implicit_tls_connection_is_refused(tls_server, pki):
    with imaplib.IMAP4_SSL(
        "127.0.0.1", tls_server.imaps_port, ssl_context=client_context(pki), timeout=TIMEOUT
    ) as client:
        with pytest.raises(imaplib.IMAP4.error, match="TLS is already active"):
            client._simple_command("STARTTLS")


def test_starttls_pipelined_command_is_discarded(tls_server, pki):
    """'a STARTTLS' and 'b CAPABILITY' in one write: b is answered neither in clear nor in TLS."""
    with socket.create_connection(("127.0.0.1", tls_server.imap_port), timeout=TIMEOUT) as raw:
        assert recv_until(raw, b"\r\n").startswith(b"* OK")
        raw.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")
        cleartext = recv_until(raw, b"a OK")
        assert cleartext.startswith(b"a OK"), cleartext
        with client_context(pki).wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"c NOOP\r\n")
            answered = recv_until(tls, b"c OK")
            assert answered.endswith(b"c OK NOOP completed.\r\n"), answered
            tls.sendall(b"d LOGOUT\r\n")
            answered += recv_until(tls, b"d OK")
        assert b"b " not in cleartext + answered
        assert b"CAPABILITY" not in cleartext[cleartext.index(b"\r\n") :] + answered


def test_2_1_5_V0022_secure_login_before_and_after_starttls(tmp_path, reactor_thread, pki):
    """SecureLogin (the default): LOGIN refused and AUTH=PLAIN hidden in the clear, LOGINDISABLED
    advertised when the profile says so (advertise_logindisabled), all allowed after STARTTLS."""
    server = start_tls_server(tmp_path / "exchange", tls_config(pki))
    try:
        _check_secure_login(server, pki)
    finally:
        server.stop()
    server = start_tls_server(
        tmp_path / "strict", tls_config(pki), profile_overrides={"advertise_logindisabled": True}
    )
    try:
        with imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=TIMEOUT) as client:
            assert "LOGINDISABLED" in client.capabilities
            client.starttls(ssl_context=client_context(pki))
            assert "LOGINDISABLED" not in client.capabilities
            assert client.login("alice", PASSWORD)[0] == "OK"
    finally:
        server.stop()


def _check_secure_login(server, pki):
    with imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=TIMEOUT) as client:
        assert "AUTH=PLAIN" not in client.capabilities
        assert "LOGINDISABLED" not in client.capabilities  # exchange2010: not advertised
        with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
            client.login("alice", PASSWORD)
        typ, _ = client._simple_command("AUTHENTICATE", "PLAIN")
        assert typ == "NO"
        client.starttls(ssl_context=client_context(pki))
        assert client.login("alice", PASSWORD)[0] == "OK"


def test_plain_text_login_still_available(tmp_path, reactor_thread, pki):
    server = start_tls_server(tmp_path, tls_config(pki), login_type="PlainTextLogin")
    try:
        with imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=TIMEOUT) as client:
            assert "STARTTLS" in client.capabilities
            assert "AUTH=PLAIN" in client.capabilities
            assert client.login("alice", PASSWORD)[0] == "OK"
    finally:
        server.stop()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("old", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_versions_are_refused(tls_server, pki, old):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(pki.ca))
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client really offer TLS 1.0/1.1
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = old
    with socket.create_connection(("127.0.0.1", tls_server.imaps_port), timeout=TIMEOUT) as raw:
        with pytest.raises(ssl.SSLError):
            ctx.wrap_socket(raw, server_hostname="localhost")
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # the same client may use TLS 1.2
    with socket.create_connection(("127.0.0.1", tls_server.imaps_port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() == "TLSv1.2"


def test_openssl_s_client_starttls_imap(tls_server, pki):
    out = openssl(
        [
            "s_client",
            "-starttls",
            "imap",
            "-connect",
            f"127.0.0.1:{tls_server.imap_port}",
            "-servername",
            "localhost",
            "-CAfile",
            str(pki.ca),
            "-verify_return_error",
            "-verify_hostname",
            "localhost",
            "-crlf",
            "-quiet",
            "-ign_eof",
        ],
        f'a LOGIN alice "{PASSWORD}"\nb LOGOUT\n'.encode(),
    )
    assert "a OK LOGIN completed." in out, out
    assert "b OK LOGOUT completed." in out, out


def test_openssl_s_client_imaps(tls_server, pki):
    out = openssl(
        [
            "s_client",
            "-connect",
            f"127.0.0.1:{tls_server.imaps_port}",
            "-servername",
            "localhost",
            "-CAfile",
            str(pki.ca),
            "-verify_return_error",
            "-verify_hostname",
            "localhost",
            "-crlf",
            "-ign_eof",
        ],
        f'a LOGIN alice "{PASSWORD}"\nb LOGOUT\n'.encode(),
    )
    assert "Verify return code: 0 (ok)" in out, out
    assert "a OK LOGIN completed." in out, out
    assert "TLSv1.3" in out or "TLSv1.2" in out


def test_curl_imaps_and_starttls(tls_server, pki):
    base = [
        curl(),
        "--silent",
        "--show-error",
        "--max-time",
        str(TIMEOUT),
        "--cacert",
        str(pki.ca),
        "--user",
        f"alice:{PASSWORD}",
    ]
    result = subprocess.run(
        base + [f"imaps://localhost:{tls_server.imaps_port}/"], capture_output=True, timeout=TIMEOUT + 5
    )
    assert result.returncode == 0, result.stderr
    assert b"INBOX" in result.stdout
    result = subprocess.run(
        base + ["--ssl-reqd", f"imap://localhost:{tls_server.imap_port}/"],
        capture_output=True,
        timeout=TIMEOUT + 5,
    )
    assert result.returncode == 0, result.stderr
    assert b"INBOX" in result.stdout
