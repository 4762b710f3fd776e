"""The MIME structure of a message: a tree of :class:`Node` offsets.

:class:`StructureParser` finds the parts of a message the way Dovecot's
``message-parser.c`` does, so that sizes, line counts and section contents
match what imaptest expects:

- a boundary delimiter is any line that starts with ``--`` plus the
  boundary of an enclosing multipart that is still open (the rest of the
  line does not matter); when several match, the longest boundary wins, so
  nested multiparts may use boundaries that prefix each other;
- the line end before a delimiter belongs to the delimiter, so a part ends
  just before it; a delimiter of an outer multipart also ends every inner
  part still open, and a close delimiter (``--boundary--``) makes its
  boundary inactive, so what follows is epilogue;
- a body part's header ends at an empty line, at a delimiter line (then the
  part has no body) or at the end of the data;
- Content-Type counts only if the part is MIME (inside a multipart, or with
  MIME-Version, or with a Content-Type field); the first Content-Type field
  wins; a part without one is ``text/plain``, or ``message/rfc822`` inside
  ``multipart/digest``;
- nesting deeper than :data:`MAX_NESTING` and more than :data:`MAX_PARTS`
  parts are not parsed further (the rest stays in the enclosing part).

The parser is resumable: it advances only as far as a caller needs (one
header block or one delimiter search per step), so ``BODY[1]`` of a large
message does not scan the attachments after part 1.  Every search over the
body is a bounded call (see :mod:`exchmail.mime.scan`); nothing is copied.
"""

from __future__ import annotations

from collections.abc import Callable

from exchmail.mime.headers import HeaderBlock, HeaderField, parse_fields, scan_header
from exchmail.mime.rfc822 import Lexer, _content_type, parse_parameters
from exchmail.mime.scan import count_byte, find, find_any

__all__ = [
    "DIGEST",
    "IS_MIME",
    "MAX_NESTING",
    "MAX_PARTS",
    "MESSAGE",
    "MULTIPART",
    "OVERFLOW",
    "TEXT",
    "Node",
    "StructureParser",
]

#: Flags of a :class:`Node` (Dovecot's ``MESSAGE_PART_FLAG_*``).
MULTIPART = 0x01
MESSAGE = 0x02  # message/rfc822 with its encapsulated message parsed
TEXT = 0x04
DIGEST = 0x08
IS_MIME = 0x10
OVERFLOW = 0x20  # a limit stopped parsing inside this part

#: Parts nested deeper than this are not parsed (Dovecot's default).
MAX_NESTING = 100
#: At most this many parts per message (Dovecot's default).
MAX_PARTS = 10000
# Boundaries longer than this are truncated; delimiter lines are compared
# on at most this many octets after the dashes when they do not end.
_MAX_BOUNDARY = 80
_MAX_BOUNDARY_LINE = _MAX_BOUNDARY + 4


class Node:
    """One part: ``data[start:body_start]`` is its header (``BODY[n.MIME]``),
    ``data[body_start:end]`` its body.  ``body_start`` and ``end`` are None
    while the parser has not found them yet.  The child of a
    :data:`MESSAGE` node is its encapsulated message.
    """

    __slots__ = (
        "body_size",
        "body_start",
        "children",
        "depth",
        "end",
        "fields",
        "flags",
        "header_size",
        "lines",
        "parent",
        "start",
        "view",
    )

    def __init__(self, start: int, parent: Node | None, flags: int = 0) -> None:
        self.start = start
        self.parent = parent
        self.depth: int = 0 if parent is None else parent.depth + 1
        self.flags = flags
        self.body_start: int | None = None
        self.end: int | None = None
        # Octets attributed so far (Dovecot's accounting: a line end that a
        # delimiter takes from a header counts in the parent's body).
        self.header_size = 0
        self.body_size = 0
        self.children: list[Node] = []
        self.fields: list[HeaderField] | None = None
        self.lines: int | None = None
        self.view: object | None = None  # the MimePart showing this node

    def count_lines(self, data: bytes, end: int) -> int:
        """Line ends in the body ``data[body_start:end]`` (IMAP's body lines),
        counted once."""
        if self.lines is None:
            assert self.body_start is not None
            self.lines = count_byte(data, b"\n", self.body_start, end)
        return self.lines


def content_type_of(fields: list[HeaderField]) -> bytes | None:
    """The value of the first Content-Type field (the only one that counts)."""
    for field in fields:
        if field.name.lower() == "content-type":
            return field.value
    return None


def _type_flags(value: bytes) -> tuple[int, bytes | None]:
    """Flags a Content-Type implies, and its boundary parameter if any."""
    lex = Lexer(value)
    lex.skip_lwsp()
    out = bytearray()
    ret = _content_type(lex, out)
    ctype = bytes(out).lower()
    flags = 0
    if ctype == b"message/rfc822":
        flags = MESSAGE
    elif ctype.startswith(b"text") and (len(ctype) == 4 or ctype[4:5] == b"/"):
        flags = TEXT
    elif ctype.startswith(b"multipart/"):
        flags = MULTIPART | (DIGEST if ctype == b"multipart/digest" else 0)
    if ret < 0 or not flags & MULTIPART:
        return flags, None
    params, _ = parse_parameters(lex)
    for name, param in params:
        if name.lower() == b"boundary":
            return flags, param[:_MAX_BOUNDARY]
    return flags, None


class _Boundary:
    __slots__ = ("owner", "text")

    def __init__(self, text: bytes, owner: Node) -> None:
        self.text = text
        self.owner = owner


class StructureParser:
    """Builds the :class:`Node` tree of ``data`` step by step (see module doc)."""

    def __init__(self, data: bytes, root: Node) -> None:
        self.data = data
        self.size = len(data)
        self.root = root
        self.part = root  # the part whose header or body comes next
        self.pos = root.start
        self.boundaries: list[_Boundary] = []  # innermost last
        self.total = 1
        self._step: Callable[[], None] = self._header
        self.done = False

    # -- driving ------------------------------------------------------------

    def run_until(self, ready: Callable[[], bool]) -> None:
        """Advance until *ready()* is true or the whole message is parsed."""
        for _ in range(4 * MAX_PARTS + 8):  # each step makes progress
            if self.done or ready():
                return
            self._step()
        self._finish_all()

    def run(self) -> None:
        """Parse the whole message."""
        self.run_until(lambda: False)

    def _close(self, node: Node) -> None:
        if node.body_start is None:  # stopped before its header
            node.body_start = node.start
        node.end = node.body_start + node.body_size
        if node.parent is not None:
            node.parent.body_size += node.end - node.start

    def _finish_all(self) -> None:
        """The data ends: what was read counts in the current part; close all."""
        self.part.body_size += self.size - self.pos
        self.pos = self.size
        node: Node | None = self.part
        while node is not None:
            self._close(node)
            node = node.parent
        self.done = True

    # -- delimiters ---------------------------------------------------------

    def _match(self, line: int) -> int:
        """Index of the boundary that the line at *line* delimits, or -1."""
        data, boundaries = self.data, self.boundaries
        if self.total >= MAX_PARTS or not data.startswith(b"--", line):
            return -1
        rest = line + 2
        lf = find(data, b"\n", rest, self.size)
        if lf >= 0:
            length = lf - rest
            if length > 0 and data[lf - 1] == 0x0D:
                length -= 1
            dashes = length > 2 and data.startswith(b"--", rest + length - 2)
        else:
            length = min(self.size - rest, _MAX_BOUNDARY_LINE)
            dashes = False
        best = -1
        for index in range(len(boundaries) - 1, -1, -1):
            text = boundaries[index].text
            size = len(text)
            if (
                size <= length
                and data.startswith(text, rest)
                and (best < 0 or len(boundaries[best].text) < size)
            ):
                best = index
                if size == length or (dashes and size + 2 == length):
                    break
        return best

    def _is_delimiter(self, line: int) -> bool:
        return self._match(line) >= 0

    def _next_delimiter(self) -> tuple[int, int, int]:
        """``(boundary index, delimiter start, line start)`` of the next
        delimiter at or after ``self.pos`` (always a line start: after a
        header or a delimiter line); index -1 when there is none."""
        data, start = self.data, self.pos
        index = self._match(start)
        if index >= 0:
            return index, start, start
        # A delimiter line holds "--" and an active boundary: look for those
        # (long, rare needles search fast), then check the whole line.
        needles = list({b"\n--" + b.text for b in self.boundaries})
        pos = start
        for _ in range(self.size + 1):
            nl = find_any(data, needles, pos, self.size)
            if nl < 0:
                break
            index = self._match(nl + 1)
            if index >= 0:
                cut = nl - 1 if nl > start and data[nl - 1] == 0x0D else nl
                return index, cut, nl + 1
            pos = nl + 1
        return -1, self.size, self.size

    # -- steps ----------------------------------------------------------------

    def _header(self) -> None:
        node, data, start = self.part, self.data, self.pos
        block = scan_header(data, start, self.size, self._is_delimiter if self.boundaries else None)
        fields = parse_fields(data, start, block.end)
        node.fields = fields
        ctype = content_type_of(fields)
        flags, boundary = (0, None) if ctype is None else _type_flags(ctype)
        if ctype is not None or any(f.name.lower() == "mime-version" for f in fields):
            node.flags |= IS_MIME
        if node.flags & IS_MIME:
            node.flags |= flags
        else:
            node.flags = 0
        if ctype is None or not node.flags & IS_MIME:
            parent = node.parent
            node.flags |= MESSAGE if parent is not None and parent.flags & DIGEST else TEXT
        multipart = False
        if boundary is not None and block.blank_line and node.flags & IS_MIME:
            if node.depth + 1 >= MAX_NESTING:
                node.flags = (node.flags | OVERFLOW) & ~MULTIPART
            else:
                self.boundaries.append(_Boundary(boundary, node))
                multipart = True
        self._end_header(node, block)
        if multipart or not node.flags & MESSAGE:
            self._step = self._body
        elif node.depth + 1 < MAX_NESTING and self.total < MAX_PARTS:
            self.total += 1
            assert node.body_start is not None
            child = Node(node.body_start, node)
            node.children.append(child)
            self.part = child
        else:
            node.flags = (node.flags | OVERFLOW) & ~MESSAGE
            self._step = self._body

    def _end_header(self, node: Node, block: HeaderBlock) -> None:
        """Set the header size; a line end before a delimiter goes to the parent."""
        header = block.end - self.pos
        give_back = block.resume - block.end
        if block.blank_line and self.boundaries:
            # An empty line straight before a delimiter (not of this part's
            # own boundary) is the delimiter's line end, not the header's.
            index = self._match(block.end)
            if index >= 0 and self.boundaries[index].owner is not node:
                data = self.data
                give_back = 2 if block.end - 2 >= self.pos and data[block.end - 2] == 0x0D else 1
                header -= give_back
        node.header_size = header
        node.body_start = node.start + header
        if give_back and node.parent is not None:
            node.parent.body_size += give_back
        self.pos = block.resume

    def _body(self) -> None:
        node = self.part
        if not self.boundaries:
            self._finish_all()
            return
        index, cut, line = self._next_delimiter()
        if index < 0:
            self._finish_all()
            return
        node.body_size += cut - self.pos
        boundary = self.boundaries[index]
        owner = boundary.owner
        while node is not owner:
            assert node.parent is not None
            self._close(node)
            node = node.parent
        self.part = owner
        after = line + 2 + len(boundary.text)
        if self.data.startswith(b"--", after):  # close delimiter
            del self.boundaries[index:]
            after += 2
        else:
            del self.boundaries[index + 1 :]
        lf = find(self.data, b"\n", after, self.size)
        if lf < 0:
            self.pos = cut
            self._finish_all()
            return
        owner.body_size += lf + 1 - cut
        self.pos = lf + 1
        if self.boundaries and self.boundaries[-1].owner is owner:
            self.total += 1
            assert owner.body_start is not None
            child = Node(owner.body_start + owner.body_size, owner, IS_MIME)
            owner.children.append(child)
            self.part = child
            self._step = self._header
        else:
            self._step = self._body
