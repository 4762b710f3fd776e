"""Maildir and Maildir++ trees in and out (exchmail's own, Dovecot's, Courier's, mutt's).

A tree is a maildir (``cur/``, ``new/``, ``tmp/``) for INBOX with one
sub-maildir per folder named ``.Work.Projects`` (modified UTF-7 names, as
:mod:`exchmail.store.maildir.layout` writes them).  A message's flags are
the letters after ``:2,`` (``D F R S T``; lower-case letters are keywords,
named by the folder's ``dovecot-keywords`` or ``exchmail-keywords`` file);
files still in ``new/`` have none.  Its internal date is the file's
modification time (or the ``D=`` field exchmail writes for dates a file
time cannot hold).  Messages are taken in UID order when the folder has a
UID list (``exchmail-uidlist`` or ``dovecot-uidlist``), else by time and
name.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

from exchmail import mutf7
from exchmail.store import names
from exchmail.store.crlf import to_crlf, to_lf
from exchmail.store.maildir import layout
from exchmail.store.maildir.filenames import (
    KeywordMap,
    info_letters,
    name_date,
    split_name,
    unique_name,
    usable,
)
from exchmail.transfer.importer import SourceMessage

KEYWORD_FILES = ("dovecot-keywords", layout.KEYWORDS)
UIDLIST_FILES = (layout.UIDLIST, "dovecot-uidlist")


def folder_of(dirname: str) -> str | None:
    """The folder name of a Maildir++ directory name, or ``None``."""
    name = layout.folder_name(dirname)
    if name is not None:
        return name
    if not dirname.startswith(".") or dirname in (".", ".."):
        return None
    try:  # another program's spelling: plain modified UTF-7 components
        parts = [mutf7.decode(part) for part in dirname[1:].split(".")]
        return names.normalize_mailbox(names.DELIMITER.join(parts))
    except Exception:  # noqa: BLE001 - not a folder we can name
        return None


def tree_folders(root: Path) -> list[tuple[str, Path]]:
    """``(folder name, maildir)`` of every folder of the tree at ``root``."""
    found = [(names.INBOX, root)] if layout.is_maildir(root) else []
    for entry in sorted(root.iterdir()):
        name = folder_of(entry.name)
        if name is not None and entry.is_dir() and layout.is_maildir(entry):
            if name.upper() == names.INBOX:
                name = names.INBOX
            found.append((name, entry))
    return found


def _uid_order(folder: Path) -> dict[str, int]:
    for file_name in UIDLIST_FILES:
        try:
            text = (folder / file_name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        order: dict[str, int] = {}
        for line in text.splitlines()[1:]:
            uid, *rest = line.split()
            if uid.isdigit() and rest:
                base = split_name(rest[-1].lstrip(":"))[0]
                order.setdefault(base.split(",")[0], int(uid))
        return order
    return {}


def _keywords(folder: Path) -> KeywordMap:
    for file_name in KEYWORD_FILES:
        try:
            return KeywordMap.parse((folder / file_name).read_bytes())
        except OSError:
            continue
    return KeywordMap()


def folder_messages(name: str, folder: Path) -> Iterator[SourceMessage]:
    """The messages of one maildir, in UID (else time and name) order."""
    order = _uid_order(folder)
    keywords = _keywords(folder)
    entries = []
    for sub in ("cur", "new"):
        try:
            with os.scandir(folder / sub) as scan:
                for entry in scan:
                    if usable(entry.name) and entry.is_file():
                        stat = entry.stat()
                        base = split_name(entry.name)[0]
                        uid = order.get(base.split(",")[0], 1 << 62)
                        entries.append((uid, stat.st_mtime, entry.name, sub, stat.st_size))
        except FileNotFoundError:
            continue
    for _, mtime, file_name, sub, size in sorted(entries):
        base, info = split_name(file_name)
        flags = keywords.flags(info_letters(info)) if sub == "cur" else frozenset()
        date = name_date(base)
        path = folder / sub / file_name
        yield SourceMessage(
            name,
            flags,
            float(date if date is not None else mtime),
            size,
            f"{path}",
            functools.partial(wire_form, path),
        )


def wire_form(path: Path) -> bytes:
    """A message file's content with CRLF line ends."""
    return to_crlf(path.read_bytes())


class MaildirSource:
    """A Maildir or Maildir++ tree (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.folders = tree_folders(self.root)

    def totals(self) -> tuple[int, int]:
        count = size = 0
        for name, folder in self.folders:
            for message in folder_messages(name, folder):
                count += 1
                size += message.size
        return count, size

    def messages(self) -> Iterator[SourceMessage]:
        for name, folder in self.folders:
            yield from folder_messages(name, folder)

    def close(self) -> None:
        pass


class MaildirWriter:
    """Writes folders of a Maildir++ tree at ``root`` (exchmail's layout, which
    Dovecot and mutt read): files in ``cur/`` named with their flags, dated
    with their internal date, keywords in ``dovecot-keywords`` and
    ``exchmail-keywords``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._keywords: dict[Path, KeywordMap] = {}

    def folder_path(self, name: str) -> Path:
        path = layout.mailbox_dir(self.root, names.normalize_mailbox(name))
        layout.make_maildir(self.root)
        layout.make_maildir(path)
        if path != self.root:
            (path / layout.FOLDER_MARKER).touch()
        return path

    def add(self, folder: str, content: bytes, flags: frozenset[str], internal_date: float) -> Path:
        """Write one message (wire form) into ``folder``; its path."""
        path = self.folder_path(folder)
        keywords = self._keywords.setdefault(path, _keywords(path))
        letters, changed = keywords.letters(flags)
        if changed:
            for file_name in KEYWORD_FILES:
                layout.atomic_write(path / file_name, keywords.serialize())
        data = to_lf(content)
        unique = unique_name()
        tmp = path / "tmp" / unique
        target = path / "cur" / f"{unique},S={len(data)}:2,{letters}"
        with open(tmp, "xb") as out:
            out.write(data)
        os.utime(tmp, (internal_date, internal_date))
        os.rename(tmp, target)
        return target
