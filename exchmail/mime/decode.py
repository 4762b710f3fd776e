"""Decoding of header words, transfer encodings and charsets, leniently.

Nothing here raises on bad input: unknown charsets fall back to UTF-8,
broken encoded-words stay as written, invalid base64 octets are skipped.
:func:`iter_transfer_decoded` and :func:`iter_text` work in bounded chunks so
that a very large body never becomes one huge ``bytes`` or ``str``.
"""

from __future__ import annotations

import binascii
import codecs
import re
from collections.abc import Iterator
from typing import Any

__all__ = [
    "CHUNK",
    "decode_text",
    "decode_transfer",
    "decode_words",
    "iter_text",
    "iter_transfer_decoded",
]

#: Octets of raw body decoded per step by the iterators.
CHUNK = 1 << 16

_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/=]")
_NOT_BASE64_DATA = re.compile(rb"[^A-Za-z0-9+/]")
_LWSP = b" \t\r\n"
_HEX = frozenset(b"0123456789abcdefABCDEF")


def _charset_name(charset: bytes | str | None) -> str | None:
    if charset is None:
        return None
    if isinstance(charset, bytes):
        charset = charset.decode("ascii", "replace")
    # RFC 2231 section 5: charset*language in encoded-words.
    return charset.partition("*")[0].strip() or None


#: UTF-16 and UTF-32 without a byte order mark are big-endian (RFC 2781 4.3);
#: Python's decoders would take the machine's order, or raise (incrementally).
_BOMS = {
    "utf-16": ((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE), "utf-16-be"),
    "utf-32": ((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE), "utf-32-be"),
}


def _with_byte_order(name: str, start: bytes) -> str:
    """*name*, or its big-endian form for UTF-16/32 text that ``start``s without a BOM."""
    try:
        found = _BOMS.get(codecs.lookup(name).name)
    except LookupError:
        return name
    if found is None or start.startswith(found[0]):
        return name
    return found[1]


class _ByteOrderDecoder:
    """An incremental UTF-16/32 decoder that looks at the first octets for a
    BOM (see :data:`_BOMS`); bad octets become U+FFFD."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._head = b""
        self._inner: codecs.IncrementalDecoder | None = None

    def decode(self, data: bytes, final: bool = False) -> str:
        if self._inner is None:
            self._head += data
            if len(self._head) < 4 and not final:
                return ""  # a BOM is at most 4 octets
            data, self._head = self._head, b""
            name = _with_byte_order(self._name, data)
            self._inner = codecs.getincrementaldecoder(name)("replace")
        return self._inner.decode(data, final)


def decode_text(data: bytes, charset: bytes | str | None) -> str:
    """Decode *data* with *charset*, falling back to UTF-8; never raises."""
    name = _charset_name(charset) or "utf-8"
    try:
        return data.decode(_with_byte_order(name, data), "replace")
    except LookupError:  # unknown charset
        return data.decode("utf-8", "replace")
    except (TypeError, ValueError):  # a codec that is not a text encoding
        return data.decode("utf-8", "replace")


def _plain(data: bytes) -> str:
    """Unencoded header octets: UTF-8 if valid, else Latin-1."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _q_decode(text: bytes) -> bytes:
    """RFC 2047 "Q": ``_`` is a space, ``=XX`` an octet, anything else as is."""
    out = bytearray()
    i = 0
    size = len(text)
    while i < size:
        c = text[i]
        if c == 0x5F:
            out.append(0x20)
        elif c == 0x3D and i + 2 < size and text[i + 1] in _HEX and text[i + 2] in _HEX:
            out.append(int(text[i + 1 : i + 3], 16))
            i += 2
        else:
            out.append(c)
        i += 1
    return bytes(out)


def _b64_final(body: bytes) -> bytes:
    """Decode the last, possibly unpadded, base64 group(s) of a stream."""
    if len(body) % 4 == 1:
        body = body[:-1]  # a lone sextet carries no complete octet
    if not body:
        return b""
    return binascii.a2b_base64(body + b"=" * (-len(body) % 4))


def _b_decode(text: bytes) -> bytes:
    return _b64_final(_NOT_BASE64_DATA.sub(b"", text.partition(b"=")[0]))


def _encoded_word(data: bytes, pos: int) -> tuple[int, str] | None:
    """Decode the encoded-word whose ``=?`` is at *pos*: ``(end, text)``."""
    marks = []
    i = pos + 2
    for _ in range(3):
        i = data.find(b"?", i)
        if i < 0:
            return None
        marks.append(i)
        i += 1
    if not data.startswith(b"=", i):
        return None
    charset = data[pos + 2 : marks[0]]
    kind = data[marks[0] + 1 : marks[0] + 2].upper()
    text = data[marks[1] + 1 : marks[2]]
    if kind == b"Q":
        raw = _q_decode(text)
    elif kind == b"B":
        raw = _b_decode(text)
    else:
        return None
    return i + 1, decode_text(raw, charset)


def decode_words(raw: bytes) -> str:
    """Decode a raw header value, including RFC 2047 encoded-words, to text.

    White space between two encoded-words is dropped (RFC 2047 section 6.2);
    a malformed encoded-word is kept as written.  Raw 8-bit octets are read
    as UTF-8, or Latin-1 where they are not UTF-8.  Never raises.
    """
    if b"=?" not in raw:
        return _plain(raw)
    out: list[str] = []
    start = pos = 0
    size = len(raw)
    while pos + 1 < size:
        pos = raw.find(b"=?", pos)
        if pos < 0:
            break
        word = _encoded_word(raw, pos)
        if word is None:
            pos += 2
            continue
        gap = raw[start:pos]
        if gap.strip(_LWSP):
            out.append(_plain(gap))
        pos, text = word
        out.append(text)
        start = pos
    out.append(_plain(raw[start:]))
    return "".join(out)


def decode_transfer(data: bytes, encoding: bytes | str | None) -> bytes:
    """Undo a Content-Transfer-Encoding (base64 / quoted-printable), leniently."""
    return b"".join(iter_transfer_decoded(data, 0, len(data), encoding, len(data) + 1))


def _base64_chunks(data: bytes, start: int, end: int, chunk: int) -> Iterator[bytes]:
    carry = b""
    for pos in range(start, end, chunk):
        body, pad, _ = (carry + _NOT_BASE64.sub(b"", data[pos : min(end, pos + chunk)])).partition(b"=")
        if pad:  # padding ends the encoded data
            carry = body
            break
        usable = len(body) - len(body) % 4
        carry = body[usable:]
        if usable:
            yield binascii.a2b_base64(body[:usable])
    tail = _b64_final(carry)
    if tail:
        yield tail


def _qp_chunks(data: bytes, start: int, end: int, chunk: int) -> Iterator[bytes]:
    pos = start
    while pos < end:
        stop = min(end, pos + chunk)
        if stop < end:
            # Cut after a line end, or else not inside an "=XX" / soft break.
            nl = data.rfind(b"\n", pos, stop)
            if nl >= pos:
                stop = nl + 1
            else:
                eq = data.rfind(b"=", max(pos, stop - 2), stop)
                if eq > pos:
                    stop = eq
                elif eq == pos:
                    stop = min(end, eq + 3)
        yield binascii.a2b_qp(data[pos:stop])
        pos = stop


def iter_transfer_decoded(
    data: bytes, start: int, end: int, encoding: bytes | str | None, chunk: int = CHUNK
) -> Iterator[bytes]:
    """Yield ``data[start:end]`` with its transfer encoding undone, reading at
    most about *chunk* raw octets per step."""
    if isinstance(encoding, bytes):
        encoding = encoding.decode("ascii", "replace")
    kind = (encoding or "").strip().lower()
    if kind == "base64":
        yield from _base64_chunks(data, start, end, chunk)
    elif kind == "quoted-printable":
        yield from _qp_chunks(data, start, end, chunk)
    else:
        for pos in range(start, end, chunk):
            yield data[pos : min(end, pos + chunk)]


def iter_text(chunks: Iterator[bytes], charset: bytes | str | None) -> Iterator[str]:
    """Decode a stream of octet chunks with *charset* (UTF-8 if unknown);
    multi-octet characters split between chunks are handled."""
    name = _charset_name(charset) or "utf-8"
    try:
        info = codecs.lookup(name)
    except LookupError:
        info = codecs.lookup("utf-8")
    if not getattr(info, "_is_text_encoding", True):  # e.g. base64_codec
        info = codecs.lookup("utf-8")
    decoder: Any = _ByteOrderDecoder(info.name) if info.name in _BOMS else info.incrementaldecoder("replace")
    for piece in chunks:
        text = decoder.decode(piece)
        if text:
            yield text
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail
