"""Directory scans of one folder (run in a thread, never touching the live index).

:func:`load` reads a folder from scratch and builds its whole index, so
that the reactor thread only has to take it over.  :func:`rescan` compares
the folder with a snapshot of the index and reports the differences.  Both
move new arrivals from ``new/`` to ``cur/`` (adding ``:2,``, as every
Maildir reader does once it has seen a message) and remove what
interrupted deliveries left in ``tmp/`` more than 36 hours ago (the Maildir
rule).

A scan records the modification times of ``new/`` and ``cur/`` (its
*stamp*) before it lists them, so a later change shows up as a different
stamp.  A stamp is *trusted* only if it was taken more than one mtime tick
after the last change: within the same tick a further change could leave
the times as they were.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import stat
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from exchmail.store.cached import stat_cached
from exchmail.store.columns import Columns
from exchmail.store.maildir import uidlist
from exchmail.store.maildir.deliver import measure
from exchmail.store.maildir.filenames import (
    KeywordMap,
    info_letters,
    name_fields,
    split_name,
    usable,
)
from exchmail.store.maildir.layout import KEYWORDS, is_maildir
from exchmail.uidsets import format_uid_set

Stamp = tuple[int, int]
#: The backend columns of a Maildir index: where a row's base name lies in the
#: mailbox's blob of names, and the number of its info part (``:2,<letters>``).
EXTRA_COLUMNS = ("Q", "B", "I")
BASE_START, BASE_LEN, INFO = 0, 1, 2
TMP_MAX_AGE = 36 * 3600
# A directory changed this recently may change again within the same mtime
# tick without its mtime moving.  The tick is one or two seconds on file
# systems with whole-second times, a few milliseconds (the kernel's timer
# tick) on those with nanosecond fields.
_COARSE_TICK_NS = 2_000_000_000
_FINE_TICK_NS = 50_000_000
_LIST_ATTEMPTS = 3
#: After loading a folder of this many messages, freed memory goes back to the system.
TRIM_AFTER = 10_000


def encode_base(base: str) -> bytes:
    return base.encode("utf-8", "surrogateescape")


def decode_base(data: bytes | bytearray) -> str:
    return data.decode("utf-8", "surrogateescape")


class InfoTable:
    """The distinct info parts (``""``, ``":2,S"``, ...) of a folder, numbered."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._ids: dict[str, int] = {}

    def id(self, info: str) -> int:
        found = self._ids.get(info)
        if found is None:
            found = self._ids[info] = len(self.names)
            self.names.append(info)
        return found


def letters_of(info: str) -> str:
    """The flag letters of an info part (``":2,RS"`` -> ``"RS"``)."""
    return info_letters(info[1:] if info else None)


class FileInfo(NamedTuple):
    """A message file the index does not know yet."""

    filename: str
    from_new: bool
    internal_date: float
    stored_size: int
    exact_size: int


@dataclass(slots=True)
class Listing:
    """The files of a folder after moving ``new/`` into ``cur/``."""

    stamp: Stamp | None
    trusted: bool
    files: dict[str, tuple[str, bool]]  # base name -> (file name, came from new/)
    touched: list[tuple[str, str]]  # (sub-directory, name) changed by the scan


def dir_stamp(folder: Path) -> Stamp:
    """The modification times of ``new/`` and ``cur/`` (nanoseconds)."""
    return (os.stat(folder / "new").st_mtime_ns, os.stat(folder / "cur").st_mtime_ns)


def stamp_unchanged(folder: Path, stamp: Stamp | None) -> bool:
    """Whether ``folder``'s :func:`dir_stamp` is still ``stamp``, as far as the
    kernel's caches can say without waiting for the disk
    (:func:`~exchmail.store.cached.stat_cached`); False when they cannot, or
    the folder is gone (a scan in a thread finds out what happened)."""
    try:
        new = stat_cached(f"{folder}/new")
        cur = stat_cached(f"{folder}/cur") if new is not None else None
    except FileNotFoundError:
        return False
    return new is not None and cur is not None and (new.st_mtime_ns, cur.st_mtime_ns) == stamp


def trusted(stamp: Stamp, taken_ns: int) -> bool:
    """Whether ``stamp``, taken at ``taken_ns``, would show any later change."""
    coarse = all(mtime % 1_000_000_000 == 0 for mtime in stamp)
    tick = _COARSE_TICK_NS if coarse else _FINE_TICK_NS
    return taken_ns - max(stamp) > tick


def read_keywords(folder: Path) -> KeywordMap:
    """The keyword map of ``folder`` (empty if it has none)."""
    try:
        return KeywordMap.parse((folder / KEYWORDS).read_bytes())
    except FileNotFoundError:
        return KeywordMap()


def clean_tmp(folder: Path, now: float) -> list[str]:
    """Remove files in ``tmp/`` not touched for 36 hours; their names.

    The change time counts too: a delivery sets its file's modification
    time to the message's internal date (possibly years ago) before moving
    it into ``cur/``, and must not be taken for a leftover meanwhile.
    """
    cutoff = now - TMP_MAX_AGE
    removed = []
    try:
        with os.scandir(folder / "tmp") as entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                    touched = max(info.st_atime, info.st_mtime, info.st_ctime)
                    if stat.S_ISREG(info.st_mode) and touched < cutoff:
                        os.unlink(entry.path)
                        removed.append(entry.name)
                except FileNotFoundError:
                    continue
    except FileNotFoundError:
        pass
    return removed


def _move_new(
    new: Path, cur: Path, files: dict[str, tuple[str, bool]], touched: list[tuple[str, str]] | None
) -> bool:
    """Move what is in ``new/`` to ``cur/``; whether there was anything."""
    names = [name for name in os.listdir(new) if usable(name)]
    if not names:
        return False
    # Directory descriptors and plain names: a folder may hold 100,000 of them.
    new_fd, cur_fd = os.open(new, os.O_RDONLY), os.open(cur, os.O_RDONLY)
    try:
        for name in names:
            base, info = split_name(name)
            target = name if info is not None else base + ":2,"
            try:
                os.rename(name, target, src_dir_fd=new_fd, dst_dir_fd=cur_fd)
            except FileNotFoundError:
                continue  # another reader moved it first; we will see it in cur/
            if touched is not None:
                touched.extend((("new", name), ("cur", target)))
            files[base] = (target, True)
    finally:
        os.close(new_fd)
        os.close(cur_fd)
    return True


def list_folder(folder: Path, track: bool = True) -> Listing:
    """Move ``new/`` into ``cur/``, take the stamp, list ``cur/``; with
    ``track``, say which names the moves touched (for the folder's watch)."""
    new, cur = folder / "new", folder / "cur"
    moved: dict[str, tuple[str, bool]] = {}
    touched: list[tuple[str, str]] = []
    record = touched if track else None
    _move_new(new, cur, moved, record)
    for _ in range(_LIST_ATTEMPTS):
        # The stamp comes after our own moves and before the listings it
        # vouches for; arrivals in between are moved and the stamp retaken.
        stamp = dir_stamp(folder)
        taken = time.time_ns()
        if not _move_new(new, cur, moved, record):
            break
    else:
        stamp, taken = (0, 0), 0  # still busy: never trust this one
    files: dict[str, tuple[str, bool]] = {}
    for name in os.listdir(cur):
        if usable(name):
            files[split_name(name)[0]] = (name, False)
    for base, (name, _) in moved.items():
        if base in files:
            files[base] = (name, True)
    return Listing(stamp, trusted(stamp, taken), files, touched)


def name_info(filename: str, from_new: bool) -> FileInfo | None:
    """Date and sizes of a file as its name records them (``,S=``, ``,W=`` and
    ``,D=``); ``None`` if they must be learnt from the file."""
    colon = filename.find(":")
    stored, exact, date = name_fields(filename if colon < 0 else filename[:colon])
    if stored is None or exact is None or date is None:
        return None
    return FileInfo(filename, from_new, float(date), stored, exact)


def file_info(cur: int, filename: str, from_new: bool) -> FileInfo | None:
    """Date and sizes of a file in ``cur/`` (a directory descriptor); ``None``
    if it vanished."""
    colon = filename.find(":")
    stored, exact, date = name_fields(filename if colon < 0 else filename[:colon])
    try:
        if stored is None or exact is None:
            # Dropped in by a program that does not record sizes in the name.
            stored, exact, mtime = measure(filename, dir_fd=cur, with_mtime=True)
            when = float(date) if date is not None else mtime
        else:
            when = float(date) if date is not None else os.stat(filename, dir_fd=cur).st_mtime
    except FileNotFoundError:
        return None  # expunged (or renamed) by someone else meanwhile
    return FileInfo(filename, from_new, when, stored, exact)


class IndexBuilder:
    """Builds the columns, name blob and info table of a Maildir index."""

    def __init__(self, keywords: KeywordMap) -> None:
        self.keywords = keywords
        self.rows = Columns(EXTRA_COLUMNS)
        self.blob = bytearray()
        self.infos = InfoTable()
        self._numbers: dict[str, tuple[int, int]] = {}  # info -> (info id, flag set id)

    def add(self, uid: int, info: FileInfo, modseq: int = 1) -> str:
        """Add a row (UIDs must come in ascending order); its base name."""
        filename = info.filename
        colon = filename.find(":")
        base = filename if colon < 0 else filename[:colon]
        suffix = filename[len(base) :]
        numbers = self._numbers.get(suffix)
        if numbers is None:
            flags = self.keywords.flags(letters_of(suffix))
            numbers = self._numbers[suffix] = (self.infos.id(suffix), self.rows.table.id(flags))
        rows, name = self.rows, encode_base(base)
        if rows.uids and uid <= rows.uids[-1]:
            raise ValueError(f"UID {uid} is not above {rows.uids[-1]}")
        # The columns directly: this runs once per message of a folder.
        rows.uids.append(uid)
        rows.dates.append(info.internal_date)
        rows.stored.append(info.stored_size)
        rows.exact.append(info.exact_size)
        rows.flags.append(numbers[1])
        rows.modseqs.append(modseq)
        start, size, info_ids = rows.extra
        start.append(len(self.blob))
        size.append(len(name))
        info_ids.append(numbers[0])
        self.blob += name
        return base

    def modseq_map(self) -> dict[int, int]:
        """uid -> MODSEQ of the rows whose MODSEQ is not 1."""
        return {uid: m for uid, m in zip(self.rows.uids, self.rows.modseqs, strict=True) if m > 1}

    def entries(self) -> list[tuple[int, str]]:
        starts, lens = self.rows.extra[BASE_START], self.rows.extra[BASE_LEN]
        return [
            (uid, decode_base(self.blob[start : start + size]))
            for uid, start, size in zip(self.rows.uids, starts, lens, strict=True)
        ]


@dataclass(slots=True)
class Loaded:
    """A folder's index as :func:`load` built it."""

    uid_validity: int
    uid_next: int
    first_recent: int
    builder: IndexBuilder
    stamp: Stamp | None
    trusted: bool
    highest_modseq: int = 1
    expunged: list[tuple[int, int]] = field(default_factory=list)
    expunge_floor: int = 0
    #: the rows whose date and sizes are placeholders, to learn from their files
    later: Later = field(default_factory=lambda: Later())


@dataclass(slots=True)
class Later:
    """The UIDs of the rows a first load indexed without reading their files
    (ascending; the index rebuilds their names, no string kept meanwhile)."""

    uids: array[int] = field(default_factory=lambda: array("Q"))


def load(folder: Path, now: float) -> Loaded:
    """Read ``folder`` and build its index; write its UID list if it changed.

    Only names are read: the date and sizes of a file whose name does not
    record them are left for :func:`learn_details` (``Loaded.later``), so
    a first look at a big folder costs its listing, not a read of every file.

    Raises FileNotFoundError if ``folder`` is not a maildir.  After a big
    folder, the memory the scan used and freed is handed back to the system.
    """
    loaded = _load(folder, now)
    if len(loaded.builder.rows) >= TRIM_AFTER:
        release_free_memory()
    return loaded


def release_free_memory() -> None:
    """Give freed heap memory back to the system, where the C library can.

    glibc keeps what a thread freed in that thread's heap: the listing of a
    100,000-file folder (names, dicts, sorted lists) would stay in the
    process's RSS -- several times the index itself -- long after the scan.
    """
    trim = _malloc_trim()
    if trim is not None:
        # A full collection first: it also empties the interpreter's free
        # lists, whose blocks keep whole memory pools in use.
        gc.collect()
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc
    except (OSError, AttributeError):
        return None  # another C library: nothing to do


def _load(folder: Path, now: float) -> Loaded:
    if not is_maildir(folder):
        raise FileNotFoundError(str(folder))
    clean_tmp(folder, now)
    builder = IndexBuilder(read_keywords(folder))
    stored = uidlist.read(folder)
    dirty = stored is None
    if stored is None:
        # No (usable) UID list: old UIDs are unknown, so start afresh.
        stored = uidlist.UidList(uidlist.new_uid_validity())
    # Nothing watches a folder before its first load: no own changes to track.
    listing = list_folder(folder, track=False)
    later = Later()
    uid_next, first_recent, lines, dirty = _build(builder, stored, listing.files, later, dirty)
    if dirty:
        fresh = uidlist.UidList(
            stored.uid_validity,
            uid_next,
            builder.entries(),
            first_recent,
            stored.highest_modseq,
            builder.modseq_map(),
            stored.expunged,
            stored.expunge_floor,
        )
        uidlist.write(folder, fresh)
    elif lines:
        uidlist.append_lines(folder, lines)
    return Loaded(
        stored.uid_validity,
        uid_next,
        first_recent,
        builder,
        listing.stamp,
        listing.trusted,
        stored.highest_modseq,
        stored.expunged,
        stored.expunge_floor,
        later,
    )


def _build(
    builder: IndexBuilder,
    stored: uidlist.UidList,
    files: dict[str, tuple[str, bool]],
    later: Later,
    dirty: bool,
) -> tuple[int, int, list[str], bool]:
    """Index the listed ``files``: those in the UID list under their UIDs,
    the others under new ones; ``(uid_next, first_recent, new lines, dirty)``.

    Files whose names do not record their date and sizes get placeholder
    rows, listed in ``later`` (see :func:`learn_details`).
    """
    for uid, base in stored.entries:
        found = files.pop(base, None)
        if found is None:
            dirty = True  # the file is gone: forget its line
            continue
        builder.add(uid, _known_or_later(uid, *found, later), stored.modseqs.get(uid, 1))
    uid_next, first_new, lines = stored.uid_next, None, []
    # Files new to the UID list were changes: they share one new MODSEQ.
    modseq, start = stored.highest_modseq + 1, uid_next
    # Unlisted files get new UIDs: those found in cur/ first, then new
    # arrivals, each in file name order (so the arrivals are the \Recent ones).
    for filename, from_new in _in_uid_order(files):
        if from_new and first_new is None:
            first_new = uid_next
        info = _known_or_later(uid_next, filename, from_new, later)
        lines.append(f"{uid_next} {builder.add(uid_next, info, modseq)}")
        uid_next += 1
    if uid_next > start:
        stored.highest_modseq = modseq
        lines.append(f"M{modseq} {format_uid_set(range(start, uid_next))}")
    first_recent = stored.first_recent
    if first_recent is None or (first_new is not None and first_new < first_recent):
        first_recent = first_new if first_new is not None else uid_next
    return uid_next, first_recent, lines, dirty


def _known_or_later(uid: int, filename: str, from_new: bool, later: Later) -> FileInfo:
    info = name_info(filename, from_new)
    if info is None:
        later.uids.append(uid)
        info = FileInfo(filename, from_new, 0.0, 0, 0)
    return info


def learn_details(folder: Path, names: list[str]) -> list[FileInfo | None]:
    """Date and sizes of each file ``names`` in ``folder/cur`` (the half of
    a first load that :func:`load` leaves for later); ``None`` for a file
    that is gone.  A file renamed meanwhile (its flag letters changed) is
    found again by its base name."""
    cur_path = folder / "cur"
    if not cur_path.is_dir():
        return [None] * len(names)  # the folder was deleted meanwhile
    with _directory(cur_path) as cur:
        found = [file_info(cur, name, False) for name in names]
        if None in found:
            again = {split_name(name)[0]: name for name in os.listdir(cur_path) if usable(name)}
            for i, info in enumerate(found):
                renamed = again.get(split_name(names[i])[0]) if info is None else None
                if renamed is not None:
                    found[i] = file_info(cur, renamed, False)
    return found


def _in_uid_order(files: dict[str, tuple[str, bool]]) -> Iterator[tuple[str, bool]]:
    """``(file name, came from new/)`` of ``files``: those found in ``cur/``
    first, then the arrivals, each in name order (two plain sorts of strings)."""
    for arrivals in (False, True):
        for name in sorted([name for name, from_new in files.values() if from_new is arrivals]):
            yield name, arrivals


@contextmanager
def _directory(path: Path) -> Iterator[int]:
    """A descriptor of directory ``path`` (names are looked up relative to it)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


@dataclass(slots=True)
class Snapshot:
    """What a rescan needs of the index: its first ``count`` rows.

    The arrays are the live ones, not copies: rows below ``count`` do not
    change while the mailbox lock is held (appends only add rows above).
    """

    count: int
    uids: Any
    blob: bytearray
    starts: Any
    lens: Any
    info_ids: Any
    infos: list[str]

    def base(self, row: int) -> str:
        start = self.starts[row]
        return decode_base(self.blob[start : start + self.lens[row]])


@dataclass(slots=True)
class Rescan:
    """The differences :func:`rescan` found."""

    stamp: Stamp | None
    trusted: bool
    keywords: KeywordMap
    missing: list[int] = field(default_factory=list)  # rows whose file is gone
    changed: list[tuple[int, str]] = field(default_factory=list)  # (row, new file name)
    found: list[FileInfo] = field(default_factory=list)  # files not in the index
    touched: list[tuple[str, str]] = field(default_factory=list)


def rescan(folder: Path, stamp: Stamp | None, trust: bool, snapshot: Snapshot, now: float) -> Rescan | None:
    """Compare ``folder`` with ``snapshot``; ``None`` if ``stamp`` (when
    ``trust``-ed) shows that nothing changed."""
    try:
        if stamp is not None and trust and dir_stamp(folder) == stamp:
            return None
    except FileNotFoundError:
        return None  # removed behind our back; nothing to scan
    clean_tmp(folder, now)
    keywords = read_keywords(folder)
    listing = list_folder(folder)
    result = Rescan(listing.stamp, listing.trusted, keywords, touched=listing.touched)
    files = listing.files
    for row in range(snapshot.count):
        base = snapshot.base(row)
        found = files.pop(base, None)
        if found is None:
            result.missing.append(row)
        elif found[0] != base + snapshot.infos[snapshot.info_ids[row]]:
            result.changed.append((row, found[0]))
    if result.missing:
        _look_again(folder, snapshot, result)
    with _directory(folder / "cur") as cur:
        for filename, from_new in _in_uid_order(files):
            info = file_info(cur, filename, from_new)
            if info is not None:
                result.found.append(info)
    return result


def _look_again(folder: Path, snapshot: Snapshot, result: Rescan) -> None:
    """A file renamed by another program while ``cur/`` was listed can be
    missing from the listing: list once more before calling rows gone."""
    again = {split_name(name)[0]: name for name in os.listdir(folder / "cur") if usable(name)}
    still = []
    for row in result.missing:
        name = again.get(snapshot.base(row))
        if name is None:
            still.append(row)
        elif name != snapshot.base(row) + snapshot.infos[snapshot.info_ids[row]]:
            result.changed.append((row, name))
    result.missing = still
