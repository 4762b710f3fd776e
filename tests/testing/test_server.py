"""exchmail.testing.server: test servers driven by real clients over loopback.

Every socket wait is bounded by TIMEOUT seconds.
"""

from __future__ import annotations

import imaplib
import poplib
import socket
import ssl
from datetime import datetime, timezone

import pytest

from exchmail.imap.folders import parse_default_folders
from exchmail.profile.builtin import EXCHANGE2010
from exchmail.testing.server import ExchmailServer, to_wire

# exchmail.testing starts the reactor thread unless it runs already: start the
# suite's own (tests/conftest.py) first, so that the reactor has one owner.
pytestmark = pytest.mark.usefixtures("reactor_thread")

TIMEOUT = 10
MESSAGE = b"From: a@example.org\nSubject: Hello\n\nHello world\n"


@pytest.fixture
def server():
    with ExchmailServer() as running:
        running.add_user("alice", "secret")
        yield running


def imap(server: ExchmailServer, user: str = "alice", password: str = "secret") -> imaplib.IMAP4:
    client = imaplib.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
    client.login(user, password)
    return client


def tls_context(server: ExchmailServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.ca_file))


def test_deliver_is_read_back_over_imap_and_flags_come_back(server):
    when = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    uid = server.deliver("alice", MESSAGE, folder="Archive/2024", flags=["\\Flagged"], internal_date=when)
    client = imap(server)
    assert client.select("Archive/2024")[0] == "OK"
    _, data = client.uid("FETCH", str(uid), "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert b"\\Flagged" in data[0][0] and b'"01-May-2024 12:00:00 +0000"' in data[0][0]
    assert data[0][1] == to_wire(MESSAGE)
    client.uid("STORE", str(uid), "+FLAGS", "(\\Seen)")
    client.logout()
    (message,) = server.mailbox("alice", "Archive/2024")
    assert message.uid == uid and message.flags == {"\\Flagged", "\\Seen"}
    assert message.internal_date == when.timestamp() and message.subject == "Hello"
    # The IMAP login made Exchange's default folders (imap.default_folders) too.
    defaults = [name for name, _ in parse_default_folders(EXCHANGE2010.imap.default_folders)]
    assert server.folders("alice") == sorted(["Archive", "Archive/2024", "INBOX", *defaults])


def test_pop3_retr_and_dele(server):
    server.deliver("alice", MESSAGE)
    client = poplib.POP3(server.host, server.pop3_port, timeout=TIMEOUT)
    client.user("alice")
    client.pass_("secret")
    assert client.retr(1)[1][1] == b"Subject: Hello"
    client.dele(1)
    client.quit()
    assert server.mailbox("alice") == []


def test_wrong_password_and_unknown_user_are_refused(server):
    client = imaplib.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
    with pytest.raises(imaplib.IMAP4.error):
        client.login("alice", "wrong")
    with pytest.raises(imaplib.IMAP4.error):
        client.login("nobody", "secret")
    client.login("ALICE", "secret")  # user names match in any case
    client.logout()


def test_tls_is_verified_with_the_generated_ca():
    with ExchmailServer(tls=True, login_type="SecureLogin") as server:
        server.add_user("alice", "secret")
        client = imaplib.IMAP4("localhost", server.imap_port, timeout=TIMEOUT)
        with pytest.raises(imaplib.IMAP4.error):
            client.login("alice", "secret")  # SecureLogin: not before STARTTLS
        client.starttls(tls_context(server))
        client.login("alice", "secret")
        client.logout()
        implicit = imaplib.IMAP4_SSL(
            "127.0.0.1", server.imaps_port, ssl_context=tls_context(server), timeout=TIMEOUT
        )
        implicit.login("alice", "secret")
        implicit.logout()
        pop3 = poplib.POP3("localhost", server.pop3_port, timeout=TIMEOUT)
        pop3.stls(tls_context(server))
        pop3.user("alice")
        pop3.pass_("secret")
        pop3.quit()
        pop3s = poplib.POP3_SSL("localhost", server.pop3s_port, context=tls_context(server), timeout=TIMEOUT)
        pop3s.user("alice")
        pop3s.pass_("secret")
        pop3s.quit()


def test_without_tls_there_is_no_ca_and_no_tls_port(server):
    assert server.ca_file is None and server.imaps_port == 0 and server.pop3s_port == 0
    client = imaplib.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
    assert b"STARTTLS" not in b" ".join(client.capability()[1])
    client.logout()


@pytest.mark.parametrize(("profile", "year"), [("exchange2007", b"2007"), ("exchange2010", b"2010")])
def test_profiles(profile, year):
    with ExchmailServer(profile=profile, users={"alice": "secret"}) as server:
        client = imap(server)
        _, data = client.logout()
        assert year in data[0]


def test_settings_override_the_profile():
    settings = {"imap": {"banner": "Test server ready"}, "capability_in_greeting": True}
    with ExchmailServer(settings=settings) as server:
        client = imaplib.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
        assert client.welcome.startswith(b"* OK [CAPABILITY ")
        assert client.welcome.endswith(b"Test server ready")
        client.logout()


def test_maildir_store_lives_in_a_folder_removed_at_stop():
    server = ExchmailServer(store="maildir", users={"alice": "secret"}).start()
    directory = server.running.directory
    try:
        server.deliver("alice", MESSAGE)
        stored = [
            p for p in (directory / "mail").rglob("*") if p.is_file() and p.parent.name in ("new", "cur")
        ]
        assert [p.read_bytes() for p in stored] == [MESSAGE]  # Maildir keeps bare LF
        client = imap(server)
        client.select()
        assert client.uid("FETCH", "1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[0] == "OK"
        client.logout()
    finally:
        server.stop()
    assert not directory.exists()


def test_transcript_by_user_with_the_password_hidden(server):
    server.add_user("bob", "pw2")
    client = imap(server)
    client.select()
    client.logout()
    pop3 = poplib.POP3(server.host, server.pop3_port, timeout=TIMEOUT)
    pop3.user("bob")
    pop3.pass_("pw2")
    pop3.quit()
    lines = server.transcript("alice")
    assert lines[0].startswith("S: * OK ")
    assert any(line.endswith("LOGIN alice ****") for line in lines)
    assert not any("secret" in line for line in lines)
    assert any(line.startswith("C: ") and line.endswith("SELECT INBOX") for line in lines)
    assert server.transcript("bob", protocol="pop3")[1:4] == ["C: USER bob", "S: +OK", "C: PASS ****"]
    assert server.transcript("bob", protocol="imap") == []


def test_stop_closes_open_connections():
    server = ExchmailServer(users={"alice": "secret"}).start()
    client = imap(server)
    server.stop()
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        client.noop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", client.port), timeout=TIMEOUT).close()


def test_a_stopped_server_starts_again_empty():
    server = ExchmailServer()
    with server:
        server.add_user("alice", "secret")
        server.deliver("alice", MESSAGE)
    with pytest.raises(RuntimeError):
        server.mailbox("alice")
    with server:
        assert server.mailbox("alice") == []
        client = imaplib.IMAP4(server.host, server.imap_port, timeout=TIMEOUT)
        with pytest.raises(imaplib.IMAP4.error):
            client.login("alice", "secret")


def test_expunge_and_uidvalidity_as_another_session(server):
    uids = [server.deliver("alice", MESSAGE) for _ in range(3)]
    client = imap(server)
    _, data = client.select()
    validity = client.response("UIDVALIDITY")[1][0]
    assert server.expunge("alice", uids=[uids[1]]) == [uids[1]]
    client.noop()
    assert client.response("EXPUNGE")[1] == [b"2"]
    new = server.change_uidvalidity("alice")
    assert new != int(validity)
    client.select()
    assert client.response("UIDVALIDITY")[1] == [str(new).encode()]
    client.logout()
    assert [m.uid for m in server.mailbox("alice")] == [uids[0], uids[2]]


def test_fault_rules_over_real_sockets(server):
    server.deliver("alice", b"Subject: big\r\n\r\n" + b"x" * 5000 + b"\r\n")
    server.faults.reply("SELECT", "NO", "[UNAVAILABLE] Mailbox database offline")
    client = imap(server)
    assert client.select() == ("NO", [b"[UNAVAILABLE] Mailbox database offline"])
    client.select()
    rule = server.faults.drop("FETCH", when="during", octets=100)
    with pytest.raises(imaplib.IMAP4.abort):
        client.uid("FETCH", "1", "(BODY.PEEK[])")
    assert rule.fired == 1
    client = imap(server)
    client.select()
    server.faults.delay("NOOP", 5)
    client.sock.settimeout(0.2)
    with pytest.raises((TimeoutError, imaplib.IMAP4.abort)):
        client.noop()
