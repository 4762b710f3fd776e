"""One PostgreSQL mailbox as the shared in-memory index of this frontend.

The index (:class:`~exchmail.store.index.IndexedMailbox`) answers the
synchronous half of :class:`~exchmail.interfaces.IStoreMailbox`; the
database is the truth.  The index moves forward only by *syncing*: reading
every change after the modseq it knows (:func:`queries.changes_since`),
under the mailbox lock, so that UIDs reach it in ascending order whichever
frontend added them.  An APPEND or COPY commits, then syncs (its own
message arrives with any other frontend's earlier ones, in order); a STORE
or EXPUNGE applies the database's answer directly, under the same lock.
Every change takes the mailbox's next modseq: when a change of this
frontend took exactly the one after the index's, nothing else happened in
between, and the index takes the change without reading it back.

Other frontends' changes arrive as a NOTIFY (see :mod:`.notify`), which
makes a listened mailbox sync at once, and, should a notification be
lost, by polling every ``poll_interval`` seconds while it has listeners.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface import implementer_only

from exchmail.errors import NoSuchMessage
from exchmail.interfaces import IBatchRead, IIndexScan, IMessageReader, IStoreMailbox
from exchmail.store.columns import Columns
from exchmail.store.index import DELETED, FLAG_MODES, RECENT, IndexedMailbox
from exchmail.store.postgresql import bodies, folders, queries

if TYPE_CHECKING:
    from exchmail.store.postgresql.store import PostgreSQLStore

BODY = 0  # the extra column: each message's body id


def columns_of(rows: Sequence[queries.Row]) -> Columns:
    """An index over ``rows`` (ascending UIDs)."""
    columns = Columns(PostgreSQLMailbox.extra_columns)
    for uid, flags, date, size, body in rows:
        columns.append(uid, date, size, size, flags, (body,))
    return columns


@implementer_only(IStoreMailbox, IBatchRead, IIndexScan)
class PostgreSQLMailbox(IndexedMailbox):
    """A mailbox row and its messages, shared by this frontend's sessions.

    Not :class:`~exchmail.interfaces.IModSeq` (yet): the index's MODSEQ
    counters are this process's own, while every frontend's changes take the
    database's ``highestmodseq``; IMAP sessions answer ``NOMODSEQ``.
    """

    extra_columns = ("Q",)

    def __init__(
        self,
        store: PostgreSQLStore,
        mailbox_id: int,
        name: str,
        uid_validity: int,
        uid_next: int,
        modseq: int,
        first_recent: int,
        rows: Sequence[queries.Row],
    ) -> None:
        super().__init__(
            name, uid_validity, uid_next, store.run_blocking, columns_of(rows), max(first_recent, 1)
        )
        self.mailbox_id = mailbox_id
        self.modseq = modseq
        self._store = store
        self._refresh_waiters: list[defer.Deferred[None]] = []
        self._poll: Any = None

    # -- content -------------------------------------------------------------------------
    def _content_handle(self, row: int) -> tuple[int, int]:
        return int(self._rows.extra[BODY][row]), int(self._rows.exact[row])

    def _read_blocking(self, handle: tuple[int, int]) -> bytes:
        return bodies.read_body(self._store.db, handle[0])

    def open_message(self, uid: int) -> defer.Deferred[IMessageReader]:
        try:
            body, size = self._handle(uid)
        except NoSuchMessage:
            return defer.fail()
        return defer.succeed(bodies.ChunkReader(self._store.db, self._run, body, size))

    def read_messages(self, uids: Sequence[int]) -> defer.Deferred[list[bytes | None]]:
        """:class:`~exchmail.interfaces.IBatchRead`: one query for many bodies."""
        wanted = []
        for uid in uids:
            row = self._rows.find(uid)
            wanted.append(None if row < 0 else int(self._rows.extra[BODY][row]))
        found = self._run(bodies.read_bodies, self._store.db, sorted({b for b in wanted if b is not None}))
        return found.addCallback(lambda got: [None if b is None else got.get(b) for b in wanted])

    # -- changes -------------------------------------------------------------------------
    def append(
        self,
        source: bytes | BinaryIO,
        flags: frozenset[str] = frozenset(),
        internal_date: float | None = None,
    ) -> defer.Deferred[int]:
        when = time.time() if internal_date is None else float(internal_date)
        flags = frozenset(flags) - {RECENT}
        d = self._store.transact(
            queries.append, self.mailbox_id, self._store.frontend_id, source, flags, when
        )
        d.addCallback(
            lambda out: self._lock.run(self._committed, out[0], [out[1]]).addCallback(lambda _: out[1][0])
        )
        return self._track(d)

    def _committed(self, modseq: int, rows: list[queries.Row]) -> Any:
        """(Under the lock) this frontend committed ``rows`` at ``modseq``: add
        them at once if nothing else happened since the index's modseq, or sync."""
        highest = self._rows.uids[-1] if len(self._rows) else 0
        if modseq != self.modseq + 1 or (rows and rows[0][0] <= highest):
            return self._sync_locked()
        for uid, flags, date, size, body in rows:
            self._rows.append(uid, date, size, size, flags, (body,))
            self.uid_next = max(self.uid_next, uid + 1)
            self._notify("messages_added", [uid])
        self.modseq = modseq
        return None

    def _advanced(self, modseq: int | None) -> None:
        """(Under the lock) this frontend's change took ``modseq``: the index is
        current up to it if that was the next one."""
        if modseq is not None and modseq == self.modseq + 1:
            self.modseq = modseq

    def copy_to(self, uids: Iterable[int], target: IStoreMailbox) -> defer.Deferred[list[tuple[int, int]]]:
        if not isinstance(target, PostgreSQLMailbox) or target._store is not self._store:
            result: defer.Deferred[list[tuple[int, int]]] = super().copy_to(uids, target)
            return result
        wanted = sorted({uid for uid in uids if self._rows.find(uid) >= 0})
        if not wanted:
            return defer.succeed([])
        d = self._store.transact(
            queries.copy, self.mailbox_id, target.mailbox_id, self._store.frontend_id, wanted
        )
        d.addCallback(
            lambda out: target._lock.run(target._committed, out[0], out[2]).addCallback(lambda _: out[1])
        )
        return self._track(d)

    def set_flags(
        self, uids: Iterable[int], flags: frozenset[str], mode: str, origin: object = None
    ) -> defer.Deferred[dict[int, frozenset[str]]]:
        if mode not in FLAG_MODES:
            return defer.fail(ValueError(f"unknown flag mode {mode!r}"))
        wanted = [uid for uid in dict.fromkeys(uids) if self._rows.find(uid) >= 0]
        flags = frozenset(flags) - {RECENT}
        return self._track(self._lock.run(self._set_flags_locked, wanted, flags, mode, origin))

    def _set_flags_locked(self, uids: list[int], flags: frozenset[str], mode: str, origin: object) -> Any:
        if not uids:
            return {}
        d = self._store.transact(
            queries.set_flags, self.mailbox_id, self._store.frontend_id, uids, flags, mode
        )
        return d.addCallback(self._flags_now, origin)

    def _flags_now(
        self, outcome: tuple[int, dict[int, frozenset[str]]], origin: object
    ) -> dict[int, frozenset[str]]:
        modseq, stored = outcome
        self._advanced(modseq)
        result, changed = {}, []
        for uid in sorted(stored):
            row = self._rows.find(uid)
            if row < 0:
                continue
            result[uid] = stored[uid]
            if self._rows.flags_of(row) != stored[uid]:
                self._rows.set_flags(row, stored[uid])
                changed.append(uid)
        if changed:
            self._notify("flags_changed", changed, origin)
        return result

    def _expunge_locked(self, wanted: set[int] | None) -> Any:
        return self._removing(None if wanted is None else sorted(wanted), True)

    def _remove_now(self, uids: list[int]) -> Any:
        return self._removing(uids, False) if uids else []

    def _removing(self, uids: list[int] | None, only_deleted: bool) -> Any:
        highest = self._rows.uids[-1] if len(self._rows) else 0
        if not highest:
            return []
        if only_deleted and not self._rows.table.ids_with(DELETED) & set(self._rows.flags):
            return []  # nothing this frontend knows of is \Deleted: no trip to the database
        d = self._store.transact(
            queries.remove, self.mailbox_id, self._store.frontend_id, uids, highest, only_deleted
        )
        return d.addCallback(self._removed_now)

    def _removed_now(self, outcome: tuple[int | None, list[int]]) -> Any:
        modseq, removed = outcome
        self._advanced(modseq)
        return self._removed((removed, None))

    def _recent_claimed(self) -> None:
        # Other frontends learn it at their next sync; if this write is lost,
        # the messages are only \Recent once more there.
        d = self._store.transact(queries.claim_recent, self.mailbox_id, self._first_recent)
        d.addErrback(lambda f: self.log.failure("recording \\Recent claims failed", f))

    # -- syncing -------------------------------------------------------------------------
    def refresh(self) -> defer.Deferred[None]:
        """Sync with the database; requests that arrive while a sync waits share it."""
        waiter: defer.Deferred[None] = defer.Deferred()
        self._refresh_waiters.append(waiter)
        if len(self._refresh_waiters) == 1:
            self._lock.run(self._refresh_locked)
        return waiter

    def _refresh_locked(self) -> defer.Deferred[None]:
        waiters, self._refresh_waiters = self._refresh_waiters, []

        def tell(outcome: Any) -> None:
            for waiter in waiters:
                if isinstance(outcome, Failure):
                    waiter.errback(outcome)
                else:
                    waiter.callback(None)

        return self._sync_locked().addBoth(tell)

    def _sync_locked(self) -> defer.Deferred[None]:
        """(Under the lock) read what changed after the index's modseq and apply it."""
        d = self._store.transact(queries.changes_since, self.mailbox_id, self.modseq)
        return d.addCallback(self._apply)

    def reopen(self, account: int, name: str) -> defer.Deferred[PostgreSQLMailbox | None]:
        """(Under the lock) if ``name`` still names this mailbox, sync and give
        it; ``None`` if it names another one now (renamed or re-created
        elsewhere).  Fails with NoSuchMailbox if there is none."""
        d = self._store.transact(folders.reopen, account, name, self.mailbox_id, self.modseq)

        def synced(changes: queries.Changes | None) -> PostgreSQLMailbox | None:
            if changes is None:
                return None
            self._apply(changes)
            return self

        return d.addCallback(synced)

    def _apply(self, changes: queries.Changes) -> None:
        """Bring the index to ``changes`` (reactor thread, under the lock)."""
        if not changes.exists:  # deleted by another frontend
            self._remove_uids(list(self._rows.uids))
            return
        if changes.expunged:
            self._remove_uids(changes.expunged)
        flagged = []
        for uid, flags, date, size, body in changes.rows:
            row = self._rows.find(uid)
            if row >= 0:
                if self._rows.flags_of(row) != flags:
                    self._rows.set_flags(row, flags)
                    flagged.append(uid)
            elif not len(self._rows) or uid > self._rows.uids[-1]:
                # One notification per message, as the appends were made.
                self._rows.append(uid, date, size, size, flags, (body,))
                self.uid_next = max(self.uid_next, uid + 1)
                self._notify("messages_added", [uid])
        if flagged:
            self._notify("flags_changed", flagged, None)
        self.uid_next = max(self.uid_next, changes.uid_next)
        self._first_recent = max(self._first_recent, changes.first_recent)
        self.modseq = max(self.modseq, changes.modseq)

    # -- watching ------------------------------------------------------------------------
    def _listening(self, active: bool) -> None:
        if active:
            self._store.watch(self)
            self._schedule_poll()
        else:
            self._store.unwatch(self)
            if self._poll is not None and self._poll.active():
                self._poll.cancel()
            self._poll = None
        super()._listening(active)

    def _schedule_poll(self) -> None:
        reactor, interval = self._store.reactor, self._store.poll_interval
        if reactor is not None and interval:
            self._poll = reactor.callLater(interval, self._polled)

    def _polled(self) -> None:
        self._poll = None
        if not self.listened:
            return
        self.refresh().addErrback(lambda f: self.log.failure("polling {name} failed", f, name=self.name))
        self._schedule_poll()
