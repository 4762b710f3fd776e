"""The blocking file work of a Maildir folder (run in a thread, never on the reactor).

Files are kept with bare LF line ends (as mutt and Dovecot write them);
the store's callers always see CRLF (:mod:`exchmail.store.crlf`).  Both
directions stream in chunks, so no message is ever held whole in memory
unless the caller asked for the whole of it.

Every function here touches only the disk and its arguments, never the
index: its result goes back to the reactor thread, which applies it.
Functions that change ``cur/`` also return its modification time just
before and after, so the mailbox can tell its own changes from others'.
"""

from __future__ import annotations

import io
import math
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal, NamedTuple, overload

from exchmail.store.crlf import CRLFConverter, LFConverter, bare_lf_count, to_crlf
from exchmail.store.maildir.filenames import final_name
from exchmail.store.maildir.layout import KEYWORDS, atomic_write

CHUNK = 64 * 1024

#: ``(version, content)`` of a keywords file to write before using its letters.
KeywordWrite = tuple[int, bytes]


class WireFile(io.RawIOBase):
    """A raw reader over a bare-LF file that yields the CRLF wire form.

    Wrap it in :class:`io.BufferedReader` (see :func:`open_wire`).
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._converter = CRLFConverter()
        self._buffer = b""
        self._eof = False
        self._position = 0  # octets of wire form handed out

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        """Back to the start only (a delivery made again reads its source anew)."""
        if (offset, whence) == (self._position, 0) or (offset, whence) == (0, 1):
            return self._position
        if (offset, whence) != (0, 0):
            raise io.UnsupportedOperation("a wire-form reader seeks to its start only")
        self._raw.seek(0)
        self._converter, self._buffer, self._eof, self._position = CRLFConverter(), b"", False, 0
        return 0

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer and not self._eof:
            chunk = self._raw.read(CHUNK)
            if chunk:
                self._buffer = self._converter.feed(chunk)
            else:
                self._buffer, self._eof = self._converter.flush(), True
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        self._position += size
        return size

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def open_wire(path: Path | str) -> BinaryIO:
    """Open a stored message for reading in wire form (CRLF)."""
    return io.BufferedReader(WireFile(open(path, "rb")), CHUNK)


def read_wire(path: Path | str, size_hint: int = CHUNK) -> bytes:
    """The whole stored message in wire form.

    ``size_hint`` (the wire size, which no stored form exceeds) lets one
    raw read take the whole file: open, read, close are the only system
    calls (``open()`` adds a file object, fstat and seek -- a third of
    the CPU of reading a POP3 maildrop)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, size_hint + 1)
        if len(data) > size_hint:  # larger than announced: read to the end
            chunks = [data]
            while chunk := os.read(fd, CHUNK):
                chunks.append(chunk)
            data = b"".join(chunks)
    finally:
        os.close(fd)
    return to_crlf(data)


@overload
def measure(path: Path | str, dir_fd: int | None = None) -> tuple[int, int]: ...
@overload
def measure(
    path: Path | str, dir_fd: int | None = None, *, with_mtime: Literal[True]
) -> tuple[int, int, float]: ...


def measure(
    path: Path | str, dir_fd: int | None = None, *, with_mtime: bool = False
) -> tuple[int, int] | tuple[int, int, float]:
    """``(stored size, wire size)`` of a file (relative to ``dir_fd``), read in
    chunks; with ``with_mtime``, its modification time too (from the same open)."""
    stored = exact = 0
    prev_cr = False
    fd = os.open(path, os.O_RDONLY, dir_fd=dir_fd)  # raw reads: most files are one chunk
    try:
        info = os.fstat(fd)
        mtime = info.st_mtime if with_mtime else 0.0
        # A file smaller than a chunk is read with one call that also shows
        # its end (a short read), saving the read that returns nothing.
        first = min(info.st_size + 1, CHUNK)
        chunk = os.read(fd, first)
        while chunk:
            stored += len(chunk)
            exact += len(chunk) + bare_lf_count(chunk)
            if prev_cr and chunk.startswith(b"\n"):
                exact -= 1  # a CRLF split between two chunks
            prev_cr = chunk.endswith(b"\r")
            if len(chunk) < first:
                break  # a short read of a regular file: its end
            chunk = os.read(fd, CHUNK)
            first = CHUNK
    finally:
        os.close(fd)
    return (stored, exact, mtime) if with_mtime else (stored, exact)


class KeywordSink:
    """Writes a folder's keywords file, newest version only, from any thread.

    Deliveries and flag changes that use a new keyword letter write the
    map first; as they run in parallel, an older map must never overwrite
    a newer one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._written = 0

    def write(self, folder: Path, keywords: KeywordWrite | None) -> None:
        if keywords is None:
            return
        version, data = keywords
        with self._lock:
            if version > self._written:
                atomic_write(folder / KEYWORDS, data)
                self._written = version


def cur_mtime(folder: Path) -> int | None:
    """The modification time of ``folder/cur`` (nanoseconds), if it exists."""
    try:
        return os.stat(folder / "cur").st_mtime_ns
    except FileNotFoundError:
        return None


def _chunks(source: bytes | BinaryIO) -> Iterator[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        for start in range(0, len(view), CHUNK):
            yield bytes(view[start : start + CHUNK])
        return
    while chunk := source.read(CHUNK):
        yield chunk


def _write_lf(source: bytes | BinaryIO, out: BinaryIO) -> tuple[int, int]:
    """Copy ``source`` to ``out`` with CRLF turned into LF; return the
    stored size and the wire size of what was written."""
    converter = LFConverter()
    for chunk in _chunks(source):
        out.write(converter.feed(chunk))
    out.write(converter.flush())
    return converter.stored, converter.exact


def set_date(path: Path, internal_date: float) -> bool:
    """Set ``path``'s mtime to ``internal_date``; whether it reads back to the second."""
    try:
        os.utime(path, (internal_date, internal_date))
    except (OverflowError, OSError, ValueError):
        return False
    return os.stat(path).st_mtime_ns // 1_000_000_000 == math.floor(internal_date)


class Delivered(NamedTuple):
    """What :func:`deliver` stored."""

    filename: str
    stored_size: int
    exact_size: int
    before: int | None
    after: int | None


def deliver(
    folder: Path,
    unique: str,
    source: bytes | BinaryIO,
    letters: str,
    internal_date: float,
    keywords: KeywordWrite | None,
    sink: KeywordSink,
    orphan: str | None = None,
) -> Delivered:
    """Store one message in ``folder/cur``.

    The file is written under ``tmp/``, fsynced, dated and only then
    renamed into ``cur/``, so no reader (and no crash) ever sees half a
    message: a file left in ``tmp/`` is never listed.  A date the file's
    mtime cannot hold goes into the name (``D=``).

    ``orphan``: this is a second try, after the folder moved under a first
    (RENAME); that try's file, moved along in ``tmp/``, goes first, and the
    source is read from its start again.
    """
    if orphan is not None:
        (folder / "tmp" / orphan).unlink(missing_ok=True)
        if not isinstance(source, (bytes, bytearray, memoryview)):
            source.seek(0)
    tmp = folder / "tmp" / unique
    try:
        with open(tmp, "xb") as out:
            stored, exact = _write_lf(source, out)
            out.flush()
            os.fsync(out.fileno())
        date = None if set_date(tmp, internal_date) else math.floor(internal_date)
        filename = final_name(unique, stored, exact, letters, date)
        sink.write(folder, keywords)
        before = cur_mtime(folder)
        os.rename(tmp, folder / "cur" / filename)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Delivered(filename, stored, exact, before, cur_mtime(folder))


class Outcome(NamedTuple):
    """What :func:`rename_all` or :func:`unlink_all` did."""

    done: list[bool]
    error: BaseException | None
    before: int | None
    after: int | None


def rename_all(
    folder: Path, keywords: KeywordWrite | None, sink: KeywordSink, renames: list[tuple[str, str]]
) -> Outcome:
    """Rename files in ``cur/`` (flag changes), after writing ``keywords``.

    A file that is gone (renamed or removed by another program) is skipped;
    any other error stops the work, and what was done stays done.
    """
    cur = folder / "cur"
    sink.write(folder, keywords)
    before = cur_mtime(folder)
    done: list[bool] = []
    error: BaseException | None = None
    for old, new in renames:
        try:
            os.rename(cur / old, cur / new)
            done.append(True)
        except FileNotFoundError:
            done.append(False)
        except OSError as exc:
            error = exc
            break
    return Outcome(done, error, before, cur_mtime(folder))


def unlink_all(folder: Path, filenames: list[str]) -> Outcome:
    """Remove files from ``cur/`` (expunge); one already gone counts as removed.
    The first other error stops the work."""
    cur = folder / "cur"
    before = cur_mtime(folder)
    done: list[bool] = []
    error: BaseException | None = None
    for name in filenames:
        try:
            os.unlink(cur / name)
        except FileNotFoundError:
            pass
        except OSError as exc:
            error = exc
            break
        done.append(True)
    return Outcome(done, error, before, cur_mtime(folder))
