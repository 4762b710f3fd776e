"""Where things live in a Maildir++ tree, and safe file writing.

A user's maildir is ``<root>/<user>``; INBOX is that maildir itself and
folder ``A/B`` is the directory ``.A.B`` inside it.  Each hierarchy
component is encoded as IMAP modified UTF-7 and then percent-escaped so
that it contains no ``.`` (the Maildir++ separator), no ``/`` and nothing
a file system might treat specially.  Decoding accepts only what the
encoder produces, so every legal name maps to exactly one directory and
every other directory is ignored.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from exchmail import mutf7
from exchmail.errors import InvalidMailboxName
from exchmail.store import names

SUBDIRS = ("cur", "new", "tmp")
UIDLIST = "exchmail-uidlist"
KEYWORDS = "exchmail-keywords"
SUBSCRIPTIONS = "subscriptions"
# Courier and Dovecot mark Maildir++ folders with this empty file.
FOLDER_MARKER = "maildirfolder"
NAME_MAX = 255

# Characters kept literally after modified UTF-7 (which yields printable
# ASCII only).  Everything else -- '.', '%', '~', '/', '\\', ':', '*', '?',
# quotes, '<', '>', '|' -- is escaped as %XX.
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789&+,-_=@!#$'()[]{}^` ;")
_tmp_counter = itertools.count()


def _escape(component: str) -> str:
    return "".join(c if c in _SAFE else f"%{ord(c):02X}" for c in mutf7.encode(component))


def _unescape(text: str) -> str:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "%":
            digits = text[pos + 1 : pos + 3]
            if len(digits) != 2 or not all(d in "0123456789ABCDEF" for d in digits):
                raise ValueError("bad percent escape")
            out.append(chr(int(digits, 16)))
            pos += 3
        else:
            out.append(char)
            pos += 1
    return "".join(out)


def folder_dirname(name: str) -> str:
    """The directory name of the (non-INBOX) folder ``name``.

    Raises :class:`InvalidMailboxName` for an illegal name, for INBOX
    itself and for names too long for a directory entry.
    """
    name = names.normalize_mailbox(name)
    if name == names.INBOX:
        raise InvalidMailboxName("INBOX is not a Maildir++ folder")
    dirname = "." + ".".join(_escape(part) for part in name.split(names.DELIMITER))
    if len(dirname.encode("ascii")) > NAME_MAX:
        raise InvalidMailboxName("mailbox name too long for this store")
    return dirname


def folder_name(dirname: str) -> str | None:
    """The mailbox name stored in directory ``dirname``, or ``None`` if the
    directory is not one :func:`folder_dirname` would produce."""
    if not dirname.startswith(".") or dirname in (".", ".."):
        return None
    try:
        parts = [mutf7.decode(_unescape(part)) for part in dirname[1:].split(".")]
        name = names.DELIMITER.join(parts)
        # Round-trip check: rejects other spellings (lower-case hex, "inbox",
        # empty components, names with '/' inside a component, ...).
        if folder_dirname(name) != dirname:
            return None
    except (ValueError, InvalidMailboxName):
        return None
    return name


def user_dir(root: Path, user: str) -> Path:
    """The maildir of ``user`` (already checked with ``names.check_user_name``)."""
    return root / user


def mailbox_dir(user_path: Path, name: str) -> Path:
    """The maildir of mailbox ``name`` (normalized) in ``user_path``."""
    if name == names.INBOX:
        return user_path
    return user_path / folder_dirname(name)


def is_maildir(path: Path) -> bool:
    """Whether ``path`` looks like a maildir (it has a ``cur`` folder)."""
    return (path / "cur").is_dir()


def make_maildir(path: Path) -> None:
    """Create ``path`` and its cur/new/tmp folders (existing ones are fine)."""
    path.mkdir(mode=0o700, exist_ok=True)
    for sub in SUBDIRS:
        (path / sub).mkdir(mode=0o700, exist_ok=True)


def scratch_name(prefix: str) -> str:
    """A unique name starting with ``..`` (never a decodable folder)."""
    return f"..{prefix}-{os.getpid()}-{next(_tmp_counter)}"


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or new file,
    never a mix (write a temporary file, fsync it, rename it over)."""
    tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}.{next(_tmp_counter)}")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
