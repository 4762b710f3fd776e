"""Reading a small file on the reactor thread when that cannot wait for the disk.

Store reads run in a thread pool so that a disk that is slow to answer never
holds up the reactor.  For a file in the kernel's page cache that costs far
more than the read itself: each system call of the reading thread hands the
interpreter lock over to the reactor thread and back (a POP3 session that
retrieves 20 small messages spent 45 % of its CPU on those hand-overs).

Linux can promise not to wait: ``openat2`` with ``RESOLVE_CACHED`` (5.12)
opens a file only if its whole path is in the kernel's caches, and
``preadv2`` with ``RWF_NOWAIT`` (4.14) reads only what is in the page cache;
both fail with ``EAGAIN`` instead of waiting for the disk.  :func:`read_cached`
uses them and answers ``None`` whenever the file cannot be had that way (not
cached, another system, an older kernel, a sandbox that forbids the call);
the caller then reads it in a thread as before.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import sys
from typing import Any

#: ``openat2`` has the same number on every architecture (added after 5.1's
#: unification of system call numbers).
SYS_OPENAT2 = 437
AT_FDCWD = -100
RESOLVE_CACHED = 0x20
#: Files larger than this are read in a thread whatever the cache holds.
MAX_CACHED_READ = 256 * 1024


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


@functools.cache
def _openat2() -> Any:
    """The ``syscall`` entry of the C library, if ``openat2`` works here."""
    if not sys.platform.startswith("linux") or not hasattr(os, "RWF_NOWAIT"):
        return None
    try:
        syscall = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    syscall.restype = ctypes.c_long
    how = _OpenHow(os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY, 0, RESOLVE_CACHED)
    fd = syscall(SYS_OPENAT2, AT_FDCWD, b"/", ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        return None  # ENOSYS, EPERM (seccomp), EINVAL (RESOLVE_CACHED unknown)
    os.close(fd)
    return syscall


def available() -> bool:
    """Whether :func:`read_cached` can ever answer (Linux 5.12 or later)."""
    return _openat2() is not None


def _open_cached(path: str, flags: int) -> int | None:
    """A descriptor of ``path`` if its whole path is in the kernel's caches;
    None if not (or if this system cannot tell).  FileNotFoundError if the
    kernel knows there is no such file."""
    syscall = _openat2()
    if syscall is None:
        return None
    how = _OpenHow(flags | os.O_CLOEXEC, 0, RESOLVE_CACHED)
    fd = syscall(SYS_OPENAT2, AT_FDCWD, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        if ctypes.get_errno() == errno.ENOENT:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return None  # EAGAIN: a path component is not cached; anything else: the thread says
    return int(fd)


def stat_cached(path: str) -> os.stat_result | None:
    """``os.stat(path)`` if the kernel has it in its caches (an opened inode's
    attributes are in memory); None if that cannot be known without waiting."""
    fd = _open_cached(path, os.O_PATH)
    if fd is None:
        return None
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def read_cached(path: str, size: int) -> bytes | None:
    """The ``size`` octets of the file at ``path`` if the kernel can hand them
    over without waiting for the disk; ``None`` if not (read it in a thread).

    Raises FileNotFoundError if the file does not exist.  ``size`` is what
    the file holds (a stored message never changes); a file that turns out
    shorter or longer answers ``None``, and the thread finds out why.
    """
    if size > MAX_CACHED_READ:
        return None
    # O_NONBLOCK: a FIFO planted in a folder must not hold the reactor in open().
    fd = _open_cached(path, os.O_RDONLY | os.O_NONBLOCK)
    if fd is None:
        return None
    try:
        buffer = bytearray(size + 1)  # one more: a longer file shows itself
        count = os.preadv(fd, [buffer], 0, os.RWF_NOWAIT)
    except OSError:
        return None  # EAGAIN: not (all) in the page cache
    finally:
        os.close(fd)
    if count != size:
        return None
    del buffer[size:]
    return bytes(buffer)
