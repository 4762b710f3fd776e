"""The persistent UID list of a folder (``exchmail-uidlist``).

Format::

    V<uidvalidity> N<nextuid> [R<first recent uid>]
    <uid> <base name>
    R<first recent uid>
    ...

Appends add lines; rewrites replace the whole file atomically.  The
header's ``N`` is only a lower bound (appended lines are not reflected in
it), so the next UID on load is ``max(N, highest listed UID + 1)``; a
rewrite stores the in-memory ``uid_next``, and lines of expunged messages
stay until one does, so an expunged UID is never handed out again, not
even after a restart.

``R`` (header field or line; the last one wins) is the lowest UID that no
session has claimed as \\Recent yet.  Files written before it existed have
none, and readers that do not know it skip the line (it does not start
with a digit) and the header field, so both directions stay compatible.

``H`` (header field) is the folder's HIGHESTMODSEQ (RFC 7162) when the
file was rewritten, ``F`` the MODSEQ up to which expunges may have been
forgotten; ``M<modseq> <uid set>`` lines give messages their MODSEQ (the
last one wins; a message without one has MODSEQ 1) and ``X<modseq> <uid
set>`` lines remember expunged UIDs for QRESYNC.  Older readers skip these
lines (they start with neither a digit nor ``R``).

Reading and writing block: they run in a thread.  :class:`UidListWriter`
orders and batches the writes of one mailbox from the reactor thread.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from twisted.internet import defer
from twisted.logger import Logger

from exchmail.store.maildir.layout import UIDLIST, atomic_write
from exchmail.uidsets import format_uid_set, parse_uid_set

log = Logger(namespace="exchmail.store.maildir")
_last_validity = 0


def new_uid_validity() -> int:
    """A fresh UIDVALIDITY: the time, but never twice the same value in
    this process (two folders created in one second must differ, so that
    a name deleted and re-created gets a new value)."""
    global _last_validity
    _last_validity = max(int(time.time()), _last_validity + 1) & 0xFFFFFFFF or 1
    return _last_validity


class Serializable(Protocol):
    """Anything that serializes to a whole UID list file."""

    def serialize(self) -> bytes: ...


@dataclass
class UidList:
    """The parsed content of a UID list file."""

    uid_validity: int
    uid_next: int = 1
    entries: list[tuple[int, str]] = field(default_factory=list)
    first_recent: int | None = None
    highest_modseq: int = 1
    #: uid -> MODSEQ, for the messages whose MODSEQ is not 1
    modseqs: dict[int, int] = field(default_factory=dict)
    #: ``(modseq, uid)`` of remembered expunges, ascending
    expunged: list[tuple[int, int]] = field(default_factory=list)
    expunge_floor: int = 0

    @classmethod
    def parse(cls, data: bytes) -> UidList | None:
        """Parse a UID list; ``None`` if the header is unusable (the folder
        then needs a new UIDVALIDITY, as its old UIDs are unknown)."""
        lines = data.decode("utf-8", "surrogateescape").splitlines()
        if not lines:
            return None
        header = {word[:1]: word[1:] for word in lines[0].split()}
        if not header.get("V", "").isdigit() or not header.get("N", "").isdigit():
            return None
        result = cls(int(header["V"]), max(1, int(header["N"])))
        if header.get("R", "").isdigit():
            result.first_recent = int(header["R"])
        result.highest_modseq = int(header["H"]) if header.get("H", "").isdigit() else 1
        result.expunge_floor = int(header["F"]) if header.get("F", "").isdigit() else 0
        last = 0
        for line in lines[1:]:
            uid, _, base = line.partition(" ")
            # Skip garbage and out-of-order lines rather than trusting them.
            if uid.isdigit() and base and int(uid) > last:
                last = int(uid)
                result.entries.append((last, base))
            elif uid.startswith("R") and uid[1:].isdigit() and not base:
                result.first_recent = int(uid[1:])
            elif uid[:1] in ("M", "X") and uid[1:].isdigit() and base:
                result._modseq_line(uid[0], int(uid[1:]), base)
        if result.uid_validity == 0:
            return None
        result.uid_next = max(result.uid_next, last + 1)
        if result.first_recent is not None:
            result.first_recent = min(result.first_recent, result.uid_next)
        return result

    def _modseq_line(self, kind: str, modseq: int, uid_set: str) -> None:
        uids = parse_uid_set(uid_set)
        self.highest_modseq = max(self.highest_modseq, modseq)
        if kind == "M":
            self.modseqs.update(dict.fromkeys(uids, modseq))
        else:
            self.expunged.extend((modseq, uid) for uid in uids)
            for uid in uids:
                self.modseqs.pop(uid, None)

    def modseq_lines(self) -> Iterable[str]:
        """``M`` lines for every MODSEQ above 1, then ``X`` lines of the expunges."""
        for kind, pairs in (
            ("M", ((m, u) for u, m in self.modseqs.items() if m > 1)),
            ("X", iter(self.expunged)),
        ):
            groups: dict[int, list[int]] = {}
            for modseq, uid in pairs:
                groups.setdefault(modseq, []).append(uid)
            for modseq in sorted(groups):
                yield f"{kind}{modseq} {format_uid_set(sorted(groups[modseq]))}\n"

    def serialize(self) -> bytes:
        """The whole file content."""
        recent = "" if self.first_recent is None else f" R{self.first_recent}"
        modseq = f" H{self.highest_modseq} F{self.expunge_floor}"
        lines = itertools.chain(
            [f"V{self.uid_validity} N{self.uid_next}{recent}{modseq}\n"],
            (f"{uid} {base}\n" for uid, base in self.entries),
            self.modseq_lines(),
        )
        return "".join(lines).encode("utf-8", "surrogateescape")


def read(folder: Path) -> UidList | None:
    """The UID list of ``folder``, or ``None`` if missing or unusable."""
    try:
        data = (folder / UIDLIST).read_bytes()
    except FileNotFoundError:
        return None
    return UidList.parse(data)


def write(folder: Path, uid_list: Serializable) -> None:
    """Rewrite the UID list atomically."""
    atomic_write(folder / UIDLIST, uid_list.serialize())


def append_lines(folder: Path, lines: Iterable[str]) -> None:
    """Add lines.  Not fsynced: after a crash a missing line only means
    the (fsynced) message gets a new, higher UID on the next load."""
    data = "".join(f"{line}\n" for line in lines).encode("utf-8", "surrogateescape")
    fd = os.open(folder / UIDLIST, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def append(folder: Path, uid: int, base: str) -> None:
    """Add the line of one message."""
    append_lines(folder, [f"{uid} {base}"])


class UidListWriter:
    """Writes one folder's UID list in order, off the reactor thread.

    Lines and rewrites asked for while a write is under way are batched
    into the next one; a rewrite takes its content from ``snapshot()`` when
    it starts, so it covers the lines asked for before it.  A failed write
    is logged and turned into a rewrite the next time (the index in memory
    is the truth; the file only has to catch up).

    :param folder: returns the folder's current path (it changes on RENAME).
    :param snapshot: returns the whole file to write now (serialized in the thread).
    """

    def __init__(
        self,
        run_blocking: Callable[..., Any],
        folder: Callable[[], Path],
        snapshot: Callable[[], Serializable],
    ) -> None:
        self._run = run_blocking
        self._folder = folder
        self._snapshot = snapshot
        self._lines: list[str] = []
        self._rewrite = False
        self._waiters: list[defer.Deferred[None]] = []
        self._busy = False
        self._behind = False  # a write failed: the next one rewrites the file
        self._stopped = False
        self._paused: list[defer.Deferred[None]] | None = None  # waiting for the write under way

    @property
    def idle(self) -> bool:
        """Whether nothing is being written or waiting to be."""
        return not (self._busy or self._lines or self._rewrite)

    def append(self, lines: list[str]) -> defer.Deferred[None]:
        """Add ``lines``; the Deferred fires once they are written (or failed and logged)."""
        self._lines.extend(lines)
        return self._wait()

    def rewrite(self) -> defer.Deferred[None]:
        """Replace the whole file with ``snapshot()``."""
        self._rewrite = True
        return self._wait()

    def pause(self) -> defer.Deferred[None]:
        """Start no write until :meth:`resume` (the folder is about to move);
        fires once the write under way, if any, is done."""
        if self._paused is None:
            self._paused = []
        if not self._busy:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._paused.append(d)
        return d

    def resume(self) -> None:
        """Write again (at the folder's place now), what was asked for meanwhile first."""
        self._paused = None
        self._flush()

    def stop(self) -> None:
        """The folder is gone: write nothing more (waiters are released)."""
        self._stopped = True
        self._lines, self._rewrite = [], False
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _wait(self) -> defer.Deferred[None]:
        if self._stopped:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._waiters.append(d)
        self._flush()
        return d

    def _flush(self) -> None:
        if self._busy or self._paused is not None or not (self._lines or self._rewrite):
            return
        waiters, self._waiters = self._waiters, []
        lines, self._lines = self._lines, []
        rewrite = self._rewrite or self._behind
        self._rewrite = self._behind = False
        self._busy = True
        if rewrite:
            d = self._run(write, self._folder(), self._snapshot())
        else:
            d = self._run(append_lines, self._folder(), lines)
        d.addErrback(self._failed)
        d.addBoth(self._written, waiters)

    def _failed(self, failure: Any) -> None:
        if self._stopped:
            return  # the folder was deleted under the write
        log.failure("cannot write the UID list in {folder}", failure, folder=str(self._folder()))
        # Catch up with a whole new file with the next write (not at once:
        # a disk that fails now would fail again in a loop).
        self._behind = True

    def _written(self, _: Any, waiters: list[defer.Deferred[None]]) -> None:
        self._busy = False
        for waiter in waiters:
            waiter.callback(None)
        if self._paused:  # a pause waited for this write: it is done
            paused, self._paused = self._paused, []
            for waiter in paused:
                waiter.callback(None)
        self._flush()
