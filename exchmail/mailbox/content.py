"""Message content off the reactor thread.

The store reads content in its own thread pool (``read_message``,
``open_message``); what is computed from content -- MIME parsing,
rendering, 7-bit re-encoding, SEARCH over bodies -- runs here: on the
reactor thread for messages up to :data:`INLINE_LIMIT` octets (cheaper
than a thread hop, and too quick to delay anyone), in the service's
thread pool above that, so a 50 MB message never freezes other sessions.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet import defer

from exchmail.errors import NoSuchMessage
from exchmail.interfaces import IBatchRead, IIndexScan, IStoreMailbox
from exchmail.mime.headers import has_blank_line, header_end
from exchmail.session.context import RunBlocking

#: Content up to this size is processed on the reactor thread ...
INLINE_LIMIT = 64 * 1024
#: ... when it is one message or a few.
INLINE_COUNT = 4
#: Reads (or batches) a FETCH or SEARCH keeps in flight ahead of the message it is at.
READ_AHEAD = 4
#: A batch read holds at most this many messages, and this many octets
#: unless its first message alone is larger.
BATCH_COUNT = 64
BATCH_OCTETS = 1024 * 1024
#: Of messages larger than this, a reader that needs only the header (a
#: FETCH of header fields, a SEARCH of header keys) reads only the header:
#: a message list of mail with attachments reads kilobytes, not all of it.
#: Smaller ones are read whole, many to one trip to the store.
HEADER_READ_THRESHOLD = 64 * 1024
#: What one read of such a header asks for.
HEADER_CHUNK = 16 * 1024


def offload(
    run_blocking: RunBlocking, size: int, f: Callable[..., Any], *args: Any, count: int = 1
) -> defer.Deferred[Any]:
    """``f(*args)`` as a Deferred: inline for a little work (``count`` messages
    of ``size`` octets in all, at most INLINE_COUNT and INLINE_LIMIT), else in
    the pool: many small messages cost as much as one big one."""
    if size <= INLINE_LIMIT and count <= INLINE_COUNT:
        return defer.maybeDeferred(f, *args)
    return run_blocking(f, *args)


@defer.inlineCallbacks
def read_header(mailbox: IStoreMailbox, uid: int) -> Any:
    """The start of a message up to the end of its header (all of it if it
    has no empty line), read in chunks; None if the message is gone."""
    try:
        reader = yield defer.maybeDeferred(mailbox.open_message, uid)
    except NoSuchMessage:
        return None
    chunks: list[bytes] = []
    try:
        while chunk := (yield reader.read(HEADER_CHUNK)):
            chunks.append(chunk)
            if len(chunks) == 1:
                if header_end(chunk) is not None:
                    break
            elif has_blank_line(chunks[-2][-2:] + chunk):  # the line may span two chunks
                break
    finally:
        reader.close()
    return b"".join(chunks)


class ReadAhead:
    """Reads the messages of ``uids`` in order, keeping a few reads in flight.

    :meth:`next` gives the content of the next UID (a Deferred of bytes, or
    of None if the message was expunged meanwhile).  A store that provides
    :class:`~exchmail.interfaces.IBatchRead` is asked for small messages in
    batches (one thread trip for many); others message by message.  At
    most :data:`READ_AHEAD` reads are outstanding, so one session never
    floods the store's thread pool.  With ``headers_only``, messages over
    :data:`HEADER_READ_THRESHOLD` are read only up to the end of their
    header (:func:`read_header`).
    """

    def __init__(
        self,
        mailbox: IStoreMailbox,
        uids: Sequence[int],
        window: int = READ_AHEAD,
        batch_count: int = BATCH_COUNT,
        headers_only: bool = False,
    ) -> None:
        self.mailbox = mailbox
        self._headers_only = headers_only
        self._batch_count = batch_count
        self._uids = list(uids)
        self._position = 0
        self._window = window
        self._batched = IBatchRead.providedBy(mailbox)
        self._pending: deque[defer.Deferred[list[bytes | None]]] = deque()
        self._delivered = 0  # UIDs handed out by next_batch
        self._ready: deque[bytes | None] = deque()
        # The sizes that make up batches: the index columns when the UIDs are
        # the first messages of the mailbox (a whole-mailbox SEARCH or FETCH).
        columns = IIndexScan(mailbox).columns(self._uids) if IIndexScan.providedBy(mailbox) else None
        self._sizes = columns.exact_sizes if columns is not None else None
        self._fill()

    def _size_of(self, position: int) -> int:
        if self._sizes is not None:
            return self._sizes[position]
        record = self.mailbox.message(self._uids[position])
        return record.exact_size if record is not None else 0

    def _header_read(self, position: int) -> bool:
        return self._headers_only and self._size_of(position) > HEADER_READ_THRESHOLD

    def _fill(self) -> None:
        while len(self._pending) < self._window and self._position < len(self._uids):
            header = self._header_read(self._position)
            batch = self._next_batch()
            d: defer.Deferred[Any]
            if header:
                d = read_header(self.mailbox, batch[0]).addCallback(lambda data: [data])
            elif self._batched:
                d = defer.maybeDeferred(IBatchRead(self.mailbox).read_messages, batch)
            else:
                d = defer.maybeDeferred(self.mailbox.read_message, batch[0])
                d.addCallbacks(lambda data: [data], self._gone)
            self._pending.append(d)

    def next_batch(self) -> defer.Deferred[list[tuple[int, bytes | None]]] | None:
        """The next batch as ``(uid, content)`` pairs, or None when all were read.

        Do not mix with :meth:`next`.
        """
        if not self._pending:
            return None
        start = self._delivered
        d = self._pending.popleft()
        self._fill()

        def arrived(contents: list[bytes | None]) -> list[tuple[int, bytes | None]]:
            self._delivered += len(contents)
            return list(zip(self._uids[start : start + len(contents)], contents, strict=True))

        return d.addCallback(arrived)

    def _next_batch(self) -> list[int]:
        """The next UIDs to read together: up to ``batch_count``, BATCH_OCTETS in all."""
        start = self._position
        if not self._batched or self._header_read(start):
            self._position += 1
            return self._uids[start : start + 1]
        total, end = 0, start
        size_of = self._size_of
        while end < len(self._uids) and end - start < self._batch_count:
            size = size_of(end)
            if end > start and (total + size > BATCH_OCTETS or self._header_read(end)):
                break
            total += size
            end += 1
        self._position = end
        return self._uids[start:end]

    @staticmethod
    def _gone(failure: Any) -> list[None]:
        failure.trap(NoSuchMessage)
        return [None]

    def next(self) -> defer.Deferred[bytes | None]:
        """The content of the next UID."""
        if self._ready:
            return defer.succeed(self._ready.popleft())
        d = self._pending.popleft()
        self._fill()

        def arrived(contents: list[bytes | None]) -> bytes | None:
            self._ready.extend(contents[1:])
            return contents[0]

        return d.addCallback(arrived)
