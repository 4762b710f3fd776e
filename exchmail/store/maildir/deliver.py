"""Writing message files atomically and reading them back in wire form.

Files are kept with bare LF line ends (as mutt and Dovecot write them);
the store's callers always see CRLF.  Both directions stream in chunks so
that no message is ever held whole in memory.  Everything here blocks and
is meant to run in a thread (through the store's ``run_blocking``).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from exchmail.store.maildir.filenames import final_name

CHUNK = 64 * 1024
_BARE_LF = re.compile(rb"(?<!\r)\n")


def _bare_lfs(data: bytes, prev_cr: bool) -> int:
    """The number of LFs in ``data`` not preceded by CR."""
    count = len(_BARE_LF.findall(data))
    # The regex cannot see the byte before the chunk.
    if prev_cr and data.startswith(b"\n"):
        count -= 1
    return count


def _to_crlf(data: bytes, prev_cr: bool) -> bytes:
    if prev_cr and data.startswith(b"\n"):
        return b"\n" + _BARE_LF.sub(b"\r\n", data[1:])
    return _BARE_LF.sub(b"\r\n", data)


class CRLFReader(io.RawIOBase):
    """A raw reader over a bare-LF file that yields the CRLF wire form.

    Every LF not preceded by CR becomes CRLF; nothing else changes.  Wrap
    it in :class:`io.BufferedReader` (see :func:`open_wire`).
    """

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self._buffer = b""
        self._prev_cr = False

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            chunk = self._raw.read(CHUNK)
            if not chunk:
                return 0
            self._buffer = _to_crlf(chunk, self._prev_cr)
            self._prev_cr = chunk.endswith(b"\r")
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def open_wire(path: Path) -> BinaryIO:
    """Open a stored message for reading in wire form (CRLF)."""
    return io.BufferedReader(CRLFReader(open(path, "rb")), CHUNK)


def measure(path: Path) -> tuple[int, int]:
    """``(stored size, wire size)`` of a file, read in chunks."""
    stored = exact = 0
    prev_cr = False
    with open(path, "rb") as source:
        while chunk := source.read(CHUNK):
            stored += len(chunk)
            exact += len(chunk) + _bare_lfs(chunk, prev_cr)
            prev_cr = chunk.endswith(b"\r")
    return stored, exact


def _chunks(source: bytes | BinaryIO) -> Iterator[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        for start in range(0, len(data), CHUNK):
            yield data[start:start + CHUNK]
        return
    while chunk := source.read(CHUNK):
        yield chunk


def _write_lf(source: bytes | BinaryIO, out: BinaryIO) -> tuple[int, int]:
    """Copy ``source`` to ``out`` with CRLF turned into LF; return the
    stored size and the wire size of what was written."""
    stored = exact = 0
    carry = b""  # a trailing CR, held back in case the next chunk starts with LF
    prev_cr = False
    for chunk in _chunks(source):
        data = carry + chunk
        carry = b""
        if data.endswith(b"\r"):
            data, carry = data[:-1], b"\r"
        data = data.replace(b"\r\n", b"\n")
        out.write(data)
        stored += len(data)
        exact += len(data) + _bare_lfs(data, prev_cr)
        if data:
            prev_cr = data.endswith(b"\r")
    if carry:
        out.write(carry)
        stored += 1
        exact += 1
    return stored, exact


def deliver(folder: Path, unique: str, source: bytes | BinaryIO, letters: str,
            internal_date: float) -> tuple[str, int, int]:
    """Store one message in ``folder/cur`` and return ``(file name, stored
    size, wire size)``.

    The file is written under ``tmp/``, fsynced, dated and only then
    renamed into ``cur/``, so no reader (and no crash) ever sees half a
    message: a file left in ``tmp/`` is never listed.
    """
    tmp = folder / "tmp" / unique
    try:
        with open(tmp, "xb") as out:
            stored, exact = _write_lf(source, out)
            out.flush()
            os.fsync(out.fileno())
        os.utime(tmp, (internal_date, internal_date))
        filename = final_name(unique, stored, exact, letters)
        os.rename(tmp, folder / "cur" / filename)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return filename, stored, exact

