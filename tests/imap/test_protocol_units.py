"""Unit tests of IMAPServer over a StringTransport and a Clock (no reactor thread)."""

from __future__ import annotations

import base64

import pytest
from harness import Harness
from twisted.internet.testing import StringTransport

from exchmail.imap.server import IMAPServer

EXCHANGE_GREETING = b"* OK The Microsoft Exchange IMAP4 service is ready.\r\n"
# CAPABILITY under exchange2010 (no CHILDREN: V0051's seed default) and rfc3501.
CAPS = b"IMAP4 IMAP4rev1 AUTH=PLAIN UIDPLUS IDLE NAMESPACE LITERAL+"
RFC_CAPS = b"IMAP4rev1 AUTH=PLAIN SASL-IR UIDPLUS CHILDREN IDLE NAMESPACE LITERAL+"
MESSAGE = b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture
def harness():
    return Harness()


@pytest.fixture
def session(harness):
    connection = harness.imap()
    yield connection
    connection.close()


def connect(profile: str = "exchange2010", **overrides):
    """A connection of a new :class:`Harness` (its greeting read)."""
    return Harness(profile, overrides).imap()


# -- greeting and login ------------------------------------------------------------
def test_exchange2010_greeting_without_capability(session):
    assert session.greeting == EXCHANGE_GREETING


def test_exchange2007_greeting():
    assert connect("exchange2007").greeting == EXCHANGE_GREETING


def test_rfc3501_greeting_with_capability():
    assert connect("rfc3501").greeting == (
        b"* OK [CAPABILITY " + RFC_CAPS + b"] exchmail IMAP4rev1 server ready\r\n"
    )


def test_greeting_banner_override():
    assert connect(banner="hello there").greeting == b"* OK hello there\r\n"


def test_exchange2010_login_response(session):
    assert session.login() == b"L1 OK LOGIN completed.\r\n"
    assert session.session.state == "auth"


def test_rfc3501_login_response_has_capability():
    s = connect("rfc3501")
    assert s.login() == b"L1 OK [CAPABILITY " + RFC_CAPS + b"] LOGIN completed.\r\n"


def test_login_failure_response(session):
    assert session.line("a1 LOGIN alice wrong") == b"a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    assert session.line("a2 LOGIN nobody pw") == b"a2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    assert session.session.state == "unauth"


def test_capability_response(session):
    assert session.line("c1 CAPABILITY") == b"* CAPABILITY " + CAPS + b"\r\nc1 OK CAPABILITY completed.\r\n"


def test_logout_closes_connection(session):
    out = session.line("z1 LOGOUT")
    assert out.startswith(b"* BYE ") and out.endswith(b"z1 OK LOGOUT completed.\r\n")
    assert session.closed
    # input after LOGOUT is ignored
    assert session.line("z2 NOOP") == b""


def test_authenticate_plain_continuation_and_success(session):
    out = session.line("a1 AUTHENTICATE PLAIN")
    assert out.startswith(b"+")
    assert session.line(base64.b64encode(b"\0alice\0pw")) == b"a1 OK AUTHENTICATE completed.\r\n"


def test_authenticate_empty_challenge_has_space(session):
    assert session.line("a1 AUTHENTICATE PLAIN") == b"+ \r\n"


# -- timeouts ------------------------------------------------------------------------
def test_autologout_after_authenticated_timeout(harness, session):
    session.login()
    timeout = harness.profile.imap.authenticated_timeout
    assert timeout == 1800
    session.clock.advance(timeout - 1)
    assert session.take() == b"" and not session.closed
    session.clock.advance(1)
    assert session.take().startswith(b"* BYE")
    assert session.closed


def test_activity_resets_authenticated_timeout(session):
    session.login()
    session.clock.advance(1000)
    assert session.line("n1 NOOP") == b"n1 OK NOOP completed.\r\n"
    session.clock.advance(1000)
    assert not session.closed
    session.clock.advance(800)
    assert session.take().startswith(b"* BYE") and session.closed


def test_unauthenticated_timeout(harness, session):
    assert harness.profile.imap.preauthenticated_timeout == 60
    session.clock.advance(59)
    assert not session.closed
    session.clock.advance(1)
    assert session.take() == b"* BYE Autologout; connection idle too long\r\n"
    assert session.closed


def test_timeout_overrides():
    s = connect(authenticated_timeout=100, preauthenticated_timeout=5)
    s.clock.advance(4)
    s.login()
    s.clock.advance(99)
    assert not s.closed
    s.clock.advance(1)
    assert s.take().startswith(b"* BYE") and s.closed


def test_autologout_uses_the_injected_reactor(harness, session):
    session.login()
    harness.clock.advance(harness.profile.imap.authenticated_timeout + 1)
    assert session.take().startswith(b"* BYE")
    assert session.closed


# -- split input -------------------------------------------------------------------------
def test_line_split_across_calls(session):
    assert session.send(b"a1 NO") == b""
    assert session.send(b"OP") == b""
    assert session.send(b"\r") == b""
    assert session.send(b"\n") == b"a1 OK NOOP completed.\r\n"


def test_line_split_byte_by_byte(session):
    out = b""
    for byte in b"a1 LOGIN alice pw\r\na2 NOOP\r\n":
        out += session.send(bytes([byte]))
    assert out == b"a1 OK LOGIN completed.\r\na2 OK NOOP completed.\r\n"


def test_synchronizing_literal_split_across_calls(session):
    assert session.send(b"a1 LOGIN {5}\r") == b""
    assert session.send(b"\n") == b"+ Ready for literal data\r\n"
    assert session.send(b"ali") == b""
    assert session.send(b"ce {2}") == b""
    assert session.send(b"\r\n") == b"+ Ready for literal data\r\n"
    assert session.send(b"p") == b""
    assert session.send(b"w") == b""
    assert session.send(b"\r\n") == b"a1 OK LOGIN completed.\r\n"


def test_literal_containing_crlf_and_command_text(session):
    session.login()
    data = b"Subject: x\r\n\r\na2 LOGOUT\r\n"
    assert session.send(b"a1 APPEND INBOX {%d}\r\n" % len(data)).startswith(b"+ ")
    out = session.send(data[:7], data[7:20], data[20:], b"\r\n")
    assert out.startswith(b"a1 OK [APPENDUID ")
    assert not session.closed


def test_literal_plus_split_across_calls_no_continuation(harness, session):
    session.login()
    assert session.send(b"a1 APPEND INBOX (\\Seen) {%d+}\r\n" % len(MESSAGE)) == b""
    assert session.send(MESSAGE[:10]) == b""
    assert session.send(MESSAGE[10:]) == b""
    out = session.send(b"\r\n")
    assert out.startswith(b"a1 OK [APPENDUID ") and b"+" not in out.split(b" ")[0]
    assert len(harness.mailbox().uids()) == 1


def test_pipelined_in_one_call(session):
    out = session.send(b"a1 NOOP\r\na2 LOGIN alice pw\r\na3 SELECT INBOX\r\na4 CAPABILITY\r\n")
    tagged = [line for line in out.split(b"\r\n") if line[:1] == b"a"]
    assert [line.split(b" ")[:2] for line in tagged] == [
        [b"a1", b"OK"],
        [b"a2", b"OK"],
        [b"a3", b"OK"],
        [b"a4", b"OK"],
    ]


def test_empty_line_is_null_command(session):
    assert session.send(b"\r\n") == b"* BAD Null command\r\n"


# -- limits ------------------------------------------------------------------------------
def test_too_long_line_in_one_call():
    s = connect(max_command_size=100)
    assert s.send(b"a1 NOOP " + b"x" * 200 + b"\r\n") == b"a1 BAD [TOOBIG] Command line too long\r\n"
    assert s.line("a2 NOOP") == b"a2 OK NOOP completed.\r\n"


def test_too_long_line_in_pieces_answers_once_at_line_end():
    s = connect(max_command_size=100)
    assert s.send(b"a1 LOGIN " + b"x" * 150) == b""
    assert s.send(b"y" * 150) == b""
    assert s.send(b" alice pw\r\n") == b"a1 BAD [TOOBIG] Command line too long\r\n"
    assert s.session.state == "unauth"
    assert s.line("a2 NOOP") == b"a2 OK NOOP completed.\r\n"


def test_command_size_counts_lines_of_a_literal_command():
    s = connect(max_command_size=100)
    out = s.send(b"a1 LOGIN {60+}\r\n" + b"u" * 60 + b" " + b"p" * 90 + b"\r\n")
    assert out.endswith(b" BAD [TOOBIG] Command line too long\r\n")
    assert s.session.state == "unauth"
    assert s.line("a2 NOOP") == b"a2 OK NOOP completed.\r\n"


def test_too_long_continuation_line_keeps_the_command_tag():
    s = connect(max_command_size=100)
    out = s.send(b"a1 LOGIN {60+}\r\n" + b"u" * 60 + b" xx " + b"p" * 90 + b"\r\n")
    assert out == b"a1 BAD [TOOBIG] Command line too long\r\n"


def test_discarded_long_line_is_not_buffered():
    s = connect(max_command_size=1024)
    s.send(b"a1 NOOP " + b"x" * 5000)
    for _ in range(100):
        s.send(b"y" * 10000)
    assert s.session.reader.buffered <= 2 * 1024
    assert s.send(b"\r\n") == b"a1 BAD [TOOBIG] Command line too long\r\n"


def test_sync_literal_too_large():
    s = connect(max_literal_size=10)
    s.login()
    assert s.line("a1 APPEND INBOX {11}") == b"a1 NO [TOOBIG] Literal larger than 10 octets\r\n"
    assert s.line("a2 NOOP") == b"a2 OK NOOP completed.\r\n"


def test_literal_plus_too_large_is_discarded_across_calls():
    s = connect(max_literal_size=10)
    s.login()
    assert s.send(b"a1 APPEND INBOX {30+}\r\n") == b""
    assert s.send(b"a9 LOGOUT\r\n") == b""  # literal data, not a command
    assert s.send(b"x" * 19) == b""
    assert s.send(b"\r\n") == b"a1 NO [TOOBIG] Literal larger than 10 octets\r\n"
    assert not s.closed
    assert s.line("a2 NOOP") == b"a2 OK NOOP completed.\r\n"


def test_internal_error_is_serverbug(session):
    session.login()

    def boom():
        raise RuntimeError("simulated")

    session.session.account.list_mailboxes = boom
    out = session.send(b'l1 LIST "" *\r\nl2 NOOP\r\n')
    assert out == (
        b"l1 NO [SERVERBUG] Internal server error; the error was logged\r\nl2 OK NOOP completed.\r\n"
    )


def test_accepted_connections_get_tcp_nodelay(harness):
    """Multi-line replies must not wait for delayed ACKs (Nagle): TCP_NODELAY is set."""

    class NoDelayTransport(StringTransport):
        nodelay = False

        def setTcpNoDelay(self, enabled: bool) -> None:
            self.nodelay = enabled

    server = IMAPServer(harness.contexts["imap"])
    transport = NoDelayTransport()
    server.makeConnection(transport)
    try:
        assert transport.nodelay is True
    finally:
        server.connectionLost(None)
