"""A lazy, byte-exact view of a message for IMAP FETCH and SEARCH.

:class:`ParsedMessage` wraps a message in wire form (CRLF line ends, 8-bit
allowed) and never re-serialises it: every header block, body and MIME part
is a slice of the original octets, so sizes and ``BODY[section]`` are exact.
The MIME tree comes from a small splitter on the raw octets (RFC 2046 5.1.1);
the stdlib :mod:`email` package (``compat32``) only interprets the header
block of a part (content type, parameters), lazily.  Section paths follow
RFC 3501 6.4.5 (1-based; a non-multipart message has a single part 1, its
body; the subparts of a message/rfc822 part are those of the encapsulated
message).
"""

from __future__ import annotations

import binascii
import datetime
import email.header
import email.utils
import re
from email.errors import MessageError
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from functools import cached_property
from typing import NamedTuple

__all__ = [
    "MAX_DEPTH",
    "HeaderField",
    "MimePart",
    "ParsedMessage",
    "decode_text",
    "decode_transfer",
    "decode_words",
    "parse_header",
]

#: Nesting depth beyond which multiparts and encapsulated messages are
#: treated as opaque leaves (protects against pathological messages).
MAX_DEPTH = 32

_BLANK_LINE = re.compile(rb"\n\r?\n")
# field-name = 1*ftext; ftext = %d33-57 / %d59-126
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+\Z")
_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")
_WSP = b" \t"
# What the lenient code catches from the email package and codecs.
_LENIENT = (MessageError, LookupError, ValueError, TypeError, IndexError, OverflowError)


class HeaderField(NamedTuple):
    """One header field: ``name`` as written (``""`` for a line that is not a
    field), ``value`` unfolded (leading WSP and line end removed, octets as
    they are) and ``raw``, its lines exactly as in the message.
    """

    name: str
    value: bytes
    raw: bytes


def _make_field(lines: list[bytes]) -> HeaderField:
    raw = b"".join(lines)
    unfolded = b"".join(line.rstrip(b"\r\n") for line in lines)
    name, colon, value = unfolded.partition(b":")
    name = name.rstrip(_WSP)
    if not colon or not _FIELD_NAME.match(name):
        return HeaderField("", unfolded, raw)
    return HeaderField(name.decode("ascii"), value.lstrip(_WSP), raw)


def parse_header(
    data: bytes, start: int = 0, end: int | None = None
) -> list[HeaderField]:
    """Parse the header block in ``data[start:end]`` into fields.

    Parsing stops at the first empty line.  Continuation lines (starting
    with SP or HTAB) are folded into the preceding field.  Lines that are
    not fields are kept with an empty name so that nothing is lost.
    """
    if end is None:
        end = len(data)
    fields: list[HeaderField] = []
    current: list[bytes] = []
    pos = start
    while pos < end:
        nl = data.find(b"\n", pos, end)
        line = data[pos : end if nl < 0 else nl + 1]
        pos += len(line)
        if not line.rstrip(b"\r\n"):
            break
        if current and line[0] in _WSP:
            current.append(line)
            continue
        if current:
            fields.append(_make_field(current))
        current = [line]
    if current:
        fields.append(_make_field(current))
    return fields


def _decode_chunks(chunks: list[tuple[bytes | str, str | None]]) -> str:
    # decode_header() encodes the plain text runs with raw-unicode-escape.
    return "".join(
        c if isinstance(c, str) else decode_text(c, cs or "raw-unicode-escape")
        for c, cs in chunks
    )


def decode_words(raw: bytes) -> str:
    """Decode a raw header value, including RFC 2047 encoded-words, to text.

    Never raises: raw 8-bit octets are read as UTF-8 (or Latin-1 if that
    fails), unknown charsets and broken encoded-words degrade gracefully.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if "=?" not in text:
        return text
    try:
        chunks = email.header.decode_header(text)
    except _LENIENT:  # HeaderParseError, binascii errors, ...
        return text
    try:
        return str(email.header.make_header(chunks))
    except _LENIENT:  # unknown charset, undecodable octets, ...
        return _decode_chunks(chunks)


def decode_text(data: bytes, charset: str | None) -> str:
    """Decode *data* with *charset*, falling back to UTF-8; never raises."""
    try:
        return data.decode(charset or "utf-8", "replace")
    except _LENIENT:  # unknown charset, or not a text codec
        return data.decode("utf-8", "replace")


def decode_transfer(data: bytes, encoding: str | None) -> bytes:
    """Undo a Content-Transfer-Encoding (base64 / quoted-printable), leniently."""
    encoding = (encoding or "").strip().lower()
    if encoding == "base64":
        cleaned = _NOT_BASE64.sub(b"", data)
        rem = len(cleaned) % 4
        if rem == 1:
            cleaned = cleaned[:-1]
        elif rem:
            cleaned += b"=" * (4 - rem)
        try:
            return binascii.a2b_base64(cleaned)
        except binascii.Error:
            return data
    if encoding == "quoted-printable":
        return binascii.a2b_qp(data)
    return data


class MimePart:
    """A node of the MIME tree: a slice ``data[start:end]`` of the message.

    The slice is the part's header block (which may be empty) followed by
    its body.  Everything is computed lazily and cached.
    """

    def __init__(
        self,
        data: bytes,
        start: int = 0,
        end: int | None = None,
        *,
        default_type: str = "text/plain",
        depth: int = 0,
        headerless: bool = False,
    ) -> None:
        self._data = data
        self.start = start
        self.end = len(data) if end is None else end
        self.default_type = default_type
        self.depth = depth
        self._headerless = headerless

    @cached_property
    def body_start(self) -> int:
        """Offset where the body starts (just after the empty line)."""
        data, start, end = self._data, self.start, self.end
        if self._headerless:
            return start
        if data.startswith(b"\r\n", start, end):
            return start + 2
        if data.startswith(b"\n", start, end):
            return start + 1
        match = _BLANK_LINE.search(data, start, end)
        return match.end() if match else end

    @property
    def raw(self) -> bytes:
        """The whole part: header block and body."""
        return self._data[self.start : self.end]

    @property
    def header(self) -> bytes:
        """The header block including its terminating empty line (if any)."""
        return self._data[self.start : self.body_start]

    @property
    def body(self) -> bytes:
        """The body, exactly as transmitted."""
        return self._data[self.body_start : self.end]

    @property
    def size(self) -> int:
        """Size of the whole part in octets (RFC822.SIZE for a message)."""
        return self.end - self.start

    @property
    def body_size(self) -> int:
        """Size of the body in octets."""
        return self.end - self.body_start

    @cached_property
    def fields(self) -> list[HeaderField]:
        """All header lines, including malformed ones (with an empty name)."""
        return parse_header(self._data, self.start, self.body_start)

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

    @cached_property
    def email_headers(self) -> Message:
        """The header block parsed by :mod:`email` (compat32, headers only)."""
        msg = BytesParser(policy=compat32).parsebytes(self.header, headersonly=True)
        msg.set_default_type(self.default_type)
        return msg

    def header_params(self, name: str) -> tuple[str | None, list[tuple[str, bytes]]]:
        """``(value, [(param, value), ...])`` of a structured field, e.g.
        ``("attachment", [("filename", b"a.txt")])``; ``(None, [])`` if absent.

        Parameter names are lower case; RFC 2231 values are decoded to UTF-8.
        """
        if self.get(name) is None:
            return None, []
        try:
            items = self.email_headers.get_params(header=name) or []
        except _LENIENT:
            return None, []
        if not items:
            return None, []
        first = str(items[0][0]).strip()
        params = []
        for key, value in items[1:]:
            if isinstance(value, tuple):
                value = email.utils.collapse_rfc2231_value(value)
            params.append((str(key), str(value).encode("utf-8", "surrogateescape")))
        return first, params

    @cached_property
    def content_type(self) -> str:
        """Lower-case ``type/subtype`` (RFC 2045 defaults applied)."""
        if self._headerless:
            return self.default_type
        try:
            return self.email_headers.get_content_type()
        except _LENIENT:
            return self.default_type

    @property
    def maintype(self) -> str:
        """Lower-case media type, e.g. ``text``."""
        return self.content_type.partition("/")[0]

    @property
    def subtype(self) -> str:
        """Lower-case media subtype, e.g. ``plain``."""
        return self.content_type.partition("/")[2]

    @cached_property
    def params(self) -> list[tuple[str, bytes]]:
        """Content-Type parameters as ``(lower-case name, raw value)`` pairs."""
        return self.header_params("content-type")[1]

    def param(self, name: str) -> bytes | None:
        """The Content-Type parameter *name* (case-insensitive), or None."""
        key = name.lower()
        for pname, value in self.params:
            if pname == key:
                return value
        return None

    @property
    def transfer_encoding(self) -> str | None:
        """Content-Transfer-Encoding value (stripped, lower case) or None."""
        value = self.get("content-transfer-encoding")
        if value is None:
            return None
        return value.decode("latin-1").strip().lower()

    @property
    def is_multipart(self) -> bool:
        """True for a ``multipart/*`` part (within :data:`MAX_DEPTH`)."""
        return self.maintype == "multipart" and self.depth < MAX_DEPTH

    @property
    def is_message(self) -> bool:
        """True for a ``message/rfc822`` part (within :data:`MAX_DEPTH`)."""
        return self.content_type == "message/rfc822" and self.depth < MAX_DEPTH

    @cached_property
    def children(self) -> list[MimePart]:
        """Subparts of a multipart, in order (empty for other parts).

        A multipart without boundary parameter or delimiters gets a single
        header-less ``text/plain`` child covering its whole body.
        """
        if not self.is_multipart:
            return []
        data, depth = self._data, self.depth + 1
        boundary = self.param("boundary") or b""
        spans = _split_multipart(data, self.body_start, self.end, boundary)
        if not spans:
            return [
                MimePart(data, self.body_start, self.end, depth=depth, headerless=True)
            ]
        kind = "message/rfc822" if self.subtype == "digest" else "text/plain"
        return [MimePart(data, s, e, default_type=kind, depth=depth) for s, e in spans]

    @cached_property
    def message(self) -> ParsedMessage | None:
        """The encapsulated message of a ``message/rfc822`` part, else None."""
        if not self.is_message:
            return None
        start, end, depth = self.body_start, self.end, self.depth + 1
        return ParsedMessage(self._data, _start=start, _end=end, _depth=depth)

    def decoded_body(self) -> bytes:
        """The body with its Content-Transfer-Encoding undone."""
        return decode_transfer(self.body, self.transfer_encoding)

    def decoded_text(self) -> str:
        """The decoded body as text (declared charset, else UTF-8)."""
        charset = self.param("charset")
        return decode_text(
            self.decoded_body(), charset.decode("ascii", "replace") if charset else None
        )


def _split_multipart(
    data: bytes, start: int, end: int, boundary: bytes
) -> list[tuple[int, int]]:
    """Find the body parts of a multipart body ``data[start:end]``.

    Returns ``(start, end)`` spans.  Each part ends before the CRLF that
    precedes the next delimiter line (RFC 2046 section 5.1.1); the preamble
    and epilogue are skipped.  A missing close delimiter makes the last part
    run to the end of the body.
    """
    if not boundary:
        return []
    dash = b"--" + boundary
    delims: list[tuple[int, int, bool]] = []  # (line start, content start, close)
    pos = start
    while True:
        i = data.find(dash, pos, end)
        if i < 0:
            break
        pos = i + len(dash)
        if i != start and data[i - 1] != 0x0A:
            continue
        nl = data.find(b"\n", pos, end)
        line_end = end if nl < 0 else nl + 1
        rest = data[pos:line_end]
        close = rest.startswith(b"--")
        if close:
            rest = rest[2:]
        if rest.strip(b" \t\r\n"):
            continue  # e.g. a longer boundary starting with ours
        delims.append((i, line_end, close))
        if close:
            break
        pos = line_end
    spans = []
    for k, (_, content_start, close) in enumerate(delims):
        if close:
            break
        if k + 1 < len(delims):
            nxt = delims[k + 1][0]
            content_end = nxt
            if nxt - 2 >= content_start and data[nxt - 2 : nxt] == b"\r\n":
                content_end = nxt - 2
            elif nxt - 1 >= content_start and data[nxt - 1 : nxt] == b"\n":
                content_end = nxt - 1
        else:
            content_end = end
        spans.append((content_start, content_end))
    return spans


class ParsedMessage(MimePart):
    """A message in wire form: the root :class:`MimePart` plus message helpers."""

    def __init__(
        self, data: bytes, *, _start: int = 0, _end: int | None = None, _depth: int = 0
    ) -> None:
        super().__init__(data, _start, _end, depth=_depth)

    @property
    def root(self) -> MimePart:
        """The root part of the MIME tree (the message itself)."""
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

    def sent_date(self) -> datetime.date | None:
        """The date of the Date header (its own time zone), or None."""
        value = self.get("date")
        if value is None:
            return None
        text = value.decode("latin-1").strip()
        try:
            return email.utils.parsedate_to_datetime(text).date()
        except _LENIENT:
            return None

    def header_text(self) -> str:
        """The header as text (``Name: decoded value`` lines) for SEARCH."""
        lines = [f"{name}: {decode_words(value)}" for name, value in self.headers()]
        return "\n".join(lines)

    def body_text(self) -> str:
        """The body as text for SEARCH: transfer- and charset-decoded; for a
        multipart or message/rfc822, its ``text/*`` parts joined by newlines.
        """
        if not (self.is_multipart or self.is_message):
            return self.decoded_text()
        return "\n".join(_texts(self))

    def part(self, path: tuple[int, ...]) -> MimePart | None:
        """The MIME part at section *path* (1-based), or None if absent;
        ``part(())`` is the message itself."""
        top: MimePart = self  # the message whose part numbers are being used
        node: MimePart | None = None  # None: at the top of ``top``
        for index in path:
            if node is not None and not node.is_multipart:
                if node.message is None:
                    return None
                top, node = node.message, None
            if node is None:
                kids = top.children if top.is_multipart else [top]
            else:
                kids = node.children
            if not 0 < index <= len(kids):
                return None
            node = kids[index - 1]
        return self if node is None else node


def _texts(part: MimePart) -> list[str]:
    """Decoded text of the ``text/*`` leaves under *part*."""
    if part.is_multipart:
        return [text for child in part.children for text in _texts(child)]
    if part.is_message:
        assert part.message is not None
        inner = part.message.body_text()
        return [inner] if inner else []
    if part.maintype == "text":
        return [part.decoded_text()]
    return []
