"""Tests for exchmail.imap.wire (IMAP string encoders)."""

from __future__ import annotations

import pytest

from exchmail.imap import wire


def test_quoted_plain() -> None:
    assert wire.quoted(b"hello world") == b'"hello world"'


def test_quoted_escapes_backslash_and_quote() -> None:
    assert wire.quoted(b'a"b\\c') == b'"a\\"b\\\\c"'


def test_quoted_empty() -> None:
    assert wire.quoted(b"") == b'""'


def test_literal() -> None:
    assert wire.literal(b"abc") == b"{3}\r\nabc"
    assert wire.literal(b"") == b"{0}\r\n"
    assert wire.literal(b"a\r\nb") == b"{4}\r\na\r\nb"


@pytest.mark.parametrize(
    "value",
    [
        b"plain",
        b"",
        b"with space",
        b'quote"d',
        b"back\\slash",
        b"tab\there",
        b"\x01\x7f",
        b"(parens) {x} %*]",
    ],
)
def test_string_quotes_text_chars(value: bytes) -> None:
    assert wire.string(value) == wire.quoted(value)


@pytest.mark.parametrize(
    "value",
    [b"cr\rhere", b"lf\nhere", b"crlf\r\n", b"nul\x00", b"8bit \xc3\xa9", b"\xff"],
)
def test_string_uses_literal_for_non_text_chars(value: bytes) -> None:
    assert wire.string(value) == wire.literal(value)


def test_string_length_limit() -> None:
    assert wire.string(b"a" * 1000) == b'"' + b"a" * 1000 + b'"'
    assert wire.string(b"a" * 1001) == b"{1001}\r\n" + b"a" * 1001


def test_is_quotable() -> None:
    assert wire.is_quotable(b"abc")
    assert not wire.is_quotable(b"a\nb")
    assert not wire.is_quotable(b"x" * (wire.MAX_QUOTED + 1))


def test_nstring() -> None:
    assert wire.nstring(None) == b"NIL"
    assert wire.nstring(b"") == b'""'
    assert wire.nstring(b"NIL") == b'"NIL"'
    assert wire.nstring(b"x\r\n") == b"{3}\r\nx\r\n"


@pytest.mark.parametrize(
    "value",
    [b"INBOX", b"foo.bar", b"a]b", b"Sent-Items_2", b"x!#$&'+,-./:;<=>?@[^`|}~"],
)
def test_astring_atom(value: bytes) -> None:
    assert wire.is_astring_atom(value)
    assert wire.astring(value) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"", b'""'),
        (b"with space", b'"with space"'),
        (b"paren(", b'"paren("'),
        (b"paren)", b'"paren)"'),
        (b"brace{", b'"brace{"'),
        (b"wild*", b'"wild*"'),
        (b"wild%", b'"wild%"'),
        (b'quo"te', b'"quo\\"te"'),
        (b"back\\", b'"back\\\\"'),
        (b"ctl\x01", b'"ctl\x01"'),
        (b"del\x7f", b'"del\x7f"'),
        (b"NIL", b'"NIL"'),
        (b"nil", b'"nil"'),
        (b"caf\xc3\xa9", b"{5}\r\ncaf\xc3\xa9"),
        (b"line\r\n", b"{6}\r\nline\r\n"),
    ],
)
def test_astring_non_atom(value: bytes, expected: bytes) -> None:
    assert wire.astring(value) == expected


def test_plist() -> None:
    assert wire.plist([]) == b"()"
    assert wire.plist([b"a"]) == b"(a)"
    assert wire.plist([b'"x"', b"NIL", b"(1 2)"]) == b'("x" NIL (1 2))'
    assert wire.plist(iter([b"1", b"2"])) == b"(1 2)"
