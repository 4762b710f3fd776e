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

from exchmail.interfaces import IStoreMailbox
from exchmail.session.context import RunBlocking

#: Content up to this size is processed on the reactor thread.
INLINE_LIMIT = 64 * 1024
#: Reads a FETCH or SEARCH keeps in flight ahead of the message it is at.
READ_AHEAD = 4


def offload(run_blocking: RunBlocking, size: int, f: Callable[..., Any],
            *args: Any) -> defer.Deferred[Any]:
    """``f(*args)`` as a Deferred: inline for ``size <= INLINE_LIMIT``, else in the pool."""
    if size <= INLINE_LIMIT:
        return defer.maybeDeferred(f, *args)
    return run_blocking(f, *args)


class ReadAhead:
    """Reads the messages of ``uids`` in order, keeping a few reads in flight.

    :meth:`next` gives the content of the next UID (a Deferred of bytes, or
    of None if the message was expunged meanwhile).  At most
    :data:`READ_AHEAD` reads are outstanding, so one session never floods
    the store's thread pool.
    """

    def __init__(self, mailbox: IStoreMailbox, uids: Sequence[int],
                 window: int = READ_AHEAD) -> None:
        self.mailbox = mailbox
        self._uids = iter(uids)
        self._window = window
        self._pending: deque[defer.Deferred[bytes | None]] = deque()
        self._fill()

    def _fill(self) -> None:
        while len(self._pending) < self._window:
            uid = next(self._uids, None)
            if uid is None:
                return
            d = defer.maybeDeferred(self.mailbox.read_message, uid)
            d.addErrback(self._gone)
            self._pending.append(d)

    @staticmethod
    def _gone(failure: Any) -> None:
        from exchmail.errors import NoSuchMessage

        failure.trap(NoSuchMessage)
        return None

    def next(self) -> defer.Deferred[bytes | None]:
        """The content of the next UID."""
        d = self._pending.popleft()
        self._fill()
        return d
