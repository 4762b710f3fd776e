"""Header blocks on raw octets: where they end and the fields they hold.

A header block runs from its first line to the first empty line (``CRLF``
or a bare ``LF``), which belongs to it, or to the end of the data when there
is no empty line.  Inside a multipart, a line that is a boundary delimiter
also ends the header of a body part; the line end before that delimiter
then belongs to the delimiter, not to the header (Dovecot's
``message-parser.c`` does the same).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from exchmail.mime.scan import WINDOW, find_line_end

__all__ = [
    "HeaderBlock",
    "HeaderField",
    "ends_with_blank_line",
    "has_blank_line",
    "header_end",
    "parse_fields",
    "parse_header",
    "scan_header",
    "select_fields",
]

# field-name = 1*ftext; ftext = %d33-57 / %d59-126
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+\Z")
_WSP = b" \t"
# Dovecot treats longer names as no name at all (RFC 5322 2.1.1 line limit).
_MAX_NAME = 1000


class HeaderField(NamedTuple):
    """One header field: ``name`` as written (``""`` for a line that is not a
    field), ``value`` unfolded (line ends removed, leading WSP removed, octets
    as they are) and ``raw``, its lines exactly as in the message.
    """

    name: str
    value: bytes
    raw: bytes


class HeaderBlock(NamedTuple):
    """Where a header block ends.

    ``end`` is the end of the header as ``BODY[...MIME]`` / ``BODY[HEADER]``
    return it, the empty line included, and so where the body begins;
    ``blank_line`` says whether an empty line ended the block (rather than
    a boundary delimiter or the end of the data); ``resume`` is where
    reading stopped: *end*, or after the line end that a delimiter line
    took from the header.
    """

    end: int
    blank_line: bool
    resume: int


def _line_break_before(data: bytes, pos: int, start: int) -> int:
    """Length of the line end just before *pos* (0 when *pos* is *start*)."""
    if pos <= start:
        return 0
    if pos - 2 >= start and data[pos - 2 : pos] == b"\r\n":
        return 2
    return 1


def scan_header(
    data: bytes,
    start: int,
    end: int,
    is_delimiter: Callable[[int], bool] | None = None,
) -> HeaderBlock:
    """Find the end of the header block that starts at *start*.

    *is_delimiter*, if given, is asked about the start offset of every line;
    when it answers true the header ends before that line, without the
    preceding line end.
    """
    pos = start
    while pos < end:
        if is_delimiter is not None and is_delimiter(pos):
            cut = pos - _line_break_before(data, pos, start)
            return HeaderBlock(cut, False, pos)
        nxt = find_line_end(data, pos, end)
        if data[pos] == 0x0A or (data[pos] == 0x0D and nxt == pos + 2 and data[pos + 1] == 0x0A):
            return HeaderBlock(nxt, True, nxt)
        pos = nxt
    return HeaderBlock(end, False, end)


def header_end(data: bytes, start: int = 0, end: int | None = None) -> int | None:
    """Offset where the body of the message in ``data[start:end]`` begins, or
    None when *data* holds no empty line yet (the header may continue).

    Meant for reading a header from a stream: read a prefix, ask, read more.
    """
    if end is None:
        end = len(data)
    # What scan_header finds, by one search in C (a header SEARCH asks this
    # of every message of the mailbox).
    if data.startswith(b"\n", start, end):
        return start + 1
    if data.startswith(b"\r\n", start, end):
        return start + 2
    found = _BLANK_AFTER_LINE.search(data, start, end)
    return found.end() if found is not None else None


def ends_with_blank_line(block: bytes | memoryview) -> bool:
    """Whether a header block (as :func:`scan_header` delimits it) ended with
    an empty line, rather than at a boundary or at the end of the data."""
    tail = bytes(block[-3:])
    return tail in (b"\n", b"\r\n") and len(block) == len(tail) or tail.endswith((b"\n\n", b"\n\r\n"))


def has_blank_line(data: bytes) -> bool:
    """Whether *data* holds a line end followed by an empty line (an empty
    line at its very start does not count: *data* may start inside a line)."""
    return _BLANK_AFTER_LINE.search(data) is not None


def _make_field(data: bytes, start: int, end: int) -> HeaderField:
    return _field(data[start:end])


def _field(raw: bytes) -> HeaderField:
    first, sep, rest = raw.partition(b"\n")
    first = first.removesuffix(b"\r")
    if sep and rest:
        more = b"".join(line.rstrip(b"\r\n") for line in rest.splitlines(keepends=True))
    else:
        more = b""
    name, colon, value = first.partition(b":")
    name = name.rstrip(_WSP)
    if not colon or len(name) > _MAX_NAME or not _FIELD_NAME.match(name):
        return HeaderField("", first + more, raw)
    # Leading white space of the value goes, unless that is all there is:
    # then one character goes (Dovecot's rule).
    stripped = value.lstrip(_WSP)
    if not stripped and value:
        stripped = value[1:]
    return HeaderField(name.decode("ascii"), stripped + more, raw)


def parse_fields(data: bytes, start: int, end: int) -> list[HeaderField]:
    """The fields of the header block ``data[start:end]`` (as found by
    :func:`scan_header`): continuation lines are folded into the field
    before them; lines that are not fields keep an empty name.
    """
    if end - start <= WINDOW:
        return _parse_short_fields(data[start:end])
    fields: list[HeaderField] = []
    pos = start
    field_start = -1
    while pos < end:
        if data[pos] == 0x0A or data.startswith(b"\r\n", pos, end):
            break  # the empty line ending the block
        if field_start >= 0 and data[pos] not in _WSP:
            fields.append(_make_field(data, field_start, pos))
            field_start = -1
        if field_start < 0:
            field_start = pos
        pos = find_line_end(data, pos, end)
    if field_start >= 0:
        fields.append(_make_field(data, field_start, pos))
    return fields


def _parse_short_fields(block: bytes) -> list[HeaderField]:
    """:func:`parse_fields` for a block of at most WINDOW octets: one split
    instead of a search per line (the same fields, byte for byte)."""
    fields: list[HeaderField] = []
    lines = block.split(b"\n")
    last = len(lines) - 1
    current: list[bytes] = []
    for index, line in enumerate(lines):
        if index == last:
            if not line:
                break  # the block ended with a line end
        elif line == b"" or line == b"\r":
            break  # the empty line ending the block
        if current and line[:1] not in (b" ", b"\t"):
            fields.append(_field(b"".join(current)))
            current = []
        current.append(line if index == last else line + b"\n")
    if current:
        fields.append(_field(b"".join(current)))
    return fields


def parse_header(data: bytes, start: int = 0, end: int | None = None) -> list[HeaderField]:
    """Parse the header block at the start of ``data[start:end]`` into fields.

    Parsing stops at the first empty line.  Continuation lines (starting
    with SP or HTAB) are folded into the preceding field.  Lines that are
    not fields are kept with an empty name so that nothing is lost.
    """
    if end is None:
        end = len(data)
    block = scan_header(data, start, end)
    return parse_fields(data, start, block.end)


#: A line end followed by an empty line (the end of a header block that has a field).
_BLANK_AFTER_LINE = re.compile(rb"\n\r?\n")
#: Where the next field starts: a line end not followed by SP or HTAB.
_FIELD_BREAK = re.compile(rb"\n(?![ \t])")
#: What follows a field's name: optional white space and the colon.
_COLON = re.compile(rb"[ \t]*:")


def _block_end(data: bytes) -> int:
    """Where the empty line that ends the header at the start of ``data``
    begins (``len(data)`` if there is none)."""
    if data.startswith((b"\n", b"\r\n")):
        return 0
    found = _BLANK_AFTER_LINE.search(data)
    return found.start() + 1 if found is not None else len(data)


def field_values(data: bytes, name: str) -> list[bytes] | None:
    """The unfolded raw values of the fields called *name* in the header at
    the start of *data* -- what ``ParsedMessage(data).get_all(name)`` answers --
    found by looking for those fields only, without splitting the others.

    None when *name* is not an ASCII field name (the caller parses instead).
    """
    key = name.lower()
    if not key.isascii() or len(key) > _MAX_NAME or not _FIELD_NAME.match(key.encode("ascii")):
        return None
    wanted = key.encode("ascii")
    end = _block_end(data)
    # Fields start at the beginning of a line: found by plain searches in
    # the lower-cased block (ASCII case, as field names compare).
    lowered = data[:end].lower()
    values = []
    for start in _line_starts(lowered, wanted):
        if _COLON.match(lowered, start + len(wanted)):
            after = _FIELD_BREAK.search(data, start, end)
            stop = after.start() + 1 if after is not None else end
            values.append(_field(data[start:stop]).value)
    return values


#: The most names :func:`select_fields` looks for one by one (mail clients
#: ask for 10 to 20).
SELECT_MAX_NAMES = 40


def select_fields(data: bytes, names: Iterable[bytes]) -> bytes | None:
    """``BODY[HEADER.FIELDS (names)]`` of the message in *data*: the fields
    of its header called one of *names*, as written and in their order, each
    ending with a line end, then an empty line unless the message has none
    -- what selecting from the full parse (:func:`exchmail.imap.fetch.section`)
    gives -- found by looking for those fields only, without splitting the others.
    (Its loop is field_values' own, not a shared generator: that cost 7-10 %.)

    None when a name is not an ASCII field name, or when there are more than
    :data:`SELECT_MAX_NAMES` (one search per name: a long list costs more than
    splitting the fields): the caller parses instead.  Each search is a single
    C call: meant for messages of at most :data:`~exchmail.mime.scan.WINDOW`
    octets.
    """
    names = set(names)
    if len(names) > SELECT_MAX_NAMES:
        return None
    wanted = set()
    for name in names:
        key = name.strip().lower()
        if len(key) > _MAX_NAME or not _FIELD_NAME.match(key):
            return None
        wanted.add(key)
    end = _block_end(data)
    lowered = data[:end].lower()
    starts = sorted(
        start
        for key in wanted
        for start in _line_starts(lowered, key)
        if _COLON.match(lowered, start + len(key))
    )
    out = []
    for start in starts:
        after = _FIELD_BREAK.search(data, start, end)
        out.append(data[start : after.start() + 1 if after is not None else end])
    if end < len(data):  # the header ended with an empty line (RFC 3501 6.4.5)
        out.append(b"\r\n")
    return b"".join(out)


def _line_starts(text: bytes, prefix: bytes) -> Iterator[int]:
    """Offsets of the lines of ``text`` that start with ``prefix``."""
    if text.startswith(prefix):
        yield 0
    marker = b"\n" + prefix
    found = text.find(marker)
    while found >= 0:
        yield found + 1
        found = text.find(marker, found + 1)
