"""UTF8=ACCEPT (RFC 6855) and the ENABLE it needs (RFC 5161), in memory."""

from __future__ import annotations

import pytest
from harness import Harness

from exchmail.imap.handlers.enable import ENABLERS

ON = {"utf8_accept": True}
EIGHT_BIT = "From: a@example.com\r\nSubject: café\r\n\r\nbody\r\n".encode()


def lit(data: bytes) -> bytes:
    return b"{%d+}\r\n" % len(data) + data


def session(overrides: dict | None = None):
    harness = Harness("rfc3501", {**ON, **(overrides or {})})
    conn = harness.imap()
    conn.login()
    return harness, conn


def enabled(overrides: dict | None = None):
    harness, conn = session(overrides)
    assert conn.line("e ENABLE UTF8=ACCEPT") == b"* ENABLED UTF8=ACCEPT\r\ne OK ENABLE completed.\r\n"
    return harness, conn


def test_capabilities_do_not_change_with_enable():
    harness, conn = session()
    before = conn.line("a CAPABILITY")
    assert b" ENABLE " in before and b"UTF8=ACCEPT" in before
    conn.line("e ENABLE UTF8=ACCEPT")
    assert conn.line("a CAPABILITY") == before


def test_mailbox_names_are_utf8_after_enable():
    harness, conn = enabled()
    assert conn.line('c CREATE "Café & Co"').startswith(b"c OK")
    out = conn.line('l LIST "" "Caf*"')
    assert out.startswith('* LIST (\\HasNoChildren) "/" "Café & Co"\r\n'.encode()), out
    assert conn.line('s SELECT "Café & Co"').endswith(b"s OK [READ-WRITE] SELECT completed.\r\n")
    out = conn.line('t STATUS "Café & Co" (MESSAGES)')
    assert out.startswith('* STATUS "Café & Co" (MESSAGES 0)'.encode()), out
    assert "Café & Co" in [n for n in harness.account().list_mailboxes().result]


def test_without_enable_names_stay_modified_utf7():
    harness, conn = session()
    assert conn.line('c CREATE "Caf&AOk-"').startswith(b"c OK")
    assert b'"Caf&AOk-"' in conn.line('l LIST "" "Caf*"')


def test_invalid_utf8_in_quoted_strings_is_bad_after_enable():
    harness, conn = enabled()
    out = conn.line(b'c CREATE "Caf\xe9"')
    assert out.startswith(b"c BAD") and b"UTF-8" in out, out
    out = conn.send(b"d CREATE " + lit(b"Caf\xe9") + b"\r\n")  # a literal: the name itself
    assert out.startswith(b"d BAD"), out
    out = conn.line('e CREATE "a\u2028b"'.encode())
    assert out.startswith(b"e NO [CANNOT]"), out
    assert conn.line("z NOOP") == b"z OK NOOP completed.\r\n"


def test_search_charset_is_bad_after_enable():
    harness, conn = enabled()
    conn.line("s SELECT INBOX")
    out = conn.line("f SEARCH CHARSET UTF-8 SUBJECT x")
    assert out.startswith(b"f BAD"), out
    assert conn.line('g SEARCH SUBJECT "café"'.encode()).endswith(b"g OK SEARCH completed.\r\n")


def test_enable_ignores_unknown_and_repeated_names():
    harness, conn = session()
    out = conn.line("e ENABLE CONDSTORE X-FOO UTF8=ACCEPT utf8=accept")
    assert out == b"* ENABLED UTF8=ACCEPT\r\ne OK ENABLE completed.\r\n"
    assert conn.line("f ENABLE UTF8=ACCEPT") == b"* ENABLED\r\nf OK ENABLE completed.\r\n"
    assert set(ENABLERS) >= {b"UTF8=ACCEPT"}


def test_enable_in_the_selected_state_does_not_enable_utf8():
    harness, conn = session()
    conn.line("s SELECT INBOX")
    assert conn.line("e ENABLE UTF8=ACCEPT") == b"* ENABLED\r\ne OK ENABLE completed.\r\n"
    assert conn.session.utf8 is False


@pytest.mark.parametrize("command", ["e ENABLE", 'e ENABLE "UTF8=ACCEPT"', "e ENABLE (UTF8=ACCEPT)"])
def test_bad_enable_is_bad(command):
    harness, conn = session()
    assert conn.line(command).startswith(b"e BAD")
    assert conn.line("z NOOP") == b"z OK NOOP completed.\r\n"


def test_enable_before_login_is_bad():
    conn = Harness("rfc3501", ON).imap()
    out = conn.line("e ENABLE UTF8=ACCEPT")
    assert out.startswith(b"e BAD") and b"not authenticated" in out, out
    assert conn.line("z NOOP") == b"z OK NOOP completed.\r\n"


def test_enable_and_utf8_off_in_the_exchange_profiles():
    for profile in ("exchange2010", "exchange2007", "rfc3501"):
        conn = Harness(profile).imap()
        conn.login()
        caps = conn.line("a CAPABILITY")
        assert b"ENABLE" not in caps and b"UTF8" not in caps
        assert conn.line("e ENABLE UTF8=ACCEPT") == b"e BAD Unsupported command\r\n"


def test_append_with_8bit_header():
    harness, conn = session()  # by default accepted without ENABLE (as Dovecot does)
    assert conn.send(b"a APPEND INBOX " + lit(EIGHT_BIT) + b"\r\n").startswith(b"a OK")
    harness, conn = session({"utf8_append_needs_enable": True, "multiappend": True})
    out = conn.send(b"a APPEND INBOX " + lit(EIGHT_BIT) + b"\r\n")
    assert out.startswith(b"a NO") and b"UTF8=ACCEPT" in out, out
    out = conn.send(
        b"b APPEND INBOX " + lit(b"Subject: x\r\n\r\n\xc3\xa9\r\n") + b" " + lit(EIGHT_BIT) + b"\r\n"
    )
    assert out.startswith(b"b NO"), out  # MULTIAPPEND: none of them
    assert list(harness.mailbox().uids()) == []
    conn.line("e ENABLE UTF8=ACCEPT")
    assert conn.send(b"c APPEND INBOX " + lit(EIGHT_BIT) + b"\r\n").startswith(b"c OK")
