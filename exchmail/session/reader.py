"""The bounded input reader: a client's bytes in, whole commands out.

A command is one or more lines; in IMAP a line that ends with a literal
announcement (``{n}``, or ``{n+}`` with LITERAL+) is followed by ``n``
octets of literal data and then the rest of the command.  POP3 commands
are single lines.  The reader is a pure state machine: :meth:`feed` takes
bytes, :meth:`next_event` hands out what is complete, and nothing here
touches a transport, so every limit is testable in isolation.

Limits, all enforced while reading (before a command runs):

- a line longer than ``max_line`` is refused (:class:`Refused`) and the
  rest of it, and of its command, is thrown away as it arrives -- never
  held in memory;
- the literals of one command may add up to ``max_literal_total`` octets
  and number at most ``max_literals``; past either limit the command is
  refused (a synchronizing literal is refused before the client sends it);
- literal octets stay in memory up to ``memory_budget`` per command; the
  rest of that command's literals share **one** temporary file (one file
  descriptor per command at most, whatever the number of literals).
  A reader whose ``memory_budget`` equals ``max_literal_total`` never
  touches the disk (the not-authenticated state).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from typing import IO

LITERAL_AT_END = re.compile(rb"\{(\d{1,20})(\+?)\}$")
#: Returned internally when input was consumed but no event is complete yet.
_PROGRESS = object()


@dataclass(frozen=True)
class ReaderLimits:
    """The limits of one reader (they change at login: see :meth:`InputReader.set_limits`)."""

    max_line: int
    max_literal_total: int = 0
    max_literals: int = 0
    memory_budget: int = 256 * 1024
    #: Largest non-synchronizing literal (``{n+}``); 0: no limit of its own
    #: (IMAP LITERAL-, RFC 7888: 4096).
    max_nonsync_literal: int = 0
    #: Largest single literal; 0: only the total counts.  (IMAP MULTIAPPEND:
    #: each message may be as large as one APPEND's, RFC 7889.)
    max_literal: int = 0


class SpooledLiteral:
    """A literal kept in the command's temporary file, at ``offset``."""

    __slots__ = ("file", "offset", "size")

    def __init__(self, file: IO[bytes], offset: int, size: int) -> None:
        self.file, self.offset, self.size = file, offset, size

    def read_all(self) -> bytes:
        """The whole literal (blocking file I/O: only for small ones or in a thread)."""
        self.file.seek(self.offset)
        return self.file.read(self.size)

    def reader(self) -> LiteralFile:
        """A read-only file object over just this literal (for ``IStoreMailbox.append``)."""
        return LiteralFile(self)

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"<SpooledLiteral {self.size} octets at {self.offset}>"


class LiteralFile:
    """Sequential reads of one :class:`SpooledLiteral` (its own position)."""

    def __init__(self, literal: SpooledLiteral) -> None:
        self._literal = literal
        self._position = 0

    def read(self, size: int = -1) -> bytes:
        left = self._literal.size - self._position
        if size < 0 or size > left:
            size = left
        if size <= 0:
            return b""
        self._literal.file.seek(self._literal.offset + self._position)
        data = self._literal.file.read(size)
        self._position += len(data)
        return data

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._position, 2: self._literal.size}[whence]
        self._position = max(0, min(base + offset, self._literal.size))
        return self._position

    def close(self) -> None:
        """The spool belongs to the command; it is closed with the command."""


Literal = bytes | SpooledLiteral


@dataclass(frozen=True)
class LiteralSegment:
    """A literal between two lines of one command."""

    data: Literal


Segment = bytes | LiteralSegment


@dataclass(frozen=True)
class Command:
    """A complete command: its lines (without CRLF) and literals, in order.

    ``spool`` is the temporary file that holds its large literals, if any;
    whoever runs the command closes it with :meth:`close` when done.
    """

    segments: tuple[Segment, ...]
    spool: IO[bytes] | None = None

    def close(self) -> None:
        """Release the command's temporary file."""
        if self.spool is not None:
            self.spool.close()


@dataclass(frozen=True)
class Refused:
    """A command refused while it was read: ``first`` is the start of its
    first line (for the tag), ``reason`` one of ``"line"`` (line too long),
    ``"literal"`` (literals too large), ``"count"`` (too many literals) or
    ``"nonsync"`` (a non-synchronizing literal over ``max_nonsync_literal``)."""

    first: bytes
    reason: str
    limit: int


@dataclass(frozen=True)
class ContinueLiteral:
    """A synchronizing literal was accepted: tell the client to send it."""

    size: int


@dataclass(frozen=True)
class Line:
    """A raw line, read while the session waits for one (SASL, IDLE's DONE)."""

    data: bytes


@dataclass(frozen=True)
class LineTooLong:
    """A raw line longer than the limit; its rest is thrown away as it arrives."""


Event = Command | Refused | ContinueLiteral | Line | LineTooLong


def literal_request(line: bytes) -> tuple[int, bool] | None:
    """``(size, synchronizing)`` if an IMAP line ends with ``{n}`` or ``{n+}``."""
    match = LITERAL_AT_END.search(line)
    if not match:
        return None
    return int(match.group(1)), match.group(2) != b"+"


class InputReader:
    """Assembles commands from a byte stream under :class:`ReaderLimits`.

    :param literals: whether lines may announce literals (IMAP); POP3 passes False.
    """

    def __init__(self, limits: ReaderLimits, literals: bool = True) -> None:
        self.limits = limits
        self._literals = literals
        self._buffer = bytearray()
        self._segments: list[Segment] = []
        self._command_bytes = self._literal_total = self._literal_count = 0
        self._literal_left = self._literal_size = self._literal_offset = 0
        self._literal_memory = True
        self._literal_data = bytearray()
        self._spool: IO[bytes] | None = None
        self._discard_line = False  # throwing away the rest of a too-long line
        self._discard_octets = 0  # throwing away a refused LITERAL+ literal
        self._refusal: Refused | None = None  # answered when the discarding ends

    def set_limits(self, limits: ReaderLimits) -> None:
        """New limits from the next command on (e.g. after login)."""
        self.limits = limits

    @property
    def buffered(self) -> int:
        """Octets received and not consumed yet."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Add received octets."""
        self._buffer += data

    def clear(self) -> None:
        """Drop everything buffered (STARTTLS: nothing sent before the handshake counts)."""
        self._buffer.clear()
        self._abandon_command()

    def close(self) -> None:
        """The connection ended: release a half-read command's spool."""
        self._buffer.clear()
        self._abandon_command()

    # -- raw lines -------------------------------------------------------------
    def next_line(self, max_line: int | None = None) -> Line | LineTooLong | None:
        """The next raw line (no literal processing), for a session waiting for one;
        ``max_line`` replaces the command-line limit (SASL responses, RFC 5034 §4)."""
        limit = self.limits.max_line if max_line is None else max_line
        while True:
            if self._discard_octets or self._discard_line:
                if not self._skip_discarded():
                    return None
                continue
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > limit:
                    self._buffer.clear()
                    self._discard_line = True
                    return LineTooLong()
                return None
            line = self._take_line(end)
            if len(line) > limit:
                return LineTooLong()
            return Line(line)

    # -- commands --------------------------------------------------------------
    def next_event(self) -> Event | None:
        """The next complete command or refusal, or None if more input is needed."""
        while True:
            if self._discard_octets or self._discard_line:
                if not self._skip_discarded():
                    return None
                if not (self._discard_octets or self._discard_line) and self._refusal:
                    refusal, self._refusal = self._refusal, None
                    return refusal
                continue
            if self._literal_left:
                if not self._take_literal():
                    return None
                continue
            event = self._take_command_line()
            if event is not _PROGRESS:
                return event  # type: ignore[return-value]  # an Event or None

    def _take_command_line(self) -> Event | None | object:
        """One line of a command: an event, None (need more input) or _PROGRESS."""
        end = self._buffer.find(b"\n")
        if end < 0:
            if len(self._buffer) + self._command_bytes > self.limits.max_line:
                first = self._first_line(bytes(self._buffer[:200]))
                self._buffer.clear()
                self._abandon_command()
                self._discard_line = True
                self._refusal = Refused(first, "line", self.limits.max_line)
            return None
        line = self._take_line(end)
        if len(line) + self._command_bytes > self.limits.max_line:
            first = self._first_line(line[:200])
            self._abandon_command()
            return self._refuse_after(line, Refused(first, "line", self.limits.max_line))
        self._segments.append(line)
        self._command_bytes += len(line)
        request = literal_request(line) if self._literals else None
        if request is None:
            return self._finish_command()
        return self._start_literal(line, *request)

    def _start_literal(self, line: bytes, size: int, synchronizing: bool) -> Event | object:
        limits = self.limits
        total = self._literal_total + size
        reason = (
            "count"
            if self._literal_count >= limits.max_literals
            else "literal"
            if total > limits.max_literal_total or 0 < limits.max_literal < size
            else "nonsync"
            if not synchronizing and 0 < limits.max_nonsync_literal < size
            else None
        )
        if reason is not None:
            first = self._first_line(line)
            single = limits.max_literal if 0 < limits.max_literal < size else 0
            limit = {
                "count": limits.max_literals,
                "literal": single or limits.max_literal_total,
                "nonsync": limits.max_nonsync_literal,
            }[reason]
            self._abandon_command()
            refusal = Refused(first, reason, limit)
            if synchronizing:
                return refusal  # the client waits for "+" and sends nothing
            self._discard_octets = size  # LITERAL+: the data follows unasked
            self._discard_line = True
            self._refusal = refusal
            return _PROGRESS
        self._literal_count += 1
        self._literal_total = total
        self._literal_left = self._literal_size = size
        self._literal_memory = total <= limits.memory_budget
        if self._literal_memory:
            self._literal_data = bytearray()
        else:
            if self._spool is None:
                self._spool = tempfile.TemporaryFile(prefix="exchmail-literal-")
            self._spool.seek(0, 2)
            self._literal_offset = self._spool.tell()
        if size == 0:
            self._end_literal()
        return ContinueLiteral(size) if synchronizing else _PROGRESS

    def _take_literal(self) -> bool:
        chunk = bytes(self._buffer[: self._literal_left])
        del self._buffer[: len(chunk)]
        self._literal_left -= len(chunk)
        if self._literal_memory:
            self._literal_data += chunk
        else:
            assert self._spool is not None
            self._spool.write(chunk)
        if self._literal_left == 0:
            self._end_literal()
        return bool(chunk)

    def _end_literal(self) -> None:
        data: Literal
        if self._literal_memory:
            data = bytes(self._literal_data)
            self._literal_data = bytearray()
        else:
            assert self._spool is not None
            self._spool.flush()
            data = SpooledLiteral(self._spool, self._literal_offset, self._literal_size)
        self._segments.append(LiteralSegment(data))

    def _finish_command(self) -> Command:
        command = Command(tuple(self._segments), self._spool)
        self._spool = None  # now the command's to close
        self._reset_command()
        return command

    # -- discarding ----------------------------------------------------------------
    def _refuse_after(self, line: bytes, refusal: Refused) -> Event | object:
        """A refused line was read whole: its command may go on with literals."""
        request = literal_request(line) if self._literals else None
        if request is not None and not request[1]:
            self._discard_octets = request[0]  # LITERAL+ data follows the line
            self._discard_line = True
            self._refusal = refusal
            return _PROGRESS
        return refusal

    def _skip_discarded(self) -> bool:
        """Throw away what belongs to a refused command; False when more input is needed."""
        if self._discard_octets:
            taken = min(self._discard_octets, len(self._buffer))
            del self._buffer[:taken]
            self._discard_octets -= taken
            return not self._discard_octets
        end = self._buffer.find(b"\n")
        if end < 0:
            self._buffer.clear()
            return False
        line = self._take_line(end)
        request = literal_request(line) if self._literals else None
        if request is not None and not request[1]:
            self._discard_octets = request[0]  # a further LITERAL+ of the refused command
        else:
            self._discard_line = False
        return True

    # -- helpers ----------------------------------------------------------------------
    def _take_line(self, end: int) -> bytes:
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line[:-1] if line.endswith(b"\r") else line

    def _first_line(self, fallback: bytes) -> bytes:
        first = self._segments[0] if self._segments else fallback
        return first if isinstance(first, bytes) else fallback

    def _reset_command(self) -> None:
        self._segments = []
        self._command_bytes = self._literal_total = self._literal_count = 0
        self._literal_left = self._literal_size = self._literal_offset = 0
        self._literal_memory = True
        self._literal_data = bytearray()
        self._spool = None

    def _abandon_command(self) -> None:
        if self._spool is not None:
            self._spool.close()
        self._reset_command()
