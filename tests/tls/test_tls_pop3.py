"""POP3 over TLS with real peers: STLS (RFC 2595 §4) and POP3S, SecureLogin (V0010)."""

from __future__ import annotations

import poplib
import socket
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


def test_stls_with_poplib_reevaluates_capabilities(tls_server, pki):
    client = poplib.POP3("127.0.0.1", tls_server.pop3_port, timeout=TIMEOUT)
    try:
        before = client.capa()
        assert "STLS" in before
        assert "SASL" not in before  # SecureLogin: no plaintext SASL before TLS
        with pytest.raises(poplib.error_proto, match="Plaintext authentication is not allowed"):
            client.user("alice")
            client.pass_(PASSWORD)
        assert client.stls(client_context(pki)).startswith(b"+OK")
        after = client.capa()
        assert "STLS" not in after
        assert after["SASL"] == ["PLAIN"]
        assert client.user("alice").startswith(b"+OK")
        assert client.pass_(PASSWORD).startswith(b"+OK")
        assert client.stat() == (0, 0)
    finally:
        client.quit()


def test_pop3s_listener_with_poplib(tls_server, pki):
    client = poplib.POP3_SSL("127.0.0.1", tls_server.pop3s_port, context=client_context(pki), timeout=TIMEOUT)
    try:
        capa = client.capa()
        assert "STLS" not in capa
        assert "SASL" in capa
        with pytest.raises(poplib.error_proto, match="TLS is already active"):
            client._shortcmd("STLS")
        assert client.user("alice").startswith(b"+OK")
        assert client.pass_(PASSWORD).startswith(b"+OK")
    finally:
        client.quit()


def test_stls_pipelined_command_is_discarded(tls_server, pki):
    """'STLS' and 'CAPA' in one write: CAPA is answered neither in clear nor in TLS."""
    with socket.create_connection(("127.0.0.1", tls_server.pop3_port), timeout=TIMEOUT) as raw:
        assert recv_until(raw, b"\r\n").startswith(b"+OK")
        raw.sendall(b"STLS\r\nCAPA\r\n")
        cleartext = recv_until(raw, b"\r\n")
        assert cleartext == b"+OK Begin TLS negotiation.\r\n", cleartext
        with client_context(pki).wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"NOOP\r\n")  # not valid before login: one -ERR line
            answered = recv_until(tls, b"\r\n")
            assert answered.startswith(b"-ERR"), answered
            tls.sendall(b"QUIT\r\n")
            answered += recv_until(tls, b"signing off")
        assert b"TOP" not in cleartext + answered
        assert answered.count(b"\r\n") == 2, answered


def test_V0010_secure_login_user_pass_refused_in_clear(tls_server):
    with socket.create_connection(("127.0.0.1", tls_server.pop3_port), timeout=TIMEOUT) as raw:
        recv_until(raw, b"\r\n")
        raw.sendall(b"USER alice\r\n")
        assert recv_until(raw, b"\r\n").startswith(b"+OK")
        raw.sendall(b"PASS " + PASSWORD.encode() + b"\r\n")
        answer = recv_until(raw, b"\r\n")
        assert answer.startswith(b"-ERR [AUTH] Plaintext authentication is not allowed"), answer
        raw.sendall(b"AUTH PLAIN\r\n")
        assert recv_until(raw, b"\r\n").startswith(b"-ERR")


def test_stls_not_offered_without_tls(server):
    client = poplib.POP3("127.0.0.1", server.pop3_port, timeout=TIMEOUT)
    try:
        assert "STLS" not in client.capa()
        with pytest.raises(poplib.error_proto, match="STLS is not available"):
            client._shortcmd("STLS")
    finally:
        client.quit()


def test_openssl_s_client_starttls_pop3(tls_server, pki):
    out = openssl(
        [
            "s_client",
            "-starttls",
            "pop3",
            "-connect",
            f"127.0.0.1:{tls_server.pop3_port}",
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
        f"USER alice\nPASS {PASSWORD}\nSTAT\nQUIT\n".encode(),
    )
    assert "+OK User successfully logged on." in out, out
    assert "+OK 0 0" in out, out


def test_openssl_s_client_pop3s(tls_server, pki):
    out = openssl(
        [
            "s_client",
            "-connect",
            f"127.0.0.1:{tls_server.pop3s_port}",
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
        f"USER alice\nPASS {PASSWORD}\nQUIT\n".encode(),
    )
    assert "Verify return code: 0 (ok)" in out, out
    assert "+OK User successfully logged on." in out, out


def test_curl_pop3s_and_stls(tls_server, pki):
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
    for url, extra in (
        (f"pop3s://localhost:{tls_server.pop3s_port}/", []),
        (f"pop3://localhost:{tls_server.pop3_port}/", ["--ssl-reqd"]),
    ):
        result = subprocess.run(base + extra + [url], capture_output=True, timeout=TIMEOUT + 5)
        assert result.returncode == 0, (url, result.stderr)
