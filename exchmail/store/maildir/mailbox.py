"""MaildirMailbox: the shared index of one Maildir folder.

The index lives in memory (see :class:`~exchmail.store.index.IndexedMailbox`);
this class keeps it in step with the folder on disk.  A record's ``key`` is
the message's current file name in ``cur/``.  Slow work (delivery, scans)
runs through ``run_blocking``; its results are applied to the index in
callbacks, i.e. on the reactor thread, so the index is only ever changed
from one thread.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

from twisted.internet import defer

from exchmail.errors import NoSuchMailbox, NoSuchMessage
from exchmail.store.index import IndexedMailbox, MessageRecord
from exchmail.store.maildir import uidlist
from exchmail.store.maildir.deliver import deliver, open_wire
from exchmail.store.maildir.filenames import (
    KeywordMap,
    info_letters,
    split_name,
    unique_name,
    unique_part,
)
from exchmail.store.maildir.layout import KEYWORDS, atomic_write
from exchmail.store.maildir.scan import FileInfo, Scan, Stamp, dir_stamp, scan

RunBlocking = Callable[..., "defer.Deferred[Any]"]

# A directory changed this recently may change again within the same
# mtime tick without its mtime moving, so a stamp that young is not trusted
# and a refresh rescans.  The tick is one or two seconds on file systems
# with whole-second times, a few milliseconds (the kernel's timer tick) on
# those with nanosecond fields.
_COARSE_TICK_NS = 2_000_000_000
_FINE_TICK_NS = 50_000_000


def run_sync(f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
    """The default ``run_blocking``: call ``f`` now, wrap the outcome."""
    return defer.maybeDeferred(f, *args)


def base_name(filename: str) -> str:
    """The part of a message file name that never changes."""
    return split_name(filename)[0]


def filename_of(record: MessageRecord) -> str:
    """The current file name (in ``cur/``) that a record's key holds."""
    assert isinstance(record.key, str)
    return record.key


class MaildirMailbox(IndexedMailbox):
    """One Maildir++ folder (or the INBOX maildir), shared by all sessions.

    Built by the account from an initial :func:`scan`; use
    :meth:`refresh` to pick up changes made by other programs.
    """

    def __init__(self, name: str, path: Path, run_blocking: RunBlocking,
                 initial: Scan) -> None:
        stored = initial.uid_list
        dirty = stored is None
        if stored is None:
            # No (usable) UID list: old UIDs are unknown, so start afresh.
            stored = uidlist.UidList(uidlist.new_uid_validity())
        super().__init__(name, stored.uid_validity, stored.uid_next)
        self.path = path
        self.gone = False
        self._run = run_blocking
        self._by_base: dict[str, int] = {}
        self._pending: set[str] = set()  # unique names being delivered
        self._keywords = initial.keywords
        self._stamp: Stamp | None = None
        self._lock = defer.DeferredLock()
        self._load(initial, stored, dirty)

    # -- loading and refreshing ----------------------------------------
    def _record(self, uid: int, info: FileInfo) -> MessageRecord:
        assert info.internal_date is not None
        self._by_base[base_name(info.filename)] = uid
        letters = info_letters(split_name(info.filename)[1])
        return MessageRecord(uid, self._keywords.flags(letters), info.internal_date,
                             info.stored_size, info.exact_size, key=info.filename)

    def _adopt(self, files: dict[str, FileInfo]) -> tuple[list[MessageRecord], list[int]]:
        """Give UIDs (in file name order) to files the index does not know."""
        records, recent = [], []
        for base, info in sorted(files.items(), key=lambda item: item[1].filename):
            if base in self._by_base or unique_part(base) in self._pending:
                continue  # indexed meanwhile, or our own delivery in flight
            if info.internal_date is None:
                # Listed as known but no longer indexed (expunged since the
                # scan began): look again next time rather than guess.
                self._stamp = None
                continue
            record = self._record(self._allocate_uid(), info)
            records.append(record)
            if info.from_new:
                recent.append(record.uid)
        return records, recent

    def _publish(self, records: list[MessageRecord], recent: list[int]) -> None:
        # Mark recent first: _index_added would notify before we could.
        self._recent.update(recent)
        self._index_added(records, recent=False)

    def _load(self, initial: Scan, stored: uidlist.UidList, dirty: bool) -> None:
        files = dict(initial.files)
        records, recent = [], []
        for uid, base in stored.entries:
            info = files.pop(base, None)
            if info is None or base in self._by_base:
                dirty = True  # the file is gone: forget its line
                continue
            records.append(self._record(uid, info))
            if info.from_new:
                recent.append(uid)
        added, added_recent = self._adopt(files)
        self._publish(records + added, recent + added_recent)
        if dirty or added:
            self._write_uid_list()
        self._set_stamp(initial.stamp)

    def _set_stamp(self, stamp: Stamp | None) -> None:
        self._stamp = stamp

    @staticmethod
    def _settled(stamp: Stamp) -> bool:
        """Whether a stamp is old enough that an unchanged mtime means no change."""
        coarse = all(mtime % 1_000_000_000 == 0 for mtime in stamp)
        tick = _COARSE_TICK_NS if coarse else _FINE_TICK_NS
        return time.time_ns() - max(stamp) > tick

    def _track_own_change(self, before: int | None, after: int | None) -> None:
        """Our own change moved cur/'s mtime from ``before`` to ``after``: if
        nothing else had changed cur/ since the last scan, keep trusting the
        stamp, so the next refresh need not rescan the whole folder."""
        stamp = self._stamp
        if stamp is not None and before is not None and after is not None and stamp[1] == before:
            self._stamp = (stamp[0], after)
        elif before != after:
            self._stamp = None

    def _cur_mtime(self) -> int | None:
        try:
            return os.stat(self.path / "cur").st_mtime_ns
        except FileNotFoundError:
            return None

    def refresh(self) -> defer.Deferred[None]:
        """Rescan the folder if ``new/`` or ``cur/`` changed since the last scan."""
        return self._lock.run(self._refresh)

    def _refresh(self) -> defer.Deferred[None]:
        if self.gone:
            return defer.succeed(None)
        try:
            current = dir_stamp(self.path)
            if current == self._stamp and self._settled(current):
                return defer.succeed(None)
        except FileNotFoundError:
            return defer.succeed(None)  # removed behind our back; nothing to scan
        known = frozenset(self._by_base)
        d = self._run(scan, self.path, known, False)
        d.addCallback(self._apply_rescan)
        return d

    def _apply_rescan(self, found: Scan) -> None:
        if self.gone:
            return
        if found.keywords.extends(self._keywords):
            self._keywords = found.keywords  # keywords added by another program
        self._set_stamp(found.stamp)
        files = dict(found.files)
        cur = self.path / "cur"
        removed, changed = [], []
        for uid in list(self._uids):
            record = self._records[uid]
            info = files.pop(base_name(filename_of(record)), None)
            if info is None:
                # Not listed: gone, unless it was delivered or renamed by
                # us after the listing was taken.
                if not (cur / filename_of(record)).exists():
                    removed.append(uid)
            elif info.filename != record.key and (cur / info.filename).exists():
                letters = info_letters(split_name(info.filename)[1])
                new = replace(record, flags=self._keywords.flags(letters), key=info.filename)
                self._records[uid] = new
                if new.flags != record.flags:
                    changed.append(uid)
        added, recent = self._adopt(files)
        self._index_removed(removed)
        self._publish(added, recent)
        if changed:
            self._notify("flags_changed", changed, None)
        if removed:
            self._write_uid_list()
        else:
            for record in added:
                uidlist.append(self.path, record.uid, base_name(filename_of(record)))

    # -- persistence helpers -------------------------------------------
    def _write_uid_list(self) -> None:
        entries = [(uid, base_name(filename_of(self._records[uid]))) for uid in self._uids]
        uidlist.write(self.path, uidlist.UidList(self.uid_validity, self.uid_next, entries))

    def _letters(self, flags: frozenset[str], old_letters: str = "") -> str:
        letters, changed = self._keywords.letters(flags, old_letters)
        if changed:
            atomic_write(self.path / KEYWORDS, self._keywords.serialize())
        return letters

    def _index_removed(self, removed: list[int]) -> None:
        for uid in removed:
            record = self._records.get(uid)
            if record is not None:
                self._by_base.pop(base_name(filename_of(record)), None)
        super()._index_removed(removed)

    # -- backend hooks -------------------------------------------------
    def _open(self, record: MessageRecord) -> BinaryIO:
        try:
            return open_wire(self.path / "cur" / filename_of(record))
        except FileNotFoundError:
            raise NoSuchMessage(f"message UID {record.uid} is gone") from None

    def _deliver(self, source: bytes | BinaryIO, flags: frozenset[str],
                 internal_date: float) -> defer.Deferred[MessageRecord]:
        if self.gone:
            raise NoSuchMailbox(f"mailbox {self.name!r} was deleted")
        letters = self._letters(flags)
        unique = unique_name()
        self._pending.add(unique)

        def delivered(result: tuple[tuple[str, int, int], int | None, int | None]) -> MessageRecord:
            self._pending.discard(unique)
            (filename, stored_size, exact_size), before, after = result
            self._track_own_change(before, after)
            if self.gone:
                raise NoSuchMailbox(f"mailbox {self.name!r} was deleted")
            uid = self._allocate_uid()
            uidlist.append(self.path, uid, base_name(filename))
            self._by_base[base_name(filename)] = uid
            return MessageRecord(uid, self._keywords.flags(letters), internal_date,
                                 stored_size, exact_size, key=filename)

        def failed(failure: Any) -> Any:
            self._pending.discard(unique)
            return failure

        d = self._run(self._deliver_tracked, unique, source, letters, internal_date)
        d.addCallbacks(delivered, failed)
        return d

    def _deliver_tracked(self, *args: Any) -> tuple[tuple[str, int, int], int | None, int | None]:
        """(In the thread) deliver, noting cur/'s mtime just before and after."""
        before = self._cur_mtime()
        result = deliver(self.path, *args)
        return result, before, self._cur_mtime()

    def _store_flags(self, record: MessageRecord, flags: frozenset[str]) -> MessageRecord:
        base, info = split_name(filename_of(record))
        letters = self._letters(flags, info_letters(info))
        filename = f"{base}:2,{letters}"
        if filename != record.key:
            cur = self.path / "cur"
            before = self._cur_mtime()
            try:
                (cur / filename_of(record)).rename(cur / filename)
                self._track_own_change(before, self._cur_mtime())
            except FileNotFoundError:
                # Renamed or removed by another program: keep the old state
                # and let the next refresh find out what happened.
                self._stamp = None
                return record
        return replace(record, flags=self._keywords.flags(letters), key=filename)

    def _remove(self, record: MessageRecord) -> None:
        before = self._cur_mtime()
        (self.path / "cur" / filename_of(record)).unlink(missing_ok=True)
        self._track_own_change(before, self._cur_mtime())

    def _after_remove(self, removed: list[int]) -> None:
        if removed and not self.gone:
            self._write_uid_list()

    # -- account support -----------------------------------------------
    def move_all(self, target: Path) -> tuple[list[tuple[int, str]], KeywordMap]:
        """Move every message file into ``target/cur`` and empty the index
        (renaming INBOX); return the moved ``(uid, base name)`` entries and
        the keyword map their flag letters refer to."""
        moved: list[tuple[int, str]] = []
        try:
            for uid in list(self._uids):
                key = filename_of(self._records[uid])
                (self.path / "cur" / key).rename(target / "cur" / key)
                moved.append((uid, base_name(key)))
        finally:
            self._index_removed([uid for uid, _ in moved])
            self._write_uid_list()
        return moved, self._keywords

    def moved(self, name: str, path: Path) -> None:
        """The folder was renamed: use its new name and place from now on."""
        self.name, self.path = name, path

    def deleted(self) -> None:
        """The folder was deleted: refuse further appends, stop writing."""
        self.gone = True

    def __repr__(self) -> str:
        return f"<MaildirMailbox {self.name!r} at {str(self.path)!r}>"

