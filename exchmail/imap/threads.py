"""THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256 §3), pure.

Both take :data:`~exchmail.imap.sorting.SortRow` rows (sequence number,
UID, internal date, size, :class:`~exchmail.imap.sorting.SortFields`) and
return the thread list as the response wants it, e.g.
``(2)(3 6 (4 23)(44 7 96))``, numbered by ``number(row)`` (sequence
number or UID).  The REFERENCES steps are numbered as in the RFC.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from exchmail.imap.sorting import SortRow, sent_date


@dataclass(eq=False)
class Node:
    """A container of the REFERENCES algorithm; ``row`` None: a dummy."""

    row: SortRow | None = None
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)

    def date_key(self) -> tuple[float, int]:
        """Sent date, then sequence number; a dummy sorts as its first child."""
        if self.row is None:
            return self.children[0].date_key() if self.children else (0.0, 0)
        return sent_date(self.row), self.row[0]

    def subject(self) -> tuple[str, bool]:
        row = self.row if self.row is not None else (self.children[0].row if self.children else None)
        return ("", False) if row is None else (row[4].subject, row[4].reply)

    def ancestor_of(self, other: Node) -> bool:
        node: Node | None = other
        while node is not None:
            if node is self:
                return True
            node = node.parent
        return False


def _link(parent: Node, child: Node) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
    child.parent = parent
    parent.children.append(child)


def orderedsubject(rows: Sequence[SortRow]) -> list[Node]:
    """THREAD=ORDEREDSUBJECT: threads of one base subject, by date."""
    ordered = sorted(rows, key=lambda r: (r[4].subject, sent_date(r), r[0]))
    roots: list[Node] = []
    for row in ordered:
        if roots and roots[-1].row is not None and roots[-1].row[4].subject == row[4].subject:
            roots[-1].children.append(Node(row, roots[-1]))
        else:
            roots.append(Node(row))
    roots.sort(key=Node.date_key)
    return roots


def references(rows: Sequence[SortRow]) -> list[Node]:
    """THREAD=REFERENCES (RFC 5256 §3, steps 1 to 6)."""
    table: dict[str, Node] = {}
    for row in sorted(rows, key=lambda r: r[0]):
        node = _message_node(table, row)  # (1): unique Message-IDs
        previous: Node | None = None
        for ref in row[4].references:  # (1)(A): link the references in order
            container = table.setdefault(ref, Node())
            if (
                previous is not None
                and container.parent is None
                and not container.ancestor_of(previous)
                and container is not previous
            ):
                _link(previous, container)
            previous = container
        if node.parent is not None:  # (1)(B): the last reference is the parent
            node.parent.children.remove(node)
            node.parent = None
        if previous is not None and previous is not node and not node.ancestor_of(previous):
            _link(previous, node)
    roots = [node for node in table.values() if node.parent is None]  # (2)
    roots = _prune(roots, top=True)  # (3)
    roots.sort(key=Node.date_key)  # (4)
    roots = _merge_subjects(roots)  # (5)
    _sort_siblings(roots)  # (6)
    return roots


def _message_node(table: dict[str, Node], row: SortRow) -> Node:
    message_id = row[4].message_id
    if message_id is None or (message_id in table and table[message_id].row is not None):
        message_id = f"\x00{row[1]}"  # none or a duplicate: a unique one
    node = table.setdefault(message_id, Node())
    node.row = row
    return node


def _prune(nodes: list[Node], top: bool) -> list[Node]:
    """(3): drop empty dummies; splice a dummy's children into its level (at
    the top only when it has one child)."""
    out: list[Node] = []
    for node in nodes:
        node.children = _prune(node.children, top=False)
        for child in node.children:
            child.parent = node
        if node.row is not None:
            out.append(node)
        elif not node.children:
            continue
        elif not top or len(node.children) == 1:
            for child in node.children:
                child.parent = None if top else node.parent
            out.extend(node.children)
        else:
            out.append(node)
    return out


def _merge_subjects(roots: list[Node]) -> list[Node]:
    """(5): threads with the same base subject are gathered."""
    table: dict[str, Node] = {}
    for node in roots:  # (5)(B)
        subject, reply = node.subject()
        if not subject:
            continue
        held = table.get(subject)
        if held is None or (held.row is not None and (node.row is None or (held.subject()[1] and not reply))):
            table[subject] = node
    # The roots kept, in order (a dict: membership tests stay O(1) for large mailboxes);
    # step (6) sorts them anyway.
    out: dict[Node, None] = {}
    for node in roots:  # (5)(C)
        subject, reply = node.subject()
        held = table.get(subject) if subject else None
        if held is None or held is node:
            out[node] = None
            continue
        if held.row is None and node.row is None:
            for child in list(node.children):
                _link(held, child)
        elif held.row is None or (reply and not held.subject()[1]):
            _link(held, node)
        else:
            dummy = Node()
            out.pop(held, None)
            _link(dummy, held)
            _link(dummy, node)
            table[subject] = dummy
            held = dummy
        out.pop(node, None)
        out[held] = None
    return list(out)


def _sort_siblings(nodes: list[Node]) -> None:
    """(6): every set of siblings by sent date (children before their parents'
    level, so a dummy sorts by its earliest child)."""
    for node in nodes:
        _sort_siblings(node.children)
        node.children.sort(key=Node.date_key)
    nodes.sort(key=Node.date_key)


def format_threads(roots: Sequence[Node], number: Callable[[SortRow], int]) -> bytes:
    """The THREAD response's data: ``(1 2)(3 (4)(5))``."""
    return b"".join(b"(" + _members(node, number) + b")" for node in roots)


def _members(node: Node, number: Callable[[SortRow], int]) -> bytes:
    parts: list[bytes] = []
    while True:
        if node.row is not None:
            parts.append(b"%d" % number(node.row))
        if len(node.children) == 1 and node.row is not None:
            node = node.children[0]
            continue
        if node.children:
            nested = b"".join(b"(" + _members(child, number) + b")" for child in node.children)
            parts.append(nested)
        return b" ".join(parts)
