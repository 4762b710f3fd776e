"""IMessageReader implementations: streaming a message in wire form.

:class:`BytesReader` serves content that is already in memory.
:class:`FileReader` reads a file off the reactor thread, through the
store's ``run_blocking``, one chunk per call, converting bare LF to CRLF
on the way if asked to.

A reader delivers exactly ``size`` octets, the size the index announced
(IMAP sends it ahead as a literal's length).  Should the content on disk
disagree -- a file changed behind the store's back, a wrong ``W=`` written
by another program -- the rest is cut off or padded with spaces and the
mismatch is logged, so the client connection stays in step.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from exchmail.interfaces import IMessageReader
from exchmail.store.crlf import CRLFConverter
from exchmail.store.runner import RunBlocking

CHUNK = 64 * 1024
log = Logger(namespace="exchmail.store")


@implementer(IMessageReader)
class BytesReader:
    """A reader over ``data`` (already in wire form)."""

    def __init__(self, data: bytes) -> None:
        self.size = len(data)
        self._data = data
        self._pos = 0
        self._closed = False

    def read(self, size: int) -> defer.Deferred[bytes]:
        if self._closed:
            return defer.fail(ValueError("read from a closed message reader"))
        chunk = self._data[self._pos : self._pos + max(size, 0)]
        self._pos += len(chunk)
        return defer.succeed(chunk)

    def close(self) -> None:
        self._closed = True
        self._data = b""


@implementer(IMessageReader)
class FileReader:
    """A reader over an open binary file, read through ``run_blocking``.

    :param source: the open file (positioned at the message's start); the
        reader owns it and closes it.
    :param size: the octets to deliver (the message's ``exact_size``).
    :param convert: whether the file holds bare LF line ends to turn into CRLF.

    A backend builds it in a thread and calls :meth:`prime` there, so that a
    small message is read whole before the reader reaches the reactor.
    """

    def __init__(
        self,
        run_blocking: RunBlocking,
        source: BinaryIO,
        size: int,
        convert: bool = True,
        name: str = "",
        chunk: int = CHUNK,
    ) -> None:
        self.size = size
        self._chunk = chunk
        self._run = run_blocking
        self._source: BinaryIO | None = source
        self._converter = CRLFConverter() if convert else None
        self._name = name
        self._delivered = 0
        self._buffer = b""
        self._eof = False
        self._busy = False
        self._closed = False

    # -- the reactor side ----------------------------------------------
    def read(self, size: int) -> defer.Deferred[bytes]:
        if self._closed:
            return defer.fail(ValueError("read from a closed message reader"))
        if self._busy:
            return defer.fail(RuntimeError("one read at a time on a message reader"))
        if size <= 0 or self._delivered >= self.size:
            return defer.succeed(b"")  # known from the size: no need to look for the end
        if self._buffer or self._eof:
            return defer.succeed(self._serve(size))
        self._busy = True
        d = self._run(self._fill, max(size, self._chunk))
        d.addBoth(self._filled, size)
        return d

    def _filled(self, outcome: Any, size: int) -> Any:
        self._busy = False
        if self._closed:
            self._close_source()
        if isinstance(outcome, tuple):
            data, eof = outcome
            self._buffer += data
            self._eof = eof
            return self._serve(size)
        return outcome  # a Failure: the caller sees the read error

    def _serve(self, size: int) -> bytes:
        left = self.size - self._delivered
        if self._eof and not self._buffer and left > 0:
            log.error(
                "message {name} is {short} octets shorter than its index entry; padded",
                name=self._name,
                short=left,
            )
            self._buffer = b" " * left
        take = min(size, left, len(self._buffer))
        chunk, self._buffer = self._buffer[:take], self._buffer[take:]
        self._delivered += take
        if self._delivered >= self.size and self._buffer and not self._closed:
            log.error("message {name} is longer than its index entry; cut off", name=self._name)
            self._buffer = b""
            self._eof = True
        return chunk

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._buffer = b""
        if not self._busy:  # else the file is closed when the read in flight ends
            self._close_source()

    def _close_source(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            # Closing a file opened for reading does not block.
            source.close()

    # -- the thread side -----------------------------------------------
    def prime(self) -> FileReader:
        """(In a thread, before handing the reader out) read the first chunk."""
        data, eof = self._fill(self._chunk)
        self._buffer, self._eof = data, eof
        return self

    def _fill(self, size: int) -> tuple[bytes, bool]:
        """Read and convert until there is output or the file ends."""
        source = self._source
        if source is None:
            return b"", True
        while True:
            raw = source.read(size)
            if not raw:
                return (self._converter.flush() if self._converter else b""), True
            data = self._converter.feed(raw) if self._converter else raw
            if data:  # empty only if all of it was a held-back CR
                return data, False
