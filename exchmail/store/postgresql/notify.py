"""Cross-frontend change notification: LISTEN on one channel, in one thread.

Every transaction that changes a mailbox ends with ``NOTIFY
exchmail_changes, '<mailbox id> <frontend id>'`` (delivered at commit).
Each frontend keeps one extra connection that LISTENs on the channel, in a
daemon thread blocked in ``Connection.notifies``; it hands the ids of
mailboxes that other frontends changed to the reactor thread, in batches,
where the store makes the listened ones sync.

One channel for all mailboxes, not one per mailbox: a frontend listens
once, whatever its sessions have selected, and filters by id in memory (a
set look-up per notification).  A lost connection is re-established with
backoff; once back, every listened mailbox syncs (notifications sent while
it was away are lost, by PostgreSQL's design).  Polling by the mailboxes
(``poll_interval``) is the net under both.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

from exchmail.store.postgresql.queries import CHANNEL

log = Logger(namespace="exchmail.store.postgresql")

#: Seconds between reconnection attempts: first, then doubled up to the last.
BACKOFF = (0.2, 10.0)
#: Seconds a wait for notifications lasts before checking for a stop.
WAKE = 0.5
#: Seconds to wait for more notifications of a burst before handing them over.
DRAIN = 0.002


class Notifier:
    """A LISTEN connection in a daemon thread.

    :param changed: called on the reactor thread with a set of mailbox ids.
    :param reconnected: called on the reactor thread after the connection
        came back (notifications may have been missed).
    """

    def __init__(
        self,
        dsn: str,
        frontend: str,
        reactor: Any,
        changed: Callable[[set[int]], None],
        reconnected: Callable[[], None],
    ) -> None:
        self._dsn = dsn
        self._frontend = frontend
        self._reactor = reactor
        self._changed = changed
        self._reconnected = reconnected
        self._stopping = threading.Event()
        #: Set once the first LISTEN is in place (tests wait for it).
        self.listening = threading.Event()
        self._thread = threading.Thread(target=self._run, name="exchmail-pg-notify", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end (it does within :data:`WAKE` seconds)."""
        self._stopping.set()

    def _run(self) -> None:
        import psycopg

        delay = BACKOFF[0]
        first = True
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    if not first:
                        self._reactor.callFromThread(self._reconnected)
                    first, delay = False, BACKOFF[0]
                    self._receive(conn)
            except psycopg.Error as e:
                if self._stopping.is_set():
                    return
                log.warn(
                    "listening for mailbox changes failed ({error}); again in {delay}s",
                    error=str(e).strip(),
                    delay=delay,
                )
                self._stopping.wait(delay)
                delay = min(delay * 2, BACKOFF[1])
                first = False

    def _receive(self, conn: Any) -> None:
        while not self._stopping.is_set():
            notes = list(conn.notifies(timeout=WAKE, stop_after=1))
            if not notes:
                continue
            # Drain what else has arrived, so that a burst makes one call.
            notes += conn.notifies(timeout=DRAIN)
            ids: set[int] = set()
            for note in notes:
                ids |= self._parse(note.payload)
            if ids:
                self._reactor.callFromThread(self._changed, ids)

    def _parse(self, payload: str) -> set[int]:
        box, _, frontend = payload.partition(" ")
        if frontend == self._frontend or not box.isdigit():
            return set()  # our own change: the index has it already
        return {int(box)}
