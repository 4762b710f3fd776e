"""The shared in-memory index that every store's mailbox is built on.

One :class:`IndexedMailbox` exists per open mailbox and is shared by all
sessions on it.  It keeps the UID list (copy-on-write, so sessions can keep
numbering messages by an old list until they have told their client about
an expunge), the message records and the listeners.  Backends subclass it
and implement the persistence hooks (``_deliver``, ``_store_flags``,
``_remove``, ``_open``).
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from exchmail.errors import NoSuchMessage
from exchmail.interfaces import IMailboxListener, IStoreMailbox, IStoreMessage

DELETED = "\\Deleted"
SYSTEM_FLAGS = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})


@implementer(IStoreMessage)
@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One message's metadata; ``key`` is the backend's handle on the content."""

    uid: int
    flags: frozenset[str]
    internal_date: float
    stored_size: int
    exact_size: int
    key: object = None


def apply_flag_mode(current: frozenset[str], flags: frozenset[str], mode: str) -> frozenset[str]:
    """Compute the flags after a STORE-like change (``replace``/``add``/``remove``)."""
    if mode == "replace":
        return flags
    if mode == "add":
        return current | flags
    if mode == "remove":
        return current - flags
    raise ValueError(f"unknown flag mode {mode!r}")


@implementer(IStoreMailbox)
class IndexedMailbox:
    """Index, listeners and the store-independent half of :class:`IStoreMailbox`."""

    log = Logger(namespace="exchmail.store")

    def __init__(self, name: str, uid_validity: int, uid_next: int = 1) -> None:
        self.name = name
        self.uid_validity = uid_validity
        self.uid_next = uid_next
        self._uids: array[int] = array("Q")
        self._records: dict[int, MessageRecord] = {}
        self._recent: set[int] = set()
        self._listeners: list[IMailboxListener] = []

    # -- reading -------------------------------------------------------
    def uids(self) -> Sequence[int]:
        return self._uids

    def message(self, uid: int) -> MessageRecord | None:
        return self._records.get(uid)

    def open_message(self, uid: int) -> BinaryIO:
        record = self._records.get(uid)
        if record is None:
            raise NoSuchMessage(f"no message with UID {uid}")
        return self._open(record)

    def recent_count(self) -> int:
        return len(self._recent)

    def claim_recent(self) -> frozenset[int]:
        claimed = frozenset(self._recent)
        self._recent.clear()
        return claimed

    # -- listeners -----------------------------------------------------
    def add_listener(self, listener: IMailboxListener) -> None:
        if listener not in self._listeners:
            self._listeners.append(listener)

    def remove_listener(self, listener: IMailboxListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self, method: str, *args: object) -> None:
        for listener in list(self._listeners):
            try:
                getattr(listener, method)(self, *args)
            except Exception:
                self.log.failure("listener {listener!r} failed in {method}",
                                 listener=listener, method=method)

    # -- changing ------------------------------------------------------
    def _index_added(self, records: Iterable[MessageRecord], recent: bool = True) -> list[int]:
        """Put newly stored records into the index and tell the listeners."""
        added = []
        for record in sorted(records, key=lambda r: r.uid):
            self._uids.append(record.uid)
            self._records[record.uid] = record
            self.uid_next = max(self.uid_next, record.uid + 1)
            if recent:
                self._recent.add(record.uid)
            added.append(record.uid)
        if added:
            self._notify("messages_added", added)
        return added

    def _index_removed(self, removed: list[int]) -> None:
        """Drop UIDs from the index (copy-on-write) and tell the listeners."""
        if not removed:
            return
        gone = set(removed)
        for uid in removed:
            self._records.pop(uid, None)
            self._recent.discard(uid)
        self._uids = array("Q", (uid for uid in self._uids if uid not in gone))
        self._notify("messages_expunged", sorted(removed))

    def _allocate_uid(self) -> int:
        uid = self.uid_next
        self.uid_next += 1
        return uid

    def append(self, source: bytes | BinaryIO, flags: frozenset[str] = frozenset(),
               internal_date: float | None = None) -> defer.Deferred[int]:
        when = time.time() if internal_date is None else internal_date
        d: defer.Deferred[Any] = defer.maybeDeferred(self._deliver, source, frozenset(flags), when)
        return d.addCallback(lambda record: self._index_added([record])[0])

    def set_flags(self, uids: Iterable[int], flags: frozenset[str], mode: str,
                  origin: object = None) -> dict[int, frozenset[str]]:
        result: dict[int, frozenset[str]] = {}
        changed = []
        for uid in uids:
            record = self._records.get(uid)
            if record is None:
                continue
            new = apply_flag_mode(record.flags, frozenset(flags), mode)
            if new != record.flags:
                record = self._store_flags(record, new)
                self._records[uid] = record
                changed.append(uid)
            result[uid] = record.flags
        if changed:
            self._notify("flags_changed", changed, origin)
        return result

    def expunge(self, uids: Iterable[int] | None = None) -> defer.Deferred[list[int]]:
        pool = self._uids if uids is None else sorted(set(uids))
        doomed = [uid for uid in pool
                  if uid in self._records and DELETED in self._records[uid].flags]
        return defer.maybeDeferred(self._remove_all, doomed)

    def _remove_all(self, doomed: list[int]) -> list[int]:
        """Remove message by message; on failure keep what went and re-raise."""
        removed: list[int] = []
        try:
            for uid in doomed:
                self._remove(self._records[uid])
                removed.append(uid)
        finally:
            self._index_removed(removed)
            self._after_remove(removed)
        return removed

    @defer.inlineCallbacks
    def copy_to(self, uids: Iterable[int], target: IStoreMailbox):
        pairs = []
        for uid in sorted(set(uids)):
            record = self._records.get(uid)
            if record is None:
                continue
            with self._open(record) as source:
                new_uid = yield defer.maybeDeferred(
                    target.append, source, record.flags, record.internal_date)
            pairs.append((uid, new_uid))
        return pairs

    @defer.inlineCallbacks
    def replace_message(self, uid: int, source: bytes | BinaryIO):
        record = self._records.get(uid)
        if record is None:
            raise NoSuchMessage(f"no message with UID {uid}")
        new_uid = yield self.append(source, record.flags, record.internal_date)
        self._remove_all([uid])
        return new_uid

    def refresh(self) -> defer.Deferred[None]:
        return defer.succeed(None)

    # -- backend hooks -------------------------------------------------
    def _open(self, record: MessageRecord) -> BinaryIO:
        raise NotImplementedError

    def _deliver(self, source: bytes | BinaryIO, flags: frozenset[str],
                 internal_date: float) -> MessageRecord | defer.Deferred[MessageRecord]:
        raise NotImplementedError

    def _store_flags(self, record: MessageRecord, flags: frozenset[str]) -> MessageRecord:
        return replace(record, flags=flags)

    def _remove(self, record: MessageRecord) -> None:
        """Remove one message's content; raise to stop an expunge."""

    def _after_remove(self, removed: list[int]) -> None:
        """Persist the index after an expunge (Maildir rewrites its UID list)."""
