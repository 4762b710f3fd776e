"""The blocking work of a Maildir account: folders and subscriptions (run in a thread).

Every path is built by :mod:`~exchmail.store.maildir.layout` from a checked
name, so no client-supplied name reaches outside ``<root>/<user>``.  These
functions check and change the disk only; the account applies their
results to its open mailboxes on the reactor thread.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from exchmail.errors import InvalidMailboxName, InvalidUserName, MailboxExists, NoSuchMailbox
from exchmail.store import names
from exchmail.store.maildir import layout, uidlist

MAX_SUBSCRIPTIONS_SIZE = 1 << 20


def exists(user: Path, name: str) -> bool:
    return layout.is_maildir(layout.mailbox_dir(user, name))


def make_user(root: Path, user: str) -> Path:
    """Create the maildir of ``user`` (checked) if needed; its path."""
    path = layout.user_dir(root, user)
    root.mkdir(parents=True, exist_ok=True)
    layout.make_maildir(path)
    return path


def account_names(root: Path) -> list[str]:
    """Every user folder under ``root`` that holds a maildir, sorted."""
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(root.iterdir()):
        try:
            name = names.check_user_name(entry.name)
        except InvalidUserName:
            continue  # not a folder this store made
        if not entry.is_symlink() and layout.is_maildir(entry):
            found.append(name)
    return found


def list_mailboxes(user: Path) -> list[str]:
    """Every mailbox of the maildir ``user``, INBOX first."""
    found = [names.INBOX]
    with os.scandir(user) as entries:
        for entry in entries:
            name = layout.folder_name(entry.name)
            # Symlinked folders are skipped: they could lead anywhere.
            if (
                name is not None
                and entry.is_dir(follow_symlinks=False)
                and layout.is_maildir(Path(entry.path))
            ):
                found.append(name)
    return found


def has_new_mail(user: Path, wanted: list[str]) -> set[str]:
    """Those of ``wanted`` whose ``new/`` holds a message."""
    marked = set()
    for name in wanted:
        try:
            with os.scandir(layout.mailbox_dir(user, name) / "new") as entries:
                if any(not entry.name.startswith(".") for entry in entries):
                    marked.add(name)
        except (OSError, InvalidMailboxName):
            continue
    return marked


def _make(
    user: Path,
    name: str,
    entries: list[tuple[int, str]] | None = None,
    uid_next: int = 1,
    keywords: bytes = b"",
    files: list[str] | None = None,
    source: Path | None = None,
) -> list[int]:
    """Create folder ``name`` atomically: build it under a scratch name (never
    listed), optionally moving ``files`` from ``source/cur`` into it, then
    rename it into place.  The UIDs of the moved files."""
    target = layout.mailbox_dir(user, name)
    scratch = user / layout.scratch_name("new")
    moved: list[int] = []
    try:
        layout.make_maildir(scratch)
        (scratch / layout.FOLDER_MARKER).touch()
        if keywords:
            layout.atomic_write(scratch / layout.KEYWORDS, keywords)
        kept = []
        for (uid, base), filename in zip(entries or [], files or [], strict=True):
            assert source is not None
            try:
                os.rename(source / "cur" / filename, scratch / "cur" / filename)
            except FileNotFoundError:
                continue
            moved.append(uid)
            kept.append((uid, base))
        # Nothing in it is \Recent: messages from uid_next on will be.
        uidlist.write(
            scratch, uidlist.UidList(uidlist.new_uid_validity(), uid_next, kept, first_recent=uid_next)
        )
        os.rename(scratch, target)
    except OSError as exc:
        if source is not None:  # put back what was moved
            for filename in os.listdir(scratch / "cur") if scratch.exists() else []:
                os.rename(scratch / "cur" / filename, source / "cur" / filename)
        shutil.rmtree(scratch, ignore_errors=True)
        if target.exists():
            raise MailboxExists(f"mailbox {name!r} exists") from exc
        raise
    return moved


def create(user: Path, name: str) -> None:
    """Create mailbox ``name`` and any missing parents."""
    name = names.normalize_mailbox(name)
    if name == names.INBOX or exists(user, name):
        raise MailboxExists(f"mailbox {name!r} exists")
    layout.folder_dirname(name)  # refuse overlong names before making parents
    for parent in names.parents(name):
        if not exists(user, parent):
            _make(user, parent)
    _make(user, name)


def delete(user: Path, name: str) -> None:
    """Delete folder ``name`` (not INBOX); its children stay."""
    path = layout.mailbox_dir(user, name)
    if not layout.is_maildir(path):
        raise NoSuchMailbox(f"no mailbox {name!r}")
    # Only the folder's own directory goes (Maildir++ children are
    # siblings).  Renaming first makes it vanish at once.
    trash = user / layout.scratch_name("trash")
    os.rename(path, trash)
    shutil.rmtree(trash)


def rename(user: Path, old: str, new: str) -> list[tuple[str, str]]:
    """Rename folder ``old`` (not INBOX) and its children; the moves made."""
    if not exists(user, old):
        raise NoSuchMailbox(f"no mailbox {old!r}")
    if new == names.INBOX or exists(user, new):
        raise MailboxExists(f"mailbox {new!r} exists")
    if names.is_inferior(new, old):
        raise InvalidMailboxName("cannot rename a mailbox below itself")
    moves = [
        (name, new + name[len(old) :])
        for name in sorted(list_mailboxes(user))
        if name == old or names.is_inferior(name, old)
    ]
    for _, dest in moves:
        layout.folder_dirname(dest)  # refuse overlong names before changing anything
        if exists(user, dest):  # a child of the new name left behind earlier
            raise MailboxExists(f"mailbox {dest!r} exists")
    for parent in names.parents(new):
        if not exists(user, parent):
            _make(user, parent)
    done = []
    for src, dest in moves:
        os.rename(layout.mailbox_dir(user, src), layout.mailbox_dir(user, dest))
        done.append((src, dest))
    return done


def move_inbox(
    user: Path, new: str, entries: list[tuple[int, str]], files: list[str], keywords: bytes, uid_next: int
) -> list[int]:
    """RFC 3501 6.3.5: move INBOX's message ``files`` into a new folder ``new``
    (created with its parents, a fresh UIDVALIDITY and the same UIDs); the
    UIDs moved."""
    new = names.normalize_mailbox(new)
    if new == names.INBOX or exists(user, new):
        raise MailboxExists(f"mailbox {new!r} exists")
    layout.folder_dirname(new)
    for parent in names.parents(new):
        if not exists(user, parent):
            _make(user, parent)
    return _make(user, new, entries, uid_next, keywords, files, source=user)


def read_subscriptions(user: Path) -> set[str]:
    """The subscribed names (hand-edited garbage is ignored)."""
    try:
        with open(user / layout.SUBSCRIPTIONS, "rb") as source:
            text = source.read(MAX_SUBSCRIPTIONS_SIZE).decode("utf-8", "replace")
    except FileNotFoundError:
        return set()
    subscribed = set()
    for line in text.splitlines():
        try:
            subscribed.add(names.normalize_mailbox(line))
        except InvalidMailboxName:
            continue
    return subscribed


def write_subscriptions(user: Path, subscribed: set[str]) -> None:
    text = "".join(f"{name}\n" for name in sorted(subscribed))
    layout.atomic_write(user / layout.SUBSCRIPTIONS, text.encode("utf-8"))
