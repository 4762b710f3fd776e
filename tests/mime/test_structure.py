"""The structure parser: offsets, laziness, limits and line-end ownership."""

from __future__ import annotations

import pytest

from exchmail.mime.message import ParsedMessage
from exchmail.mime.structure import MAX_PARTS, MESSAGE, MULTIPART, TEXT, Node, StructureParser

from .edge_messages import CASES


def _walk(node: Node) -> list[Node]:
    out = [node]
    for child in node.children:
        out.extend(_walk(child))
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_offsets_are_consistent(name: str) -> None:
    data = CASES[name]
    root = Node(0, None)
    parser = StructureParser(data, root)
    parser.run()
    assert parser.done
    assert root.end == len(data)
    for node in _walk(root):
        assert node.body_start is not None and node.end is not None
        assert node.start <= node.body_start <= node.end
        last = node.body_start
        for child in node.children:
            assert last <= child.start and child.end is not None and child.end <= node.end
            last = child.end
        if node.flags & MESSAGE:
            assert len(node.children) == 1 and node.children[0].start == node.body_start


def test_parses_only_what_is_asked() -> None:
    big = b"A" * 76 + b"\r\n"
    data = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\n\r\nsmall\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n"
        + big * 1000
        + b"--b--\r\n"
    )
    msg = ParsedMessage(data)
    assert msg.get("content-type") is not None
    parser = msg._ctx.parser  # type: ignore[attr-defined]
    assert parser is not None and parser.pos < 100  # the header alone
    assert msg.part((1,)) is not None and msg.part((1,)).body == b"small"  # type: ignore[union-attr]
    assert parser.pos < 200 and not parser.done  # part 2's body not scanned
    assert msg.part((2,)).body_size == len(big) * 1000 - 2  # type: ignore[union-attr]


def test_header_given_back_to_delimiter() -> None:
    # An empty line right before a delimiter is the delimiter's line end.
    data = b"Content-Type: multipart/mixed; boundary=e\r\n\r\n--e\r\nX: y\r\n\r\n--e--\r\n"
    part = ParsedMessage(data).part((1,))
    assert part is not None
    assert (part.header, part.body) == (b"X: y\r\n", b"")


def test_header_ended_by_delimiter_inside_message_part() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=n\r\n\r\n"
        b"--n\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n--n--\r\n"
    )
    msg = ParsedMessage(data)
    part = msg.part((1,))
    assert part is not None and part.is_message
    # The line end goes to the message/rfc822 part's body (Dovecot).
    assert part.body == b"Subject: x\r\n" and part.lines == 1
    inner = part.message
    assert inner is not None and inner.header == b"Subject: x" and inner.body == b""


def test_bare_lf_line_ends() -> None:
    data = (
        b"Subject: s\nContent-Type: multipart/mixed; boundary=b\n\n"
        b"--b\n\nx\n--b\nContent-Type: text/html\n\n<p>\n--b--\n"
    )
    msg = ParsedMessage(data)
    first, second = msg.children
    assert (first.header, first.body, first.lines) == (b"\n", b"x", 0)
    assert (second.content_type, second.body) == ("text/html", b"<p>")
    assert msg.get("subject") == b"s"


def test_part_limit() -> None:
    data = CASES["many_parts"]
    msg = ParsedMessage(data)
    assert len(msg.children) == MAX_PARTS - 1
    assert msg.children[-1].body.startswith(b"9998\r\n--p\r\n")  # the rest stays in the last part


def test_nesting_limit_flags() -> None:
    msg = ParsedMessage(CASES["deep_rfc822_120"])
    msg.child_nodes()  # parse it all
    node: Node = msg.node
    depth = 0
    while node.flags & MESSAGE:
        node = node.children[0]
        depth += 1
    assert depth == 99
    assert not node.flags & (MESSAGE | MULTIPART)
    assert msg.node.flags & MESSAGE and not msg.node.flags & TEXT


def test_complete_leaves_nothing_to_scan() -> None:
    msg = ParsedMessage(CASES["nested_rfc822"]).complete()
    parser = msg._ctx.parser  # type: ignore[attr-defined]
    assert parser is not None and parser.done
    leaves = [n for n in _walk(msg.node) if n.flags & (TEXT | MESSAGE) and not n.flags & MULTIPART]
    assert leaves and all(n.lines is not None for n in leaves)
