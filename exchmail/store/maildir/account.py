"""MaildirAccount and MaildirStore: users' Maildir++ trees under one root.

The store hands out one account per user, the account one shared
:class:`MaildirMailbox` per open mailbox (:class:`~exchmail.store.openboxes.OpenMailboxes`:
shared, released when idle).  All disk work runs through ``run_blocking``
(:mod:`.folders`, :mod:`.scan`); folder changes and subscription writes of
one account run one at a time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface import implementer

from exchmail.errors import InvalidMailboxName, NoSuchMailbox
from exchmail.interfaces import (
    IAccountListing,
    IEarlyOpen,
    IMarkedMailboxes,
    ISpecialUseMailboxes,
    IStore,
    IStoreAccount,
    IStoreMailbox,
)
from exchmail.store import names
from exchmail.store.index import IndexedMailbox
from exchmail.store.maildir import folders, layout, scan, specialuse
from exchmail.store.maildir.mailbox import MaildirMailbox
from exchmail.store.maildir.watch import MaildirWatcher
from exchmail.store.openboxes import OpenMailboxes
from exchmail.store.runner import RunBlocking, run_sync

DEFAULT_RELEASE_AFTER = 300.0
DEFAULT_POLL_INTERVAL = 5.0


def _checked(check: Any, *args: Any) -> defer.Deferred[Any]:
    return defer.maybeDeferred(check, *args)


def _complete(box: MaildirMailbox) -> Any:
    """``box`` once its index knows every message's date and sizes."""
    waiting = box.details_known()
    return box if waiting is None else waiting.addCallback(lambda _: box)


@implementer(IStoreAccount, IMarkedMailboxes, ISpecialUseMailboxes, IEarlyOpen)
class MaildirAccount:
    """One user's maildir: INBOX at ``path``, folders as ``path/.A.B``."""

    def __init__(
        self,
        name: str,
        path: Path,
        run_blocking: RunBlocking,
        reactor: Any = None,
        watcher: MaildirWatcher | None = None,
        release_after: float | None = DEFAULT_RELEASE_AFTER,
    ) -> None:
        self.name = name
        self.path = path
        self._run = run_blocking
        self._reactor = reactor
        self._watcher = watcher
        self._boxes = OpenMailboxes(reactor, release_after, self._released)
        self._lock = defer.DeferredLock()  # folder changes and subscriptions
        self._subscriptions: set[str] | None = None
        self._special: dict[str, frozenset[str]] | None = None  # CREATE-SPECIAL-USE
        self._recent_hint: set[str] = set()  # released mailboxes with unclaimed \Recent

    # -- listing and opening ------------------------------------------------------
    def list_mailboxes(self) -> defer.Deferred[list[str]]:
        return self._run(folders.list_mailboxes, self.path)

    def mailbox(self, name: str) -> defer.Deferred[IStoreMailbox]:
        return _checked(names.normalize_mailbox, name).addCallback(self._open).addCallback(_complete)

    def mailbox_early(self, name: str) -> defer.Deferred[tuple[IStoreMailbox, Any]]:
        d = _checked(names.normalize_mailbox, name).addCallback(self._open)
        return d.addCallback(lambda box: (box, box.details_known))

    def _open(self, name: str) -> defer.Deferred[Any]:
        return self._boxes.open(name, lambda: self._load(name))

    def _load(self, name: str) -> defer.Deferred[MaildirMailbox]:
        path = layout.mailbox_dir(self.path, name)
        d = self._run(scan.load, path, time.time())
        d.addCallbacks(self._loaded, self._not_loaded, callbackArgs=(name, path), errbackArgs=(name,))
        return d

    def _loaded(self, loaded: scan.Loaded, name: str, path: Path) -> MaildirMailbox:
        # The scan built the whole index in the thread: this only takes it over.
        self._recent_hint.discard(name)
        return MaildirMailbox(name, path, self._run, loaded, self._reactor, self._watcher)

    def _not_loaded(self, failure: Failure, name: str) -> None:
        failure.trap(FileNotFoundError, NotADirectoryError)
        raise NoSuchMailbox(f"no mailbox {name!r}")

    def _released(self, box: IndexedMailbox) -> None:
        if box.recent_count() > 0:
            self._recent_hint.add(box.name)

    def marked(self, names_: Iterable[str]) -> defer.Deferred[set[str]]:
        """Open mailboxes: unclaimed \\Recent messages; others: files waiting in new/."""
        marked, ask = set(), []
        for name in names_:
            box = self._boxes.peek(name)
            if box is not None:
                if box.recent_count() > 0:
                    marked.add(name)
            elif name in self._recent_hint:
                marked.add(name)
            else:
                ask.append(name)
        if not ask:
            return defer.succeed(marked)
        return self._run(folders.has_new_mail, self.path, ask).addCallback(marked.union)

    # -- creating, deleting, renaming ---------------------------------------------
    def create(self, name: str) -> defer.Deferred[None]:
        return self._lock.run(self._run, folders.create, self.path, name)

    def delete(self, name: str) -> defer.Deferred[None]:
        return _checked(names.normalize_mailbox, name).addCallback(
            lambda name: self._lock.run(self._delete, name)
        )

    def _delete(self, name: str) -> defer.Deferred[None]:
        if name == names.INBOX:
            raise InvalidMailboxName("INBOX cannot be deleted")
        box = self._boxes.pop(name)
        if isinstance(box, MaildirMailbox):
            box.deleted()
        self._recent_hint.discard(name)
        d = self._run(folders.delete, self.path, name)
        return d.addCallback(lambda _: self._forget_special_use(name))

    def rename(self, old: str, new: str) -> defer.Deferred[None]:
        d = _checked(lambda: (names.normalize_mailbox(old), names.normalize_mailbox(new)))
        return d.addCallback(lambda pair: self._lock.run(self._rename, *pair))

    @defer.inlineCallbacks
    def _rename(self, old: str, new: str) -> Any:
        if old == names.INBOX:
            yield self._rename_inbox(new)
            return None
        # Hold the affected open mailboxes still (no flag change or scan may
        # work on their old paths) while their directories move.
        boxes = sorted(
            (box for box in self._boxes.open_boxes() if box.name == old or names.is_inferior(box.name, old)),
            key=lambda box: box.name,
        )
        for box in boxes:
            yield box.lock.acquire()
            if isinstance(box, MaildirMailbox):
                yield box.uidlist.pause()  # no UID list write on the old path meanwhile
        try:
            moves = yield self._run(folders.rename, self.path, old, new)
            destination = dict(moves)
            for box in self._boxes.rename(moves):
                dest = destination[box.name]
                if isinstance(box, MaildirMailbox):
                    box.moved(dest, layout.mailbox_dir(self.path, dest))
                else:
                    box.name = dest
            self._recent_hint -= set(destination)
        finally:
            for box in boxes:
                if isinstance(box, MaildirMailbox):
                    box.uidlist.resume()
                box.lock.release()
        uses = yield self._special_uses()
        if any(name == old or names.is_inferior(name, old) for name in uses):
            yield self._store_special_uses(specialuse.renamed(uses, old, new))
        return None

    @defer.inlineCallbacks
    def _rename_inbox(self, new: str) -> Any:
        """RFC 3501 6.3.5: INBOX's messages move to ``new``; INBOX stays, empty."""
        inbox = yield self._open(names.INBOX)
        yield inbox.lock.run(self._move_inbox, inbox, new)

    def _move_inbox(self, inbox: MaildirMailbox, new: str) -> defer.Deferred[None]:
        uids, files, keywords = inbox.message_files()
        entries = [(uid, filename.split(":", 1)[0]) for uid, filename in zip(uids, files, strict=True)]
        d = self._run(
            folders.move_inbox,
            self.path,
            new,
            entries,
            files,
            keywords.serialize() if keywords.by_index else b"",
            inbox.uid_next,
        )
        return d.addCallback(inbox.emptied)

    # -- subscriptions -------------------------------------------------------------
    def _subscribed(self) -> defer.Deferred[set[str]]:
        if self._subscriptions is not None:
            return defer.succeed(self._subscriptions)

        def keep(found: set[str]) -> set[str]:
            if self._subscriptions is None:
                self._subscriptions = found
            return self._subscriptions

        return self._run(folders.read_subscriptions, self.path).addCallback(keep)

    def subscriptions(self) -> defer.Deferred[set[str]]:
        return self._subscribed().addCallback(set)

    def subscribe(self, name: str) -> defer.Deferred[None]:
        return self._change_subscriptions(name, True)

    def unsubscribe(self, name: str) -> defer.Deferred[None]:
        return self._change_subscriptions(name, False)

    def _change_subscriptions(self, name: str, add: bool) -> defer.Deferred[None]:
        def change(subscribed: set[str], name: str) -> Any:
            if (name in subscribed) == add:
                return None
            updated = subscribed | {name} if add else subscribed - {name}
            d = self._run(folders.write_subscriptions, self.path, updated)
            return d.addCallback(lambda _: setattr(self, "_subscriptions", updated))

        def locked(name: str) -> Any:
            return self._lock.run(lambda: self._subscribed().addCallback(change, name))

        return _checked(names.normalize_mailbox, name).addCallback(locked)

    # -- special uses (RFC 6154) ---------------------------------------------------
    def _special_uses(self) -> defer.Deferred[dict[str, frozenset[str]]]:
        if self._special is not None:
            return defer.succeed(self._special)

        def keep(found: dict[str, frozenset[str]]) -> dict[str, frozenset[str]]:
            if self._special is None:
                self._special = found
            return self._special

        return self._run(specialuse.read, self.path).addCallback(keep)

    def _store_special_uses(self, uses: dict[str, frozenset[str]]) -> defer.Deferred[None]:
        d = self._run(specialuse.write, self.path, uses)
        return d.addCallback(lambda _: setattr(self, "_special", uses))

    def special_uses(self) -> defer.Deferred[dict[str, frozenset[str]]]:
        return self._special_uses().addCallback(dict)

    def set_special_use(self, name: str, uses: frozenset[str]) -> defer.Deferred[None]:
        @defer.inlineCallbacks
        def change(name: str) -> Any:
            if not (yield self._run(folders.exists, self.path, name)) and name != names.INBOX:
                raise NoSuchMailbox(f"no mailbox {name!r}")
            current = yield self._special_uses()
            updated = (
                {**current, name: frozenset(uses)}
                if uses
                else {k: v for k, v in current.items() if k != name}
            )
            yield self._store_special_uses(updated)

        return _checked(names.normalize_mailbox, name).addCallback(lambda name: self._lock.run(change, name))

    def _forget_special_use(self, name: str) -> Any:
        """A deleted mailbox loses its special use (called under the lock)."""

        def drop(uses: dict[str, frozenset[str]]) -> Any:
            if name not in uses:
                return None
            return self._store_special_uses({k: v for k, v in uses.items() if k != name})

        return self._special_uses().addCallback(drop)

    def close(self) -> None:
        """Stop the release timers."""
        self._boxes.close()


@implementer(IStore, IAccountListing)
class MaildirStore:
    """Users' maildirs under ``root``, one ``<root>/<user>`` each.

    :param run_blocking: ``run_blocking(f, *args) -> Deferred`` runs disk work
        off the reactor (the service passes one over its bounded thread
        pool); the default runs it at once, which is what tests and scripts
        want (see :mod:`exchmail.store.runner`).
    :param reactor: watches folders with listeners for outside changes
        (inotify or polling) and releases idle mailboxes; ``None``: neither
        (sessions then call ``refresh()``; nothing is released).
    :param watch: ``"auto"``, ``"inotify"``, ``"poll"`` or ``"off"``.
    :param poll_interval: seconds between checks of a polled folder.
    :param release_after: seconds without listeners or use after which an
        open mailbox's index is let go; ``None``: never.
    """

    def __init__(
        self,
        root: Path | str,
        run_blocking: RunBlocking | None = None,
        *,
        reactor: Any = None,
        watch: str = "auto",
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        release_after: float | None = DEFAULT_RELEASE_AFTER,
    ) -> None:
        self.root = Path(root)
        self._run: RunBlocking = run_blocking or run_sync
        self._reactor = reactor
        self.release_after = release_after
        self.watcher = (
            MaildirWatcher(reactor, watch, poll_interval) if reactor is not None and watch != "off" else None
        )
        self._accounts: dict[str, MaildirAccount] = {}
        self._opening: dict[str, list[defer.Deferred[Any]]] = {}

    def account(self, name: str) -> defer.Deferred[IStoreAccount]:
        return _checked(names.check_user_name, name).addCallback(self._account)

    def _account(self, name: str) -> Any:
        if name in self._accounts:
            return self._accounts[name]
        waiter: defer.Deferred[Any] = defer.Deferred()
        if name in self._opening:  # being created: share the outcome
            self._opening[name].append(waiter)
            return waiter
        self._opening[name] = [waiter]
        d = self._run(folders.make_user, self.root, name)
        d.addCallback(self._made, name)
        d.addBoth(self._wake, name)
        return waiter

    def _made(self, path: Path, name: str) -> MaildirAccount:
        account = self._accounts.get(name)
        if account is None:
            account = self._accounts[name] = MaildirAccount(
                name, path, self._run, self._reactor, self.watcher, self.release_after
            )
        return account

    def _wake(self, outcome: Any, name: str) -> None:
        for waiter in self._opening.pop(name, []):
            if isinstance(outcome, Failure):
                waiter.errback(outcome)
            else:
                waiter.callback(outcome)

    def account_names(self) -> defer.Deferred[list[str]]:
        """Every user folder under the root that holds a maildir."""
        return self._run(folders.account_names, self.root)

    def close(self) -> None:
        """Stop watching and releasing (the thread pool belongs to the caller)."""
        if self.watcher is not None:
            self.watcher.close()
        for account in self._accounts.values():
            account.close()
