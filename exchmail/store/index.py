"""The shared in-memory index that every store's mailbox is built on.

One :class:`IndexedMailbox` exists per open mailbox and is shared by all
sessions on it.  It answers the synchronous half of
:class:`~exchmail.interfaces.IStoreMailbox` from its :class:`Columns`
(UIDs copy-on-write, records built on demand, \\Recent as "every UID from
``first_recent`` on") and implements the asynchronous half on top of a few
backend hooks, which do the blocking work through ``run_blocking``:

=========================  ====================================================
hook                       does
=========================  ====================================================
``_content_handle(row)``   (reactor) what the thread needs to find the content
``_read_blocking(h)``      (thread) the whole message in wire form
``_read_cached(h)``        (reactor) the same if it needs no waiting, else None
``_open_blocking(h)``      (thread) an IMessageReader over it
``_deliver(...)``          store a message durably; a Deferred of NewMessage
``_store_flags(changes)``  persist flag changes in one go; ``(applied, error)``
``_remove_messages(uids)`` remove contents; ``(removed uids, error)``
``_persist_modseq(...)``   record new MODSEQs of flag changes and expunges
=========================  ====================================================

Modification sequences (:class:`~exchmail.interfaces.IModSeq`, RFC 7162)
live in a column of the index: every append, flag change and expunge takes
the next value of the mailbox's HIGHESTMODSEQ (one per operation, shared by
the messages it touches).  The UIDs of the last :data:`EXPUNGE_MEMORY`
expunged messages are kept with their MODSEQ for QRESYNC; older ones are
forgotten (``expunged_since`` then answers ``None``, and QRESYNC clients are
told every UID they asked about that no longer exists).

The index changes only on the reactor thread, in callbacks, after the work
is durable; listeners are told after the index changed.  Flag changes,
expunges and refreshes of one mailbox run one at a time (a DeferredLock),
so their effects never interleave; appends only ever add rows at the end
and need no lock.
"""

from __future__ import annotations

import io
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, BinaryIO, ClassVar

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from exchmail.errors import NoSuchMessage
from exchmail.interfaces import (
    IBatchRead,
    IIndexScan,
    IMailboxListener,
    IMessageReader,
    IndexColumns,
    IStoreMailbox,
)
from exchmail.store.changes import (
    DELETED,
    FLAG_MODES,
    RECENT,
    Applied,
    FlagChange,
    NewMessage,
    apply_flag_mode,
    take_back_copies,
)
from exchmail.store.columns import Columns, MessageRecord
from exchmail.store.modseq import EXPUNGE_MEMORY, ModSeqIndex
from exchmail.store.readers import BytesReader
from exchmail.store.runner import RunBlocking, run_sync

__all__ = ["EXPUNGE_MEMORY", "FlagChange", "IndexedMailbox", "MessageRecord", "NewMessage", "apply_flag_mode"]

#: A file that moved while a batch read it (see ``read_messages``).
_MOVED = object()


def _fill_in(read: list[Any], results: list[Any], positions: list[int]) -> list[Any]:
    """``results`` with what the thread ``read`` put at ``positions``."""
    for position, content in zip(positions, read, strict=True):
        results[position] = content
    return results


@implementer(IStoreMailbox, IBatchRead, IIndexScan)
class IndexedMailbox(ModSeqIndex):
    """Index, listeners and the store-independent half of :class:`IStoreMailbox`.

    :param columns: a ready index (a backend that built it in a thread);
        by default an empty one with the backend's ``extra_columns``.
    :param first_recent: the lowest UID that is still \\Recent (messages no
        session has claimed); by default ``uid_next`` (nothing recent).
    :param highest_modseq: HIGHESTMODSEQ as last stored (at least every row's).
    :param expunged: ``(modseq, uid)`` of remembered expunges, ascending.
    :param expunge_floor: expunges up to this MODSEQ may be forgotten.
    """

    log = Logger(namespace="exchmail.store")
    #: Typecodes of the backend's own columns (``None``: a list of objects).
    extra_columns: ClassVar[tuple[str | None, ...]] = ()
    #: Whether ``_deliver`` returns the UID, chosen by the storage (a database
    #: key): appends then run one at a time, so UIDs reach the index in order.
    #: Otherwise the index gives the next UID when the message is stored.
    uids_from_storage: ClassVar[bool] = False

    def __init__(
        self,
        name: str,
        uid_validity: int,
        uid_next: int = 1,
        run_blocking: RunBlocking | None = None,
        columns: Columns | None = None,
        first_recent: int | None = None,
        highest_modseq: int = 1,
        expunged: Iterable[tuple[int, int]] = (),
        expunge_floor: int = 0,
    ) -> None:
        self.name = name
        self.uid_validity = uid_validity
        self.uid_next = uid_next
        self._run: RunBlocking = run_blocking or run_sync
        self._rows = columns if columns is not None else Columns(self.extra_columns)
        self._first_recent = uid_next if first_recent is None else first_recent
        self._init_modseq(highest_modseq, expunged, expunge_floor)
        self._listeners: dict[IMailboxListener, None] = {}
        self._lock = defer.DeferredLock()
        self._append_lock = defer.DeferredLock()
        self._in_flight = 0
        #: Called with the mailbox whenever it gains its first listener, loses
        #: its last one or finishes an operation (the account's idle release).
        self.idle_observer: Callable[[IndexedMailbox], None] | None = None

    # -- synchronous: the index ------------------------------------------------
    def uids(self) -> Sequence[int]:
        # Never changed once handed out, not even by appends: a session's
        # list is exactly what it has told its client about.
        return self._rows.share()

    def message(self, uid: int) -> MessageRecord | None:
        row = self._rows.find(uid)
        return None if row < 0 else self._rows.record(row)

    def scan(self, uids: Sequence[int]) -> Iterator[tuple[int, frozenset[str], float, int, int]]:
        """:class:`~exchmail.interfaces.IIndexScan`: the columns themselves,
        walked once; a list that is a prefix of the index costs no look-up."""
        columns = self._prefix_columns(uids)
        if columns is not None:
            sets = columns.flag_sets
            flags = map(sets.__getitem__, columns.flags)
            dates, stored, exact = columns.internal_dates, columns.stored_sizes, columns.exact_sizes
            yield from zip(columns.uids, flags, dates, stored, exact, strict=True)
            return
        rows = self._rows
        for uid in uids:
            row = rows.find(uid)
            if row >= 0:
                yield (uid, rows.flags_of(row), rows.dates[row], rows.stored[row], rows.exact[row])

    def columns(self, uids: Sequence[int]) -> IndexColumns | None:
        """:class:`~exchmail.interfaces.IIndexScan`: slices of the columns (copies)."""
        return self._prefix_columns(uids)

    def _prefix_columns(self, uids: Sequence[int]) -> IndexColumns | None:
        """The columns' first ``len(uids)`` rows if those are ``uids`` (compared in C)."""
        rows, count = self._rows, len(uids)
        if count > len(rows) or (count and rows.uids[count - 1] != uids[-1]):
            return None
        if count and uids is not rows.uids:
            if rows.uids[:count] != (uids if isinstance(uids, array) else array("Q", uids)):
                return None
        return IndexColumns(
            rows.table.sets(),
            rows.uids[:count],
            rows.flags[:count],
            rows.dates[:count],
            rows.stored[:count],
            rows.exact[:count],
        )

    def recent_count(self) -> int:
        return len(self._rows) - self._rows.first_at_or_after(self._first_recent)

    def claim_recent(self) -> frozenset[int]:
        start = self._rows.first_at_or_after(self._first_recent)
        claimed = frozenset(self._rows.uids[start:])
        self._first_recent = self.uid_next
        if claimed:
            self._recent_claimed()
        return claimed

    def total_stored_size(self) -> int:
        """The stored octets of every message (for quotas; no record is built)."""
        return sum(self._rows.stored)

    def uids_older_than(self, cutoff: float) -> list[int]:
        """The UIDs whose internal date is before ``cutoff`` (for retention)."""
        rows = self._rows
        return [uid for uid, date in zip(rows.uids, rows.dates, strict=True) if date < cutoff]

    # -- listeners -----------------------------------------------------------------
    def add_listener(self, listener: IMailboxListener) -> None:
        if listener in self._listeners:
            return
        self._listeners[listener] = None
        if len(self._listeners) == 1:
            self._listening(True)

    def remove_listener(self, listener: IMailboxListener) -> None:
        if listener not in self._listeners:
            return
        del self._listeners[listener]
        if not self._listeners:
            self._listening(False)

    @property
    def lock(self) -> defer.DeferredLock:
        """The lock that makes flag changes, expunges and refreshes of this
        mailbox run one at a time; account operations that move its content
        (RENAME) hold it too."""
        return self._lock

    def forget(self, uids: Iterable[int]) -> list[int]:
        """Drop ``uids`` whose content went elsewhere (RENAME INBOX); the
        listeners are told they were expunged.  Reactor thread, under :attr:`lock`."""
        return self._remove_uids(uids)

    @property
    def listened(self) -> bool:
        """Whether any listener is registered."""
        return bool(self._listeners)

    @property
    def busy(self) -> bool:
        """Whether an operation is under way (an open mailbox is then never released)."""
        return self._in_flight > 0 or self._lock.locked or self._append_lock.locked

    def _listening(self, active: bool) -> None:
        """The first listener came (``True``) or the last one went: backends
        start or stop watching for outside changes (and call this)."""
        self._observe()

    def _observe(self) -> None:
        if self.idle_observer is not None:
            self.idle_observer(self)

    def _notify(self, method: str, *args: object) -> None:
        for listener in list(self._listeners):
            try:
                getattr(listener, method)(self, *args)
            except Exception:
                self.log.failure("listener {listener!r} failed in {method}", listener=listener, method=method)

    # -- changing the index (reactor thread only) -----------------------------------
    def _add_messages(self, messages: Sequence[NewMessage], uids: Sequence[int] | None = None) -> list[int]:
        """Give ``messages`` the next UIDs (or ``uids``), add them, tell the listeners."""
        added = []
        modseq = self._next_modseq() if messages else 0
        for number, new in enumerate(messages):
            uid = self.uid_next if uids is None else uids[number]
            self._rows.append(
                uid, new.internal_date, new.stored_size, new.exact_size, new.flags, new.extra, modseq
            )
            self.uid_next = max(self.uid_next, uid + 1)
            added.append(uid)
        if added:
            self._notify("messages_added", added)
        return added

    def _remove_uids(self, uids: Iterable[int], modseq: int | None = None) -> list[int]:
        """Drop ``uids`` from the index (copy-on-write), remember the expunge
        (with ``modseq`` if the storage gave it one) and tell the listeners."""
        gone = self._drop_rows(uids)
        if gone:
            self._record_expunge(gone, modseq)
            self._notify("messages_expunged", gone)
        return gone

    def _drop_rows(self, uids: Iterable[int]) -> list[int]:
        """Drop the rows of ``uids`` (copy-on-write); the UIDs that were there, ascending."""
        rows = {row: uid for row, uid in ((self._rows.find(uid), uid) for uid in uids) if row >= 0}
        if not rows:
            return []
        self._rows.remove(rows)
        return sorted(rows.values())

    # -- asynchronous: content -------------------------------------------------------
    def read_message(self, uid: int) -> defer.Deferred[bytes]:
        return self._content(uid, self._read_blocking, cached=True)

    def open_message(self, uid: int) -> defer.Deferred[IMessageReader]:
        return self._content(uid, self._open_blocking)

    def read_messages(self, uids: Sequence[int]) -> defer.Deferred[list[bytes | None]]:
        """:class:`~exchmail.interfaces.IBatchRead`: one thread trip for many messages."""
        results: list[Any] = []
        uncached: list[int] = []  # positions in results still to read
        for uid in uids:
            row = self._rows.find(uid)
            if row < 0:
                results.append(None)
                continue
            handle = self._content_handle(row)
            content = self._cached(handle)
            if content is None:
                uncached.append(len(results))
                content = handle  # for now: the thread reads it
            results.append(content)
        if not uncached:
            return defer.succeed(results).addCallback(self._reread_moved, uids)
        d = self._run(self._read_many_blocking, [results[i] for i in uncached])
        d.addCallback(_fill_in, results, uncached)
        return d.addCallback(self._reread_moved, uids)

    def _cached(self, handle: Any) -> Any:
        """The content if the backend can have it at once (``_read_cached``),
        ``_MOVED`` if its file is gone, else None."""
        try:
            return self._read_cached(handle)
        except FileNotFoundError:
            return _MOVED

    def _read_many_blocking(self, handles: list[Any]) -> list[Any]:
        out: list[Any] = []
        for handle in handles:
            if handle is None:
                out.append(None)
                continue
            try:
                out.append(self._read_blocking(handle))
            except FileNotFoundError:
                out.append(_MOVED)
        return out

    def _reread_moved(self, results: list[Any], uids: Sequence[int]) -> Any:
        """Messages renamed (or removed) while the thread read: one by one again."""
        if not any(r is _MOVED for r in results):
            return results

        def gone(failure: Failure) -> None:
            failure.trap(NoSuchMessage)
            return None

        return defer.gatherResults(
            [
                self.read_message(uid).addErrback(gone) if result is _MOVED else defer.succeed(result)
                for uid, result in zip(uids, results, strict=True)
            ]
        )

    def _handle(self, uid: int) -> Any:
        row = self._rows.find(uid)
        if row < 0:
            raise NoSuchMessage(f"no message with UID {uid}")
        return self._content_handle(row)

    def _content(self, uid: int, work: Callable[[Any], Any], cached: bool = False) -> defer.Deferred[Any]:
        """``work(handle)`` in a thread; with ``cached``, the content at once
        if the backend can have it without waiting."""
        try:
            handle = self._handle(uid)
        except NoSuchMessage:
            return defer.fail()
        content = self._cached(handle) if cached else None
        if content is not None and content is not _MOVED:
            return defer.succeed(content)
        d = self._run(work, handle)
        d.addErrback(self._content_missing, uid, work, handle)
        return d

    def _content_missing(self, failure: Failure, uid: int, work: Callable[[Any], Any], handle: Any) -> Any:
        failure.trap(FileNotFoundError)
        # A flag change may have renamed it (or an expunge removed it) while
        # the thread looked: look again once such changes are done.
        return self._lock.run(self._content_again, uid, work, handle)

    def _content_again(self, uid: int, work: Callable[[Any], Any], old: Any) -> Any:
        handle = self._handle(uid)
        if handle == old:
            self._content_lost(uid)
            raise NoSuchMessage(f"message UID {uid} is gone")

        def gone(failure: Failure) -> None:
            failure.trap(FileNotFoundError)
            self._content_lost(uid)
            raise NoSuchMessage(f"message UID {uid} is gone")

        return self._run(work, handle).addErrback(gone)

    # -- asynchronous: changes ---------------------------------------------------------
    def _track(self, d: defer.Deferred[Any]) -> defer.Deferred[Any]:
        """Count ``d`` as an operation in flight until it fires."""
        self._in_flight += 1

        def done(outcome: Any) -> Any:
            self._in_flight -= 1
            self._observe()
            return outcome

        return d.addBoth(done)

    def append(
        self,
        source: bytes | BinaryIO,
        flags: frozenset[str] = frozenset(),
        internal_date: float | None = None,
    ) -> defer.Deferred[int]:
        when = time.time() if internal_date is None else float(internal_date)
        flags = frozenset(flags) - {RECENT}
        if self.uids_from_storage:
            return self._track(self._append_lock.run(self._append, source, flags, when))
        return self._track(self._append(source, flags, when))

    def _append(self, source: bytes | BinaryIO, flags: frozenset[str], when: float) -> defer.Deferred[int]:
        d: defer.Deferred[Any] = defer.maybeDeferred(self._deliver, source, flags, when)
        return d.addCallback(self._delivered)

    def _delivered(self, new: NewMessage) -> Any:
        (uid,) = self._add_messages([new], None if new.uid is None else [new.uid])
        persisted = self._persist_added([uid])
        if persisted is None:
            return uid
        return persisted.addCallback(lambda _: uid)

    def set_flags(
        self, uids: Iterable[int], flags: frozenset[str], mode: str, origin: object = None
    ) -> defer.Deferred[dict[int, frozenset[str]]]:
        if mode not in FLAG_MODES:
            return defer.fail(ValueError(f"unknown flag mode {mode!r}"))
        wanted = list(dict.fromkeys(uids))
        flags = frozenset(flags) - {RECENT}
        return self._track(self._lock.run(self._set_flags_locked, wanted, flags, mode, origin))

    def _set_flags_locked(self, uids: list[int], flags: frozenset[str], mode: str, origin: object) -> Any:
        result: dict[int, frozenset[str]] = {}
        changes = []
        for uid in uids:
            row = self._rows.find(uid)
            if row < 0:
                continue
            old = self._rows.flags_of(row)
            new = apply_flag_mode(old, flags, mode)
            result[uid] = old
            if new != old:
                changes.append(FlagChange(uid, row, old, new))
        if not changes:
            return result
        d = defer.maybeDeferred(self._store_flags, changes)
        d.addCallback(self._flags_stored, result, origin)
        return d

    def _flags_stored(
        self,
        outcome: tuple[list[Applied], BaseException | None],
        result: dict[int, frozenset[str]],
        origin: object,
    ) -> Any:
        applied, error = outcome
        changed = []
        for uid, stored, extra in applied:
            row = self._rows.find(uid)
            if row < 0:
                continue
            before = self._rows.flags_of(row)
            self._rows.set_flags(row, stored)
            for column, value in extra.items():
                self._rows.extra[column][row] = value
            result[uid] = stored
            if stored != before:
                changed.append(uid)
        recorded = None
        if changed:
            recorded = self._touch(changed)
            self._notify("flags_changed", changed, origin)
        outcome_: Any = Failure(error) if error is not None else result
        if recorded is None:
            return outcome_
        return recorded.addCallback(lambda _: outcome_)

    def expunge(self, uids: Iterable[int] | None = None) -> defer.Deferred[list[int]]:
        wanted = None if uids is None else set(uids)
        return self._track(self._lock.run(self._expunge_locked, wanted))

    def _expunge_locked(self, wanted: set[int] | None) -> Any:
        rows = self._rows
        deleted = rows.table.ids_with(DELETED)
        doomed = [
            uid
            for uid, number in zip(rows.uids, rows.flags, strict=True)
            if number in deleted and (wanted is None or uid in wanted)
        ]
        return self._remove_now(doomed)

    def _remove_now(self, uids: list[int]) -> Any:
        """Remove ``uids`` (under the lock); a Deferred of the removed UIDs."""
        if not uids:
            return []
        d = defer.maybeDeferred(self._remove_messages, uids)
        d.addCallback(self._removed)
        return d

    def _removed(self, outcome: tuple[list[int], BaseException | None]) -> Any:
        removed, error = outcome
        self._expunge_recorded = None
        gone = self._remove_uids(removed)
        if gone:
            self._persist_removed(gone)
        recorded, self._expunge_recorded = self._expunge_recorded, None
        result: Any = Failure(error) if error is not None else gone
        if recorded is None:
            return result
        return recorded.addCallback(lambda _: result)

    @defer.inlineCallbacks
    def copy_to(self, uids: Iterable[int], target: IStoreMailbox) -> Any:
        pairs: list[tuple[int, int]] = []
        try:
            for uid in sorted(set(uids)):
                record = self.message(uid)
                if record is None:
                    continue
                try:
                    source = yield self._content(uid, self._source_blocking)
                except NoSuchMessage:
                    continue  # expunged meanwhile
                try:
                    new = yield defer.maybeDeferred(target.append, source, record.flags, record.internal_date)
                finally:
                    source.close()
                pairs.append((uid, new))
        except Exception as error:
            if pairs:
                yield take_back_copies(target, [new for _, new in pairs])
            raise error
        return pairs

    @defer.inlineCallbacks
    def replace_message(self, uid: int, source: bytes | BinaryIO) -> Any:
        record = self.message(uid)
        if record is None:
            raise NoSuchMessage(f"no message with UID {uid}")
        new_uid = yield self.append(source, record.flags, record.internal_date)
        yield self._track(self._lock.run(self._remove_now, [uid]))
        return new_uid

    def refresh(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    # -- backend hooks -------------------------------------------------------------------
    def _content_handle(self, row: int) -> Any:
        """(Reactor) what the content hooks need to find the content of ``row``;
        compared for equality to notice a rename."""
        raise NotImplementedError

    def _read_blocking(self, handle: Any) -> bytes:
        """(Thread) the whole message in wire form; FileNotFoundError if missing."""
        raise NotImplementedError

    def _read_cached(self, handle: Any) -> bytes | None:
        """(Reactor) the whole message in wire form if it can be had without
        waiting for a disk or a server (the page cache), else None."""
        return None

    def _open_blocking(self, handle: Any) -> IMessageReader:
        """(Thread) a reader over the message (default: over ``_read_blocking``)."""
        return BytesReader(self._read_blocking(handle))

    def _source_blocking(self, handle: Any) -> BinaryIO:
        """(Thread) a binary file of the message in wire form, for copying."""
        return io.BytesIO(self._read_blocking(handle))

    def _deliver(
        self, source: bytes | BinaryIO, flags: frozenset[str], internal_date: float
    ) -> NewMessage | defer.Deferred[NewMessage]:
        """Store a message durably (the UID is given afterwards, in order)."""
        raise NotImplementedError

    def _store_flags(self, changes: list[FlagChange]) -> Any:
        """Persist ``changes`` (in one blocking call); ``(applied, error)``."""
        return [(change.uid, change.new, {}) for change in changes], None

    def _remove_messages(self, uids: list[int]) -> Any:
        """Remove the contents of ``uids``; ``(removed, error)``.  Stop at the
        first failure: what was removed stays removed."""
        raise NotImplementedError

    def _persist_added(self, uids: list[int]) -> defer.Deferred[Any] | None:
        """Record the UIDs of new messages; a Deferred the append waits for."""
        return None

    def _persist_removed(self, uids: list[int]) -> None:
        """Record that ``uids`` are gone (nothing waits for it)."""

    def _recent_claimed(self) -> None:
        """A session claimed the \\Recent messages (``_first_recent`` moved)."""

    def _content_lost(self, uid: int) -> None:
        """The content of ``uid`` vanished behind the store's back."""
