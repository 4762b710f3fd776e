"""The DATA reader on its own: end mark, dot-unstuffing, any chunking, size limit."""

from __future__ import annotations

import io
import random

from exchmail.lmtp.body import DataReader


def unstuffed(stuffed: bytes) -> tuple[bytes, bytes]:
    """The reference: line by line, as RFC 5321 4.5.2 says."""
    lines = stuffed.split(b"\r\n")
    out = []
    for i, line in enumerate(lines):
        if line == b".":
            return b"".join(x + b"\r\n" for x in out), b"\r\n".join(lines[i + 1 :])
        out.append(line[1:] if line.startswith(b".") else line)
    raise AssertionError("no end mark")


def run(data: bytes, cuts: list[int], max_size: int = 10**9) -> tuple[bytes, bytes | None, DataReader]:
    sink = io.BytesIO()
    reader = DataReader(sink, max_size)
    rest = None
    start = 0
    for cut in [*cuts, len(data)]:
        rest = reader.feed(data[start:cut])
        start = cut
        if rest is not None:
            rest += data[cut:]
            break
    return sink.getvalue(), rest, reader


def test_empty_message_and_immediate_end() -> None:
    assert run(b".\r\nQUIT\r\n", [])[:2] == (b"", b"QUIT\r\n")


def test_end_mark_must_be_crlf_dot_crlf() -> None:
    body, rest, _ = run(b"a\n.\nb\r\n.x\r\n\r\n.\r\n", [])
    assert body == b"a\n.\nb\r\nx\r\n\r\n" and rest == b""


def test_any_chunking_matches_the_line_by_line_reference() -> None:
    rng = random.Random(2033)
    pieces = [b".", b"..", b"\r\n", b"\n", b"\r", b"x", b"hello", b"\r\n.", b"\xc3\xa4"]
    for _ in range(300):
        stuffed = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        stuffed = stuffed.replace(b"\r\n.\r\n", b"\r\n..\r\n")
        if stuffed.startswith(b".\r\n"):
            stuffed = b"." + stuffed
        data = stuffed + (b"" if stuffed.endswith(b"\r\n") or not stuffed else b"\r\n")
        data += b".\r\nNEXT"
        expected = unstuffed(data if not data.startswith(b".\r\n") else data)
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 8))))
        body, rest, _ = run(data, cuts)
        assert (body, rest) == expected, (data, cuts)


def test_size_limit_stops_writing_but_finds_the_end() -> None:
    body, rest, reader = run(b"a" * 100 + b"\r\n.\r\n", [10, 50], max_size=64)
    assert reader.too_big and rest == b"" and len(body) <= 64
