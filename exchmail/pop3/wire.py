"""Pure POP3 wire helpers: command splitting, response clipping, byte-stuffing.

Nothing here touches a transport except :class:`MessageSender`, the pull
producer that streams a message (RETR/TOP) with back-pressure.
"""

from __future__ import annotations

import re
from typing import Any, BinaryIO

from twisted.internet import defer, interfaces
from zope.interface import implementer

#: RFC 1939 section 3 / MS-STANXPOP3 C0001: a response line, CRLF included.
MAX_RESPONSE = 512
_SEPARATORS = re.compile(rb"[ \t]+")


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
    return line[:MAX_RESPONSE - 2] + b"\r\n"


def stuff(chunk: bytes, at_line_start: bool) -> tuple[bytes, bool]:
    """Byte-stuff ``chunk`` (RFC 1939 section 3): double a ``.`` that starts a line.

    ``at_line_start`` says whether the previous chunk ended a line; the
    second value returned says the same for this chunk, so that chunks
    can be stuffed one at a time.
    """
    if not chunk:
        return chunk, at_line_start
    out = chunk.replace(b"\n.", b"\n..")
    if at_line_start and chunk[:1] == b".":
        out = b"." + out
    return out, chunk[-1:] == b"\n"


def top_of(source: BinaryIO, lines: int) -> bytes:
    """The header, the blank line and the first ``lines`` body lines (TOP)."""
    out = []
    for line in iter(source.readline, b""):
        out.append(line)
        if line in (b"\r\n", b"\n"):
            break
    else:
        return b"".join(out)  # no body at all
    for _ in range(lines):
        line = source.readline()
        if not line:
            break
        out.append(line)
    return b"".join(out)


@implementer(interfaces.IPullProducer)
class MessageSender:
    """Streams one message, byte-stuffed, then the terminating ``.`` line.

    Register with the transport as a pull producer; :attr:`done` fires
    (with ``None``) once everything is written, or fails if the connection
    went away first.  The file is closed either way.
    """

    CHUNK = 64 * 1024

    def __init__(self, source: BinaryIO, transport: Any) -> None:
        self.source = source
        self.transport = transport
        self.done: defer.Deferred[None] = defer.Deferred()
        self._at_line_start = True
        self._finished = False

    def start(self) -> defer.Deferred[None]:
        self.transport.registerProducer(self, False)
        return self.done

    def resumeProducing(self) -> None:
        if self._finished:
            return
        try:
            chunk = self.source.read(self.CHUNK)
        except Exception:  # noqa: BLE001 - reported through ``done``
            self._finish(defer.fail())
            return
        if chunk:
            data, self._at_line_start = stuff(chunk, self._at_line_start)
            self.transport.write(data)
            return
        self.transport.write((b"" if self._at_line_start else b"\r\n") + b".\r\n")
        self._finish(None)

    def stopProducing(self) -> None:
        if not self._finished:
            self._finish(defer.fail(ConnectionError("connection lost during transfer")),
                         unregister=False)

    def _finish(self, outcome: Any, unregister: bool = True) -> None:
        self._finished = True
        self.source.close()
        if unregister:
            self.transport.unregisterProducer()
        if isinstance(outcome, defer.Deferred):
            outcome.addErrback(self.done.errback)
        else:
            self.done.callback(None)
