"""Parsing of FETCH attributes (RFC 3501 6.4.5) into :class:`FetchItem` values.

With the BINARY extension (RFC 3516) also ``BINARY[part]<partial>``,
``BINARY.PEEK[part]<partial>`` and ``BINARY.SIZE[part]``: their section is a
part number or empty (no HEADER, TEXT or MIME), and BINARY.SIZE takes no
partial range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from exchmail.imap.parsing import Atom, ParseError, Token

MACROS = {
    b"ALL": (b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE"),
    b"FAST": (b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"),
    b"FULL": (b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE", b"BODY"),
}
SIMPLE = {
    b"ENVELOPE",
    b"FLAGS",
    b"INTERNALDATE",
    b"RFC822",
    b"RFC822.HEADER",
    b"RFC822.SIZE",
    b"RFC822.TEXT",
    b"BODY",
    b"BODYSTRUCTURE",
    b"UID",
}
TEXT_SPECS = {"HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"}

_BODY_SECTION = re.compile(rb"^(BODY(?:\.PEEK)?)\[([^\]]*)\](?:<(\d{1,10})\.(\d{1,10})>)?$", re.I)
_BINARY_SECTION = re.compile(rb"^(BINARY(?:\.PEEK|\.SIZE)?)\[([0-9.]*)\](?:<(\d{1,10})\.(\d{1,10})>)?$", re.I)
_FIELDS = re.compile(rb"^(HEADER\.FIELDS(?:\.NOT)?) *\((.*)\)$", re.I | re.S)
# header-fld-name = astring (RFC 3501 9): an atom (ASTRING-CHAR but "]",
# which ends the section) or a quoted string; names are separated by SP.
_FIELD_NAME = re.compile(
    rb'"((?:[^"\\\r\n\x00\x80-\xff]|\\["\\])*)"|([\x21\x23\x24\x26\x27\x2b-\x5b\x5e-\x7a\x7c-\x7e]+)'
)
_QUOTED_PAIR = re.compile(rb'\\(["\\])')


@dataclass(frozen=True)
class FetchItem:
    """One requested data item.

    ``name`` is the upper-case item (``BODY[]`` items have name ``BODY``
    and a ``section``; BINARY items ``BINARY`` or ``BINARY.SIZE``, with the
    part number as ``section``); ``path`` is the 1-based part path; ``text`` one of
    :data:`TEXT_SPECS` or ``None``; ``partial`` is ``(start, length)``.
    """

    name: bytes
    path: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[bytes, ...] = ()
    partial: tuple[int, int] | None = None
    peek: bool = False
    section: bytes | None = None

    @property
    def sets_seen(self) -> bool:
        """Whether fetching this item sets ``\\Seen`` (RFC 3501 6.4.5)."""
        if self.section is not None:
            return not self.peek
        return self.name in (b"RFC822", b"RFC822.TEXT")

    def label(self) -> bytes:
        """The item name as it appears in the FETCH response."""
        if self.section is None:
            return self.name
        label = (b"BODY[" if self.name == b"BODY" else self.name + b"[") + self.section + b"]"
        if self.partial is not None:
            label += b"<%d>" % self.partial[0]
        return label


def _parse_section(spec: bytes) -> tuple[tuple[int, ...], str | None, tuple[bytes, ...]]:
    """Split ``1.2.HEADER.FIELDS (A B)`` into path, text spec and fields."""
    path: list[int] = []
    rest = spec.strip()
    while rest and rest[:1].isdigit():
        number, dot, rest = rest.partition(b".")
        if not number.isdigit() or int(number) == 0 or len(number) > 9 or (dot and not rest):
            raise ParseError("invalid section part number")
        path.append(int(number))
    if not rest:
        return tuple(path), None, ()
    fields: tuple[bytes, ...] = ()
    match = _FIELDS.match(rest)
    if match:
        rest = match.group(1)
        fields = _field_names(match.group(2))
    text = rest.decode("ascii", "replace").upper()
    if text.startswith("HEADER.FIELDS") and not fields:
        raise ParseError("HEADER.FIELDS needs a list of header names")
    if text not in TEXT_SPECS or (text == "MIME" and not path):
        raise ParseError(f"invalid section {spec[:60]!r}")
    return tuple(path), text, fields


def _field_names(text: bytes) -> tuple[bytes, ...]:
    """The names of a header-list's inside: astrings separated by spaces
    (anything else would be echoed into the FETCH response as it came)."""
    names: list[bytes] = []
    pos, end = 0, len(text)
    while pos < end:
        if text[pos] == 0x20:
            pos += 1
            continue
        found = _FIELD_NAME.match(text, pos)
        if found is None or (names and text[pos - 1] != 0x20):
            raise ParseError(
                "invalid header field list: names are atoms or quoted strings, separated by spaces"
            )
        quoted = found.group(1)
        names.append(found.group(2) if quoted is None else _QUOTED_PAIR.sub(rb"\1", quoted))
        pos = found.end()
    if not names:
        raise ParseError("empty header field list")
    return tuple(names)


def parse_section(spec: bytes) -> tuple[tuple[int, ...], str | None, tuple[bytes, ...]]:
    """A section spec (``1.2.HEADER.FIELDS (A B)``, ``TEXT``, ``3``): path, text
    specifier and fields; :class:`ParseError` if it is not one."""
    return _parse_section(spec)


def _parse_binary(token: bytes) -> list[FetchItem]:
    """``BINARY[...]``, ``BINARY.PEEK[...]`` or ``BINARY.SIZE[...]`` (RFC 3516)."""
    match = _BINARY_SECTION.match(token)
    if not match:
        raise ParseError("BINARY takes a part number section: BINARY[1.2]<0.100>")
    kind, section = match.group(1).upper(), match.group(2)
    path, text, _ = _parse_section(section)
    if text is not None or (section and not path):
        raise ParseError("invalid BINARY section")
    partial = None
    if match.group(3) is not None:
        if kind == b"BINARY.SIZE":
            raise ParseError("BINARY.SIZE takes no partial range")
        length = int(match.group(4))
        if length == 0:
            raise ParseError("partial length must be positive")
        partial = (int(match.group(3)), length)
    name = b"BINARY.SIZE" if kind == b"BINARY.SIZE" else b"BINARY"
    return [FetchItem(name, path, None, (), partial, peek=kind != b"BINARY", section=section)]


def _parse_one(token: Token, binary: bool = False, modseq: bool = False) -> list[FetchItem]:
    if not isinstance(token, Atom):
        raise ParseError("invalid fetch attribute")
    upper = bytes(token).upper()
    if upper in SIMPLE or (modseq and upper == b"MODSEQ"):
        return [FetchItem(upper)]
    if binary and upper.startswith(b"BINARY"):
        return _parse_binary(bytes(token))
    match = _BODY_SECTION.match(bytes(token))
    if not match:
        raise ParseError(f"unknown fetch attribute {bytes(token)[:40]!r}")
    path, text, fields = _parse_section(match.group(2))
    partial = None
    if match.group(3) is not None:
        length = int(match.group(4))
        if length == 0:
            raise ParseError("partial length must be positive")
        partial = (int(match.group(3)), length)
    section = match.group(2).upper()
    return [
        FetchItem(
            b"BODY", path, text, fields, partial, peek=match.group(1).upper() == b"BODY.PEEK", section=section
        )
    ]


def parse_fetch_items(
    args: list[Token], binary: bool = False, modseq: bool = False, preview: bool = False
) -> list[FetchItem]:
    """Parse the attribute argument(s) of FETCH: a macro, one item or a list
    (with ``binary``, the BINARY items of RFC 3516 too; with ``modseq``,
    CONDSTORE's MODSEQ, RFC 7162 §3.1.4)."""
    if len(args) != 1:
        raise ParseError("expected one fetch attribute or a parenthesised list")
    arg = args[0]
    if isinstance(arg, Atom) and bytes(arg).upper() in MACROS:
        return [FetchItem(name) for name in MACROS[bytes(arg).upper()]]
    tokens = arg if isinstance(arg, list) else [arg]
    if not tokens:
        raise ParseError("empty fetch attribute list")
    items: list[FetchItem] = []
    tokens = list(tokens)
    while tokens:
        token = tokens.pop(0)
        if preview and isinstance(token, Atom) and bytes(token).upper() == b"PREVIEW":
            # RFC 8970: PREVIEW, or PREVIEW (LAZY) -- computed at once either way
            modifiers = tokens[0] if tokens else None
            if isinstance(modifiers, list):
                tokens.pop(0)
                if not all(isinstance(m, Atom) and bytes(m).upper() == b"LAZY" for m in modifiers):
                    raise ParseError("unknown PREVIEW modifier")
            items.append(FetchItem(b"PREVIEW"))
            continue
        items.extend(_parse_one(token, binary, modseq))
    return items
