"""MaildirAccount and MaildirStore: users' Maildir++ trees under one root.

The layout mirrors :mod:`exchmail.store.memory`: the store hands out one
account per user, the account one shared :class:`MaildirMailbox` per open
mailbox.  Every path is built by :mod:`~exchmail.store.maildir.layout`
from a checked name, so no client-supplied name reaches outside
``<root>/<user>``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface import implementer

from exchmail.errors import InvalidMailboxName, InvalidUserName, MailboxExists, NoSuchMailbox
from exchmail.interfaces import IAccountListing, IMarkedMailboxes, IStore, IStoreAccount, IStoreMailbox
from exchmail.store import names
from exchmail.store.maildir import layout, uidlist
from exchmail.store.maildir.mailbox import MaildirMailbox, RunBlocking, run_sync
from exchmail.store.maildir.scan import Scan, scan


@implementer(IStoreAccount, IMarkedMailboxes)
class MaildirAccount:
    """One user's maildir: INBOX at ``path``, folders as ``path/.A.B``."""

    def __init__(self, name: str, path: Path, run_blocking: RunBlocking) -> None:
        self.name = name
        self.path = path
        self._run = run_blocking
        self._open: dict[str, MaildirMailbox] = {}
        self._loading: dict[str, list[defer.Deferred[MaildirMailbox]]] = {}
        self._subscriptions: set[str] | None = None

    def _dir(self, name: str) -> Path:
        return layout.mailbox_dir(self.path, name)

    def _exists(self, name: str) -> bool:
        return layout.is_maildir(self._dir(name))

    # -- listing and opening -------------------------------------------
    def list_mailboxes(self) -> list[str]:
        found = [names.INBOX]
        with os.scandir(self.path) as entries:
            for entry in entries:
                name = layout.folder_name(entry.name)
                # Symlinked folders are skipped: they could lead anywhere.
                if (name is not None and entry.is_dir(follow_symlinks=False)
                        and layout.is_maildir(Path(entry.path))):
                    found.append(name)
        return found

    def is_marked(self, name: str) -> bool:
        """Open mailboxes: unclaimed \\Recent messages; others: files waiting in new/."""
        box = self._open.get(name)
        if box is not None:
            return box.recent_count() > 0
        try:
            with os.scandir(self._dir(name) / "new") as entries:
                return any(not entry.name.startswith(".") for entry in entries)
        except OSError:
            return False

    def mailbox(self, name: str) -> defer.Deferred[IStoreMailbox]:
        return self._mailbox(name)  # type: ignore[return-value]  # a MaildirMailbox provides it

    def _mailbox(self, name: str) -> defer.Deferred[MaildirMailbox]:
        name = names.normalize_mailbox(name)
        if name in self._open:
            return defer.succeed(self._open[name])
        waiter: defer.Deferred[MaildirMailbox] = defer.Deferred()
        if name in self._loading:
            # Someone is loading it already: share the same object.
            self._loading[name].append(waiter)
            return waiter
        path = self._dir(name)
        if not layout.is_maildir(path):
            return defer.fail(NoSuchMailbox(f"no mailbox {name!r}"))
        self._loading[name] = [waiter]
        d = self._run(scan, path, frozenset(), True)
        d.addCallback(self._loaded, name, path)
        d.addBoth(self._wake, name)
        return waiter

    def _loaded(self, initial: Scan, name: str, path: Path) -> MaildirMailbox:
        # Runs on the reactor thread: only here is the index built.
        if name in self._open:
            return self._open[name]
        if not layout.is_maildir(path):
            raise NoSuchMailbox(f"mailbox {name!r} went away while opening")
        box = MaildirMailbox(name, path, self._run, initial)
        self._open[name] = box
        return box

    def _wake(self, outcome: MaildirMailbox | Failure, name: str) -> None:
        for waiter in self._loading.pop(name, []):
            if isinstance(outcome, Failure):
                waiter.errback(outcome)
            else:
                waiter.callback(outcome)

    # -- creating, deleting, renaming ----------------------------------
    def _make(self, name: str) -> None:
        """Create folder ``name`` atomically: build it under a scratch name
        (never listed), then rename it into place."""
        target = self._dir(name)
        scratch = self.path / layout.scratch_name("new")
        try:
            layout.make_maildir(scratch)
            (scratch / layout.FOLDER_MARKER).touch()
            uidlist.write(scratch, uidlist.UidList(uidlist.new_uid_validity()))
            os.rename(scratch, target)
        except OSError as exc:
            shutil.rmtree(scratch, ignore_errors=True)
            if target.exists():
                raise MailboxExists(f"mailbox {name!r} exists") from exc
            raise

    def create(self, name: str) -> None:
        name = names.normalize_mailbox(name)
        if name == names.INBOX or self._exists(name):
            raise MailboxExists(f"mailbox {name!r} exists")
        layout.folder_dirname(name)  # refuse overlong names before making parents
        for parent in names.parents(name):
            if not self._exists(parent):
                self._make(parent)
        self._make(name)

    def delete(self, name: str) -> defer.Deferred[None]:
        name = names.normalize_mailbox(name)
        if name == names.INBOX:
            raise InvalidMailboxName("INBOX cannot be deleted")
        path = self._dir(name)
        if not layout.is_maildir(path):
            raise NoSuchMailbox(f"no mailbox {name!r}")
        box = self._open.pop(name, None)
        if box is not None:
            box.deleted()
        # Only the folder's own directory goes (Maildir++ children are
        # siblings).  Renaming first makes it vanish at once; the slow
        # removal of its files then runs off the reactor.
        trash = self.path / layout.scratch_name("trash")
        os.rename(path, trash)
        return self._run(shutil.rmtree, trash)

    def rename(self, old: str, new: str) -> defer.Deferred[None] | None:
        old, new = names.normalize_mailbox(old), names.normalize_mailbox(new)
        if not self._exists(old):
            raise NoSuchMailbox(f"no mailbox {old!r}")
        if new == names.INBOX or self._exists(new):
            raise MailboxExists(f"mailbox {new!r} exists")
        if names.is_inferior(new, old):
            raise InvalidMailboxName("cannot rename a mailbox below itself")
        if old == names.INBOX:
            return self._rename_inbox(new)
        moves = [(name, new + name[len(old):]) for name in sorted(self.list_mailboxes())
                 if name == old or names.is_inferior(name, old)]
        for _, dest in moves:
            if self._exists(dest):  # a child of the new name left behind earlier
                raise MailboxExists(f"mailbox {dest!r} exists")
        for parent in names.parents(new):
            if not self._exists(parent):
                self._make(parent)
        boxes = []
        for src, dest in moves:
            os.rename(self._dir(src), self._dir(dest))
            box = self._open.pop(src, None)
            if box is not None:
                box.moved(dest, self._dir(dest))
                boxes.append(box)
        self._open.update((box.name, box) for box in boxes)
        return None

    def _rename_inbox(self, new: str) -> defer.Deferred[None]:
        """RFC 3501 6.3.5: INBOX's messages move to ``new``; INBOX stays, empty."""
        def move(inbox: MaildirMailbox) -> None:
            # One synchronous step on the reactor thread, so no delivery or
            # scan can interleave between creating and filling the folder.
            self.create(new)
            target = self._dir(new)
            entries, keywords = inbox.move_all(target)
            if keywords.by_index:
                layout.atomic_write(target / layout.KEYWORDS, keywords.serialize())
            # Fresh UIDVALIDITY for the new folder; its UIDs may then stay.
            uidlist.write(target, uidlist.UidList(
                uidlist.new_uid_validity(), inbox.uid_next, entries))
        return self._mailbox(names.INBOX).addCallback(move)

    # -- subscriptions -------------------------------------------------
    def _subscribed(self) -> set[str]:
        if self._subscriptions is None:
            try:
                text = (self.path / layout.SUBSCRIPTIONS).read_text("utf-8", "replace")
            except FileNotFoundError:
                text = ""
            subscribed = set()
            for line in text.splitlines():
                try:
                    subscribed.add(names.normalize_mailbox(line))
                except InvalidMailboxName:
                    continue  # hand-edited garbage: ignore it
            self._subscriptions = subscribed
        return self._subscriptions

    def _save_subscriptions(self) -> None:
        text = "".join(f"{name}\n" for name in sorted(self._subscribed()))
        layout.atomic_write(self.path / layout.SUBSCRIPTIONS, text.encode("utf-8"))

    def subscriptions(self) -> set[str]:
        return set(self._subscribed())

    def subscribe(self, name: str) -> None:
        name = names.normalize_mailbox(name)
        if name not in self._subscribed():
            self._subscribed().add(name)
            self._save_subscriptions()

    def unsubscribe(self, name: str) -> None:
        name = names.normalize_mailbox(name)
        if name in self._subscribed():
            self._subscribed().discard(name)
            self._save_subscriptions()


@implementer(IStore, IAccountListing)
class MaildirStore:
    """Users' maildirs under ``root``, one ``<root>/<user>`` each.

    ``run_blocking(f, *args) -> Deferred`` runs disk work off the reactor
    (the service passes one built on ``deferToThreadPool``); the default
    runs it at once, which is what tests and scripts want.
    """

    def __init__(self, root: Path, run_blocking: RunBlocking | None = None) -> None:
        self.root = Path(root)
        self._run: RunBlocking = run_blocking or run_sync
        self._accounts: dict[str, MaildirAccount] = {}

    def account(self, name: str) -> defer.Deferred[IStoreAccount]:
        name = names.check_user_name(name)
        if name not in self._accounts:
            path = layout.user_dir(self.root, name)
            self.root.mkdir(parents=True, exist_ok=True)
            layout.make_maildir(path)
            self._accounts[name] = MaildirAccount(name, path, self._run)
        return defer.succeed(self._accounts[name])

    def account_names(self) -> list[str]:
        """Every user folder under the root that holds a maildir."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in sorted(self.root.iterdir()):
            try:
                name = names.check_user_name(entry.name)
            except InvalidUserName:
                continue  # not a folder this store made
            if not entry.is_symlink() and layout.is_maildir(entry):
                found.append(name)
        return found

    def close(self) -> None:
        """Nothing to release: the thread pool belongs to the caller."""
