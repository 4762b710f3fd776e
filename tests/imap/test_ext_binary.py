"""BINARY (RFC 3516): FETCH BINARY[]/BINARY.PEEK[]/BINARY.SIZE[], in memory and pure."""

from __future__ import annotations

import pytest
from harness import Harness

from exchmail.imap.binary import (
    UnknownCTE,
    binary_literal,
    binary_section,
    decode_quoted_printable,
    storable,
)
from exchmail.imap.handlers import fetching
from exchmail.mailbox import content
from exchmail.mime.message import ParsedMessage

MIXED = (
    b"From: a@example.com\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
    b"--XX\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"aGVsbG8gd29ybGQ=\r\n"
    b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
    b"\r\ncaf=C3=A9  \r\nsoft=\r\nbreak\r\n"
    b"--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"AAEC/w==\r\n"
    b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    b"cr\xc3\xa8me\r\n"
    b"--XX--\r\n"
)
ALL = {"binary": True}


def session(overrides: dict | None = None, profile: str = "rfc3501", message: bytes = MIXED):
    harness = Harness(profile, {**ALL, **(overrides or {})})
    harness.deliver(message)
    conn = harness.imap()
    conn.login()
    conn.line("s SELECT INBOX")
    return harness, conn


# -- pure functions -----------------------------------------------------------------------
def test_binary_section_decodes_leaves():
    parsed = ParsedMessage(MIXED)
    assert binary_section(parsed, (1,)) == b"hello world"
    assert binary_section(parsed, (2,)) == "café\r\nsoftbreak".encode()
    assert binary_section(parsed, (3,)) == b"\x00\x01\x02\xff"
    assert binary_section(parsed, (4,)) == "crème".encode()
    assert binary_section(parsed, (9,)) == b""


def test_binary_section_of_the_whole_message_rewrites_encodings():
    whole = binary_section(ParsedMessage(MIXED), ())
    assert whole.count(b"Content-Transfer-Encoding: binary\r\n") == 3
    assert b"\r\n\r\nhello world\r\n--XX" in whole and b"\x00\x01\x02\xff" in whole
    assert b"Content-Transfer-Encoding: 8bit" in whole


def test_unknown_cte_is_an_error():
    message = b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n"
    with pytest.raises(UnknownCTE):
        binary_section(ParsedMessage(message), (1,))
    with pytest.raises(UnknownCTE):
        binary_section(ParsedMessage(message), ())


def test_quoted_printable_rules():
    assert decode_quoted_printable(b"a  \r\nb= \r\nc=3D\nd") == b"a\r\nbc=\r\nd"


def test_binary_literal_uses_literal8_only_for_nul():
    assert binary_literal(b"ab\r\n") == b"{4}\r\nab\r\n"
    assert binary_literal(b"a\x00") == b"~{2}\r\na\x00"


def test_storable_keeps_content_and_is_idempotent():
    message = b"Subject: x\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\r\x00\n"
    stored = storable(message)
    assert b"\x00" not in stored
    assert binary_section(ParsedMessage(stored), (1,)) == b"\x00\r\x00\n"
    assert storable(stored) == stored
    assert storable(MIXED) == MIXED


# -- FETCH ----------------------------------------------------------------------------------------
def test_fetch_binary_items():
    harness, conn = session()
    out = conn.line(
        "f FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[3] BINARY.SIZE[3] BINARY.PEEK[4]<1.3> FLAGS)"
    )
    assert (
        b"BINARY[1] {11}\r\nhello world BINARY.SIZE[1] 11 BINARY[3] ~{4}\r\n\x00\x01\x02\xff "
        b"BINARY.SIZE[3] 4 BINARY[4]<1> {3}\r\nr\xc3\xa8 FLAGS (\\Recent))"
    ) in out, out
    assert out.endswith(b"f OK FETCH completed.\r\n")


def test_fetch_binary_sets_seen_and_peek_does_not():
    harness, conn = session()
    assert b"\\Seen" not in conn.line("a FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[2])")
    out = conn.line("b FETCH 1 BINARY[1]")
    assert b"\\Seen" in out, out


def test_uid_fetch_binary_and_nonexistent_part():
    harness, conn = session()
    out = conn.line("u UID FETCH 1 (BINARY.PEEK[7] BINARY.SIZE[7])")
    assert b"* 1 FETCH (UID 1 BINARY[7] {0}\r\n BINARY.SIZE[7] 0)" in out, out


def test_binary_with_seven_bit_output_returns_decoded_octets():
    """seven_bit_output (V0007) re-encodes BODY; BINARY still decodes to the real octets."""
    harness, conn = session({"seven_bit_output": True})
    out = conn.line("f FETCH 1 (BINARY.PEEK[4] BODY.PEEK[4])")
    assert b"BINARY[4] {6}\r\ncr\xc3\xa8me" in out, out
    assert b"BODY[4] {10}\r\ncr=C3=A8me)" in out, out


def test_binary_unknown_cte_is_no_and_session_goes_on():
    message = b"Subject: u\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n"
    harness, conn = session(message=message)
    out = conn.line("f FETCH 1 BINARY.PEEK[1]")
    assert out.startswith(b"f NO [UNKNOWN-CTE]"), out
    assert conn.line("g FETCH 1 BODY.PEEK[1]").endswith(b"g OK FETCH completed.\r\n")


@pytest.mark.parametrize(
    "item",
    [
        "BINARY[HEADER]",
        "BINARY[1.MIME]",
        "BINARY.SIZE[1]<0.5>",
        "BINARY[1]<0.0>",
        "BINARY[0]",
        "BINARY.PEEK[TEXT]",
        "BINARY[1",
        "BINARY.FOO[1]",
    ],
)
def test_bad_binary_items_are_bad(item):
    harness, conn = session()
    out = conn.line(f"f FETCH 1 ({item})")
    assert out.startswith(b"f BAD"), out
    assert conn.line("z NOOP").startswith(b"z OK")


def test_binary_off_is_bad():
    harness, conn = session({"binary": False})
    assert b"BINARY" not in conn.line("c CAPABILITY")
    assert conn.line("f FETCH 1 BINARY[1]").startswith(b"f BAD")
    assert conn.line("z NOOP").startswith(b"z OK")


def test_binary_in_the_wrong_state_is_bad():
    harness = Harness("rfc3501", ALL)
    conn = harness.imap()
    conn.login()
    out = conn.line("f FETCH 1 BINARY[1]")
    assert out.startswith(b"f BAD") and b"authenticated state" in out, out


def test_binary_of_a_big_message_is_decoded_off_the_reactor_thread(monkeypatch):
    """Like every content item above INLINE_LIMIT: rendered through run_blocking."""
    calls = []

    def run_blocking(f, *args):
        from twisted.internet import defer

        calls.append(f)
        return defer.maybeDeferred(f, *args)

    body = b"QUJD" * (content.INLINE_LIMIT // 3)
    message = b"Subject: big\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body + b"\r\n"
    harness = Harness("rfc3501", ALL, run_blocking=run_blocking)
    harness.deliver(message)
    conn = harness.imap()
    conn.login()
    conn.line("s SELECT INBOX")
    out = conn.line("f FETCH 1 BINARY.SIZE[1]")
    assert b"BINARY.SIZE[1] %d" % (len(body) // 4 * 3) in out, out
    assert fetching.render_content in calls
