"""Local delivery without a server (``exchmail deliver``), safe beside a running one.

A Maildir tree is shared by every program that follows the Maildir
delivery protocol: write the message under ``tmp/`` with a unique name,
fsync it, rename it into ``new/``.  Readers never see half a message, and
nothing else of the folder is touched -- not the UID list, not the index
of a running server.  The server's watcher (inotify, or polling) sees the
new file and adopts it with the next UID, and tells IDLE sessions; without
a running server the next start adopts it.

So :func:`drop` writes only that one file (and creates a missing user
folder or a ``--folder`` the caller asked for, as ``mkdir`` calls that any
Maildir reader copes with).  The quota is checked against the sizes of the
files on disk (:func:`usage`), as Maildir++ quota does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from exchmail.errors import MailboxExists
from exchmail.store import names
from exchmail.store.crlf import LFConverter
from exchmail.store.maildir import folders, layout
from exchmail.store.maildir.filenames import unique_name

CHUNK = 64 * 1024


def find_folder(user_path: Path, wanted: str | None, create: bool) -> str:
    """The folder to deliver into: ``wanted`` as it exists (any case), a new
    one (``create``), or INBOX (no ``wanted``, or it is missing or invalid)."""
    if not wanted:
        return names.INBOX
    try:
        wanted = names.normalize_mailbox(wanted)
    except Exception:  # noqa: BLE001 - an invalid name delivers to INBOX
        return names.INBOX
    existing = folders.list_mailboxes(user_path)
    if wanted in existing:
        return wanted
    folded = {name.casefold(): name for name in existing}
    if wanted.casefold() in folded:
        return folded[wanted.casefold()]
    if not create:
        return names.INBOX
    try:
        folders.create(user_path, wanted)
    except MailboxExists:
        pass  # made meanwhile (by the server, or another delivery)
    return wanted


def drop(
    root: Path, user: str, source: BinaryIO, folder: str | None = None, create: bool = False
) -> tuple[str, Path]:
    """Deliver ``source`` (read to its end) into ``user``'s ``folder``.

    :param root: the Maildir root (``<data_dir>/mail``).
    :param user: the account name (checked).
    :return: the folder used and the file's path in ``new/``.
    :raises InvalidUserName: for a name that cannot be stored.
    :raises OSError: if the file cannot be written (nothing is left behind).
    """
    names.check_user_name(user)
    user_path = folders.make_user(root, user)
    name = find_folder(user_path, folder, create)
    path = layout.mailbox_dir(user_path, name)
    unique = unique_name()
    tmp = path / "tmp" / unique
    target = path / "new" / unique
    try:
        with open(tmp, "xb") as out:
            converter = LFConverter()  # the tree keeps bare-LF files, as the store writes them
            while chunk := source.read(CHUNK):
                out.write(converter.feed(chunk))
            out.write(converter.flush())
            out.flush()
            os.fsync(out.fileno())
        os.rename(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path / "new")
    return name, target


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _message_files(user_path: Path) -> Iterator[os.DirEntry[str]]:
    for name in folders.list_mailboxes(user_path):
        folder = layout.mailbox_dir(user_path, name)
        for sub in ("cur", "new"):
            try:
                with os.scandir(folder / sub) as entries:
                    yield from entries
            except FileNotFoundError:
                continue


def usage(root: Path, user: str) -> int:
    """The octets ``user``'s messages take on disk (0 for a user without mail)."""
    user_path = layout.user_dir(root, names.check_user_name(user))
    if not layout.is_maildir(user_path):
        return 0
    total = 0
    for entry in _message_files(user_path):
        try:
            total += entry.stat().st_size
        except FileNotFoundError:
            continue  # expunged meanwhile
    return total
