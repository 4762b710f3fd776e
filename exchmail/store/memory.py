"""MemoryStore: the reference backend, for tests, embedding and backend authors.

Everything lives in memory; nothing survives a restart.  It is the
smallest complete implementation of :mod:`exchmail.interfaces` and the one
to read first when writing a backend of one's own.  Its work is truly in
memory, so it never needs a thread: every asynchronous method returns an
already fired Deferred.  Nothing changes it from outside the process, so it
does not watch, and its mailboxes are never released (they *are* the data).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from typing import Any, BinaryIO

from twisted.internet import defer
from zope.interface import implementer

from exchmail.errors import InvalidMailboxName, MailboxExists, NoSuchMailbox
from exchmail.interfaces import (
    IAccountListing,
    IMarkedMailboxes,
    ISpecialUseMailboxes,
    IStore,
    IStoreAccount,
    IStoreMailbox,
)
from exchmail.store import names
from exchmail.store.index import IndexedMailbox, NewMessage

_validity = itertools.count(int(time.time()))

DATA = 0  # the extra column holding each message's bytes


def read_source(source: bytes | BinaryIO) -> bytes:
    """The bytes of an append source (bytes, or a file read from its position)."""
    return bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else source.read()


class MemoryMailbox(IndexedMailbox):
    """A mailbox whose messages are ``bytes`` in wire form, in a list column."""

    extra_columns = (None,)

    def _content_handle(self, row: int) -> bytes:
        data: bytes = self._rows.extra[DATA][row]
        return data

    def _read_blocking(self, handle: bytes) -> bytes:
        return handle

    def _deliver(self, source: bytes | BinaryIO, flags: frozenset[str], internal_date: float) -> NewMessage:
        data = read_source(source)
        return NewMessage(flags, internal_date, len(data), len(data), (data,))

    def _remove_messages(self, uids: list[int]) -> Any:
        return uids, None

    def take_all(self) -> list[tuple[int, NewMessage]]:
        """Empty the mailbox, returning its messages (RENAME INBOX)."""
        rows = self._rows
        taken = [
            (
                rows.uids[row],
                NewMessage(
                    rows.flags_of(row),
                    rows.dates[row],
                    rows.stored[row],
                    rows.exact[row],
                    (rows.extra[DATA][row],),
                ),
            )
            for row in range(len(rows))
        ]
        self._remove_uids([uid for uid, _ in taken])
        return taken


def _now(f: Any, *args: Any) -> defer.Deferred[Any]:
    return defer.maybeDeferred(f, *args)


@implementer(IStoreAccount, IMarkedMailboxes, ISpecialUseMailboxes)
class MemoryAccount:
    """One user's mailboxes, held in a dict keyed by canonical name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._mailboxes: dict[str, MemoryMailbox] = {}
        self._subscriptions: set[str] = set()
        self._special: dict[str, frozenset[str]] = {}
        self._add(names.INBOX)

    def _add(self, name: str) -> MemoryMailbox:
        box = self._mailboxes[name] = MemoryMailbox(name, next(_validity) & 0xFFFFFFFF or 1)
        return box

    def list_mailboxes(self) -> defer.Deferred[list[str]]:
        return defer.succeed(list(self._mailboxes))

    def mailbox(self, name: str) -> defer.Deferred[IStoreMailbox]:
        return _now(self._mailbox, name)

    def _mailbox(self, name: str) -> MemoryMailbox:
        name = names.normalize_mailbox(name)
        if name not in self._mailboxes:
            raise NoSuchMailbox(f"no mailbox {name!r}")
        return self._mailboxes[name]

    def create(self, name: str) -> defer.Deferred[None]:
        return _now(self._create, name)

    def _create(self, name: str) -> None:
        name = names.normalize_mailbox(name)
        if name in self._mailboxes:
            raise MailboxExists(f"mailbox {name!r} exists")
        for parent in names.parents(name):
            if parent not in self._mailboxes:
                self._add(parent)
        self._add(name)

    def delete(self, name: str) -> defer.Deferred[None]:
        return _now(self._delete, name)

    def _delete(self, name: str) -> None:
        name = names.normalize_mailbox(name)
        if name == names.INBOX:
            raise InvalidMailboxName("INBOX cannot be deleted")
        if name not in self._mailboxes:
            raise NoSuchMailbox(f"no mailbox {name!r}")
        del self._mailboxes[name]
        self._special.pop(name, None)

    def rename(self, old: str, new: str) -> defer.Deferred[None]:
        return _now(self._rename, old, new)

    def _rename(self, old: str, new: str) -> None:
        old, new = names.normalize_mailbox(old), names.normalize_mailbox(new)
        if old not in self._mailboxes:
            raise NoSuchMailbox(f"no mailbox {old!r}")
        if new in self._mailboxes:
            raise MailboxExists(f"mailbox {new!r} exists")
        if names.is_inferior(new, old):
            raise InvalidMailboxName("cannot rename a mailbox below itself")
        if old == names.INBOX:
            self._move_inbox(new)
            return
        for parent in names.parents(new):
            if parent not in self._mailboxes:
                self._add(parent)
        for name in sorted(self._mailboxes):
            if name == old or names.is_inferior(name, old):
                box = self._mailboxes.pop(name)
                box.name = new + name[len(old) :]
                self._mailboxes[box.name] = box
                if name in self._special:
                    self._special[box.name] = self._special.pop(name)

    def _move_inbox(self, new: str) -> None:
        """RFC 3501 6.3.5: INBOX's messages move to ``new``; INBOX stays, empty."""
        self._create(new)
        inbox, target = self._mailboxes[names.INBOX], self._mailboxes[new]
        taken = inbox.take_all()
        target._add_messages([message for _, message in taken], [uid for uid, _ in taken])

    def marked(self, names_: Iterable[str]) -> defer.Deferred[set[str]]:
        marked = set()
        for name in names_:
            box = self._mailboxes.get(name)
            if box is not None and box.recent_count() > 0:
                marked.add(name)
        return defer.succeed(marked)

    def special_uses(self) -> defer.Deferred[dict[str, frozenset[str]]]:
        return defer.succeed(dict(self._special))

    def set_special_use(self, name: str, uses: frozenset[str]) -> defer.Deferred[None]:
        def change() -> None:
            box = self._mailbox(name)  # NoSuchMailbox
            if uses:
                self._special[box.name] = frozenset(uses)
            else:
                self._special.pop(box.name, None)

        return _now(change)

    def subscriptions(self) -> defer.Deferred[set[str]]:
        return defer.succeed(set(self._subscriptions))

    def subscribe(self, name: str) -> defer.Deferred[None]:
        return _now(lambda: self._subscriptions.add(names.normalize_mailbox(name)))

    def unsubscribe(self, name: str) -> defer.Deferred[None]:
        return _now(lambda: self._subscriptions.discard(names.normalize_mailbox(name)))


@implementer(IStore, IAccountListing)
class MemoryStore:
    """Accounts created on first use, kept for the life of the process."""

    def __init__(self) -> None:
        self._accounts: dict[str, MemoryAccount] = {}

    def account(self, name: str) -> defer.Deferred[IStoreAccount]:
        return _now(self._account, name)

    def _account(self, name: str) -> MemoryAccount:
        name = names.check_user_name(name)
        if name not in self._accounts:
            self._accounts[name] = MemoryAccount(name)
        return self._accounts[name]

    def account_names(self) -> defer.Deferred[list[str]]:
        return defer.succeed(sorted(self._accounts))

    def close(self) -> None:
        """Nothing to release."""
