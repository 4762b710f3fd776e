"""SASL over real loopback sockets with real clients: imaplib, IMAPClient, poplib,
and scramp as the SCRAM-SHA-256 client (imaplib's authenticate() and raw POP3)."""

from __future__ import annotations

import base64
import imaplib
import poplib
import socket

import pytest
from conftest import PASSWORD, start_server
from imapclient import IMAPClient
from scramp import ScramClient

MECHANISMS = {
    "imap.sasl_mechanisms": ["SCRAM-SHA-256", "PLAIN", "LOGIN"],
    "pop3.sasl_mechanisms": ["SCRAM-SHA-256", "PLAIN", "LOGIN"],
}


@pytest.fixture
def sasl_server(reactor_thread, tmp_path):
    server = start_server(tmp_path, profile_overrides=MECHANISMS)
    yield server
    server.stop()


def scram_authobject(user: str, password: str):
    """imaplib's authobject driving scramp: challenge in, response out."""
    client = ScramClient(["SCRAM-SHA-256"], user, password)
    state = {"step": 0}

    def respond(challenge: bytes) -> bytes:
        state["step"] += 1
        if state["step"] == 1:
            return client.get_client_first().encode()
        if state["step"] == 2:
            client.set_server_first(challenge.decode())
            return client.get_client_final().encode()
        client.set_server_final(challenge.decode())  # raises if the server's signature is bad
        state["verified"] = True
        return b""

    return respond, state


def test_imaplib_scram_sha_256(sasl_server):
    imap = imaplib.IMAP4("127.0.0.1", sasl_server.imap_port, timeout=10)
    try:
        assert "AUTH=SCRAM-SHA-256" in imap.capabilities
        respond, state = scram_authobject("alice", PASSWORD)
        typ, data = imap.authenticate("SCRAM-SHA-256", respond)
        assert typ == "OK" and state.get("verified")
        assert imap.select("INBOX")[0] == "OK"
    finally:
        imap.logout()


def test_imaplib_scram_wrong_password(sasl_server):
    imap = imaplib.IMAP4("127.0.0.1", sasl_server.imap_port, timeout=10)
    try:
        respond, state = scram_authobject("alice", "wrong")
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            imap.authenticate("SCRAM-SHA-256", respond)
        assert not state.get("verified")
    finally:
        imap.shutdown()


def test_imaplib_plain_and_login_mechanisms(sasl_server):
    imap = imaplib.IMAP4("127.0.0.1", sasl_server.imap_port, timeout=10)
    try:
        typ, _ = imap.authenticate("PLAIN", lambda _: f"\0alice\0{PASSWORD}".encode())
        assert typ == "OK"
    finally:
        imap.logout()
    imap = imaplib.IMAP4("127.0.0.1", sasl_server.imap_port, timeout=10)
    answers = iter([b"bob", PASSWORD.encode()])
    try:
        assert imap.authenticate("LOGIN", lambda _: next(answers))[0] == "OK"
    finally:
        imap.logout()


def test_imapclient_plain_login(sasl_server):
    with IMAPClient("127.0.0.1", port=sasl_server.imap_port, ssl=False, timeout=10) as client:
        assert b"AUTH=PLAIN" in client.capabilities()
        client.plain_login("alice", PASSWORD)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


def pop3_exchange(port: int, lines: list[bytes]) -> list[bytes]:
    """Send each line after reading one reply line; return every reply line."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        replies = [reader.readline()]
        for line in lines:
            sock.sendall(line + b"\r\n")
            replies.append(reader.readline())
        return replies


def test_pop3_raw_scram_sha_256(sasl_server):
    client = ScramClient(["SCRAM-SHA-256"], "alice", PASSWORD)
    with socket.create_connection(("127.0.0.1", sasl_server.pop3_port), timeout=10) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"+OK")
        first = base64.b64encode(client.get_client_first().encode())
        sock.sendall(b"AUTH SCRAM-SHA-256 " + first + b"\r\n")
        server_first = reader.readline()
        assert server_first.startswith(b"+ ")
        client.set_server_first(base64.b64decode(server_first[2:].strip()).decode())
        sock.sendall(base64.b64encode(client.get_client_final().encode()) + b"\r\n")
        server_final = reader.readline()
        client.set_server_final(base64.b64decode(server_final[2:].strip()).decode())
        sock.sendall(b"\r\n")
        assert reader.readline() == b"+OK User successfully logged on.\r\n"
        sock.sendall(b"STAT\r\n")
        assert reader.readline() == b"+OK 0 0\r\n"


def test_poplib_auth_plain_and_login(sasl_server):
    pop = poplib.POP3("127.0.0.1", sasl_server.pop3_port, timeout=10)
    try:
        assert pop.capa()["SASL"] == ["SCRAM-SHA-256", "PLAIN", "LOGIN"]
        token = base64.b64encode(f"\0alice\0{PASSWORD}".encode()).decode()
        assert pop._shortcmd(f"AUTH PLAIN {token}").startswith(b"+OK")
        assert pop.stat() == (0, 0)
    finally:
        pop.quit()
    replies = pop3_exchange(
        sasl_server.pop3_port, [b"AUTH LOGIN", base64.b64encode(b"bob"), base64.b64encode(PASSWORD.encode())]
    )
    assert replies[1:] == [
        b"+ VXNlcm5hbWU6\r\n",
        b"+ UGFzc3dvcmQ6\r\n",
        b"+OK User successfully logged on.\r\n",
    ]
