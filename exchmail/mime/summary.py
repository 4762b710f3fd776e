"""A compact, cacheable description of a message: :class:`MessageSummary`.

It holds what FETCH and SEARCH need without parsing the message again: the
top-level header block (ENVELOPE, header SEARCH, SORT, ``BODY[HEADER]``)
and the MIME tree as offsets, sizes, flags and line counts -- no body
octets.  It is made of plain values only (ints, bytes, tuples), and
:meth:`MessageSummary.to_bytes` / :meth:`MessageSummary.from_bytes` turn it
into JSON and back, so a cache needs no pickle.

Typical use: ``summary = summarize(data)`` once (in a worker thread), then
``summary.headers()`` for header work without the message, or
``ParsedMessage(data, summary=summary)`` to render BODYSTRUCTURE or a
section without scanning the message again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from exchmail.mime.message import ParsedMessage
from exchmail.mime.structure import MESSAGE, MULTIPART, TEXT, Node

__all__ = ["MessageSummary", "PartSummary", "summarize", "summarize_message"]

_VERSION = 1


@dataclass(frozen=True)
class PartSummary:
    """One part: header ``[start, body_start)``, body ``[body_start, end)``,
    structure flags (:mod:`exchmail.mime.structure`), the body's line count
    (-1 where BODYSTRUCTURE does not need it) and the subparts (for a
    message/rfc822 part: its encapsulated message)."""

    start: int
    body_start: int
    end: int
    flags: int
    lines: int
    children: tuple[PartSummary, ...] = ()

    def as_list(self) -> list[object]:
        """Plain-list form (JSON-ready)."""
        kids = [child.as_list() for child in self.children]
        return [self.start, self.body_start, self.end, self.flags, self.lines, kids]

    @classmethod
    def from_list(cls, item: list[object], depth: int = 0) -> PartSummary:
        """Inverse of :meth:`as_list`."""
        if depth > 200 or len(item) != 6:
            raise ValueError("malformed part summary")
        start, body_start, end, flags, lines, kids = item
        if not all(isinstance(v, int) for v in (start, body_start, end, flags, lines)):
            raise ValueError("malformed part summary")
        if not isinstance(kids, list):
            raise ValueError("malformed part summary")
        children = tuple(cls.from_list(kid, depth + 1) for kid in kids)
        return cls(start, body_start, end, flags, lines, children)  # type: ignore[arg-type]


@dataclass(frozen=True)
class MessageSummary:
    """Top-level header octets, total size and the part tree of a message."""

    size: int
    header: bytes
    root: PartSummary

    def headers(self) -> ParsedMessage:
        """A header-only message: ENVELOPE, header fields and SEARCH texts
        work on it exactly as on the full message."""
        return ParsedMessage(self.header)

    def tree(self) -> Node:
        """Fresh :class:`~exchmail.mime.structure.Node` objects for this tree."""
        return _node(self.root, None)

    def to_bytes(self) -> bytes:
        """Serialise as JSON (octets as Latin-1 text)."""
        doc = {
            "v": _VERSION,
            "size": self.size,
            "header": self.header.decode("latin-1"),
            "root": self.root.as_list(),
        }
        return json.dumps(doc, separators=(",", ":")).encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes) -> MessageSummary:
        """Inverse of :meth:`to_bytes`.

        :raises ValueError: for data that is not a summary of this version.
        """
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("v") != _VERSION:
            raise ValueError(f"not a message summary of version {_VERSION}")
        size, header, root = doc.get("size"), doc.get("header"), doc.get("root")
        if not isinstance(size, int) or not isinstance(header, str) or not isinstance(root, list):
            raise ValueError("malformed message summary")
        return cls(size, header.encode("latin-1"), PartSummary.from_list(root))


def _node(part: PartSummary, parent: Node | None) -> Node:
    node = Node(part.start, parent, part.flags)
    node.body_start = part.body_start
    node.end = part.end
    node.header_size = part.body_start - part.start
    node.body_size = part.end - part.body_start
    if part.lines >= 0:
        node.lines = part.lines
    node.children = [_node(child, node) for child in part.children]
    return node


def _part(msg: ParsedMessage, node: Node) -> PartSummary:
    lines = -1
    if node.flags & (TEXT | MESSAGE) and not node.flags & MULTIPART:
        lines = node.count_lines(msg.data, node.end if node.end is not None else msg.size)
    assert node.body_start is not None
    end = node.end if node.end is not None else len(msg.data)
    children = tuple(_part(msg, child) for child in node.children)
    return PartSummary(node.start, node.body_start, end, node.flags, lines, children)


def summarize_message(msg: ParsedMessage) -> MessageSummary:
    """The summary of an outermost *msg* (parses whatever is left to parse)."""
    msg.child_nodes()  # the whole tree
    msg.end  # noqa: B018
    return MessageSummary(msg.size, msg.header, _part(msg, msg.node))


def summarize(data: bytes) -> MessageSummary:
    """Parse *data* (bounded scans, no copies of bodies) and summarise it."""
    return summarize_message(ParsedMessage(data))
