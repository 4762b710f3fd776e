"""A DEFLATE layer (RFC 1951, raw) between a session and its transport (IMAP COMPRESS).

:class:`DeflateTransport` is an ``ITransport`` over the connection's
transport (TCP, or TLS over TCP: compression sits above TLS, the order
RFC 4978 §3 prescribes).  The session switches it on after its tagged OK,
as it switches TLS on after STARTTLS's: the protocol's ``transport``
attribute (the public Twisted seam every write goes through) is replaced by
the layer, and input is handed to :meth:`DeflateTransport.received`
instead of straight to the session.

- Output: every ``write``/``writeSequence`` is compressed and ends with a
  sync flush, so the client can decode each response at once (a command's
  whole response is one call: see :meth:`Session.flush`).  Back-pressure is
  unchanged: the session's producer stays registered with the real
  transport, which pauses it when its buffer fills.
- Input: inflated in pieces of at most :data:`INFLATE_CHUNK` octets, each
  handed to the session (the bounded reader then applies every limit).
  While the session has paused reading (a running command and a full
  buffer), inflating stops too, and the compressed rest waits: a small
  compressed input that inflates to gigabytes is never inflated at once.
  Corrupt input ends the session.
- The protocol log keeps working: it observes the session's plain commands
  and responses, above this layer.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IPushProducer, ITransport
from twisted.logger import Logger
from zope.interface import implementer

#: Largest piece of inflated input handed to the session at once.
INFLATE_CHUNK = 64 * 1024
#: zlib's compression level for output (RFC 4978 §4 suggests 1 to 5 for speed).
LEVEL = 5
_WINDOW = -15  # raw DEFLATE, 32 KiB window, no zlib header (RFC 4978 §4)


@implementer(ITransport, IPushProducer)
class DeflateTransport:
    """Compresses what is written to ``transport``; inflates what :meth:`received` gets.

    :param transport: the connection's transport.
    :param deliver: called with each piece of inflated input.
    :param call_later: the reactor's ``callLater`` (input left over while paused
        is inflated in a later turn of the reactor).
    :param corrupt: called once if the input is not valid DEFLATE data.
    """

    log = Logger(namespace="exchmail.session.deflate")

    def __init__(
        self,
        transport: Any,
        deliver: Callable[[bytes], None],
        call_later: Callable[..., Any],
        corrupt: Callable[[], None],
    ) -> None:
        self.transport = transport
        self._deliver = deliver
        self._call_later = call_later
        self._corrupt = corrupt
        self._compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, _WINDOW)
        self._inflater = zlib.decompressobj(_WINDOW)
        self._pending = b""  # compressed input not inflated yet
        self._paused = False
        self._failed = False
        self._scheduled = False
        self.bytes_in = self.bytes_out = 0  # octets on the wire (compressed)

    # -- output -------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if data:
            self._send(self._compressor.compress(data))

    def writeSequence(self, data: Any) -> None:
        chunks = [chunk for chunk in data if chunk]
        if chunks:
            compress = self._compressor.compress
            self._send(b"".join(compress(chunk) for chunk in chunks))

    def _send(self, compressed: bytes) -> None:
        out = compressed + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        self.bytes_out += len(out)
        self.transport.write(out)

    # -- input ----------------------------------------------------------------------------
    def received(self, data: bytes) -> None:
        """Compressed octets from the client."""
        if self._failed:
            return
        self.bytes_in += len(data)
        self._pending += data
        self._inflate()

    def _inflate(self) -> None:
        self._scheduled = False
        data, self._pending = self._pending, b""
        while data and not self._paused and not self._failed:
            try:
                out = self._inflater.decompress(data, INFLATE_CHUNK)
            except zlib.error as error:
                self._failed = True
                self.log.info("corrupt compressed input ({error}); closing", error=error)
                self._corrupt()
                return
            data = self._inflater.unconsumed_tail
            if out:
                self._deliver(out)
            elif not self._inflater.unconsumed_tail:
                break
        if data and not self._failed:
            self._pending = data + self._pending

    # -- producer (the session pauses reading through these) ------------------------------------
    def pauseProducing(self) -> None:
        self._paused = True
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self._paused = False
        self.transport.resumeProducing()
        if self._pending and not self._scheduled:
            self._scheduled = True
            self._call_later(0, self._inflate)

    def stopProducing(self) -> None:
        self.transport.stopProducing()

    # -- everything else is the transport's -------------------------------------------------------
    def loseConnection(self) -> None:
        self.transport.loseConnection()

    def getPeer(self) -> Any:
        return self.transport.getPeer()

    def getHost(self) -> Any:
        return self.transport.getHost()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def start_deflate(
    protocol: Any,
    deliver: Callable[[bytes], None],
    call_later: Callable[..., Any],
    corrupt: Callable[[], None],
) -> DeflateTransport:
    """Put a :class:`DeflateTransport` between ``protocol`` and its transport
    (call it right after the last uncompressed octets were written)."""
    layer = DeflateTransport(protocol.transport, deliver, call_later, corrupt)
    protocol.transport = layer
    return layer
