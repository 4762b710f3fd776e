"""MULTIAPPEND (RFC 3502), CATENATE (RFC 4469) and APPEND literal8 (RFC 3516), in memory.

Each extension is a profile setting; without it its syntax is BAD.  Every
bad input leaves the session usable (checked with NOOP).
"""

from __future__ import annotations

import re

import pytest
from harness import Harness
from twisted.internet import defer

from exchmail.errors import StoreError
from exchmail.store.memory import MemoryStore
from exchmail.store.quota import QuotaLimits, QuotaPolicy, QuotaStore, check_room

ALL = {"multiappend": True, "binary": True, "catenate": True, "utf8_accept": True, "compress_deflate": True}
M1 = b"From: a@example.com\r\nSubject: one\r\n\r\nbody1\r\n"
M2 = b"From: a@example.com\r\nSubject: two\r\n\r\nbody2\r\n"


def lit(data: bytes) -> bytes:
    return b"{%d+}\r\n" % len(data) + data


def connect(overrides: dict | None = None, profile: str = "rfc3501", **kwargs):
    harness = Harness(profile, ALL if overrides is None else overrides, **kwargs)
    conn = harness.imap()
    assert b"OK" in conn.login()
    return harness, conn


def still_usable(conn) -> None:
    assert conn.line("z NOOP").endswith(b"z OK NOOP completed.\r\n")


def bodies(harness, name: str = "INBOX") -> list[bytes]:
    box = harness.mailbox(name=name)
    return [defer_result(box.read_message(uid)) for uid in box.uids()]


def defer_result(value):
    from exchmail.testing import result

    return result(value) if isinstance(value, defer.Deferred) else value


# -- MULTIAPPEND -------------------------------------------------------------------------------
def test_multiappend_stores_every_message_with_its_flags():
    harness, conn = connect()
    out = conn.send(
        b"a APPEND INBOX (\\Seen) " + lit(M1) + b" (\\Flagged) "
        b'"01-Jan-2024 10:00:00 +0000" ' + lit(M2) + b"\r\n"
    )
    match = re.search(rb"a OK \[APPENDUID (\d+) (\S+)\]", out)
    assert match and match.group(2) == b"1:2", out
    box = harness.mailbox()
    assert bodies(harness) == [M1, M2]
    first, second = (box.message(uid) for uid in box.uids())
    assert first.flags == {"\\Seen"} and second.flags == {"\\Flagged"}
    assert second.internal_date == 1704103200.0


def test_multiappend_is_all_or_nothing_on_a_bad_message():
    harness, conn = connect()
    out = conn.send(b"a APPEND INBOX " + lit(M1) + b" (\\Bogus) " + lit(M2) + b"\r\n")
    assert out.startswith(b"a BAD"), out
    assert bodies(harness) == []
    still_usable(conn)


def test_multiappend_undoes_the_stored_messages_when_the_store_fails():
    class Failing(MemoryStore):
        """A store whose second append fails (a full disk, say)."""

    store = Failing()
    harness, conn = connect(store=store)
    box = harness.mailbox()
    original = box.append
    calls = []

    def append(source, flags=frozenset(), date=None):
        calls.append(source)
        if len(calls) == 2:
            return defer.fail(StoreError("disk full"))
        return original(source, flags, date)

    box.append = append
    out = conn.send(b"a APPEND INBOX " + lit(M1) + b" " + lit(M2) + b"\r\n")
    assert out.startswith(b"a NO"), out
    assert list(box.uids()) == []  # the first one was taken back
    still_usable(conn)


def test_multiappend_checks_the_quota_for_all_messages_first():
    policy = QuotaPolicy(QuotaLimits(limit=len(M1) + len(M2) - 1))
    harness, conn = connect(store=QuotaStore(MemoryStore(), policy))
    out = conn.send(b"a APPEND INBOX " + lit(M1) + b" " + lit(M2) + b"\r\n")
    assert out.startswith(b"a NO [OVERQUOTA]"), out
    assert bodies(harness) == []
    assert conn.send(b"b APPEND INBOX " + lit(M1) + b"\r\n").startswith(b"b OK")
    still_usable(conn)


def test_check_room_without_quota_succeeds():
    box = Harness().mailbox()
    assert defer_result(check_room(box, 10**12)) is None


def test_multiappend_off_is_bad_and_stores_nothing():
    harness, conn = connect({})
    assert b"MULTIAPPEND" not in conn.line("c CAPABILITY")
    out = conn.send(b"a APPEND INBOX " + lit(M1) + b" " + lit(M2) + b"\r\n")
    assert out.startswith(b"a BAD"), out
    assert bodies(harness) == []
    still_usable(conn)


def test_multiappend_to_a_missing_mailbox_is_trycreate():
    harness, conn = connect()
    out = conn.send(b"a APPEND Nowhere " + lit(M1) + b" " + lit(M2) + b"\r\n")
    assert out.startswith(b"a NO [TRYCREATE]"), out
    still_usable(conn)


def test_multiappend_in_the_wrong_state_is_bad():
    harness = Harness("rfc3501", ALL)
    conn = harness.imap()
    out = conn.send(b"a APPEND INBOX " + lit(M1) + b" " + lit(M2) + b"\r\n")
    assert out.startswith(b"a BAD") and b"not authenticated" in out, out
    assert conn.line("z NOOP").startswith(b"z OK")


def test_multiappend_too_large_message_is_toobig():
    harness, conn = connect({**ALL, "max_literal_size": 60})
    big = b"Subject: x\r\n\r\n" + b"y" * 30
    out = conn.send(b"a APPEND INBOX CATENATE (TEXT " + lit(big) + b" TEXT " + lit(big) + b")\r\n")
    assert out.startswith(b"a NO [TOOBIG]"), out
    assert bodies(harness) == []
    still_usable(conn)


# -- CATENATE ------------------------------------------------------------------------------------
def test_catenate_joins_text_and_urls_of_own_messages():
    harness, conn = connect()
    harness.deliver(M1)
    uidvalidity = harness.mailbox().uid_validity
    url = b'"/INBOX;UIDVALIDITY=%d/;UID=1/;SECTION=HEADER"' % uidvalidity
    out = conn.send(b"a APPEND INBOX CATENATE (URL " + url + b" TEXT " + lit(b"new body\r\n") + b")\r\n")
    assert b"a OK [APPENDUID" in out, out
    assert bodies(harness)[-1] == b"From: a@example.com\r\nSubject: one\r\n\r\nnew body\r\n"


def test_catenate_relative_url_partial_and_part():
    harness, conn = connect()
    harness.deliver(M1)
    conn.line("s SELECT INBOX")
    out = conn.send(
        b'a APPEND INBOX CATENATE (URL ";UID=1/;SECTION=TEXT" '
        b'URL "/INBOX/;UID=1/;PARTIAL=0.4" URL "/INBOX/;UID=1/;PARTIAL=100000.1")\r\n'
    )
    assert b"a OK" in out, out
    assert bodies(harness)[-1] == b"body1\r\nFrom"


@pytest.mark.parametrize(
    "url",
    [
        b'"/INBOX;UIDVALIDITY=1/;UID=1"',  # wrong UIDVALIDITY
        b'"/INBOX/;UID=99"',  # no such message
        b'"/Nowhere/;UID=1"',  # no such mailbox
        b'"/INBOX/;UID=1/;SECTION=7"',  # no such part
        b'"imap://alice@localhost/INBOX/;UID=1"',  # not this session's (absolute)
        b'";UID=1"',  # relative, but nothing selected
        b'"/INBOX/;UID=1/;SECTION=BOGUS"',
        b'"/INBOX/;UID=1/;URLAUTH=anonymous"',
        b'"not a url"',
    ],
)
def test_catenate_bad_urls_are_no_badurl_and_nothing_is_stored(url):
    harness, conn = connect()
    harness.deliver(M1)
    out = conn.send(
        b"a APPEND INBOX CATENATE (TEXT "
        + lit(b"x: 1\r\n\r\n")
        + b" URL "
        + url
        + b") CATENATE (TEXT "
        + lit(b"x: 2\r\n\r\n")
        + b")\r\n"
    )
    assert out.startswith(b"a NO [BADURL "), out
    assert len(bodies(harness)) == 1
    still_usable(conn)


def test_catenate_url_of_another_users_mailbox_is_badurl():
    harness, conn = connect()
    harness.deliver(M1, user="bob")
    out = conn.send(b'a APPEND INBOX CATENATE (URL "/INBOX/;UID=1")\r\n')
    assert out.startswith(b"a NO [BADURL"), out  # alice has no message 1
    assert bodies(harness, "INBOX") == []


def test_catenate_to_a_missing_mailbox_is_trycreate_even_with_a_bad_url():
    harness, conn = connect()
    out = conn.send(b'a APPEND Nowhere CATENATE (URL "/INBOX;UIDVALIDITY=1/;UID=9")\r\n')
    assert out.startswith(b"a NO [TRYCREATE]"), out


@pytest.mark.parametrize(
    "args",
    [
        b"CATENATE ()",
        b"CATENATE (TEXT)",
        b'CATENATE (FOO "x")',
        b"CATENATE (URL (a b))",
        b"CATENATE",
        b'CATENATE "x"',
    ],
)
def test_catenate_syntax_errors_are_bad(args):
    harness, conn = connect()
    out = conn.line(b"a APPEND INBOX " + args)
    assert out.startswith(b"a BAD"), out
    still_usable(conn)


def test_catenate_off_is_bad():
    harness, conn = connect({"multiappend": True})
    out = conn.send(b"a APPEND INBOX CATENATE (TEXT " + lit(M1) + b")\r\n")
    assert out.startswith(b"a BAD"), out
    assert bodies(harness) == []
    still_usable(conn)


# -- literal8 ------------------------------------------------------------------------------------------
BINARY_MESSAGE = (
    b"Subject: bin\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: binary\r\n\r\n\x00\x01\xff\nA\rB\r\n"
)


def test_append_literal8_is_stored_losslessly_as_base64():
    harness, conn = connect()
    out = conn.send(b"a APPEND INBOX ~" + lit(BINARY_MESSAGE) + b"\r\n")
    assert b"a OK [APPENDUID" in out, out
    stored = bodies(harness)[0]
    assert b"Content-Transfer-Encoding: base64\r\n" in stored and b"\x00" not in stored
    conn.line("s SELECT INBOX")
    out = conn.line("f FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])")
    assert b"BINARY[1] ~{9}\r\n\x00\x01\xff\nA\rB\r\n BINARY.SIZE[1] 9)" in out, out


def test_append_literal8_without_nul_is_stored_as_sent():
    harness, conn = connect()
    assert b"a OK" in conn.send(b"a APPEND INBOX ~" + lit(M1) + b"\r\n")
    assert bodies(harness) == [M1]


def test_literal8_without_binary_is_bad():
    harness, conn = connect({"multiappend": True, "catenate": True})
    out = conn.send(b"a APPEND INBOX ~" + lit(BINARY_MESSAGE) + b"\r\n")
    assert out.startswith(b"a BAD") and b"BINARY" in out, out
    out = conn.send(b"b APPEND INBOX CATENATE (TEXT ~" + lit(BINARY_MESSAGE) + b")\r\n")
    assert out.startswith(b"b BAD"), out
    assert bodies(harness) == []
    still_usable(conn)


@pytest.mark.parametrize(
    "command",
    [
        b"a LOGIN ~{3+}\r\n\x00ab pw",
        b"a SELECT ~{5+}\r\nIN\x00OX",
        b"a APPEND INBOX CATENATE (URL ~{3+}\r\n/\x00x)",
        b"a CREATE ~{2+}\r\nab",
    ],
)
def test_literal8_outside_append_is_bad(command):
    harness = Harness("rfc3501", ALL)
    conn = harness.imap()
    if not command.startswith(b"a LOGIN"):
        conn.login()
    out = conn.send(command + b"\r\n")
    assert out.startswith(b"a BAD") or b"\r\na BAD" in out, out
    assert conn.line("z NOOP").startswith(b"z OK")


def test_catenate_text_literal8_with_binary():
    harness, conn = connect()
    out = conn.send(
        b"a APPEND INBOX CATENATE (TEXT "
        + lit(BINARY_MESSAGE[:88])
        + b" TEXT ~"
        + lit(BINARY_MESSAGE[88:])
        + b")\r\n"
    )
    assert b"a OK" in out, out
    stored = bodies(harness)[0]
    assert b"\x00" not in stored and b"base64" in stored


def test_literal8_with_nul_in_a_header_is_refused():
    harness, conn = connect()
    out = conn.send(b"a APPEND INBOX ~" + lit(b"Subject: a\x00b\r\n\r\nbody\r\n") + b"\r\n")
    assert out.startswith(b"a NO [UNKNOWN-CTE]"), out
    assert bodies(harness) == []
    still_usable(conn)
