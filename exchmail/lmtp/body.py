"""The DATA section of SMTP/LMTP: dot-unstuffing and the end mark, chunk by chunk.

:class:`DataReader` is a pure state machine (no transport, no reactor):
:meth:`~DataReader.feed` takes the client's bytes as they arrive, writes
the message (dot-unstuffed, CRLF line ends as sent) into a file-like sink
and tells when the end mark ``CRLF . CRLF`` has been seen.  It works on
whole chunks with ``bytes.find`` and ``bytes.replace``, so a 50 MB message
costs no Python loop per line, and it keeps at most four bytes between
chunks (a possible start of the end mark), never the message.

Only ``CRLF . CRLF`` ends the data: a bare ``LF . LF`` or ``LF . CRLF``
is message content (the SMTP smuggling class of bugs needs a server that
is lax here).
"""

from __future__ import annotations

from typing import BinaryIO

END = b"\r\n.\r\n"
#: Tails that may be the start of the end mark, longest first.
_PREFIXES = (b"\r\n.\r", b"\r\n.", b"\r\n", b"\r")


class DataReader:
    """Receives one message's DATA section.

    :param sink: where the message goes (a temporary file).
    :param max_size: past this many octets nothing more is written and
        :attr:`too_big` is set; reading goes on to the end mark.
    """

    def __init__(self, sink: BinaryIO, max_size: int) -> None:
        self.sink = sink
        self.max_size = max_size
        self.size = 0
        self.too_big = False
        # The data starts at the beginning of a line: a virtual CRLF in front
        # lets one rule find both the end mark and the stuffed dots, also on
        # the first line; it is never written.
        self._carry = b"\r\n"
        self._skip = 2

    def feed(self, data: bytes) -> bytes | None:
        """Take more of the DATA section.

        :return: ``None`` while the end mark has not come yet; then the
            bytes that followed it (the next commands, maybe ``b""``).
        """
        buffer = self._carry + data
        end = buffer.find(END)
        if end >= 0:
            self._write(buffer[: end + 2])
            self._carry = b""
            return buffer[end + len(END) :]
        keep = 0
        for prefix in _PREFIXES:
            if buffer.endswith(prefix):
                keep = len(prefix)
                break
        self._write(buffer[: len(buffer) - keep])
        self._carry = buffer[len(buffer) - keep :]
        return None

    def _write(self, region: bytes) -> None:
        # The region never ends inside "CRLF .": the carry keeps such tails.
        out = region.replace(b"\r\n.", b"\r\n")
        if self._skip:
            cut = min(self._skip, len(out))
            out, self._skip = out[cut:], self._skip - cut
        if not out or self.too_big:
            return
        if self.size + len(out) > self.max_size:
            self.too_big = True
            return
        self.size += len(out)
        self.sink.write(out)
