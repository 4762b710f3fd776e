"""Header words and chunked transfer/charset decoding."""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri

import pytest

from exchmail.mime.decode import decode_text, decode_transfer, decode_words, iter_text, iter_transfer_decoded


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"=?utf-8?q?a?=  \r\n =?utf-8?q?b?=", "ab"),
        (b"x =?utf-8?q?a?= y", "x a y"),
        (b"  =?utf-8?q?a_b?=", "a b"),
        (b"=?utf-8*en?q?caf=C3=A9?=", "caf\u00e9"),
        (b"=?utf-8?qq?abc?=", "abc"),  # the encoding is its first letter (Dovecot)
        (b"=?utf-8?x?abc?=", "=?utf-8?x?abc?="),
        (b"=?utf-8?q?50=?=", "50="),
        (b"=?iso-8859-1?b?6Q?=", "\u00e9"),  # unpadded base64
        (b"caf\xe9", "caf\u00e9"),
    ],
)
def test_decode_words(raw: bytes, text: str) -> None:
    assert decode_words(raw) == text


@pytest.mark.parametrize("chunk", [1, 3, 4, 5, 76, 1 << 16])
def test_base64_chunks(chunk: int) -> None:
    payload = bytes(range(256)) * 7
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    assert b"".join(iter_transfer_decoded(encoded, 0, len(encoded), "base64", chunk)) == payload
    broken = b"!!" + encoded[:-9] + b"\r\n"  # junk, and a tail lost
    chars = broken[2:].replace(b"\r\n", b"")
    chars = chars[: len(chars) - len(chars) % 4]
    whole = decode_transfer(broken, "Base64")
    assert whole.startswith(base64.b64decode(chars)) and len(whole) - len(base64.b64decode(chars)) <= 2
    assert b"".join(iter_transfer_decoded(broken, 0, len(broken), "base64", chunk)) == whole


def test_base64_lenient() -> None:
    assert decode_transfer(b"!!aGVsbG8=junk", "base64") == b"hello"
    assert decode_transfer(b"aGVs\r\nbG8\r\n", "BASE64") == b"hello"
    assert decode_transfer(b"aGVsbG8gd", "base64") == b"hello "  # a lone sextet is no octet


@pytest.mark.parametrize("chunk", [1, 2, 3, 10, 1 << 16])
def test_quoted_printable_chunks(chunk: int) -> None:
    text = ("caf\u00e9 " * 40 + "\r\n").encode() * 3
    encoded = quopri.encodestring(text)
    decoded = b"".join(iter_transfer_decoded(encoded, 0, len(encoded), b"quoted-printable", chunk))
    assert decoded == binascii.a2b_qp(encoded)


def test_iter_text_charsets() -> None:
    pieces = [b"\xc3", b"\xa9t\xc3", b"\xa9"]
    assert "".join(iter_text(iter(pieces), b"UTF-8")) == "\u00e9t\u00e9"
    assert "".join(iter_text(iter([b"\xe9"]), "iso-8859-1")) == "\u00e9"
    assert "".join(iter_text(iter([b"\xff"]), "no-such-charset")) == "\ufffd"
    assert "".join(iter_text(iter([b"x"]), "base64_codec")) == "x"  # not a text codec


def test_utf16_and_utf32_without_a_byte_order_mark_are_big_endian() -> None:
    """RFC 2781 4.3.  Python's incremental decoders raise on a missing BOM
    even with errors="replace" (a SEARCH BODY over such a part answered
    NO [SERVERBUG])."""
    big = "héllo wörld".encode("utf-16-be")
    assert "".join(iter_text(iter([big]), "utf-16")) == "héllo wörld"
    assert "".join(iter_text(iter([big[:1], big[1:3], big[3:]]), "UTF-16")) == "héllo wörld"
    little = codecs.BOM_UTF16_LE + "hi".encode("utf-16-le")
    assert "".join(iter_text(iter([little[:1], little[1:]]), "utf_16")) == "hi"
    assert "".join(iter_text(iter(["hi".encode("utf-32-be")]), "utf-32")) == "hi"
    assert "".join(iter_text(iter([codecs.BOM_UTF32_LE + "hi".encode("utf-32-le")]), "utf-32")) == "hi"
    assert "".join(iter_text(iter([b"hello\r\n"]), "utf-16"))  # odd length: replaced, no error
    assert "".join(iter_text(iter([b"h"]), "utf-16")) == "\ufffd"
    assert "".join(iter_text(iter([]), "utf-16")) == ""
    assert decode_text(big, "utf-16") == "héllo wörld"
    assert decode_text(codecs.BOM_UTF16_LE + "hi".encode("utf-16-le"), "utf-16") == "hi"
