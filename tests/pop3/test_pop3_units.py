"""Unit tests of POP3Server over a StringTransport and a Clock (no reactor thread).

Test names carry the MS-STANXPOP3 statement IDs they cover.
"""

from __future__ import annotations

import base64

import pytest
from harness import Connection, Harness
from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.internet.testing import StringTransport

from exchmail.pop3 import wire
from exchmail.pop3.server import POP3Server

GREETING = b"+OK The Microsoft Exchange POP3 service is ready.\r\n"
LOGIN_FAILED = b"-ERR [AUTH] Logon failure: unknown user name or bad password.\r\n"
MESSAGE = b"From: a@example.com\r\nSubject: hi\r\n\r\nline 1\r\n.dot\r\nline 3\r\n"


def users() -> InMemoryUsernamePasswordDatabaseDontUse:
    """alice/pw, and bob with a password that has a run of spaces and ends with one (V0011)."""
    checker = InMemoryUsernamePasswordDatabaseDontUse()
    checker.addUser(b"alice", b"pw")
    checker.addUser(b"bob", b"pass with  spaces ")
    return checker


class Server(Harness):
    """A harness with :func:`users`; ``login_type`` is the profile's LoginType."""

    def __init__(
        self, profile: str = "exchange2010", overrides: dict | None = None, login_type: str = "PlainTextLogin"
    ) -> None:
        super().__init__(profile, {**(overrides or {}), "login_type": login_type}, checker=users())

    def add(self, data: bytes = MESSAGE, user: str = "alice") -> int:
        """Deliver ``data`` to the user's INBOX; its UID."""
        return int(self.deliver(data, user))

    def inbox(self, user: str = "alice"):
        return self.mailbox(user)


def connect(*args, **kwargs) -> Connection:
    """A connection of a new :class:`Server`, which is its ``harness`` attribute."""
    harness = Server(*args, **kwargs)
    connection = harness.pop3()
    connection.harness = harness
    return connection


def login(connection: Connection, user: bytes = b"alice", password: bytes = b"pw") -> bytes:
    connection.send(b"USER " + user + b"\r\n")
    return connection.send(b"PASS " + password + b"\r\n")


@pytest.fixture
def server() -> Server:
    return Server()


@pytest.fixture
def session(server) -> Connection:
    connection = server.pop3()
    assert connection.greeting == GREETING
    return connection


def test_greeting_has_no_apop_timestamp_V0012(session):
    assert connect("rfc3501").greeting == b"+OK exchmail POP3 server ready\r\n"
    assert b"<" not in GREETING


def test_apop_not_supported_V0012(session):
    assert session.send(b"APOP alice 0123456789abcdef0123456789abcdef\r\n").startswith(b"-ERR ")
    assert b"APOP" not in session.send(b"CAPA\r\n")
    assert login(session) == b"+OK User successfully logged on.\r\n"


def test_capa_lists_what_exchange_lists(session):
    assert session.send(b"CAPA\r\n") == b"+OK\r\nTOP\r\nUIDL\r\nSASL PLAIN\r\nUSER\r\n.\r\n"
    rfc = connect("rfc3501")
    assert rfc.send(b"CAPA\r\n") == (
        b"+OK\r\nTOP\r\nUIDL\r\nSASL PLAIN\r\nUSER\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n.\r\n"
    )


def test_capa_under_secure_login_has_no_plain_and_no_stls_without_tls():
    s = connect(login_type="SecureLogin")
    assert s.send(b"CAPA\r\n") == b"+OK\r\nTOP\r\nUIDL\r\nUSER\r\n.\r\n"


def test_2_1_1_spaces_and_tabs_separate_arguments(server, session):
    server.add()
    server.add()
    assert session.send(b"USER \t alice\r\n") == b"+OK\r\n"
    assert session.send(b"PASS pw\r\n").startswith(b"+OK")
    assert session.send(b"LIST\t\t2\r\n") == b"+OK 2 58\r\n"
    assert session.send(b"TOP  1 \t 0\r\n").startswith(b"+OK\r\nFrom:")
    assert session.send(b"uidl 2\r\n") == b"+OK 2 2\r\n"


def test_2_1_1_rfc_profile_wants_single_spaces():
    s = connect("rfc3501")
    s.harness.add()
    login(s)
    assert s.send(b"LIST  1\r\n").startswith(b"-ERR Protocol error")
    assert s.send(b"LIST\t1\r\n").startswith(b"-ERR Protocol error")
    assert s.send(b"LIST 1\r\n") == b"+OK 1 58\r\n"


def test_2_1_2_no_argument_length_check_but_command_limit(session):
    # A 100-character user name is fine under Exchange (no 40-character check)...
    assert session.send(b"USER " + b"u" * 100 + b"\r\n") == b"+OK\r\n"
    # ...but a command line longer than 512 octets (CRLF included) is refused,
    assert session.send(b"NOOP" + b" " * 506 + b"\r\n").startswith(b"-ERR")  # 512: accepted
    reply = session.send(b"USER " + b"x" * 506 + b"\r\n")  # 513 octets
    assert reply == b"-ERR Command line too long; the limit is 512 octets.\r\n"
    # also when it arrives in pieces, and the connection stays usable.
    assert session.send(b"USER " + b"x" * 600, b"y" * 600, b"\r\n").startswith(b"-ERR Command")
    assert session.send(b"USER alice\r\n") == b"+OK\r\n"
    assert not session.closed


def test_2_1_2_limit_is_configurable_and_rfc_checks_40_characters():
    s = connect(overrides={"pop3.MaxCommandSize": 40})
    assert s.send(b"USER " + b"u" * 33 + b"\r\n") == b"+OK\r\n"  # 40 octets
    assert s.send(b"USER " + b"u" * 34 + b"\r\n").startswith(b"-ERR Command line too long")
    rfc = connect("rfc3501")
    assert rfc.send(b"USER " + b"u" * 40 + b"\r\n") == b"+OK\r\n"
    assert rfc.send(b"USER " + b"u" * 41 + b"\r\n").startswith(b"-ERR Protocol error: an arg")


def test_C0001_responses_at_most_512_octets(server, session):
    login(session)
    for _ in range(3):
        server.add()
    for line in [b"+OK " + b"x" * 600, b"-ERR " + b"y" * 600]:
        assert len(wire.status_line(line[:4].strip(), line[5:])) == 512
    reply = session.send(b"LIST " + b"9" * 500 + b"\r\n")
    assert reply.startswith(b"-ERR") and len(reply) <= 512
    assert all(len(line) <= 510 for line in session.send(b"LIST\r\n").split(b"\r\n"))


def test_V0001_informational_text_after_err(session):
    assert session.send(b"STAT\r\n") == b"-ERR Command is not valid in this state.\r\n"
    assert session.send(b"FOO\r\n") == b"-ERR Protocol error: unknown command.\r\n"
    assert session.send(b"PASS pw\r\n") == b"-ERR USER command required before PASS.\r\n"


@pytest.mark.parametrize(
    "command", [b"STAT", b"LIST", b"RETR 1", b"DELE 1", b"NOOP", b"RSET", b"TOP 1 1", b"UIDL"]
)
def test_C0002_C0003_client_must_authenticate_first(server, session, command):
    server.add()
    assert session.send(command + b"\r\n") == b"-ERR Command is not valid in this state.\r\n"


def test_V0002_preauthenticated_timeout_60s_and_V0003_notice(session):
    session.clock.advance(59)
    assert not session.closed
    session.clock.advance(1)
    assert session.take() == (b"-ERR Autologout: the connection was idle for too long; closing it.\r\n")
    assert session.closed


def test_V0002_authenticated_timeout_1800s_reset_by_any_command(session):
    login(session)
    session.clock.advance(1799)
    session.send(b"NOOP\r\n")
    session.clock.advance(1799)
    assert not session.closed
    session.clock.advance(1)
    assert session.closed


def test_V0002_timeouts_configurable_and_V0003_rfc_closes_silently():
    s = connect("rfc3501", {"pop3.preauthenticated_timeout": 5, "AuthenticatedConnectionTimeout": 7})
    s.clock.advance(4)
    login(s)
    s.clock.advance(6)
    assert not s.closed
    s.harness.add()
    s.send(b"DELE 1\r\n")
    s.clock.advance(7)
    assert s.closed and s.take() == b""  # no response at all...
    s.server.connectionLost(None)
    assert list(s.harness.inbox().uids()) == [1]  # ...and no UPDATE state


def test_C0005_session_dropped_after_failed_logins(session):
    for _ in range(3):
        assert login(session, password=b"bad") == LOGIN_FAILED
        assert not session.closed
    assert login(session, password=b"bad") == LOGIN_FAILED
    assert session.closed


def test_C0005_rfc_profile_keeps_the_session():
    s = connect("rfc3501")
    for _ in range(6):
        assert login(s, password=b"bad") == LOGIN_FAILED
    assert not s.closed
    assert login(s) == b"+OK User successfully logged on.\r\n"


def test_V0008_V0009_user_always_ok(session):
    assert session.send(b"USER nobody-here\r\n") == b"+OK\r\n"
    assert session.send(b"PASS pw\r\n") == LOGIN_FAILED
    assert session.send(b"USER alice\r\n") == b"+OK\r\n"


def test_V0010_plaintext_not_allowed_gets_err():
    for login_type in ("SecureLogin", "PlainTextAuthentication"):
        s = connect(login_type=login_type)
        assert s.send(b"USER alice\r\n") == b"+OK\r\n"  # V0008 still holds
        assert s.send(b"PASS pw\r\n").startswith(b"-ERR [AUTH] Plaintext authentication")
    s = connect(login_type="SecureLogin")
    plain = base64.b64encode(b"\0alice\0pw")
    assert s.send(b"AUTH PLAIN " + plain + b"\r\n").startswith(b"-ERR")


def test_V0011_pass_takes_rest_of_line(session):
    assert login(session, b"bob", b"pass with  spaces ") == b"+OK User successfully logged on.\r\n"
    s = connect()
    assert login(s, b"bob", b"pass with spaces") == LOGIN_FAILED
    rfc = connect("rfc3501")
    assert login(rfc, b"bob", b"pass with  spaces ").startswith(b"+OK")


def test_E0002_auth_plain_with_and_without_initial_response(server, session):
    server.add()
    plain = base64.b64encode(b"\0alice\0pw")
    assert session.send(b"AUTH PLAIN\r\n") == b"+ \r\n"
    assert session.send(plain + b"\r\n") == b"+OK User successfully logged on.\r\n"
    s = connect()
    assert s.send(b"AUTH PLAIN " + plain + b"\r\n").startswith(b"+OK")
    assert s.send(b"STAT\r\n") == b"+OK 0 0\r\n"
    s = connect()
    assert s.send(b"AUTH\r\n") == b"+OK\r\nPLAIN\r\n.\r\n"
    assert s.send(b"AUTH NTLM\r\n") == b"-ERR Unrecognized authentication type.\r\n"
    cancelled = b"-ERR The AUTH protocol exchange was canceled by the client.\r\n"
    assert s.send(b"AUTH PLAIN\r\n", b"*\r\n") == b"+ \r\n" + cancelled
    assert s.send(b"AUTH PLAIN !!!\r\n") == b"-ERR Invalid base64 in the AUTH response.\r\n"
    assert s.send(b"AUTH PLAIN " + base64.b64encode(b"\0alice\0no") + b"\r\n") == LOGIN_FAILED


def test_2_1_3_no_lock_second_session_defined(server, session):
    server.add()
    server.add()
    other = server.pop3()  # the same service: context, store and locks
    login(session)
    assert login(other) == b"+OK User successfully logged on.\r\n"  # no exclusive lock
    session.send(b"DELE 1\r\n")
    assert session.send(b"QUIT\r\n").startswith(b"+OK")
    # The other session keeps its numbering; the removed message is answered -ERR.
    assert other.send(b"STAT\r\n") == b"+OK 2 116\r\n"
    assert other.send(b"RETR 1\r\n") == b"-ERR message 1 was removed by another session\r\n"
    assert other.send(b"RETR 2\r\n").startswith(b"+OK 58 octets\r\n")
    other.send(b"DELE 1\r\n")
    assert other.send(b"QUIT\r\n").startswith(b"+OK")  # nothing left to remove: fine


def test_C0004_rfc_exclusive_lock():
    first = connect("rfc3501")
    second = first.harness.pop3()
    assert login(first).startswith(b"+OK")
    assert login(second) == b"-ERR [IN-USE] The maildrop is in use by another POP3 session.\r\n"
    assert not second.closed
    first.send(b"QUIT\r\n")
    first.server.connectionLost(None)
    assert login(second).startswith(b"+OK")  # released by the first session's end


def test_V0004_V0005_nothing_after_the_size(server, session):
    server.add()
    login(session)
    assert session.send(b"STAT\r\n") == b"+OK 1 58\r\n"
    assert session.send(b"LIST 1\r\n") == b"+OK 1 58\r\n"
    assert session.send(b"LIST\r\n") == b"+OK 1 messages (58 octets)\r\n1 58\r\n.\r\n"


def test_C0006_minimal_commands_and_V0007_top(server, session):
    server.add()
    server.add(b"Subject: two\r\n\r\nb1\r\nb2\r\nb3\r\n")
    login(session)
    assert session.send(b"NOOP\r\n") == b"+OK\r\n"
    assert session.send(b"TOP 2 2\r\n") == b"+OK\r\nSubject: two\r\n\r\nb1\r\nb2\r\n.\r\n"
    assert session.send(b"TOP 1 1\r\n").endswith(b"\r\n\r\nline 1\r\n.\r\n")
    assert session.send(b"TOP 1 x\r\n").startswith(b"-ERR")
    assert session.send(b"DELE 1\r\n") == b"+OK Message 1 marked for deletion.\r\n"
    assert session.send(b"RETR 1\r\n") == b"-ERR Message 1 has been deleted.\r\n"
    assert session.send(b"STAT\r\n") == b"+OK 1 28\r\n"
    assert session.send(b"RSET\r\n") == b"+OK\r\n"
    assert session.send(b"STAT\r\n") == b"+OK 2 86\r\n"
    assert session.send(b"RETR 3\r\n") == b"-ERR The specified message is out of range.\r\n"
    assert session.send(b"UIDL\r\n") == b"+OK\r\n1 1\r\n2 2\r\n.\r\n"
    assert session.send(b"QUIT\r\n").startswith(b"+OK")
    assert session.closed


def test_C0011_byte_stuffing_and_crlf(server, session):
    server.add(b"Subject: s\r\n\r\n.\r\n..x\r\n.")
    login(session)
    assert session.send(b"RETR 1\r\n") == (b"+OK 23 octets\r\nSubject: s\r\n\r\n..\r\n...x\r\n..\r\n.\r\n")


def test_C0011_stuffing_across_chunk_boundaries():
    out, bol = wire.stuff(b"abc\r\n", True)
    assert (out, bol) == (b"abc\r\n", True)
    out, bol = wire.stuff(b".next\r\n.", bol)
    assert out == b"..next\r\n.." and bol is False
    assert wire.stuff(b".x", False) == (b".x", False)


def test_pipelined_commands_are_answered_in_order(server, session):
    server.add()
    reply = session.send(b"USER alice\r\nPASS pw\r\nSTAT\r\nRETR 1\r\nNOOP\r\n")
    assert reply.startswith(b"+OK\r\n+OK User successfully logged on.\r\n+OK 1 58\r\n+OK 58")
    assert reply.endswith(b"line 3\r\n.\r\n+OK\r\n")


def test_internal_error_is_sys_temp_and_logged(server, session, monkeypatch):
    server.add()
    login(session)

    def broken(index):
        raise RuntimeError("boom")

    monkeypatch.setattr(session.session.maildrop, "read", broken)  # small messages are read whole
    from twisted.logger import globalLogPublisher

    seen = []
    globalLogPublisher.addObserver(seen.append)
    try:
        reply = session.send(b"RETR 1\r\n")
    finally:
        globalLogPublisher.removeObserver(seen.append)
    assert reply == b"-ERR [SYS/TEMP] Internal server error; the error was logged.\r\n"
    assert any(e.get("log_failure") is not None for e in seen)
    assert session.send(b"NOOP\r\n") == b"+OK\r\n"


def test_V0006_update_is_message_by_message_and_never_removes_unmarked(server, session):
    for _ in range(4):
        server.add()
    inbox = server.inbox()
    inbox.set_flags([4], frozenset({"\\Deleted"}), "add")  # flagged by IMAP, not DELE'd

    def failing_remove(uids):
        """The store's removal hook: it stops at the first failure (message 2)."""
        removed = []
        for uid in uids:
            if uid == 2:
                return removed, OSError("disk on fire")
            removed.append(uid)
        return removed, None

    inbox._remove_messages = failing_remove
    login(session)
    for n in (1, 2, 3):
        session.send(b"DELE %d\r\n" % n)
    assert session.send(b"QUIT\r\n") == b"-ERR [SYS/TEMP] Some deleted messages were not removed.\r\n"
    assert session.closed
    # Message 1 went before the failure; 2 (failed) and 3 (after it) stay, without the
    # \Deleted flag the session put on them; 4 was never marked by POP3 and stays flagged.
    assert list(inbox.uids()) == [2, 3, 4]
    assert [inbox.message(uid).flags for uid in (2, 3, 4)] == [
        frozenset(),
        frozenset(),
        frozenset({"\\Deleted"}),
    ]


def test_V0006_quit_without_dele_and_dropped_connection_remove_nothing(server, session):
    server.add()
    login(session)
    session.send(b"DELE 1\r\n")
    session.server.connectionLost(None)  # no QUIT: no UPDATE state
    inbox = server.inbox()
    assert list(inbox.uids()) == [1] and inbox.message(1).flags == frozenset()


def test_accepted_connections_get_tcp_nodelay(server):
    """Multi-line replies must not wait for delayed ACKs (Nagle), as stock Twisted POP3 does."""

    class NoDelayTransport(StringTransport):
        nodelay = False

        def setTcpNoDelay(self, enabled: bool) -> None:
            self.nodelay = enabled

    transport = NoDelayTransport()
    proto = POP3Server(server.contexts["pop3"])
    proto.makeConnection(transport)
    assert transport.nodelay is True
    proto.connectionLost(None)
