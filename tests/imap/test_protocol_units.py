"""Unit tests of IMAPServer over a StringTransport and a Clock (no reactor thread)."""

from __future__ import annotations

import base64

import pytest
from helpers import IMAPSession
from twisted.internet.testing import StringTransport

EXCHANGE_GREETING = b"* OK The Microsoft Exchange IMAP4 service is ready.\r\n"
# CAPABILITY under exchange2010 (no CHILDREN: V0051's seed default) and rfc3501.
CAPS = b"IMAP4 IMAP4rev1 AUTH=PLAIN UIDPLUS IDLE NAMESPACE LITERAL+"
RFC_CAPS = b"IMAP4rev1 AUTH=PLAIN SASL-IR UIDPLUS CHILDREN IDLE NAMESPACE LITERAL+"
MESSAGE = b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n"




@pytest.fixture
def session():
    s = IMAPSession()
    yield s
    s.close()


# -- greeting and login ------------------------------------------------------------
def test_exchange2010_greeting_without_capability(session):
    assert session.take() == EXCHANGE_GREETING


def test_exchange2007_greeting():
    s = IMAPSession("exchange2007")
    try:
        assert s.take() == EXCHANGE_GREETING
    finally:
        s.close()


def test_rfc3501_greeting_with_capability():
    s = IMAPSession("rfc3501")
    try:
        assert s.take() == b"* OK [CAPABILITY " + RFC_CAPS + b"] exchmail IMAP4rev1 server ready\r\n"
    finally:
        s.close()


def test_greeting_banner_override():
    s = IMAPSession(overrides={"banner": "hello there"})
    try:
        assert s.take() == b"* OK hello there\r\n"
    finally:
        s.close()


def test_exchange2010_login_response(session):
    session.take()
    assert session.login() == b"L1 OK LOGIN completed.\r\n"
    assert session.proto.state == "auth"


def test_rfc3501_login_response_has_capability():
    s = IMAPSession("rfc3501")
    try:
        s.take()
        assert s.login() == b"L1 OK [CAPABILITY " + RFC_CAPS + b"] LOGIN completed.\r\n"
    finally:
        s.close()


def test_login_failure_response(session):
    session.take()
    assert session.send(b"a1 LOGIN alice wrong\r\n") == \
        b"a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    assert session.send(b"a2 LOGIN nobody pw\r\n") == \
        b"a2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    assert session.proto.state == "unauth"


def test_capability_response(session):
    session.take()
    assert session.send(b"c1 CAPABILITY\r\n") == \
        b"* CAPABILITY " + CAPS + b"\r\nc1 OK CAPABILITY completed.\r\n"


def test_logout_closes_connection(session):
    session.take()
    out = session.send(b"z1 LOGOUT\r\n")
    assert out.startswith(b"* BYE ") and out.endswith(b"z1 OK LOGOUT completed.\r\n")
    assert session.transport.disconnecting
    # input after LOGOUT is ignored
    assert session.send(b"z2 NOOP\r\n") == b""


def test_authenticate_plain_continuation_and_success(session):
    session.take()
    out = session.send(b"a1 AUTHENTICATE PLAIN\r\n")
    assert out.startswith(b"+")
    assert session.send(base64.b64encode(b"\0alice\0pw") + b"\r\n") == \
        b"a1 OK AUTHENTICATE completed.\r\n"


def test_authenticate_empty_challenge_has_space(session):
    session.take()
    assert session.send(b"a1 AUTHENTICATE PLAIN\r\n") == b"+ \r\n"


# -- timeouts ------------------------------------------------------------------------
def test_autologout_after_authenticated_timeout(session):
    session.take()
    session.login()
    timeout = session.profile.imap.authenticated_timeout
    assert timeout == 1800
    session.clock.advance(timeout - 1)
    assert session.take() == b"" and not session.transport.disconnecting
    session.clock.advance(1)
    assert session.take().startswith(b"* BYE")
    assert session.transport.disconnecting


def test_activity_resets_authenticated_timeout(session):
    session.take()
    session.login()
    session.clock.advance(1000)
    assert session.send(b"n1 NOOP\r\n") == b"n1 OK NOOP completed.\r\n"
    session.clock.advance(1000)
    assert not session.transport.disconnecting
    session.clock.advance(800)
    assert session.take().startswith(b"* BYE") and session.transport.disconnecting


def test_unauthenticated_timeout(session):
    session.take()
    assert session.profile.imap.preauthenticated_timeout == 60
    session.clock.advance(59)
    assert not session.transport.disconnecting
    session.clock.advance(1)
    assert session.take() == b"* BYE Autologout; connection idle too long\r\n"
    assert session.transport.disconnecting


def test_timeout_overrides():
    s = IMAPSession(overrides={"authenticated_timeout": 100, "preauthenticated_timeout": 5})
    try:
        s.take()
        s.clock.advance(4)
        s.login()
        s.clock.advance(99)
        assert not s.transport.disconnecting
        s.clock.advance(1)
        assert s.take().startswith(b"* BYE") and s.transport.disconnecting
    finally:
        s.close()


def test_autologout_uses_the_injected_reactor():
    s = IMAPSession()
    try:
        s.take()
        s.login()
        s.clock.advance(s.profile.imap.authenticated_timeout + 1)
        assert s.take().startswith(b"* BYE")
        assert s.transport.disconnecting
    finally:
        s.close()


# -- split input -------------------------------------------------------------------------
def test_line_split_across_calls(session):
    session.take()
    assert session.send(b"a1 NO") == b""
    assert session.send(b"OP") == b""
    assert session.send(b"\r") == b""
    assert session.send(b"\n") == b"a1 OK NOOP completed.\r\n"


def test_line_split_byte_by_byte(session):
    session.take()
    out = b""
    for byte in b"a1 LOGIN alice pw\r\na2 NOOP\r\n":
        out += session.send(bytes([byte]))
    assert out == b"a1 OK LOGIN completed.\r\na2 OK NOOP completed.\r\n"


def test_synchronizing_literal_split_across_calls(session):
    session.take()
    assert session.send(b"a1 LOGIN {5}\r") == b""
    assert session.send(b"\n") == b"+ Ready for literal data\r\n"
    assert session.send(b"ali") == b""
    assert session.send(b"ce {2}") == b""
    assert session.send(b"\r\n") == b"+ Ready for literal data\r\n"
    assert session.send(b"p") == b""
    assert session.send(b"w") == b""
    assert session.send(b"\r\n") == b"a1 OK LOGIN completed.\r\n"


def test_literal_containing_crlf_and_command_text(session):
    session.take()
    session.login()
    data = b"Subject: x\r\n\r\na2 LOGOUT\r\n"
    assert session.send(b"a1 APPEND INBOX {%d}\r\n" % len(data)).startswith(b"+ ")
    out = session.send(data[:7], data[7:20], data[20:], b"\r\n")
    assert out.startswith(b"a1 OK [APPENDUID ")
    assert not session.transport.disconnecting


def test_literal_plus_split_across_calls_no_continuation(session):
    session.take()
    session.login()
    assert session.send(b"a1 APPEND INBOX (\\Seen) {%d+}\r\n" % len(MESSAGE)) == b""
    assert session.send(MESSAGE[:10]) == b""
    assert session.send(MESSAGE[10:]) == b""
    out = session.send(b"\r\n")
    assert out.startswith(b"a1 OK [APPENDUID ") and b"+" not in out.split(b" ")[0]
    account = session.store._accounts["alice"]
    inbox = account._mailboxes["INBOX"]
    assert len(inbox.uids()) == 1


def test_pipelined_in_one_call(session):
    session.take()
    out = session.send(b"a1 NOOP\r\na2 LOGIN alice pw\r\na3 SELECT INBOX\r\na4 CAPABILITY\r\n")
    tagged = [line for line in out.split(b"\r\n") if line[:1] == b"a"]
    assert [line.split(b" ")[:2] for line in tagged] == [
        [b"a1", b"OK"], [b"a2", b"OK"], [b"a3", b"OK"], [b"a4", b"OK"]]


def test_empty_line_is_null_command(session):
    session.take()
    assert session.send(b"\r\n") == b"* BAD Null command\r\n"


# -- limits ------------------------------------------------------------------------------
def test_too_long_line_in_one_call():
    s = IMAPSession(overrides={"max_command_size": 100})
    try:
        s.take()
        assert s.send(b"a1 NOOP " + b"x" * 200 + b"\r\n") == b"a1 BAD [TOOBIG] Command line too long\r\n"
        assert s.send(b"a2 NOOP\r\n") == b"a2 OK NOOP completed.\r\n"
    finally:
        s.close()


def test_too_long_line_in_pieces_answers_once_at_line_end():
    s = IMAPSession(overrides={"max_command_size": 100})
    try:
        s.take()
        assert s.send(b"a1 LOGIN " + b"x" * 150) == b""
        assert s.send(b"y" * 150) == b""
        assert s.send(b" alice pw\r\n") == b"a1 BAD [TOOBIG] Command line too long\r\n"
        assert s.proto.state == "unauth"
        assert s.send(b"a2 NOOP\r\n") == b"a2 OK NOOP completed.\r\n"
    finally:
        s.close()


def test_command_size_counts_lines_of_a_literal_command():
    s = IMAPSession(overrides={"max_command_size": 100})
    try:
        s.take()
        out = s.send(b"a1 LOGIN {60+}\r\n" + b"u" * 60 + b" " + b"p" * 90 + b"\r\n")
        assert out.endswith(b" BAD [TOOBIG] Command line too long\r\n")
        assert s.proto.state == "unauth"
        assert s.send(b"a2 NOOP\r\n") == b"a2 OK NOOP completed.\r\n"
    finally:
        s.close()


def test_too_long_continuation_line_keeps_the_command_tag():
    s = IMAPSession(overrides={"max_command_size": 100})
    try:
        s.take()
        out = s.send(b"a1 LOGIN {60+}\r\n" + b"u" * 60 + b" xx " + b"p" * 90 + b"\r\n")
        assert out == b"a1 BAD [TOOBIG] Command line too long\r\n"
    finally:
        s.close()


def test_discarded_long_line_is_not_buffered():
    s = IMAPSession(overrides={"max_command_size": 1024})
    try:
        s.take()
        s.send(b"a1 NOOP " + b"x" * 5000)
        for _ in range(100):
            s.send(b"y" * 10000)
        assert len(s.proto._buffer) <= 2 * 1024
        assert s.send(b"\r\n") == b"a1 BAD [TOOBIG] Command line too long\r\n"
    finally:
        s.close()


def test_sync_literal_too_large():
    s = IMAPSession(overrides={"max_literal_size": 10})
    try:
        s.take()
        s.login()
        assert s.send(b"a1 APPEND INBOX {11}\r\n") == b"a1 NO [TOOBIG] Literal larger than 10 octets\r\n"
        assert s.send(b"a2 NOOP\r\n") == b"a2 OK NOOP completed.\r\n"
    finally:
        s.close()


def test_literal_plus_too_large_is_discarded_across_calls():
    s = IMAPSession(overrides={"max_literal_size": 10})
    try:
        s.take()
        s.login()
        assert s.send(b"a1 APPEND INBOX {30+}\r\n") == b""
        assert s.send(b"a9 LOGOUT\r\n") == b""  # literal data, not a command
        assert s.send(b"x" * 19) == b""
        assert s.send(b"\r\n") == b"a1 NO [TOOBIG] Literal too large\r\n"
        assert not s.transport.disconnecting
        assert s.send(b"a2 NOOP\r\n") == b"a2 OK NOOP completed.\r\n"
    finally:
        s.close()


def test_internal_error_is_serverbug(session):
    session.take()
    session.login()

    def boom():
        raise RuntimeError("simulated")

    session.proto.account.list_mailboxes = boom
    out = session.send(b"l1 LIST \"\" *\r\nl2 NOOP\r\n")
    assert out == (b"l1 NO [SERVERBUG] Internal server error; the error was logged\r\n"
                   b"l2 OK NOOP completed.\r\n")


def test_accepted_connections_get_tcp_nodelay():
    """Multi-line replies must not wait for delayed ACKs (Nagle): TCP_NODELAY is set."""
    class NoDelayTransport(StringTransport):
        nodelay = False

        def setTcpNoDelay(self, enabled: bool) -> None:
            self.nodelay = enabled

    s = IMAPSession()
    try:
        transport = NoDelayTransport()
        s.proto.makeConnection(transport)
        assert transport.nodelay is True
    finally:
        s.close()
