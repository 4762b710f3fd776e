"""The persistent UID list of a folder (``exchmail-uidlist``).

Format::

    V<uidvalidity> N<nextuid>
    <uid> <base name>
    ...

Appends add a line; expunges rewrite the whole file atomically.  The
header's ``N`` is only a lower bound (appended lines are not reflected in
it), so the next UID on load is ``max(N, highest listed UID + 1)``; since
rewrites always store the in-memory ``uid_next``, an expunged UID is never
handed out again, not even after a restart.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

from exchmail.store.maildir.layout import UIDLIST, atomic_write

_last_validity = 0


def new_uid_validity() -> int:
    """A fresh UIDVALIDITY: the time, but never twice the same value in
    this process (two folders created in one second must differ, so that
    a name deleted and re-created gets a new value)."""
    global _last_validity
    _last_validity = max(int(time.time()), _last_validity + 1) & 0xFFFFFFFF or 1
    return _last_validity


@dataclass
class UidList:
    """The parsed content of a UID list file."""

    uid_validity: int
    uid_next: int = 1
    entries: list[tuple[int, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes) -> UidList | None:
        """Parse a UID list; ``None`` if the header is unusable (the folder
        then needs a new UIDVALIDITY, as its old UIDs are unknown)."""
        lines = data.decode("utf-8", "replace").splitlines()
        if not lines:
            return None
        header = {word[:1]: word[1:] for word in lines[0].split()}
        if not header.get("V", "").isdigit() or not header.get("N", "").isdigit():
            return None
        result = cls(int(header["V"]), max(1, int(header["N"])))
        last = 0
        for line in lines[1:]:
            uid, _, base = line.partition(" ")
            # Skip garbage and out-of-order lines rather than trusting them.
            if uid.isdigit() and base and int(uid) > last:
                last = int(uid)
                result.entries.append((last, base))
        if result.uid_validity == 0:
            return None
        result.uid_next = max(result.uid_next, last + 1)
        return result

    def serialize(self) -> bytes:
        """The whole file content."""
        lines = itertools.chain(
            [f"V{self.uid_validity} N{self.uid_next}\n"],
            (f"{uid} {base}\n" for uid, base in self.entries))
        return "".join(lines).encode("utf-8")


def read(folder: Path) -> UidList | None:
    """The UID list of ``folder``, or ``None`` if missing or unusable."""
    try:
        data = (folder / UIDLIST).read_bytes()
    except FileNotFoundError:
        return None
    return UidList.parse(data)


def write(folder: Path, uid_list: UidList) -> None:
    """Rewrite the UID list atomically."""
    atomic_write(folder / UIDLIST, uid_list.serialize())


def append(folder: Path, uid: int, base: str) -> None:
    """Add one line.  Not fsynced: after a crash a missing line only means
    the (fsynced) message gets a new, higher UID on the next load."""
    with open(folder / UIDLIST, "ab") as out:
        out.write(f"{uid} {base}\n".encode())
