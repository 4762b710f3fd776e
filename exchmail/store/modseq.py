"""Modification sequences of the shared index (CONDSTORE/QRESYNC, RFC 7162).

:class:`ModSeqIndex` is the :class:`~exchmail.interfaces.IModSeq` half of
:class:`~exchmail.store.index.IndexedMailbox`: a MODSEQ column in the
index's :class:`~exchmail.store.columns.Columns`, HIGHESTMODSEQ, and a
bounded memory of expunged UIDs.  Every append, flag change and expunge
takes the next HIGHESTMODSEQ (one value per operation, shared by the
messages it touches).  The UIDs of the last :data:`EXPUNGE_MEMORY`
expunged messages are kept with their MODSEQ for QRESYNC's VANISHED; older
ones are forgotten, and ``expunged_since`` then answers ``None`` (the
protocol falls back to reporting every UID the client asked about that no
longer exists, which RFC 7162 §3.2.5.1 allows).

Backends persist what they must through ``_persist_modseq`` (flag changes
and expunges; appends are recorded with the new messages' UIDs).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from zope.interface import implementer

from exchmail.interfaces import IModSeq

if TYPE_CHECKING:
    from exchmail.store.columns import Columns

#: How many expunged UIDs a mailbox remembers with their MODSEQ (QRESYNC's
#: VANISHED): a deque of pairs, a few MB at most per open mailbox.
EXPUNGE_MEMORY = 100_000
RECENT = "\\Recent"
FLAG_MODES = ("replace", "add", "remove")


@implementer(IModSeq)
class ModSeqIndex:
    """MODSEQs, HIGHESTMODSEQ and remembered expunges of one open mailbox."""

    _rows: Columns
    _lock: defer.DeferredLock

    def _init_modseq(self, highest: int, expunged: Iterable[tuple[int, int]], floor: int) -> None:
        modseqs = self._rows.modseqs
        self._highest = max(highest, max(modseqs) if modseqs else 1, 1)
        remembered = list(expunged)
        if len(remembered) > EXPUNGE_MEMORY:  # the oldest are forgotten from now on
            floor = max(floor, remembered[-EXPUNGE_MEMORY - 1][0])
        self._expunged: deque[tuple[int, int]] = deque(remembered, maxlen=EXPUNGE_MEMORY)
        self._expunge_floor = floor
        self._expunge_recorded: defer.Deferred[Any] | None = None

    # -- synchronous: modification sequences (IModSeq) ------------------------------
    def highest_modseq(self) -> int:
        return self._highest

    def modseqs(self, uids: Sequence[int]) -> Iterator[tuple[int, int]]:
        rows = self._rows
        for uid in uids:
            row = rows.find(uid)
            if row >= 0:
                yield uid, rows.modseqs[row]

    def changed_since(self, modseq: int) -> list[int]:
        """The UIDs whose MODSEQ is above ``modseq``, ascending (one pass over the column)."""
        rows = self._rows
        return [uid for uid, m in zip(rows.uids, rows.modseqs, strict=True) if m > modseq]

    def expunged_since(self, modseq: int) -> list[int] | None:
        if modseq < self._expunge_floor:
            return None
        out = []
        for m, uid in reversed(self._expunged):  # ascending by MODSEQ
            if m <= modseq:
                break
            out.append(uid)
        return sorted(out)

    def expunge_memory(self) -> tuple[list[tuple[int, int]], int]:
        """``(remembered (modseq, uid) pairs, floor)``, for backends that persist them."""
        return list(self._expunged), self._expunge_floor

    def _next_modseq(self) -> int:
        self._highest += 1
        return self._highest

    def _touch(self, uids: list[int]) -> defer.Deferred[Any] | None:
        """Give the rows of ``uids`` a new MODSEQ (a flag change); a Deferred
        of its being recorded (the change's Deferred waits for it: a client
        must never see a HIGHESTMODSEQ a restart could take back)."""
        modseq = self._next_modseq()
        rows = self._rows
        for uid in uids:
            row = rows.find(uid)
            if row >= 0:
                rows.modseqs[row] = modseq
        return self._persist_modseq("M", modseq, uids)

    def _record_expunge(self, gone: list[int], modseq: int | None = None) -> None:
        """``gone`` were expunged (rows already removed): remember them with
        ``modseq`` (the one the storage gave the expunge; by default the
        next one); the Deferred of their being recorded is
        ``_expunge_recorded`` (the expunge's Deferred waits for it)."""
        if modseq is None:
            modseq = self._next_modseq()
        self._remember_expunges((modseq, uid) for uid in gone)
        self._expunge_recorded = self._persist_modseq("X", modseq, gone)

    def _remember_expunges(self, pairs: Iterable[tuple[int, int]]) -> None:
        """Remember ``(modseq, uid)`` expunges, ascending by modseq and above
        every one remembered so far; the oldest are forgotten past the bound."""
        expunged = self._expunged
        for pair in pairs:
            if len(expunged) == expunged.maxlen:
                self._expunge_floor = expunged[0][0]  # forgotten from now on
            expunged.append(pair)

    def set_flags_unchanged_since(
        self,
        uids: Iterable[int],
        flags: frozenset[str],
        mode: str,
        unchanged_since: int,
        origin: object = None,
    ) -> defer.Deferred[tuple[dict[int, frozenset[str]], list[int]]]:
        """:class:`~exchmail.interfaces.IModSeq`: STORE (UNCHANGEDSINCE n), tested
        and applied under the lock, so no other change comes between."""
        if mode not in FLAG_MODES:
            return defer.fail(ValueError(f"unknown flag mode {mode!r}"))
        wanted = list(dict.fromkeys(uids))
        flags = frozenset(flags) - {RECENT}
        return self._track(self._lock.run(self._set_flags_if, wanted, flags, mode, unchanged_since, origin))

    def _set_flags_if(
        self, uids: list[int], flags: frozenset[str], mode: str, unchanged_since: int, origin: object
    ) -> Any:
        rows = self._rows
        passed: list[int] = []
        modified: list[int] = []
        for uid in uids:
            row = rows.find(uid)
            if row >= 0:
                (passed if rows.modseqs[row] <= unchanged_since else modified).append(uid)
        d: defer.Deferred[Any] = defer.maybeDeferred(self._set_flags_locked, passed, flags, mode, origin)
        return d.addCallback(lambda result: (result, sorted(modified)))

    # -- what IndexedMailbox provides --------------------------------------------------
    def _track(self, d: defer.Deferred[Any]) -> defer.Deferred[Any]:
        raise NotImplementedError

    def _set_flags_locked(self, uids: list[int], flags: frozenset[str], mode: str, origin: object) -> Any:
        raise NotImplementedError

    def _persist_modseq(self, kind: str, modseq: int, uids: list[int]) -> defer.Deferred[Any] | None:
        """Record that ``uids`` got ``modseq``: ``"M"`` by a flag change, ``"X"``
        by their expunge (appends are recorded with ``_persist_added``); a
        Deferred that fires once it is recorded (never fails: backends log
        their errors), or None when there is nothing to wait for."""
        return None
