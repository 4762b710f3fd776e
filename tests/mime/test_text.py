"""SEARCH texts: header values as SEARCH matches them, body text in chunks."""

from __future__ import annotations

import base64

import pytest

from exchmail.mime.message import ParsedMessage, body_contains, iter_body_text, iter_text_parts
from exchmail.mime.text import contains_text, header_search_text


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("From", b"user-from@domain.org", "<user-from@domain.org>"),
        ("from", b"<user-from (comment)@ (comment) domain.org>", "<user-from@domain.org>"),
        ("To", b"=?utf-8?q?J=C3=B6rg?= <j@x>", "J\u00f6rg <j@x>"),
        ("Cc", b"user@domain (Real Name)", '"Real Name" <user@domain>'),
        ("Bcc", b"team: a@b.c, d@e.f;", "team: <a@b.c>, <d@e.f>;"),
        ("Reply-To", b"<@route:user@domain>", "<@route:user@domain>"),
        ("Resent-From", b"x@y", "<x@y>"),
        ("Subject", b"=?utf-8?q?Gr=C3=BC=C3=9Fe?= aus K\xc3\xb6ln", "Gr\u00fc\u00dfe aus K\u00f6ln"),
        ("X-Other", b"a@b (not an address field)", "a@b (not an address field)"),
    ],
)
def test_header_search_text(name: str, value: bytes, text: str) -> None:
    assert header_search_text(name, value) == text


def test_header_search_text_override() -> None:
    assert header_search_text("From", b"a@b (x)", addresses=False) == "a@b (x)"
    assert header_search_text("X-Sender", b"a@b", addresses=True) == "<a@b>"


def test_search_texts_per_occurrence() -> None:
    msg = ParsedMessage(b"From: a@b\r\nTo: c@d\r\nTo: RealTo <e@f>\r\n\r\n")
    assert msg.search_texts("to") == ["<c@d>", "RealTo <e@f>"]
    assert msg.search_texts(b"From") == ["<a@b>"]
    assert msg.search_texts("cc") == []


@pytest.mark.parametrize("chunk_size", [1, 2, 5, 100])
def test_contains_text_across_chunks(chunk_size: int) -> None:
    text = "Hello Wörld, GRÜSSE"
    chunks = [text[i : i + chunk_size] for i in range(0, len(text), chunk_size)]
    assert contains_text(iter(chunks), "wörld, grüsse")
    assert contains_text(iter(chunks), "o w")
    assert not contains_text(iter(chunks), "world")
    assert contains_text(iter([]), "")


MIXED = (
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    b"preamble secret\r\n"
    b"--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Gr=FC=DFe aus K=F6ln, part one\r\n"
    b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.b64encode(b"binary needle")
    + b"\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner header\r\n\r\ninner body\r\n"
    b"--b\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.b64encode("<p>caf\u00e9 two</p>".encode())
    + b"\r\n--b--\r\nepilogue secret\r\n"
)


@pytest.mark.parametrize("chunk", [1, 3, 64, 1 << 16])
def test_body_text_in_chunks(chunk: int) -> None:
    msg = ParsedMessage(MIXED)
    parts = ["".join(chunks) for chunks in iter_text_parts(msg, chunk)]
    assert parts == ["Gr\u00fc\u00dfe aus K\u00f6ln, part one", "inner body", "<p>caf\u00e9 two</p>"]
    assert "".join(iter_body_text(msg, chunk)) == "\n".join(parts)
    assert msg.body_text() == "\n".join(parts)


@pytest.mark.parametrize("chunk", [1, 3, 1 << 16])
def test_body_contains(chunk: int) -> None:
    msg = ParsedMessage(MIXED)
    assert body_contains(msg, "GRÜSSE AUS", chunk)  # iso-8859-1, non-ASCII needle
    assert body_contains(msg, "part ONE", chunk)  # ASCII needle: octet search
    assert body_contains(msg, "CAFÉ", chunk)
    assert body_contains(msg, "inner body", chunk)
    assert body_contains(msg, "", chunk)
    for absent in ("secret", "needle", "inner header", "one\ninner"):
        assert not body_contains(msg, absent, chunk)


def test_body_contains_single_part_charsets() -> None:
    latin = ParsedMessage(b"Content-Type: text/plain; charset=windows-1252\r\n\r\nna\xefve caf\xe9\r\n")
    assert body_contains(latin, "naïve") and body_contains(latin, "NA") and not body_contains(latin, "cafe")
    sjis = ParsedMessage(b"Content-Type: text/plain; charset=shift_jis\r\n\r\n" + "日本".encode("shift_jis"))
    assert body_contains(sjis, "日本")
    assert not body_contains(sjis, "{")  # not via octets: 0x7b may be half a character
