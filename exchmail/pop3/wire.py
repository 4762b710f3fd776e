"""POP3 wire helpers: command splitting, response clipping, byte-stuffing, streaming.

Everything is pure except :func:`send_message`, which streams a message
(RETR/TOP) through a session with back-pressure.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.internet import defer

#: RFC 1939 section 3 / MS-STANXPOP3 C0001: a response line, CRLF included.
MAX_RESPONSE = 512
_SEPARATORS = re.compile(rb"[ \t]+")
#: A line that starts with a dot.  (The pattern finds it twice as fast as
#: ``bytes.replace`` does: it looks for each LF, then at the octet after it.)
_DOT_LINE = re.compile(rb"\n\.")


class SyntaxProblem(Exception):
    """The command line cannot be split into keyword and arguments."""


def split_command(line: bytes, liberal: bool) -> tuple[bytes, list[bytes], bytes]:
    """``(KEYWORD, arguments, rest)`` of a command line (without its CRLF).

    ``rest`` is everything after the keyword and its separator, unchanged
    (PASS takes it whole, spaces included: MS-STANXPOP3 V0011).  With
    ``liberal`` (2.1.1) runs of SP and TAB separate the keyword and the
    arguments; otherwise exactly one SP does, as RFC 1939 section 3 says.
    """
    if liberal:
        stripped = line.lstrip(b" \t")
        parts = _SEPARATORS.split(stripped, maxsplit=1)
        keyword = parts[0]
        rest = parts[1] if len(parts) > 1 else b""
        args = [a for a in _SEPARATORS.split(rest) if a]
        return keyword.upper(), args, rest
    keyword, sep, rest = line.partition(b" ")
    if not keyword or b"\t" in keyword:
        raise SyntaxProblem("commands are a keyword and arguments separated by single spaces")
    args = rest.split(b" ") if sep else []
    return keyword.upper(), args, rest


def status_line(indicator: bytes, text: bytes) -> bytes:
    """``+OK text`` / ``-ERR text`` with CRLF, clipped to :data:`MAX_RESPONSE` octets."""
    line = indicator + (b" " + text if text else b"")
    line = line.replace(b"\r", b" ").replace(b"\n", b" ")
    return line[: MAX_RESPONSE - 2] + b"\r\n"


def stuff(chunk: bytes, at_line_start: bool) -> tuple[bytes, bool]:
    """Byte-stuff ``chunk`` (RFC 1939 section 3): double a ``.`` that starts a line.

    ``at_line_start`` says whether the previous chunk ended a line; the
    second value returned says the same for this chunk, so that chunks
    can be stuffed one at a time.
    """
    if not chunk:
        return chunk, at_line_start
    out = _DOT_LINE.sub(b"\n..", chunk)
    if at_line_start and chunk[:1] == b".":
        out = b"." + out
    return out, chunk[-1:] == b"\n"


class TopCutter:
    """Cuts a message stream after its header and ``lines`` body lines (TOP, V0007).

    Fed chunk by chunk (lines may span chunks); never holds more than the
    current chunk.
    """

    def __init__(self, lines: int) -> None:
        self.lines_left = lines
        self.in_header = True
        self.done = False
        self._partial_len = 0  # octets of the current line seen in earlier chunks
        self._partial_first = b""  # the first of them

    def cut(self, chunk: bytes) -> bytes:
        """The part of ``chunk`` that belongs to the TOP response; sets :attr:`done`."""
        position = 0
        while position < len(chunk):
            if not self.in_header and self.lines_left <= 0:
                self.done = True
                return chunk[:position]
            end = chunk.find(b"\n", position)
            if end < 0:
                if not self._partial_len:
                    self._partial_first = chunk[position : position + 1]
                self._partial_len += len(chunk) - position
                return chunk
            if self.in_header:
                self.in_header = not self._is_empty_line(chunk, position, end)
            else:
                self.lines_left -= 1
            self._partial_len, self._partial_first = 0, b""
            position = end + 1
        if not self.in_header and self.lines_left <= 0:
            self.done = True
        return chunk

    def _is_empty_line(self, chunk: bytes, position: int, end: int) -> bool:
        """Whether the line ending at ``chunk[end]`` is empty (CRLF or bare LF)."""
        length = self._partial_len + end - position
        if length == 0:
            return True
        first = self._partial_first if self._partial_len else chunk[position : position + 1]
        return length == 1 and first == b"\r"


CHUNK = 64 * 1024


def stuffed_message(data: bytes, top_lines: int | None = None) -> bytes:
    """A whole (small) message byte-stuffed with its ``.`` line (RETR, TOP),
    ready to write in one call."""
    if top_lines is not None:
        data = TopCutter(top_lines).cut(data)
    body, at_line_start = stuff(data, True)
    return body + (b"" if at_line_start else b"\r\n") + b".\r\n"


@defer.inlineCallbacks
def send_message(session: Any, reader: Any, top_lines: int | None = None):
    """Write the message of ``reader`` byte-stuffed, then the ``.`` line (RETR, TOP).

    Streams with back-pressure (``session.write_now`` waits while the
    client is not reading); with ``top_lines``, stops after the header and
    that many body lines.  The reader is closed in any case.
    """
    cutter = TopCutter(top_lines) if top_lines is not None else None
    at_line_start, sent = True, 0
    try:
        while cutter is None or not cutter.done:
            chunk = yield reader.read(CHUNK)
            if not chunk:
                break
            if cutter is not None:
                chunk = cutter.cut(chunk)
            data, at_line_start = stuff(chunk, at_line_start)
            if data:
                sent += len(data)
                yield session.write_now(data)
    finally:
        reader.close()
    session.note_data_sent(sent)
    yield session.write_now((b"" if at_line_start else b"\r\n") + b".\r\n")
