"""Compact storage of one mailbox's message metadata.

An open mailbox keeps one row per message, and a large mailbox has a
hundred thousand of them, so rows are not objects: :class:`Columns` keeps
each field in its own typed :class:`array.array` (8 octets per UID, date
and size), flags as small integers into a per-mailbox :class:`FlagTable` of
interned frozensets, and whatever the backend needs as extra columns.
Records (:class:`MessageRecord`) are built on demand from a row.

Rows are in ascending UID order, so a UID is found by bisection.  The UID
array is handed out by ``IStoreMailbox.uids()`` and therefore copy-on-write:
once handed out (:meth:`Columns.share`) it is never changed again; the next
change works on a copy.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Any

from zope.interface import implementer

from exchmail.interfaces import IStoreMessage


@implementer(IStoreMessage)
class MessageRecord:
    """One message's metadata at the time it was taken (treat it as immutable).

    ``key`` is an optional backend handle; the built-in stores leave it
    ``None`` and keep their handles in columns.
    """

    __slots__ = ("uid", "flags", "internal_date", "stored_size", "exact_size", "key")

    def __init__(
        self,
        uid: int,
        flags: frozenset[str],
        internal_date: float,
        stored_size: int,
        exact_size: int,
        key: object = None,
    ) -> None:
        self.uid = uid
        self.flags = flags
        self.internal_date = internal_date
        self.stored_size = stored_size
        self.exact_size = exact_size
        self.key = key

    def _fields(self) -> tuple[Any, ...]:
        return (self.uid, self.flags, self.internal_date, self.stored_size, self.exact_size, self.key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MessageRecord):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"MessageRecord(uid={self.uid}, flags={set(self.flags) or '{}'}, "
            f"internal_date={self.internal_date}, stored_size={self.stored_size}, "
            f"exact_size={self.exact_size})"
        )


class FlagTable:
    """Interned flag sets: each distinct frozenset once, named by a small int."""

    __slots__ = ("_sets", "_ids")

    def __init__(self) -> None:
        empty: frozenset[str] = frozenset()
        self._sets: list[frozenset[str]] = [empty]
        self._ids: dict[frozenset[str], int] = {empty: 0}

    def id(self, flags: frozenset[str]) -> int:
        """The number of ``flags`` (added to the table if new)."""
        found = self._ids.get(flags)
        if found is None:
            found = self._ids[flags] = len(self._sets)
            # Interning the strings too: every set shares one copy of "\\Seen".
            self._sets.append(frozenset(_intern(flag) for flag in flags))
        return found

    def __getitem__(self, number: int) -> frozenset[str]:
        return self._sets[number]

    def __len__(self) -> int:
        return len(self._sets)

    def sets(self) -> tuple[frozenset[str], ...]:
        """Every set, in the order of their numbers."""
        return tuple(self._sets)

    def ids_with(self, flag: str) -> set[int]:
        """The numbers of every set that contains ``flag``."""
        return {number for number, flags in enumerate(self._sets) if flag in flags}


_interned: dict[str, str] = {}


def _intern(flag: str) -> str:
    # sys.intern would keep arbitrary client keywords forever; this table is
    # bounded by the flags actually in use (keywords are few in practice).
    if len(_interned) > 10_000:
        return flag
    return _interned.setdefault(flag, flag)


class Columns:
    """The rows of one mailbox, one typed array per field.

    :param extra: typecodes of backend columns (``None`` for a list column
        holding arbitrary objects), appended and removed with the rows.
    """

    __slots__ = ("uids", "dates", "stored", "exact", "flags", "modseqs", "extra", "table", "_shared")

    def __init__(self, extra: Sequence[str | None] = ()) -> None:
        self.uids = array("Q")
        self.dates = array("d")
        self.stored = array("Q")
        self.exact = array("Q")
        self.flags = array("I")
        #: each message's modification sequence (RFC 7162): 8 octets a row
        self.modseqs = array("Q")
        self.extra: list[Any] = [array(code) if code else [] for code in extra]
        self.table = FlagTable()
        self._shared = False

    def share(self) -> array[int]:
        """The UID array, to hand out: it will not change any more."""
        self._shared = True
        return self.uids

    def __len__(self) -> int:
        return len(self.uids)

    def find(self, uid: int) -> int:
        """The row of ``uid``, or -1."""
        uids = self.uids
        row = bisect_left(uids, uid)
        return row if row < len(uids) and uids[row] == uid else -1

    def first_at_or_after(self, uid: int) -> int:
        """The first row whose UID is ``uid`` or larger (``len`` if none)."""
        return bisect_left(self.uids, uid)

    def append(
        self,
        uid: int,
        date: float,
        stored: int,
        exact: int,
        flags: frozenset[str],
        extra: Sequence[Any] = (),
        modseq: int = 1,
    ) -> None:
        """Add a row; ``uid`` must be larger than every UID already here."""
        if self.uids and uid <= self.uids[-1]:
            raise ValueError(f"UID {uid} is not above {self.uids[-1]}")
        if self._shared:
            self.uids, self._shared = self.uids[:], False  # someone holds the old one
        self.uids.append(uid)
        self.dates.append(date)
        self.stored.append(stored)
        self.exact.append(exact)
        self.flags.append(self.table.id(flags))
        self.modseqs.append(modseq)
        for column, value in zip(self.extra, extra, strict=True):
            column.append(value)

    def record(self, row: int, key: object = None) -> MessageRecord:
        """The :class:`MessageRecord` of ``row``."""
        return MessageRecord(
            self.uids[row],
            self.table[self.flags[row]],
            self.dates[row],
            self.stored[row],
            self.exact[row],
            key,
        )

    def flags_of(self, row: int) -> frozenset[str]:
        return self.table[self.flags[row]]

    def set_flags(self, row: int, flags: frozenset[str]) -> None:
        self.flags[row] = self.table.id(flags)

    def remove(self, rows: Iterable[int]) -> None:
        """Drop ``rows``; every column is rebuilt (copy-on-write for ``uids``)."""
        doomed = sorted(set(rows))
        if not doomed:
            return
        keep: list[tuple[int, int]] = []
        start = 0
        for row in doomed:
            if row > start:
                keep.append((start, row))
            start = row + 1
        if start < len(self.uids):
            keep.append((start, len(self.uids)))
        self.uids, self._shared = _kept(self.uids, keep), False
        self.dates = _kept(self.dates, keep)
        self.stored = _kept(self.stored, keep)
        self.exact = _kept(self.exact, keep)
        self.flags = _kept(self.flags, keep)
        self.modseqs = _kept(self.modseqs, keep)
        self.extra = [_kept(column, keep) for column in self.extra]
        self._shrink_table()

    def _shrink_table(self) -> None:
        """Forget flag sets no row uses any more, when they are many."""
        if len(self.table) <= 64 or len(self.table) <= len(self.uids):
            return
        old, self.table = self.table, FlagTable()
        renumber = {number: self.table.id(old[number]) for number in set(self.flags)}
        self.flags = array("I", (renumber[number] for number in self.flags))


def _kept(column: Any, keep: list[tuple[int, int]]) -> Any:
    """A new column holding the ``[start, end)`` slices of ``column`` in ``keep``."""
    fresh = array(column.typecode) if isinstance(column, array) else []
    for start, end in keep:
        fresh.extend(column[start:end])
    return fresh
