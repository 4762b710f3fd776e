"""IMAP modified UTF-7 (RFC 3501 section 5.1.3).

Printable US-ASCII characters other than ``&`` stand for themselves, ``&``
is written ``&-``, and every other run of characters is the UTF-16BE of
the run in base64 (with ``,`` instead of ``/`` and no padding) between
``&`` and ``-``.

:func:`decode` is strict: it accepts only the one canonical encoding of
any string, so ``encode(decode(s)) == s`` whenever ``decode`` succeeds.
That matters to callers that map names onto file names, where two
spellings of one name must never both be accepted.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["decode", "encode"]

_B64_CHARS = re.compile(r"^[A-Za-z0-9+,]*$")


def _printable(char: str) -> bool:
    return "\x20" <= char <= "\x7e"


def _encode_run(run: list[str]) -> str:
    data = "".join(run).encode("utf-16-be", "surrogatepass")
    text = base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",")
    return f"&{text}-"


def encode(text: str) -> str:
    """Encode ``text`` to modified UTF-7; the result is printable ASCII."""
    out: list[str] = []
    run: list[str] = []
    for char in text:
        if _printable(char):
            if run:
                out.append(_encode_run(run))
                run = []
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    if run:
        out.append(_encode_run(run))
    return "".join(out)


def _decode_run(encoded: str) -> str:
    if not _B64_CHARS.match(encoded) or len(encoded) % 4 == 1:
        raise ValueError(f"invalid base64 in modified UTF-7: {encoded!r}")
    padded = encoded.replace(",", "/") + "=" * (-len(encoded) % 4)
    try:
        data = base64.b64decode(padded, validate=True)
        if len(data) % 2:
            raise ValueError("odd number of UTF-16 bytes")
        return data.decode("utf-16-be")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"invalid modified UTF-7 sequence {encoded!r}: {exc}") from exc


def decode(text: str) -> str:
    """Decode modified UTF-7; raise :class:`ValueError` unless ``text`` is
    the canonical encoding of some string."""
    out: list[str] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if not _printable(char):
            raise ValueError(f"non-printable character {char!r} in modified UTF-7")
        if char != "&":
            out.append(char)
            pos += 1
            continue
        end = text.find("-", pos + 1)
        if end < 0:
            raise ValueError("unterminated shift sequence in modified UTF-7")
        encoded = text[pos + 1 : end]
        out.append("&" if not encoded else _decode_run(encoded))
        pos = end + 1
    result = "".join(out)
    # Non-canonical forms (printable characters in base64, split runs,
    # non-zero padding bits) decode to something whose encoding differs.
    if encode(result) != text:
        raise ValueError(f"non-canonical modified UTF-7: {text!r}")
    return result
