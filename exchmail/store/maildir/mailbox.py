"""MaildirMailbox: the shared index of one Maildir folder.

The index is the columnar one of :class:`~exchmail.store.index.IndexedMailbox`
plus three Maildir columns: where a message's base name lies in one blob of
names (a ``bytearray``: a few dozen octets per message, no object each),
and the number of its info part (``:2,<letters>``), from which the current
file name is rebuilt on demand.

Every file operation runs through ``run_blocking`` (:mod:`.deliver`,
:mod:`.scan`), and its result is applied to the index in a callback on
the reactor thread.  Own changes to ``cur/`` move the folder's stamp
along, so that the next refresh need not list the folder again; changes
by other programs show up as a different stamp or, while listeners are
registered, as inotify events (:mod:`.watch`).
"""

from __future__ import annotations

import os
import time
from array import array
from pathlib import Path
from typing import Any, BinaryIO

from twisted.internet import defer
from twisted.python.failure import Failure

from exchmail.errors import NoSuchMailbox
from exchmail.interfaces import IMessageReader
from exchmail.store.cached import read_cached
from exchmail.store.crlf import to_crlf
from exchmail.store.index import FlagChange, IndexedMailbox, NewMessage
from exchmail.store.maildir import uidlist
from exchmail.store.maildir.deliver import (
    Delivered,
    KeywordSink,
    KeywordWrite,
    Outcome,
    deliver,
    open_wire,
    read_wire,
    rename_all,
    unlink_all,
)
from exchmail.store.maildir.details import DetailsWaiters
from exchmail.store.maildir.filenames import KeywordMap, split_name, unique_name, unique_part
from exchmail.store.maildir.scan import (
    BASE_LEN,
    BASE_START,
    EXTRA_COLUMNS,
    INFO,
    FileInfo,
    Later,
    Loaded,
    Rescan,
    Snapshot,
    Stamp,
    decode_base,
    encode_base,
    learn_details,
    letters_of,
    rescan,
    stamp_unchanged,
)
from exchmail.store.maildir.snapshot import IndexSnapshot
from exchmail.store.maildir.watch import OwnChanges
from exchmail.store.readers import FileReader
from exchmail.store.runner import RunBlocking, run_sync
from exchmail.uidsets import format_uid_set

__all__ = ["MaildirMailbox", "RunBlocking", "run_sync"]

#: M/X lines the UID list may gain before a rewrite folds them (at least).
MODSEQ_LINES = 4096
#: Outside changes seen by inotify within this many seconds share one scan.
WATCH_DELAY = 0.05
#: Files whose dates and sizes one thread call learns after a first load.
DETAILS_BATCH = 5000


class MaildirMailbox(IndexedMailbox):
    """One Maildir++ folder (or the INBOX maildir), shared by all sessions.

    Built by the account from what :func:`~.scan.load` read in a thread.

    :param reactor: for the short delay that gathers inotify events into one
        scan; ``None`` when nothing watches.
    :param watcher: the store's :class:`~.watch.MaildirWatcher`, or ``None``.
    """

    extra_columns = EXTRA_COLUMNS

    def __init__(
        self,
        name: str,
        path: Path,
        run_blocking: RunBlocking,
        loaded: Loaded,
        reactor: Any = None,
        watcher: Any = None,
    ) -> None:
        built = loaded.builder
        super().__init__(
            name,
            loaded.uid_validity,
            loaded.uid_next,
            run_blocking,
            built.rows,
            loaded.first_recent,
            loaded.highest_modseq,
            loaded.expunged,
            loaded.expunge_floor,
        )
        self.path = path
        self.gone = False
        self.moves = 0  # RENAMEs so far (a delivery under way may need to be made again)
        self._blob = built.blob
        self._blob_garbage = 0
        self._infos = built.infos
        self._keywords: KeywordMap = built.keywords
        self._kw_version = self._kw_confirmed = 0
        self._kw_sink = KeywordSink()
        self._pending: set[str] = set()  # unique names being delivered
        self._stamp: Stamp | None = loaded.stamp
        self._stamp_trusted = loaded.trusted
        self._stale_lines = 0  # UID list lines of expunged messages
        self._modseq_lines = 0  # M and X lines appended since the last rewrite
        #: The UID list's writer (the account pauses it while the folder moves).
        self.uidlist = uidlist.UidListWriter(self._run, lambda: self.path, self._index_snapshot)
        self._reactor = reactor
        self._watcher = watcher
        self._watch_mode: str | None = None  # "inotify" or "poll" while watched
        self._own = OwnChanges()
        self._scan_call: Any = None
        self._details = DetailsWaiters(name)
        if loaded.later.uids:
            self._details.start(self._track(self._lock.run(self._learn_details, loaded.later)))

    def _index_snapshot(self) -> IndexSnapshot:
        expunged, floor = self.expunge_memory()
        header = uidlist.UidList(self.uid_validity, self.uid_next, first_recent=self._first_recent)
        header.highest_modseq, header.expunged, header.expunge_floor = self.highest_modseq(), expunged, floor
        rows = self._rows
        starts, lens = rows.extra[BASE_START][:], rows.extra[BASE_LEN][:]
        return IndexSnapshot(header, rows.uids[:], rows.modseqs[:], starts, lens, bytes(self._blob))

    # -- dates and sizes the first load left for later ---------------------------------------
    def details_known(self) -> defer.Deferred[None] | None:
        """``None`` once every row's internal date and sizes are true; until
        then a Deferred that fires when they are (see :func:`.scan.load`)."""
        return self._details.wait()

    @defer.inlineCallbacks
    def _learn_details(self, later: Later) -> Any:
        # Under the mailbox lock: no rescan, flag change or expunge meanwhile.
        for start in range(0, len(later.uids), DETAILS_BATCH):
            rows = [self._rows.find(uid) for uid in later.uids[start : start + DETAILS_BATCH]]
            rows = [row for row in rows if row >= 0]  # (nothing removes rows meanwhile)
            found = yield self._run(learn_details, self.path, [self._filename(row) for row in rows])
            if self.gone:
                raise NoSuchMailbox(f"mailbox {self.name!r} was deleted")
            self._apply_details(rows, found)

    def _apply_details(self, rows_learnt: list[int], found: list[FileInfo | None]) -> None:
        rows = self._rows
        for row, info in zip(rows_learnt, found, strict=True):
            if info is None:
                self._suspect()  # gone: the next scan drops its row
                continue
            rows.dates[row] = info.internal_date
            rows.stored[row] = info.stored_size
            rows.exact[row] = info.exact_size

    # -- names and content -------------------------------------------------------------
    def _base(self, row: int) -> str:
        start = self._rows.extra[BASE_START][row]
        return decode_base(self._blob[start : start + self._rows.extra[BASE_LEN][row]])

    def _filename(self, row: int) -> str:
        return self._base(row) + self._infos.names[self._rows.extra[INFO][row]]

    def filename(self, uid: int) -> str | None:
        """The current file name (in ``cur/``) of ``uid``, or ``None``."""
        row = self._rows.find(uid)
        return None if row < 0 else self._filename(row)

    def _append_base(self, base: str, info: str) -> tuple[int, int, int]:
        """Store a new row's name; its extra column values."""
        name = encode_base(base)
        start = len(self._blob)
        self._blob += name
        return start, len(name), self._infos.id(info)

    def _content_handle(self, row: int) -> tuple[str, int, int]:
        # A plain string join: this runs for every message read.
        rows = self._rows
        return f"{self.path}/cur/{self._filename(row)}", rows.exact[row], rows.stored[row]

    def _read_blocking(self, handle: tuple[str, int, int]) -> bytes:
        return read_wire(handle[0], handle[1])

    def _read_cached(self, handle: tuple[str, int, int]) -> bytes | None:
        data = read_cached(handle[0], handle[2])
        return None if data is None else to_crlf(data)

    def _open_blocking(self, handle: tuple[str, int, int]) -> IMessageReader:
        path, size, _ = handle
        source = open(path, "rb")
        try:
            return FileReader(self._run, source, size, True, name=path).prime()
        except BaseException:
            source.close()
            raise

    def _source_blocking(self, handle: tuple[str, int, int]) -> BinaryIO:
        return open_wire(handle[0])

    # -- keywords ---------------------------------------------------------------------------
    def _letters(self, flags: frozenset[str], old_letters: str = "") -> str:
        letters, changed = self._keywords.letters(flags, old_letters)
        if changed:
            self._kw_version += 1
        return letters

    def _kw_payload(self) -> KeywordWrite | None:
        """The keywords file to write before new letters are used, if not yet written."""
        if self._kw_version > self._kw_confirmed:
            return self._kw_version, self._keywords.serialize()
        return None

    def _confirm(self, payload: KeywordWrite | None) -> None:
        if payload is not None:
            self._kw_confirmed = max(self._kw_confirmed, payload[0])

    # -- appending --------------------------------------------------------------------------
    def _deliver(
        self, source: bytes | BinaryIO, flags: frozenset[str], internal_date: float
    ) -> defer.Deferred[NewMessage]:
        if self.gone:
            raise NoSuchMailbox(f"mailbox {self.name!r} was deleted")
        letters = self._letters(flags)
        payload = self._kw_payload()
        unique = self._new_unique()
        d = self._run(deliver, self.path, unique, source, letters, internal_date, payload, self._kw_sink)
        d.addBoth(self._delivered_file, unique, letters, internal_date, payload)
        d.addErrback(self._deliver_moved, self.moves, unique, source, letters, internal_date, payload)
        return d

    def _new_unique(self) -> str:
        unique = unique_name()
        self._pending.add(unique)
        if self._watch_mode == "inotify":
            self._own.expect_delivery(unique)
        return unique

    def _deliver_moved(self, failure: Failure, moves: int, unique: str, *message: Any) -> Any:
        """A RENAME or DELETE may have moved the folder under the delivery:
        once it is done (it holds the lock), deliver at the new place, or
        answer that the mailbox is gone."""
        failure.trap(FileNotFoundError)
        return self._lock.run(self._deliver_again, failure, moves, unique, *message)

    def _deliver_again(self, failure: Failure, moves: int, unique: str, *message: Any) -> Any:
        if self.gone:
            raise NoSuchMailbox(f"mailbox {self.name!r} was deleted")
        if self.moves == moves:  # not a move of ours: is the folder still there?
            return self._run(os.path.isdir, self.path).addCallback(self._gone_or, failure)
        source, letters, internal_date, payload = message
        again = self._new_unique()
        d = self._run(
            deliver, self.path, again, source, letters, internal_date, payload, self._kw_sink, unique
        )
        return d.addBoth(self._delivered_file, again, letters, internal_date, payload)

    def _gone_or(self, exists: bool, failure: Failure) -> Failure:
        if not exists:  # moved or removed behind this object's back
            raise NoSuchMailbox("the mailbox is gone")
        return failure

    def _delivered_file(
        self,
        outcome: Delivered | Failure,
        unique: str,
        letters: str,
        internal_date: float,
        payload: KeywordWrite | None,
    ) -> Any:
        self._pending.discard(unique)
        if isinstance(outcome, Failure):
            return outcome
        self._confirm(payload)
        self._track_own_change(outcome.before, outcome.after)
        if self.gone:
            raise NoSuchMailbox(f"mailbox {self.name!r} was deleted")
        base = split_name(outcome.filename)[0]
        extra = self._append_base(base, outcome.filename[len(base) :])
        return NewMessage(
            self._keywords.flags(letters), internal_date, outcome.stored_size, outcome.exact_size, extra
        )

    def _persist_added(self, uids: list[int]) -> defer.Deferred[Any] | None:
        lines, modseqs = [], set()
        for uid in uids:
            row = self._rows.find(uid)
            if row >= 0:
                lines.append(f"{uid} {self._base(row)}")
                modseqs.add(self._rows.modseqs[row])
        if not lines:
            return None
        for modseq in sorted(modseqs):
            added = [uid for uid, m in self.modseqs(uids) if m == modseq]
            lines.append(f"M{modseq} {format_uid_set(added)}")
        return self.uidlist.append(lines)

    def _persist_modseq(self, kind: str, modseq: int, uids: list[int]) -> defer.Deferred[Any] | None:
        if not uids or self.gone:
            return None
        # Flag changes add a line each: once they outnumber the messages
        # (and a few thousand), one rewrite folds them into one line per MODSEQ.
        self._modseq_lines += 1
        if self._modseq_lines > max(len(self._rows), MODSEQ_LINES):
            self._modseq_lines = 0
            return self.uidlist.rewrite()
        return self.uidlist.append([f"{kind}{modseq} {format_uid_set(sorted(uids))}"])

    # -- flags ------------------------------------------------------------------------------
    def _store_flags(self, changes: list[FlagChange]) -> Any:
        plan = []
        renames: list[tuple[str, str]] = []
        for change in changes:
            base = self._base(change.row)
            info = self._infos.names[self._rows.extra[INFO][change.row]]
            letters = self._letters(change.new, letters_of(info))
            new_info = f":2,{letters}"
            step = None
            if new_info != info:
                step = len(renames)
                renames.append((base + info, base + new_info))
            plan.append((change.uid, self._keywords.flags(letters), {INFO: self._infos.id(new_info)}, step))
        if not renames or self.gone:
            return [(uid, flags, extra) for uid, flags, extra, _ in plan if not self.gone], None
        payload = self._kw_payload()
        if self._watch_mode == "inotify":
            self._own.expect(("cur", name) for pair in renames for name in pair)
        d = self._run(rename_all, self.path, payload, self._kw_sink, renames)
        d.addCallback(self._renamed, plan, payload)
        return d

    def _renamed(self, outcome: Outcome, plan: list[Any], payload: KeywordWrite | None) -> Any:
        self._confirm(payload)
        self._track_own_change(outcome.before, outcome.after)
        applied = []
        for uid, flags, extra, step in plan:
            if step is None or (step < len(outcome.done) and outcome.done[step]):
                applied.append((uid, flags, extra))
            elif step < len(outcome.done):
                # Renamed or removed by another program: keep the old state
                # and let a scan find out what happened.
                self._suspect()
        return applied, outcome.error

    # -- expunging --------------------------------------------------------------------------
    def _remove_messages(self, uids: list[int]) -> Any:
        names = [self._filename(self._rows.find(uid)) for uid in uids]
        if self._watch_mode == "inotify":
            self._own.expect(("cur", name) for name in names)
        d = self._run(unlink_all, self.path, names)
        d.addCallback(self._unlinked, uids)
        return d

    def _unlinked(self, outcome: Outcome, uids: list[int]) -> Any:
        self._track_own_change(outcome.before, outcome.after)
        return [uid for uid, done in zip(uids, outcome.done, strict=False) if done], outcome.error

    def _remove_uids(self, uids: Any, modseq: int | None = None) -> list[int]:
        uids = list(uids)
        lens = self._rows.extra[BASE_LEN]
        for uid in uids:
            row = self._rows.find(uid)
            if row >= 0:
                self._blob_garbage += lens[row]
        gone = super()._remove_uids(uids, modseq)
        self._compact_blob()
        return gone

    def _compact_blob(self) -> None:
        """Drop the names of removed rows once they are half the blob."""
        if self._blob_garbage < 65536 or self._blob_garbage * 2 < len(self._blob):
            return
        blob, fresh, starts = self._blob, bytearray(), array("Q")
        for start, size in zip(self._rows.extra[BASE_START], self._rows.extra[BASE_LEN], strict=True):
            starts.append(len(fresh))
            fresh += blob[start : start + size]
        self._blob, self._blob_garbage = fresh, 0
        self._rows.extra[BASE_START] = starts

    def _persist_removed(self, uids: list[int]) -> None:
        # The lines of expunged messages are harmless (their files are gone),
        # so the file is rewritten only when they make up half of it.
        self._stale_lines += len(uids)
        if self._stale_lines * 2 >= len(self._rows):
            self._stale_lines = 0
            self.uidlist.rewrite()

    def _recent_claimed(self) -> None:
        self.uidlist.append([f"R{self._first_recent}"])

    # -- refreshing -------------------------------------------------------------------------
    def _track_own_change(self, before: int | None, after: int | None) -> None:
        """Our own change moved cur/'s mtime from ``before`` to ``after``: if
        nothing else had changed cur/ since the last scan, keep the stamp, so
        the next refresh need not rescan the whole folder."""
        stamp = self._stamp
        if stamp is not None and before is not None and after is not None and stamp[1] == before:
            self._stamp = (stamp[0], after)
        elif before != after:
            self._stamp = None

    def _suspect(self) -> None:
        """Something changed that the index does not know of: scan soon."""
        self._stamp = None
        if self._watch_mode is not None:
            self._schedule_scan()

    def _content_lost(self, uid: int) -> None:
        self._suspect()

    def refresh(self) -> defer.Deferred[None]:
        """Rescan the folder if ``new/`` or ``cur/`` changed since the last scan."""
        return self._track(self._lock.run(self._refresh_locked, False))

    def _snapshot(self) -> Snapshot:
        extra = self._rows.extra
        return Snapshot(
            len(self._rows),
            self._rows.uids,
            self._blob,
            extra[BASE_START],
            extra[BASE_LEN],
            extra[INFO],
            list(self._infos.names),
        )

    def _refresh_locked(self, force: bool) -> Any:
        if self.gone:
            return None
        # While inotify watches, an event reports every outside change, so
        # an unchanged stamp means no change even if it is young.
        trust = self._stamp_trusted or self._watch_mode == "inotify"
        if not force and self._watch_mode != "inotify" and trust and stamp_unchanged(self.path, self._stamp):
            return None  # the kernel's caches say so: no trip to a thread
        snapshot = self._snapshot()
        if self._watch_mode == "inotify":
            self._own.scan_started()
        d = self._run(rescan, self.path, None if force else self._stamp, trust, snapshot, time.time())
        d.addBoth(self._rescanned, snapshot.count)
        return d

    def _rescanned(self, outcome: Rescan | Failure | None, count: int) -> Any:
        touched = outcome.touched if isinstance(outcome, Rescan) else []
        unexplained = self._own.scan_finished(touched)
        if isinstance(outcome, Rescan) and not self.gone:
            self._apply_rescan(outcome, count)
        if unexplained and self._watch_mode is not None:
            self._schedule_scan()
        return outcome if isinstance(outcome, Failure) else None

    def _apply_rescan(self, found: Rescan, count: int) -> None:
        if found.keywords.extends(self._keywords) and (found.keywords.by_index != self._keywords.by_index):
            self._keywords = found.keywords  # keywords added by another program
            self._kw_version += 1
            self._kw_confirmed = self._kw_version
        self._stamp, self._stamp_trusted = found.stamp, found.trusted
        uids = self._rows.uids
        gone = [uids[row] for row in found.missing]
        changes = [(uids[row], filename) for row, filename in found.changed]
        ours = {self._base(row) for row in range(count, len(self._rows))}
        if gone:
            self._remove_uids(gone)
        self._adopt(found.found, ours)
        self._flags_from_names(changes)
        if gone:
            self._persist_removed(gone)

    def _adopt(self, files: list[FileInfo], ours: set[str]) -> None:
        """Give UIDs to files the index does not know (in the scan's order)."""
        messages = []
        for info in files:
            base = split_name(info.filename)[0]
            if base in ours or unique_part(base) in self._pending:
                continue  # our own delivery, indexed meanwhile or in flight
            extra = self._append_base(base, info.filename[len(base) :])
            flags = self._keywords.flags(letters_of(info.filename[len(base) :]))
            messages.append(NewMessage(flags, info.internal_date, info.stored_size, info.exact_size, extra))
        added = self._add_messages(messages)
        if added:
            self._persist_added(added)

    def _flags_from_names(self, changes: list[tuple[int, str]]) -> None:
        """Another program renamed files (changed their flag letters)."""
        changed = []
        for uid, filename in changes:
            row = self._rows.find(uid)
            base = self._base(row) if row >= 0 else None
            if base is None or not filename.startswith(base):
                continue
            info = filename[len(base) :]
            self._rows.extra[INFO][row] = self._infos.id(info)
            flags = self._keywords.flags(letters_of(info))
            if flags != self._rows.flags_of(row):
                self._rows.set_flags(row, flags)
                changed.append(uid)
        if changed:
            self._touch(changed)
            self._notify("flags_changed", changed, None)

    # -- watching ------------------------------------------------------------------------------
    def _listening(self, active: bool) -> None:
        if self._watcher is not None:
            if active and not self.gone:
                self._watch_mode = self._watcher.watch(self)
            else:
                self._stop_watching()
        super()._listening(active)

    def _stop_watching(self) -> None:
        if self._watcher is not None and self._watch_mode is not None:
            self._watcher.unwatch(self)
        self._watch_mode = None
        if self._scan_call is not None and self._scan_call.active():
            self._scan_call.cancel()
        self._scan_call = None

    def outside_event(self, sub: str | None, name: str | None) -> None:
        """(From the watcher) ``sub/name`` changed; ``None``: something did."""
        if sub is not None and name is not None and self._own.explained(sub, name):
            return
        self._schedule_scan()

    def _schedule_scan(self) -> None:
        if self._scan_call is None and self._reactor is not None:
            self._scan_call = self._reactor.callLater(WATCH_DELAY, self._watch_scan)

    def _watch_scan(self) -> None:
        self._scan_call = None
        if self.gone:
            return
        d = self._track(self._lock.run(self._refresh_locked, True))
        d.addErrback(
            lambda failure: self.log.failure(
                "scanning {path} after an outside change failed", failure, path=str(self.path)
            )
        )

    def watch_again(self) -> None:
        """(From the watcher) the watch broke: watch anew, or poll."""
        if self._watch_mode is not None and self._watcher is not None and not self.gone:
            self._watch_mode = self._watcher.watch(self)
            self._schedule_scan()  # changes made meanwhile went unseen

    # -- account support ----------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return super().busy or bool(self._pending) or not self.uidlist.idle

    def moved(self, name: str, path: Path) -> None:
        """The folder was renamed: use its new name and place from now on."""
        watching = self._watch_mode is not None
        if watching:
            self._stop_watching()
        self.name, self.path = name, path
        self.moves += 1
        if watching and self._watcher is not None:
            self._watch_mode = self._watcher.watch(self)

    def deleted(self) -> None:
        """The folder was deleted: refuse further appends, stop writing and watching."""
        self.gone = True
        self._stop_watching()
        self.uidlist.stop()

    def message_files(self) -> tuple[list[int], list[str], KeywordMap]:
        """The UIDs and file names of every message, and the keyword map (RENAME INBOX)."""
        rows = range(len(self._rows))
        return list(self._rows.uids), [self._filename(row) for row in rows], self._keywords

    def emptied(self, moved: list[int]) -> None:
        """``moved`` UIDs' files went to another folder (RENAME INBOX)."""
        self._remove_uids(moved)
        self._stale_lines = 0
        self.uidlist.rewrite()

    def __repr__(self) -> str:
        return f"<MaildirMailbox {self.name!r} at {str(self.path)!r}>"
