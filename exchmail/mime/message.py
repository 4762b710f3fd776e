"""A lazy, byte-exact view of a message for IMAP FETCH and SEARCH.

:class:`ParsedMessage` wraps a message in wire form and never re-serialises
it: every header block, body and MIME part is a slice of the original
octets, so sizes and ``BODY[section]`` are exact.  The MIME tree comes from
:class:`~exchmail.mime.structure.StructureParser` (Dovecot's rules, see
there), which runs only as far as a caller needs: the top-level header
alone (ENVELOPE, header SEARCH) never scans the body, and ``BODY[1]`` stops
at the end of part 1.  Section paths follow RFC 3501 6.4.5 as Dovecot
reads them (1-based; a non-multipart message has a single part 1, its body;
the subparts of a message/rfc822 part are those of the encapsulated
message).
"""

from __future__ import annotations

import datetime
import email.utils
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import TYPE_CHECKING

from exchmail.mime.content import NO_CONTENT, ContentFields, Params, content_fields, decoded_params
from exchmail.mime.decode import (
    CHUNK,
    decode_text,
    decode_transfer,
    decode_words,
    iter_text,
    iter_transfer_decoded,
)
from exchmail.mime.headers import HeaderField, parse_fields, parse_header
from exchmail.mime.rfc822 import parse_content_type, parse_token_value, parse_transfer_encoding
from exchmail.mime.structure import (
    DIGEST,
    IS_MIME,
    MAX_NESTING,
    MAX_PARTS,
    MESSAGE,
    MULTIPART,
    TEXT,
    Node,
    StructureParser,
)
from exchmail.mime.text import contains_text, header_search_text

if TYPE_CHECKING:
    from exchmail.mime.summary import MessageSummary

__all__ = [
    "MAX_DEPTH",
    "ContentFields",
    "HeaderField",
    "MimePart",
    "ParsedMessage",
    "decode_text",
    "decode_transfer",
    "decode_words",
    "iter_body_text",
    "iter_text_parts",
    "body_contains",
    "parse_header",
]

#: Nesting depth from which multiparts and encapsulated messages are no
#: longer parsed (they become opaque leaves).
MAX_DEPTH = MAX_NESTING - 1


class _Context:
    """What all views of one message share: the octets and the parser."""

    __slots__ = ("data", "parser")

    def __init__(self, data: bytes, parser: StructureParser | None) -> None:
        self.data = data
        self.parser = parser

    def until(self, ready: Callable[[], bool]) -> None:
        """Let the parser advance until *ready()* (or the end of the data)."""
        parser = self.parser
        if parser is not None and not parser.done:
            parser.run_until(ready)


class MimePart:
    """A node of the MIME tree: header ``data[start:body_start]`` and body
    ``data[body_start:end]``.  Everything is computed lazily and cached.
    """

    def __init__(self, ctx: _Context, node: Node) -> None:
        self._ctx = ctx
        self._node = node
        node.view = self

    # -- offsets and octets ----------------------------------------------------

    @property
    def data(self) -> bytes:
        """The octets of the whole (outermost) message."""
        return self._ctx.data

    @property
    def node(self) -> Node:
        """The structure node behind this view."""
        return self._node

    @property
    def start(self) -> int:
        """Offset of the part's first octet."""
        return self._node.start

    @property
    def depth(self) -> int:
        """Nesting depth (0 for the message itself)."""
        return self._node.depth

    @property
    def body_start(self) -> int:
        """Offset where the body starts (just after the empty line)."""
        node = self._node
        if node.body_start is None:
            self._ctx.until(lambda: node.body_start is not None)
        assert node.body_start is not None
        return node.body_start

    @property
    def end(self) -> int:
        """Offset just past the part's last octet."""
        node = self._node
        if node.end is None:
            self._ctx.until(lambda: node.end is not None)
        assert node.end is not None
        return node.end

    @property
    def raw(self) -> bytes:
        """The whole part: header block and body."""
        return self._ctx.data[self.start : self.end]

    @property
    def header(self) -> bytes:
        """The header block including its terminating empty line (if any)."""
        return self._ctx.data[self.start : self.body_start]

    @property
    def body(self) -> bytes:
        """The body, exactly as transmitted."""
        return self._ctx.data[self.body_start : self.end]

    def raw_view(self) -> memoryview:
        """:attr:`raw` without copying."""
        return memoryview(self._ctx.data)[self.start : self.end]

    def header_view(self) -> memoryview:
        """:attr:`header` without copying."""
        return memoryview(self._ctx.data)[self.start : self.body_start]

    def body_view(self) -> memoryview:
        """:attr:`body` without copying."""
        return memoryview(self._ctx.data)[self.body_start : self.end]

    @property
    def size(self) -> int:
        """Size of the whole part in octets (RFC822.SIZE for a message)."""
        return self.end - self.start

    @property
    def body_size(self) -> int:
        """Size of the body in octets."""
        return self.end - self.body_start

    @property
    def lines(self) -> int:
        """Number of line ends in the body (BODYSTRUCTURE's line count)."""
        return self._node.count_lines(self._ctx.data, self.end)

    # -- header fields ---------------------------------------------------------------

    @property
    def fields(self) -> list[HeaderField]:
        """All header lines, including malformed ones (with an empty name)."""
        node = self._node
        if node.fields is None:
            body_start = self.body_start  # parses the header, which may set the fields
            if node.fields is None:
                node.fields = parse_fields(self._ctx.data, self.start, body_start)
        return node.fields

    def get_all(self, name: str | bytes) -> list[bytes]:
        """Unfolded raw values of every field called *name* (case-insensitive)."""
        if isinstance(name, bytes):
            name = name.decode("ascii", "replace")
        key = name.lower()
        return [f.value for f in self.fields if f.name.lower() == key]

    def get(self, name: str | bytes) -> bytes | None:
        """Unfolded raw value of the first field called *name*, or None."""
        values = self.get_all(name)
        return values[0] if values else None

    def header_params(self, name: str) -> tuple[str | None, list[tuple[str, bytes]]]:
        """``(value, [(param, value), ...])`` of a structured field, e.g.
        ``("attachment", [("filename", b"a.txt")])``; ``(None, [])`` if absent.

        Parameter names are lower case; RFC 2231 values are decoded to UTF-8.
        """
        raw = self.get(name)
        if raw is None:
            return None, []
        token, params = parse_token_value(raw)
        if not token:
            return None, []
        if name.lower() == "content-type":
            ctype = parse_content_type(raw)
            if ctype.valid:
                token = ctype.maintype + b"/" + ctype.subtype
        return token.decode("ascii", "replace"), decoded_params(params)

    # -- MIME ------------------------------------------------------------------------

    @property
    def flags(self) -> int:
        """The structure flags (:mod:`exchmail.mime.structure`)."""
        self.body_start  # noqa: B018  (the flags are known with the header)
        return self._node.flags

    @cached_property
    def content(self) -> ContentFields:
        """The part's Content-* fields as BODYSTRUCTURE reports them."""
        if not self.flags & IS_MIME:
            return NO_CONTENT
        return content_fields(self.fields)

    @property
    def default_type(self) -> str:
        """The type of the part when it has no Content-Type."""
        parent = self._node.parent
        if parent is not None and parent.flags & DIGEST:
            return "message/rfc822"
        return "text/plain"

    @cached_property
    def content_type(self) -> str:
        """Lower-case ``type/subtype`` (RFC 2045 defaults applied)."""
        if self.is_message:
            return "message/rfc822"
        ctype = self.content.content_type
        if ctype is None:
            return self.default_type
        return (ctype.maintype + b"/" + ctype.subtype).decode("ascii", "replace").lower()

    @property
    def maintype(self) -> str:
        """Lower-case media type, e.g. ``text``."""
        return self.content_type.partition("/")[0]

    @property
    def subtype(self) -> str:
        """Lower-case media subtype, e.g. ``plain``."""
        return self.content_type.partition("/")[2]

    @property
    def raw_params(self) -> Params:
        """Content-Type parameters as written (RFC 2231 sections merged)."""
        ctype = self.content.content_type
        return ctype.params if ctype is not None else ()

    @cached_property
    def params(self) -> list[tuple[str, bytes]]:
        """Content-Type parameters as ``(lower-case name, value)`` pairs,
        RFC 2231 values decoded."""
        return decoded_params(self.raw_params)

    def param(self, name: str) -> bytes | None:
        """The Content-Type parameter *name* (case-insensitive), or None."""
        key = name.lower()
        for pname, value in self.params:
            if pname == key:
                return value
        return None

    @property
    def transfer_encoding(self) -> str | None:
        """Content-Transfer-Encoding (lower case) or None."""
        value = self.get("content-transfer-encoding")
        token = None if value is None else parse_transfer_encoding(value)
        return None if token is None else token.decode("ascii", "replace").lower()

    @property
    def is_multipart(self) -> bool:
        """True for a ``multipart/*`` part whose parts were parsed."""
        return bool(self.flags & MULTIPART)

    @property
    def is_message(self) -> bool:
        """True for a ``message/rfc822`` part whose message was parsed."""
        return bool(self.flags & MESSAGE)

    def child_nodes(self) -> list[Node]:
        """The nodes of the subparts (all of them: parses to the part's end)."""
        node = self._node
        if node.end is None:
            self._ctx.until(lambda: node.end is not None)
        return node.children

    def child(self, index: int) -> MimePart | None:
        """Subpart *index* (1-based) of a multipart, parsing only that far."""
        if index < 1:
            return None
        node = self._node
        kids = node.children
        if len(kids) < index and node.end is None:
            self._ctx.until(lambda: len(kids) >= index or node.end is not None)
        return _view(self._ctx, kids[index - 1]) if len(kids) >= index else None

    @property
    def children(self) -> list[MimePart]:
        """Subparts of a multipart, in order (empty for other parts)."""
        if not self.is_multipart:
            return []
        return [_view(self._ctx, node) for node in self.child_nodes()]

    @property
    def message(self) -> ParsedMessage | None:
        """The encapsulated message of a ``message/rfc822`` part, else None."""
        if not self.is_message:
            return None
        inner = self.child(1)
        assert inner is None or isinstance(inner, ParsedMessage)
        return inner

    # -- decoding --------------------------------------------------------------------

    def iter_decoded(self, chunk: int = CHUNK) -> Iterator[bytes]:
        """The body with its transfer encoding undone, in chunks."""
        return iter_transfer_decoded(self._ctx.data, self.body_start, self.end, self.transfer_encoding, chunk)

    def iter_text(self, chunk: int = CHUNK) -> Iterator[str]:
        """The decoded body as text (declared charset, else UTF-8), in chunks."""
        return iter_text(self.iter_decoded(chunk), self.param("charset"))

    def decoded_body(self) -> bytes:
        """The body with its Content-Transfer-Encoding undone."""
        return b"".join(self.iter_decoded())

    def decoded_text(self) -> str:
        """The decoded body as text (declared charset, else UTF-8)."""
        return decode_text(self.decoded_body(), self.param("charset"))


def _view(ctx: _Context, node: Node) -> MimePart:
    view = node.view
    if isinstance(view, MimePart):
        return view
    parent = node.parent
    if parent is not None and parent.flags & MESSAGE:
        return ParsedMessage._wrap(ctx, node)
    return MimePart(ctx, node)


class ParsedMessage(MimePart):
    """A message in wire form: the root :class:`MimePart` plus message helpers.

    *summary*, from :func:`exchmail.mime.summary.summarize` on the same
    octets, supplies the structure without parsing it again.
    """

    def __init__(self, data: bytes, *, summary: MessageSummary | None = None) -> None:
        if summary is not None:
            root = summary.tree()
            ctx = _Context(data, None)
        else:
            root = Node(0, None)
            ctx = _Context(data, None)
            ctx.parser = StructureParser(data, root)
        super().__init__(ctx, root)

    @classmethod
    def _wrap(cls, ctx: _Context, node: Node) -> ParsedMessage:
        self = cls.__new__(cls)
        MimePart.__init__(self, ctx, node)
        return self

    @property
    def end(self) -> int:
        """Offset just past the message (the data end, for the outermost one)."""
        if self._node.parent is None:
            return len(self._ctx.data)
        return super().end

    @property
    def root(self) -> MimePart:
        """The root part of the MIME tree (the message itself)."""
        return self

    def complete(self) -> ParsedMessage:
        """Parse the whole structure and count the line numbers BODYSTRUCTURE
        shows, now, so that later rendering does no scanning at all (call it
        in a worker thread before handing the message to the reactor)."""
        stack: list[Node] = [self.node]
        self.child_nodes()
        data = self.data
        for _ in range(2 * MAX_PARTS + 2):  # every node is visited once
            if not stack:
                break
            node = stack.pop()
            if node.end is not None and node.flags & (TEXT | MESSAGE) and not node.flags & MULTIPART:
                node.count_lines(data, node.end)
            stack.extend(node.children)
        return self

    def header_bytes(self) -> bytes:
        """The header including the terminating empty line (``BODY[HEADER]``)."""
        return self.header

    def body_bytes(self) -> bytes:
        """The body (``BODY[TEXT]``); empty when there is no empty line."""
        return self.body

    def headers(self) -> list[tuple[str, bytes]]:
        """``(name, unfolded raw value)`` of every well-formed header field."""
        return [(f.name, f.value) for f in self.fields if f.name]

    def decoded_header(self, name: str | bytes) -> str:
        """Field *name* with encoded-words decoded; ``""`` if absent.

        Several occurrences of the field are joined with newlines.
        """
        return "\n".join(decode_words(value) for value in self.get_all(name))

    def search_texts(self, name: str | bytes, *, addresses: bool | None = None) -> list[str]:
        """The text SEARCH matches for each occurrence of field *name*: for
        address fields (From, To, Cc, Bcc, Sender, Reply-To, Resent-*) the
        parsed addresses as ``Decoded Name <local@domain>`` (groups and
        routes included), for others the decoded value.  See
        :func:`exchmail.mime.text.header_search_text`."""
        if isinstance(name, bytes):
            name = name.decode("ascii", "replace")
        return [header_search_text(name, value, addresses=addresses) for value in self.get_all(name)]

    def sent_date(self) -> datetime.date | None:
        """The date of the Date header (its own time zone), or None."""
        value = self.get("date")
        if value is None:
            return None
        text = value.decode("latin-1").strip()
        try:
            return email.utils.parsedate_to_datetime(text).date()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None

    def header_text(self) -> str:
        """The header as text (``Name: decoded value`` lines) for SEARCH."""
        lines = [f"{name}: {decode_words(value)}" for name, value in self.headers()]
        return "\n".join(lines)

    def body_text(self) -> str:
        """The body as text for SEARCH: transfer- and charset-decoded; for a
        multipart or message/rfc822, its text parts joined by newlines.

        Builds one string; :func:`exchmail.mime.text.iter_body_text` and
        :func:`exchmail.mime.text.body_contains` do not.
        """
        return "".join(iter_body_text(self))

    def part(self, path: tuple[int, ...]) -> MimePart | None:
        """The MIME part at section *path* (1-based), or None if absent;
        ``part(())`` is the message itself."""
        node: MimePart = self
        for i, index in enumerate(path):
            more = i + 1 < len(path)
            if node.is_multipart:
                found = node.child(index)
                if found is None:
                    return None
                node = found
            elif index != 1 or (more and not node.is_message):
                return None
            if more and node.is_message:
                inner = node.message
                if inner is None:
                    return None
                node = inner
        return node


def _is_text(part: MimePart) -> bool:
    ctype = part.content.content_type
    return ctype is None or ctype.maintype.lower() in (b"text", b"message")


def _text_leaves(part: MimePart) -> Iterator[MimePart]:
    """The text leaves under *part* (itself included), in order."""
    stack = [part]
    for _ in range(2 * MAX_PARTS + 2):  # every part is pushed once
        if not stack:
            return
        node = stack.pop()
        if node.is_multipart:
            stack.extend(reversed(node.children))
        elif node.is_message:
            inner = node.message
            if inner is not None:
                stack.append(inner)
        elif _is_text(node):
            yield node


def nested_header_texts(part: MimePart) -> Iterator[str]:
    """The headers below *part* as ``Name: decoded value`` lines, one text a
    header: every body part's MIME header and every encapsulated message's
    header -- which SEARCH TEXT looks at too (RFC 3501 6.4.4: "the header or
    body of the message"; an attachment's file name is in one)."""
    stack = list(reversed(part.children)) if part.is_multipart else []
    if part.is_message and part.message is not None:
        stack.append(part.message)
    for _ in range(2 * MAX_PARTS + 2):  # every part is pushed once
        if not stack:
            return
        node = stack.pop()
        yield "\n".join(f"{f.name}: {decode_words(f.value)}" for f in node.fields if f.name)
        if node.is_multipart:
            stack.extend(reversed(node.children))
        elif node.is_message and node.message is not None:
            stack.append(node.message)


def text_leaves(part: MimePart) -> Iterator[MimePart]:
    """The text parts under *part*, in order (as :func:`iter_text_parts` reads them)."""
    return _text_leaves(part)


def iter_text_parts(part: MimePart, chunk: int = CHUNK) -> Iterator[Iterator[str]]:
    """For each text part under *part*, an iterator over its decoded text
    (transfer encoding and charset undone), about *chunk* raw octets a step.

    Text parts are leaves of type ``text/*`` or ``message/*`` or without a
    Content-Type (Dovecot's ``message-search.c``); preambles, epilogues and
    the headers of encapsulated messages are not body text.
    """
    for leaf in _text_leaves(part):
        yield leaf.iter_text(chunk)


def iter_body_text(part: MimePart, chunk: int = CHUNK) -> Iterator[str]:
    """The decoded text of the text parts under *part* (SEARCH BODY), in
    chunks; parts are separated by a ``"\\n"`` chunk."""
    for index, chunks in enumerate(iter_text_parts(part, chunk)):
        if index:
            yield "\n"
        yield from chunks


def _ascii_compatible(charset: bytes | None) -> bool:
    """Whether ASCII text is the same octets in *charset* and no octet of a
    non-ASCII character is in the ASCII range."""
    if charset is None:
        return True
    name = charset.decode("ascii", "replace").strip().lower()
    return name in _ASCII_COMPATIBLE or name.startswith(("iso-8859-", "windows-125", "cp125"))


_ASCII_COMPATIBLE = frozenset({"utf-8", "utf8", "us-ascii", "ascii", "latin1", "koi8-r", "koi8-u"})


def _contains_octets(chunks: Iterator[bytes], needle: bytes) -> bool:
    """ASCII-case-insensitive search for an ASCII *needle* in octet chunks."""
    keep = len(needle) - 1
    tail = b""
    for piece in chunks:
        text = tail + piece.lower()
        if needle in text:
            return True
        tail = text[-keep:] if keep else b""
    return False


def body_contains(part: MimePart, needle: str, chunk: int = CHUNK) -> bool:
    """Whether a text part under *part* contains *needle*, ignoring case;
    each part is searched on its own (a match never spans two parts).

    An ASCII *needle* in a part whose charset keeps ASCII as ASCII (UTF-8,
    ISO-8859-*, ...) is searched in the decoded octets, without building
    text: several times faster on large bodies.
    """
    folded = needle.casefold()
    if not folded:
        return True
    octets = folded.encode("ascii") if folded.isascii() else None
    for leaf in _text_leaves(part):
        if octets is not None and _ascii_compatible(leaf.param("charset")):
            if _contains_octets(leaf.iter_decoded(chunk), octets):
                return True
        elif contains_text(leaf.iter_text(chunk), needle):
            return True
    return False
