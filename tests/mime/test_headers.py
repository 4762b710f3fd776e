"""Header blocks (exchmail.mime.headers): where a block ends (header_end, the
one-search shortcut, agrees with the line scan on every input), and the fields
of blocks larger than the one-split fast path's window."""

from __future__ import annotations

import itertools

import pytest

from exchmail.mime.headers import (
    HeaderBlock,
    _parse_short_fields,
    header_end,
    parse_fields,
    parse_header,
    scan_header,
)
from exchmail.mime.scan import WINDOW

from .edge_messages import CASES


@pytest.mark.parametrize(
    ("data", "block"),
    [
        (b"A: 1\n--b\nrest", HeaderBlock(4, False, 5)),  # LF before the delimiter
        (b"A: 1\r\n--b\r\nrest", HeaderBlock(4, False, 6)),  # CRLF before it
        (b"--b\r\nrest", HeaderBlock(0, False, 0)),  # the delimiter first: an empty header
    ],
)
def test_header_ended_by_a_delimiter_loses_the_line_end_before_it(data: bytes, block: HeaderBlock) -> None:
    assert scan_header(data, 0, len(data), lambda pos: data.startswith(b"--b", pos)) == block


def large_header() -> bytes:
    """Over WINDOW octets of fields: CRLF and LF lines, folded values, a line
    that is no field, a name over 1000 octets; then the empty line and a body."""
    # Few long lines: the slow path walks the block line by line.
    value = b"x" * 8000
    lines = [
        b"Received: from host%d %s\r\n\tfor <user@example.org>; folded\r\n" % (i, value) for i in range(140)
    ]
    lines += [
        b"Subject: the last\n",
        b"not a field\n",
        b"X" * 1001 + b": long name\r\n",
        b"To: a@b\r\n  (c)\r\n",
    ]
    block = b"".join(lines)
    assert len(block) > WINDOW
    return block + b"\r\nbody: not a field of the header\r\n"


def test_large_header_fields_equal_the_fast_paths() -> None:
    data = large_header()
    end = scan_header(data, 0, len(data)).end
    fields = parse_fields(data, 0, end)
    assert fields == _parse_short_fields(data[:end])
    assert len(fields) == 144
    assert fields[0].name == "Received" and fields[0].value.endswith(b"for <user@example.org>; folded")
    assert [f.name for f in fields[-4:]] == ["Subject", "", "", "To"]
    assert fields[-1].value == b"a@b  (c)" and fields[-1].raw == b"To: a@b\r\n  (c)\r\n"
    assert parse_header(data) == fields


def test_large_header_without_an_empty_line_ends_at_the_end() -> None:
    data = large_header().partition(b"\r\n\r\n")[0] + b"\r\nTrailing: field"
    fields = parse_fields(data, 0, len(data))
    assert fields[-1].name == "Trailing" and fields[-1].value == b"field"
    assert fields == _parse_short_fields(data)


# Line ends, bare CRs, blank lines and text in any mix.
PIECES = [b"\r\n", b"\n", b"\r", b"a", b"Subject: x", b" ", b"\r\r\n"]


def by_lines(data: bytes, start: int, end: int) -> int | None:
    block = scan_header(data, start, end)
    return block.end if block.blank_line else None


def test_header_end_agrees_with_the_line_scan() -> None:
    """Every mix of up to three pieces, from every start to every end."""
    for count in range(4):
        for pieces in itertools.product(PIECES, repeat=count):
            data = b"".join(pieces)
            for start in range(len(data) + 1):
                for end in range(start, len(data) + 1):
                    assert header_end(data, start, end) == by_lines(data, start, end), (data, start, end)


def test_header_end_of_the_edge_messages() -> None:
    for data in CASES.values():
        assert header_end(data) == by_lines(data, 0, len(data))


def test_header_end_examples() -> None:
    assert header_end(b"A: b\r\n\r\nbody") == 8
    assert header_end(b"\r\nbody") == 2
    assert header_end(b"\nbody") == 1
    assert header_end(b"A: b\r\nB: c\r\n") is None  # the header may go on
    assert header_end(b"A: b\n\nx", 0, 5) is None  # the blank line is past end
