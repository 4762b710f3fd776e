"""One PostgreSQL mailbox as the shared in-memory index of this frontend.

The index (:class:`~exchmail.store.index.IndexedMailbox`) answers the
synchronous half of :class:`~exchmail.interfaces.IStoreMailbox`; the
database is the truth.  The index moves forward only by *syncing*: reading
every change after the modseq it knows (:func:`queries.changes_since`),
under the mailbox lock, so that UIDs reach it in ascending order whichever
frontend added them.  Every change takes the mailbox's next modseq in the
database: when a change of this frontend took exactly the one after the
index's, nothing else happened in between, and the index takes the change
(with that modseq) without reading it back; otherwise it syncs before the
change's Deferred fires.

The MODSEQs and HIGHESTMODSEQ of CONDSTORE/QRESYNC
(:class:`~exchmail.interfaces.IModSeq`, RFC 7162) are therefore the
database's: every frontend shows the values the committing transaction
assigned, the expunges remembered are the database's expunge log (its last
:data:`~exchmail.store.modseq.EXPUNGE_MEMORY` entries), and STORE
UNCHANGEDSINCE is tested and applied in one transaction, under the mailbox
row's lock.

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

from exchmail.errors import NoSuchMessage
from exchmail.interfaces import IMessageReader, IStoreMailbox
from exchmail.store.changes import DELETED, FLAG_MODES, RECENT
from exchmail.store.columns import Columns
from exchmail.store.index import IndexedMailbox
from exchmail.store.postgresql import bodies, folders, queries

if TYPE_CHECKING:
    from exchmail.store.postgresql.store import PostgreSQLStore

BODY = 0  # the extra column: each message's body id


def columns_of(rows: Sequence[queries.Row]) -> Columns:
    """An index over ``rows`` (ascending UIDs)."""
    columns = Columns(PostgreSQLMailbox.extra_columns)
    for uid, flags, date, size, body, modseq in rows:
        columns.append(uid, date, size, size, flags, (body,), modseq)
    return columns


class PostgreSQLMailbox(IndexedMailbox):
    """A mailbox row and its messages, shared by this frontend's sessions.

    :class:`~exchmail.interfaces.IModSeq` with the database's modseqs:
    :attr:`modseq` (HIGHESTMODSEQ) is the ``highestmodseq`` the index has
    caught up to, each message's MODSEQ the one its last change committed
    with, whichever frontend made it; the index never counts for itself.
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
        expunged: Sequence[tuple[int, int]] = (),
    ) -> None:
        super().__init__(
            name,
            uid_validity,
            uid_next,
            store.run_blocking,
            columns_of(rows),
            max(first_recent, 1),
            highest_modseq=modseq,
            expunged=expunged,
        )
        self.mailbox_id = mailbox_id
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

    @property
    def modseq(self) -> int:
        """The database's ``highestmodseq`` the index has caught up to (HIGHESTMODSEQ)."""
        return self._highest

    @modseq.setter
    def modseq(self, value: int) -> None:
        self._highest = value

    def _next_modseq(self) -> int:
        raise AssertionError("the database gives every modseq")  # a path that forgot to pass it

    def _committed(self, modseq: int | None, rows: list[queries.Row]) -> Any:
        """(Under the lock) this frontend committed ``rows`` at ``modseq``: add
        them at once if nothing else happened since the index's modseq, or sync."""
        if modseq is None:
            return None
        highest = self._rows.uids[-1] if len(self._rows) else 0
        if modseq != self.modseq + 1 or (rows and rows[0][0] <= highest):
            return self._sync_locked()
        self.modseq = modseq
        for uid, flags, date, size, body, given in rows:
            self._rows.append(uid, date, size, size, flags, (body,), given)
            self.uid_next = max(self.uid_next, uid + 1)
            self._notify("messages_added", [uid])
        return None

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
        d = self._lock.run(self._store_flags_locked, wanted, flags, mode, None, origin)
        return self._track(d.addCallback(lambda outcome: outcome[0]))

    def set_flags_unchanged_since(
        self,
        uids: Iterable[int],
        flags: frozenset[str],
        mode: str,
        unchanged_since: int,
        origin: object = None,
    ) -> defer.Deferred[tuple[dict[int, frozenset[str]], list[int]]]:
        """:class:`~exchmail.interfaces.IModSeq`: STORE (UNCHANGEDSINCE n), tested
        against the database's modseqs and applied in one transaction."""
        if mode not in FLAG_MODES:
            return defer.fail(ValueError(f"unknown flag mode {mode!r}"))
        wanted = [uid for uid in dict.fromkeys(uids) if self._rows.find(uid) >= 0]
        flags = frozenset(flags) - {RECENT}
        return self._track(
            self._lock.run(self._store_flags_locked, wanted, flags, mode, unchanged_since, origin)
        )

    def _set_flags_locked(self, uids: list[int], flags: frozenset[str], mode: str, origin: object) -> Any:
        d = defer.maybeDeferred(self._store_flags_locked, uids, flags, mode, None, origin)
        return d.addCallback(lambda outcome: outcome[0])

    def _store_flags_locked(
        self, uids: list[int], flags: frozenset[str], mode: str, since: int | None, origin: object
    ) -> Any:
        if not uids:
            return {}, []
        d = self._store.transact(
            queries.set_flags, self.mailbox_id, self._store.frontend_id, uids, flags, mode, since
        )
        return d.addCallback(self._flags_now, origin, since)

    def _flags_now(self, outcome: queries.FlagsOutcome, origin: object, since: int | None = None) -> Any:
        """(Under the lock) the index takes a committed STORE: directly if it
        took the modseq after the index's, else by syncing (also when the
        database failed an UNCHANGEDSINCE test the index would have passed:
        the index is behind, and the client will fetch what changed)."""
        rows = self._rows
        result = {uid: outcome.stored[uid] for uid in sorted(outcome.stored) if rows.find(uid) >= 0}
        answer = (result, outcome.modified)
        if outcome.modseq is not None and outcome.modseq == self.modseq + 1:
            self.modseq = outcome.modseq
            changed = []
            for uid, stored in result.items():
                row = rows.find(uid)
                if rows.flags_of(row) != stored:
                    rows.set_flags(row, stored)
                    rows.modseqs[row] = outcome.modseq
                    changed.append(uid)
            if changed:
                self._notify("flags_changed", changed, origin)
            return answer
        stale = since is not None and any(
            rows.find(uid) >= 0 and rows.modseqs[rows.find(uid)] <= since for uid in outcome.modified
        )
        if (
            outcome.modseq is None
            and not stale
            and all(rows.flags_of(rows.find(u)) == f for u, f in result.items())
        ):
            return answer  # nothing changed, and the index knew every flag
        own = None if outcome.modseq is None else (outcome.modseq, origin)
        return self._sync_locked(own).addCallback(lambda _: answer)

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
        """(Under the lock) the index takes a committed expunge: directly if it
        took the modseq after the index's, else by syncing; the UIDs that
        were in the index."""
        modseq, removed = outcome
        known = [uid for uid in removed if self._rows.find(uid) >= 0]
        if modseq is None:
            return known
        if modseq == self.modseq + 1:
            self.modseq = modseq
            return self._remove_uids(removed, modseq)
        return self._sync_locked().addCallback(lambda _: known)

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

    def _sync_locked(self, own: tuple[int, object] | None = None) -> defer.Deferred[None]:
        """(Under the lock) read what changed after the index's modseq and apply
        it; ``own``: (modseq, origin) of a flag change of this frontend's."""
        d = self._store.transact(queries.changes_since, self.mailbox_id, self.modseq)
        return d.addCallback(self._apply, own)

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

    def _apply(self, changes: queries.Changes, own: tuple[int, object] | None = None) -> None:
        """Bring the index to ``changes`` (reactor thread, under the lock): the
        rows and expunges with the modseqs they committed with; flag changes
        of ``own``'s modseq are told with its origin."""
        if not changes.exists:  # deleted by another frontend
            self.modseq += 1
            self._remove_uids(list(self._rows.uids), self.modseq)
            return
        self.modseq = max(self.modseq, changes.modseq)
        if changes.expunged:
            # Every expunge of the log is remembered, even of messages this
            # index never held: VANISHED is the same on every frontend.
            self._remember_expunges(changes.expunged)
            gone = self._drop_rows(uid for _, uid in changes.expunged)
            if gone:
                self._notify("messages_expunged", gone)
        flagged: list[int] = []
        mine: list[int] = []
        rows = self._rows
        for uid, flags, date, size, body, modseq in changes.rows:
            row = rows.find(uid)
            if row >= 0:
                if rows.flags_of(row) != flags or rows.modseqs[row] != modseq:
                    rows.set_flags(row, flags)
                    rows.modseqs[row] = modseq
                    (mine if own is not None and modseq == own[0] else flagged).append(uid)
            elif not len(rows) or uid > rows.uids[-1]:
                # One notification per message, as the appends were made.
                rows.append(uid, date, size, size, flags, (body,), modseq)
                self.uid_next = max(self.uid_next, uid + 1)
                self._notify("messages_added", [uid])
        if flagged:
            self._notify("flags_changed", flagged, None)
        if mine and own is not None:
            self._notify("flags_changed", mine, own[1])
        self.uid_next = max(self.uid_next, changes.uid_next)
        self._first_recent = max(self._first_recent, changes.first_recent)

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
