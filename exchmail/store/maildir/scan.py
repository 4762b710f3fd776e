"""Directory scans of one folder (run in a thread, never touching the index).

A scan moves new arrivals from ``new/`` to ``cur/`` (adding ``:2,``, as
every Maildir reader does once it has seen a message), lists ``cur/`` and
gathers what the reactor thread needs to update the index: for files the
index does not know yet their date and sizes, for known ones just their
current name (whose flag letters may have been changed by another program).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from exchmail.store.maildir import uidlist
from exchmail.store.maildir.deliver import measure
from exchmail.store.maildir.filenames import KeywordMap, name_sizes, split_name, usable
from exchmail.store.maildir.layout import KEYWORDS

Stamp = tuple[int, int]


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One message file in ``cur/``; dates and sizes only for unknown files."""

    filename: str
    from_new: bool
    internal_date: float | None = None
    stored_size: int = 0
    exact_size: int = 0


@dataclass(slots=True)
class Scan:
    """The result of :func:`scan`."""

    stamp: Stamp
    files: dict[str, FileInfo]
    keywords: KeywordMap
    uid_list: uidlist.UidList | None


def dir_stamp(folder: Path) -> Stamp:
    """The modification times of ``new/`` and ``cur/`` (nanoseconds)."""
    return (os.stat(folder / "new").st_mtime_ns, os.stat(folder / "cur").st_mtime_ns)


def read_keywords(folder: Path) -> KeywordMap:
    """The keyword map of ``folder`` (empty if it has none)."""
    try:
        return KeywordMap.parse((folder / KEYWORDS).read_bytes())
    except FileNotFoundError:
        return KeywordMap()


def _info(cur: Path, filename: str, from_new: bool, known: bool) -> FileInfo | None:
    if known:
        return FileInfo(filename, from_new)
    try:
        mtime = os.stat(cur / filename).st_mtime
        stored, exact = name_sizes(split_name(filename)[0])
        if stored is None or exact is None:
            # Dropped in by a program that does not record sizes in the name.
            stored, exact = measure(cur / filename)
    except FileNotFoundError:
        return None  # expunged (or renamed) by someone else meanwhile
    return FileInfo(filename, from_new, mtime, stored, exact)


def scan(folder: Path, known: frozenset[str], read_uid_list: bool) -> Scan:
    """Scan ``folder``; ``known`` holds the base names already indexed."""
    # Taken before listing: a change during the listing then shows up as a
    # changed stamp on the next refresh instead of being lost.
    stamp = dir_stamp(folder)
    keywords = read_keywords(folder)
    uid_list = uidlist.read(folder) if read_uid_list else None
    cur, new = folder / "cur", folder / "new"
    files: dict[str, FileInfo] = {}
    for name in sorted(os.listdir(new)):
        if not usable(name):
            continue
        base, info = split_name(name)
        target = name if info is not None else base + ":2,"
        try:
            os.rename(new / name, cur / target)
        except FileNotFoundError:
            continue  # another reader moved it first; we will see it in cur/
        found = _info(cur, target, True, base in known)
        if found is not None:
            files[base] = found
    for name in os.listdir(cur):
        if not usable(name):
            continue
        base = split_name(name)[0]
        if base in files:
            continue
        found = _info(cur, name, False, base in known)
        if found is not None:
            files[base] = found
    return Scan(stamp, files, keywords, uid_list)
