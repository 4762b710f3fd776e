"""Bounded scans over a message's raw octets.

A message may be tens of megabytes.  One ``bytes.find`` or ``bytes.count``
over the whole buffer is a single C call that holds the GIL until it
returns, so a thread parsing a large message would freeze every other
thread (the reactor included) for that long.  The helpers here do the same
work as a series of calls on windows of at most :data:`WINDOW` octets, so
the interpreter can switch threads between them; none of them copies the
data.
"""

from __future__ import annotations

__all__ = ["WINDOW", "count_byte", "find", "find_any", "find_line_end"]

#: Largest span one C-level search or count covers (1 MiB: well under a
#: millisecond of GIL time).
WINDOW = 1 << 20


def find(data: bytes, sub: bytes, start: int, end: int) -> int:
    """``data.find(sub, start, end)``, in windows of :data:`WINDOW` octets."""
    if end - start <= WINDOW:  # the common case: one short C call
        return data.find(sub, start, end)
    return find_any(data, [sub], start, end)


def find_any(data: bytes, needles: list[bytes], start: int, end: int) -> int:
    """The lowest offset in ``data[start:end]`` where one of *needles* starts
    (each needle must end before *end*), or -1; searched window by window so
    that a needle found early stops the scan there."""
    pos = start
    while pos < end:
        stop = min(end, pos + WINDOW)
        best = -1
        for needle in needles:
            # Let a match begin anywhere in the window, even if it ends after it.
            found = data.find(needle, pos, min(end, stop + len(needle) - 1))
            if found >= 0 and (best < 0 or found < best):
                best = found
        if best >= 0:
            return best
        if stop >= end:
            break
        pos = stop
    return -1


def find_line_end(data: bytes, start: int, end: int) -> int:
    """Offset just past the LF ending the line at *start*, or *end*."""
    found = data.find(b"\n", start, end) if end - start <= WINDOW else find(data, b"\n", start, end)
    return end if found < 0 else found + 1


def count_byte(data: bytes, byte: bytes, start: int, end: int) -> int:
    """``data.count(byte, start, end)`` for a one-octet *byte*, in windows."""
    total = 0
    pos = start
    while pos < end:
        stop = min(end, pos + WINDOW)
        total += data.count(byte, pos, stop)
        pos = stop
    return total
