"""Maildir file names: unique names, the ``:2,`` info part and keywords.

A message file is named like mutt and Dovecot name theirs::

    <secs>.M<usec>P<pid>Q<counter>.<host>,S=<size>,W=<wire size>:2,<flags>

The part before ``:`` (the *base name*) never changes for a message; the
flag letters after ``:2,`` change with its flags.  A message whose internal
date the file system cannot keep as the file's modification time (ext4
stops at 2446; IMAP allows 1900 to 9999) carries it in the base name as a
further field, ``,D=<seconds since the epoch>``, which other Maildir
readers ignore like any field they do not know.  System flags have fixed
upper-case letters; keywords get the letters ``a``..``z`` through a
per-folder file in Dovecot's ``dovecot-keywords`` format.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import time

from exchmail.errors import StoreError

FLAG_LETTERS = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}
LETTER_FLAGS = {letter: flag for flag, letter in FLAG_LETTERS.items()}
KEYWORD_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_KEYWORD = re.compile(r"^[^\s\x00-\x1f\x7f\\]+$")
_counter = itertools.count(1)


def _hostname() -> str:
    # The Maildir spec escapes '/' and ':'; ',' is escaped too because it
    # separates the S=/W= fields we parse back out of the base name.
    host = socket.gethostname() or "localhost"
    return re.sub(r"[/:,\s\\]", lambda m: f"\\{ord(m.group()):03o}", host)


HOSTNAME = _hostname()


def unique_name() -> str:
    """A new unique base name (without sizes), unique within this host."""
    now = time.time()
    secs = int(now)
    usec = int((now - secs) * 1_000_000)
    return f"{secs}.M{usec}P{os.getpid()}Q{next(_counter)}.{HOSTNAME}"


def final_name(unique: str, stored_size: int, exact_size: int, letters: str, date: int | None = None) -> str:
    """The full file name of a delivered message in ``cur/`` (``date``: a
    ``D=`` field, for dates the file's mtime cannot hold)."""
    extra = "" if date is None else f",D={date}"
    return f"{unique},S={stored_size},W={exact_size}{extra}:2,{letters}"


def split_name(filename: str) -> tuple[str, str | None]:
    """``(base name, info)``; ``info`` is ``None`` for a name without ``:``."""
    base, sep, info = filename.partition(":")
    return base, (info if sep else None)


def unique_part(base: str) -> str:
    """The base name without its ``,S=...`` fields."""
    return base.split(",", 1)[0]


def name_sizes(base: str) -> tuple[int | None, int | None]:
    """The ``S=`` and ``W=`` sizes recorded in a base name, if any."""
    stored = exact = None
    for field in base.split(",")[1:]:
        key, _, value = field.partition("=")
        if value.isdigit():
            if key == "S":
                stored = int(value)
            elif key == "W":
                exact = int(value)
    return stored, exact


def name_fields(base: str) -> tuple[int | None, int | None, int | None]:
    """The ``S=``, ``W=`` and ``D=`` fields of a base name (``None`` if absent)."""
    stored = exact = date = None
    for field in base.split(",")[1:]:
        key, _, value = field.partition("=")
        if key == "S" and value.isdigit():
            stored = int(value)
        elif key == "W" and value.isdigit():
            exact = int(value)
        elif key == "D":
            date = _signed(value)
    return stored, exact, date


def _signed(value: str) -> int | None:
    digits = value[1:] if value.startswith("-") else value
    return int(value) if digits.isdigit() and len(digits) < 20 else None


def name_date(base: str) -> int | None:
    """The ``D=`` internal date recorded in a base name, if any."""
    marker = base.find(",D=")
    if marker < 0:
        return None
    return _signed(base[marker + 3 :].split(",", 1)[0])


def info_letters(info: str | None) -> str:
    """The flag letters of an info part (only ``2,`` infos carry flags)."""
    return info[2:] if info is not None and info.startswith("2,") else ""


def usable(filename: str) -> bool:
    """Whether a directory entry may be a message file we can track."""
    return (
        bool(filename)
        and filename[0] != "."
        and not ("\n" in filename or "\r" in filename or "/" in filename or " " in filename)
    )


class KeywordMap:
    """The keyword <-> letter mapping of one folder."""

    def __init__(self, mapping: dict[int, str] | None = None) -> None:
        self.by_index: dict[int, str] = dict(mapping or {})
        self._by_name = {kw: i for i, kw in self.by_index.items()}

    @classmethod
    def parse(cls, data: bytes) -> KeywordMap:
        """Read the ``<index> <keyword>`` lines of a keywords file."""
        mapping: dict[int, str] = {}
        for line in data.decode("utf-8", "replace").splitlines():
            index, _, keyword = line.strip().partition(" ")
            if index.isdigit() and int(index) < len(KEYWORD_LETTERS) and keyword:
                mapping.setdefault(int(index), keyword)
        return cls(mapping)

    def serialize(self) -> bytes:
        """The keywords file content."""
        return "".join(f"{i} {kw}\n" for i, kw in sorted(self.by_index.items())).encode()

    def extends(self, other: KeywordMap) -> bool:
        """Whether this map holds every entry of ``other`` (and maybe more)."""
        return all(self.by_index.get(i) == kw for i, kw in other.by_index.items())

    def flags(self, letters: str) -> frozenset[str]:
        """The flags named by the letters of a file name."""
        flags = set()
        for letter in letters:
            if letter in LETTER_FLAGS:
                flags.add(LETTER_FLAGS[letter])
            elif letter in KEYWORD_LETTERS:
                keyword = self.by_index.get(KEYWORD_LETTERS.index(letter))
                if keyword is not None:
                    flags.add(keyword)
        return frozenset(flags)

    def letters(self, flags: frozenset[str], old_letters: str = "") -> tuple[str, bool]:
        """``(letters, changed)``: the sorted letters of ``flags`` and whether
        new keywords were given letters (the file must then be rewritten).

        Flags ``\\Recent`` and unknown ``\\`` flags cannot be stored and are
        dropped; upper-case letters of ``old_letters`` that we do not know
        (set by other programs, e.g. ``P`` passed) are kept.
        """
        letters = {c for c in old_letters if c.isupper() and c not in LETTER_FLAGS and c.isascii()}
        changed = False
        for flag in flags:
            if flag in FLAG_LETTERS:
                letters.add(FLAG_LETTERS[flag])
            elif flag.startswith("\\"):
                continue
            else:
                index = self._by_name.get(flag)
                if index is None:
                    index = self._allocate(flag)
                    changed = True
                letters.add(KEYWORD_LETTERS[index])
        return "".join(sorted(letters)), changed

    def _allocate(self, keyword: str) -> int:
        if not _KEYWORD.match(keyword):
            raise StoreError(f"invalid keyword {keyword!r}")
        free = [i for i in range(len(KEYWORD_LETTERS)) if i not in self.by_index]
        if not free:
            raise StoreError("too many keywords in this mailbox (at most 26)")
        self.by_index[free[0]] = keyword
        self._by_name[keyword] = free[0]
        return free[0]
