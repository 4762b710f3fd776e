"""Content-Type parsing and RFC 2231 parameters (Dovecot's rules)."""

from __future__ import annotations

import pytest

from exchmail.mime.rfc822 import (
    NUL_REPLACEMENT,
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


@pytest.mark.parametrize(
    ("value", "comment"),
    [
        (b"(x\x00y)", "x\ufffdy".encode()),  # NUL -> U+FFFD when the lexer is given a replacement
        (b"(outer (inner) tail)", b"outer (inner) tail"),  # nesting kept
        (b"(line\r\n fold)", b"line fold"),  # the folding line end dropped
        (b"(q\\)p)", b"q)p"),  # a quoted-pair loses its backslash
        (b"(bs\\\r\n x)", b"bs\\ x"),  # a backslash before a line end is no quoted-pair (obs-qp)
    ],
)
def test_skip_comment_keeps_comment_text(value: bytes, comment: bytes) -> None:
    lex = Lexer(value + b" rest", last_comment=True, nul=NUL_REPLACEMENT)
    assert lex.skip_lwsp() == 1
    assert lex.last_comment == comment
    assert lex.data[lex.pos :] == b"rest"


def test_skip_comment_backslash_at_end_is_invalid() -> None:
    lex = Lexer(b"(end\\", last_comment=True)
    assert lex.skip_lwsp() == -1
    assert lex.pos == lex.end


def test_quoted_string_nul_and_obs_qp() -> None:
    out = bytearray()
    assert Lexer(b'"a\x00b\\\r\n c" tail', nul=NUL_REPLACEMENT).quoted_string(out) == 1
    assert bytes(out) == "a\ufffdb\\ c".encode()
    # Without a replacement the NUL octet is kept as it is.
    out = bytearray()
    assert Lexer(b'"a\x00b"').quoted_string(out) == 0
    assert bytes(out) == b"a\x00b"


@pytest.mark.parametrize(
    ("value", "ret", "text"),
    [
        (b"@[1\x002] x", 1, "[1\ufffd2]".encode()),
        (b"@[1\r\n 2]", 0, b"[1 2]"),
        (b"@[1\\]2]", 0, b"[1\\]2]"),  # the backslash is kept in a domain literal
        (b"@[1\\\r\n2]", 0, b"[1\\2]"),
        (b"@[1[2]", -1, b""),  # "[" inside a literal
        (b"@[1\\", -1, b""),  # backslash at the end
        (b"@[1.2", -1, b""),  # missing "]"
    ],
)
def test_domain_literal(value: bytes, ret: int, text: bytes) -> None:
    out = bytearray()
    assert Lexer(value, nul=NUL_REPLACEMENT).domain(out) == ret
    if ret >= 0:
        assert bytes(out) == text


@pytest.mark.parametrize(
    ("value", "ret", "text"),
    [
        (b"@b . c", 0, b"b.c"),  # white space around the dots
        (b"@ .b", -1, b""),  # starts with a dot
        (b"@b.", -1, b"b."),  # ends with a dot
        (b"@b.;", -1, b"b."),  # nothing after the dot
        (b"@", -1, b""),
    ],
)
def test_dot_atom_domain(value: bytes, ret: int, text: bytes) -> None:
    out = bytearray()
    assert Lexer(value).domain(out) == ret
    assert bytes(out) == text


def test_phrase_edges() -> None:
    assert Lexer(b"").phrase(bytearray()) == 0
    assert Lexer(b".x").phrase(bytearray()) == -1  # a phrase may not start with a dot
    out = bytearray()
    assert Lexer(b'John "Q." Public <x>').phrase(out) == 1
    assert bytes(out) == b"John Q. Public"
    assert Lexer(b"").atom(bytearray()) == -1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"text;", ContentType(b"", b"", (), False)),  # no "/"
        (b"text/", ContentType(b"", b"", (), False)),  # nothing after "/"
        (b"a/b;", ContentType(b"a", b"b", (), True)),  # a trailing ";"
        # Junk after a value breaks that parameter; the next one is kept.
        (b"a/b; x=1 junk; y=2", ContentType(b"a", b"b", ((b"x", b"1"), (b"y", b"2")), True)),
        (b"a/b; x*1x=v", ContentType(b"a", b"b", ((b"x*1x", b"v"),), True)),  # not an RFC 2231 key
        (b"a/b; flag", ContentType(b"a", b"b", (), True)),  # no "=" at the end of the input
    ],
)
def test_content_type_edges(value: bytes, expected: ContentType) -> None:
    assert parse_content_type(value) == expected


def test_token_value_with_unterminated_comment_is_none() -> None:
    assert parse_token_value(b"attachment (oops") == (None, ())


def test_decode_rfc2231_without_charset_quotes() -> None:
    assert decode_rfc2231(b"%41%42") == b"AB"  # no "'" at all: only percent-decoded
    assert decode_rfc2231(b"utf-8'%41") == b"A"  # charset but no language quote
