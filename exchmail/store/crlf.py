"""Line-end conversion between bare-LF storage and CRLF wire form.

Everything here is ``bytes.replace``/``bytes.count`` based: those run at
memory speed in C, where the regular expression they replace managed a few
tens of MB/s.  The rule, in both directions, is the one Maildir readers
use: an LF not preceded by CR is a line end to convert; a CRLF stays as it
is, so content that is already in wire form comes out unchanged; a lone CR
is kept.

Streaming converters hold back a trailing CR, because the LF that would
make it a CRLF may start the next chunk.
"""

from __future__ import annotations


def to_crlf(data: bytes) -> bytes:
    """``data`` with every LF not preceded by CR turned into CRLF."""
    if b"\r" not in data:
        # Bare LF only (what Maildir files hold): one pass.
        return data.replace(b"\n", b"\r\n") if b"\n" in data else data
    if data.count(b"\n") == data.count(b"\r\n"):
        return data  # already in wire form: counting allocates nothing
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def to_lf(data: bytes) -> bytes:
    """``data`` with every CRLF turned into LF (the Maildir storage form)."""
    return data.replace(b"\r\n", b"\n")


def bare_lf_count(data: bytes) -> int:
    """The number of LFs in ``data`` that are not preceded by CR."""
    return data.count(b"\n") - data.count(b"\r\n")


class CRLFConverter:
    """Streams bare-LF content into wire form, chunk by chunk.

    ``feed`` returns the converted chunk, minus a trailing CR that it holds
    back until it knows the next byte; ``flush`` returns what is held back
    at the end.  Not thread-safe: one converter serves one reader.
    """

    __slots__ = ("_carry",)

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        """The wire form of ``chunk`` (following everything fed before)."""
        data = self._carry + chunk if self._carry else chunk
        if data.endswith(b"\r"):
            data, self._carry = data[:-1], b"\r"
        else:
            self._carry = b""
        return to_crlf(data)

    def flush(self) -> bytes:
        """What is held back (at most a CR); call once at the end."""
        carry, self._carry = self._carry, b""
        return carry


class LFConverter:
    """Streams wire-form (or mixed) content into the bare-LF storage form.

    It also counts what it produced: ``stored`` octets written, and
    ``exact``, the size the stored content has once converted back to wire
    form (which :class:`CRLFConverter` will produce).
    """

    __slots__ = ("_carry", "_prev_cr", "stored", "exact")

    def __init__(self) -> None:
        self._carry = b""
        self._prev_cr = False
        self.stored = 0
        self.exact = 0

    def _count(self, data: bytes) -> bytes:
        self.stored += len(data)
        self.exact += len(data) + bare_lf_count(data)
        # A CR that ended the previous output makes a leading LF part of a
        # CRLF, which reading back leaves alone (only "CR CR LF" input can
        # leave a CR at the end of an output).
        if self._prev_cr and data.startswith(b"\n"):
            self.exact -= 1
        if data:
            self._prev_cr = data.endswith(b"\r")
        return data

    def feed(self, chunk: bytes) -> bytes:
        """The storage form of ``chunk`` (a trailing CR is held back)."""
        data = self._carry + chunk if self._carry else chunk
        if data.endswith(b"\r"):
            data, self._carry = data[:-1], b"\r"
        else:
            self._carry = b""
        return self._count(to_lf(data))

    def flush(self) -> bytes:
        """What is held back (at most a CR); call once at the end."""
        carry, self._carry = self._carry, b""
        return self._count(carry)


def wire_size(data: bytes) -> int:
    """The size of stored (bare-LF) ``data`` in wire form."""
    return len(data) + bare_lf_count(data)
