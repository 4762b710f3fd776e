"""Encoders for the string-ish productions of the IMAP4rev1 grammar.

Everything here works on :class:`bytes` and returns :class:`bytes` ready to
be written into a server response (RFC 3501 section 9, "Formal Syntax").

* :func:`quoted` -- ``quoted`` (the caller guarantees the value is TEXT-CHAR)
* :func:`literal` -- ``literal`` (synchronising form, ``{n}CRLF`` + octets)
* :func:`string` -- ``string``: quoted when possible, otherwise a literal
* :func:`nstring` -- ``nstring``: ``NIL`` for :data:`None`
* :func:`astring` -- ``astring``: a bare atom when possible
* :func:`plist` -- a parenthesised, space separated list
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "MAX_QUOTED",
    "NIL",
    "astring",
    "is_astring_atom",
    "is_quotable",
    "literal",
    "nstring",
    "plist",
    "quoted",
    "string",
]

#: The NIL token.
NIL = b"NIL"

#: Longest value :func:`string` sends as a quoted string; longer values are
#: sent as literals (keeps response lines short, as RFC 2683 recommends).
MAX_QUOTED = 1000

# TEXT-CHAR = <any CHAR except CR and LF>; CHAR = %x01-7F.
_TEXT_CHARS = bytes(b for b in range(0x01, 0x80) if b not in (0x0A, 0x0D))

# atom-specials = "(" / ")" / "{" / SP / CTL / list-wildcards /
#                 quoted-specials / resp-specials
_ATOM_SPECIALS = frozenset(b'(){ %*"\\]') | frozenset(range(0x20)) | {0x7F}
# ASTRING-CHAR = ATOM-CHAR / resp-specials
_ASTRING_CHARS = bytes(b for b in range(0x01, 0x80) if b not in _ATOM_SPECIALS or b == ord("]"))


def quoted(value: bytes) -> bytes:
    """Return *value* as an IMAP ``quoted`` string.

    Backslash and double quote are escaped.  The caller guarantees that
    *value* contains only TEXT-CHAR octets (no CR, LF, NUL or 8-bit);
    use :func:`string` when that is not known.
    """
    escaped = value.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + escaped + b'"'


def literal(value: bytes) -> bytes:
    """Return *value* as a synchronising IMAP ``literal`` (``{n}CRLF`` + data)."""
    return b"{%d}\r\n" % len(value) + value


def is_quotable(value: bytes) -> bool:
    """Return whether *value* may be sent as a ``quoted`` string.

    True when every octet is a TEXT-CHAR (``%x01-7F`` except CR and LF) and
    the value is at most :data:`MAX_QUOTED` octets long.
    """
    return len(value) <= MAX_QUOTED and not value.translate(None, _TEXT_CHARS)


def string(value: bytes) -> bytes:
    """Return *value* as an IMAP ``string``: quoted if possible, else a literal."""
    if is_quotable(value):
        return quoted(value)
    return literal(value)


def nstring(value: bytes | None) -> bytes:
    """Return ``NIL`` for :data:`None`, otherwise :func:`string` of *value*."""
    if value is None:
        return NIL
    return string(value)


def is_astring_atom(value: bytes) -> bool:
    """Return whether *value* can be sent as a bare ``1*ASTRING-CHAR`` atom.

    The empty value and (case-insensitively) ``NIL`` are rejected: the first
    is not an atom, the second would be misread by many clients as ``nil``.
    """
    if not value or value.upper() == NIL:
        return False
    return not value.translate(None, _ASTRING_CHARS)


def astring(value: bytes) -> bytes:
    """Return *value* as an IMAP ``astring``: a bare atom if valid, else :func:`string`."""
    if is_astring_atom(value):
        return value
    return string(value)


def plist(items: Iterable[bytes]) -> bytes:
    """Return ``(item item ...)``: the already-encoded *items* in parentheses."""
    return b"(" + b" ".join(items) + b")"
