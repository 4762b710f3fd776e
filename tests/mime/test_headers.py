"""exchmail.mime.headers.header_end: the one-search shortcut agrees with the
line-by-line header scan (scan_header) on every input."""

from __future__ import annotations

import itertools

from exchmail.mime.headers import header_end, scan_header

from .edge_messages import CASES

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
