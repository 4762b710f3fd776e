"""Content-Type parsing and RFC 2231 parameters (Dovecot's rules)."""

from __future__ import annotations

import pytest

from exchmail.mime.rfc822 import (
    ContentType,
    Lexer,
    decode_rfc2231,
    parse_content_type,
    parse_language,
    parse_token_value,
    parse_transfer_encoding,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"text/plain", ContentType(b"text", b"plain", (), True)),
        (b" TEXT/Plain ; Charset=UTF-8", ContentType(b"TEXT", b"Plain", ((b"Charset", b"UTF-8"),), True)),
        (
            b"(c) text (d) / (e) html (f) ; (g) charset (h) = (i) utf-8",
            ContentType(b"text", b"html", ((b"charset", b"utf-8"),), True),
        ),
        (b"garbage", ContentType(b"garbage", b"", (), False)),  # kept, as Dovecot keeps it
        (b"multipart/mixed garbage; boundary=b", ContentType(b"", b"", (), False)),
        (b"", ContentType(b"", b"", (), False)),
        (
            b'multipart/mixed; boundary="foo\r\n bar"',
            ContentType(b"multipart", b"mixed", ((b"boundary", b"foo bar"),), True),
        ),
    ],
)
def test_content_type(value: bytes, expected: ContentType) -> None:
    assert parse_content_type(value) == expected


def test_broken_parameters_are_skipped() -> None:
    # As in Dovecot, a broken parameter swallows the ";" after it, so the
    # next one goes too (up to the next ";", here inside the quotes).
    params = parse_content_type(b'text/plain; charset=utf-8; broken; name="q; x"; =y; z=').params
    assert params == ((b"charset", b"utf-8"), (b"", b"y"), (b"z", b""))


def test_encoded_word_value_workaround() -> None:
    params = parse_content_type(b"text/plain; name==?utf-8?b?w6k=?=; charset=us-ascii").params
    assert params == ((b"name", b"=?utf-8?b?w6k=?="), (b"charset", b"us-ascii"))


def test_rfc2231_sections_merged_but_not_decoded() -> None:
    params = parse_content_type(b"a/b; title*1=b; x=1; title*0*=us-ascii'en'%41; name*=utf-8''%C3%A9").params
    assert params == ((b"x", b"1"), (b"name*", b"utf-8''%C3%A9"), (b"title*", b"us-ascii'en'%41b"))


def test_rfc2231_plain_sections_escape_percent_when_extended() -> None:
    params = parse_content_type(b"a/b; t*0*=''a; t*1=50%").params
    assert params == ((b"t*", b"''a50%25"),)


def test_rfc2231_missing_index_kept_as_written() -> None:
    params = parse_content_type(b"a/b; t*0=a; t*2*=c").params
    assert params == ((b"t*0", b"a"), (b"t*2*", b"c"))


def test_decode_rfc2231() -> None:
    assert decode_rfc2231(b"utf-8''r%C3%A9sum%C3%A9.txt") == "r\u00e9sum\u00e9.txt".encode()
    assert decode_rfc2231(b"iso-8859-1'fr'%E9t%E9") == "\u00e9t\u00e9".encode()
    assert decode_rfc2231(b"''plain%20text") == b"plain text"
    assert decode_rfc2231(b"bogus-cs''%41%zz") == b"A%zz"


def test_disposition_transfer_encoding_language() -> None:
    assert parse_token_value(b"attachment; filename=a.txt") == (b"attachment", ((b"filename", b"a.txt"),))
    assert parse_token_value(b"; filename=a.txt") == (b"", ((b"filename", b"a.txt"),))
    assert parse_transfer_encoding(b" (x) Quoted-Printable (y)") == b"Quoted-Printable"
    assert parse_transfer_encoding(b"base64 junk") is None
    assert parse_transfer_encoding(b"") is None
    assert parse_language(b"en, de-DE , (c) fr") == [b"en", b"de-DE", b"fr"]
    assert parse_language(b",en") == []


def test_lexer_tolerates_unterminated_input() -> None:
    for text in (b'"open', b"(open", b"[1.2", b"\\", b'"a\\'):
        lex = Lexer(text)
        out = bytearray()
        if text.startswith(b'"'):
            assert lex.quoted_string(out) == -1
        elif text.startswith(b"("):
            assert lex.skip_lwsp() == -1
        else:
            lex.skip_lwsp()
        assert lex.pos <= lex.end
