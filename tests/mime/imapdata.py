"""A small reader for IMAP response data, used to compare responses the way
imaptest does: strings equal whatever their form (quoted or literal) and
case-insensitively, NIL distinct from the empty string."""

from __future__ import annotations

from typing import TypeAlias

Item: TypeAlias = "bytes | None | list[Item]"


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _skip_spaces(self) -> None:
        while self.pos < len(self.data) and self.data[self.pos] == 0x20:
            self.pos += 1

    def item(self) -> Item:
        self._skip_spaces()
        data = self.data
        c = data[self.pos : self.pos + 1]
        if c == b"(":
            self.pos += 1
            items: list[Item] = []
            for _ in range(len(data)):
                self._skip_spaces()
                if data[self.pos : self.pos + 1] == b")":
                    self.pos += 1
                    return items
                items.append(self.item())
            raise ValueError("unterminated list")
        if c == b'"':
            out = bytearray()
            pos = self.pos + 1
            while data[pos] != 0x22:
                if data[pos] == 0x5C:
                    pos += 1
                out.append(data[pos])
                pos += 1
            self.pos = pos + 1
            return bytes(out)
        if c in (b"{", b"~"):
            if c == b"~":
                self.pos += 1
            close = data.index(b"}", self.pos)
            size = int(data[self.pos + 1 : close])
            start = close + 3  # }\r\n
            self.pos = start + size
            return data[start : self.pos]
        start = self.pos
        while self.pos < len(data) and data[self.pos] not in b" ()":
            if data[self.pos] == 0x5B:  # a section spec may hold spaces and parentheses
                self.pos = data.index(b"]", self.pos)
            self.pos += 1
        atom = data[start : self.pos]
        if atom.upper() == b"NIL":
            return None
        return atom


def parse(data: bytes) -> Item:
    """Parse one IMAP data item (list, string, atom or NIL)."""
    return _Reader(data).item()


def fold(item: Item) -> Item:
    """*item* with every string upper-cased (imaptest compares strcasecmp)."""
    if isinstance(item, list):
        return [fold(i) for i in item]
    if item is None:
        return None
    return item.upper()


def same(a: bytes, b: bytes) -> bool:
    """Whether two IMAP data items are equal as imaptest compares them."""
    return fold(parse(a)) == fold(parse(b))
