"""MemoryStore: the reference backend, for tests, embedding and backend authors.

Everything lives in dictionaries; nothing survives a restart.  It is the
smallest complete implementation of :mod:`exchmail.interfaces` and the one
to read first when writing a backend of one's own.
"""

from __future__ import annotations

import io
import itertools
import time
from typing import BinaryIO

from twisted.internet import defer
from zope.interface import implementer

from exchmail.errors import InvalidMailboxName, MailboxExists, NoSuchMailbox
from exchmail.interfaces import IAccountListing, IMarkedMailboxes, IStore, IStoreAccount, IStoreMailbox
from exchmail.store import names
from exchmail.store.index import IndexedMailbox, MessageRecord

_validity = itertools.count(int(time.time()))


def read_source(source: bytes | BinaryIO) -> bytes:
    """The bytes of an append source (bytes, or a file read from its position)."""
    return source if isinstance(source, bytes) else source.read()


class MemoryMailbox(IndexedMailbox):
    """A mailbox whose messages are ``bytes`` in wire form, kept in the records."""

    def _deliver(self, source: bytes | BinaryIO, flags: frozenset[str],
                 internal_date: float) -> MessageRecord:
        data = read_source(source)
        return MessageRecord(self._allocate_uid(), flags, internal_date,
                             len(data), len(data), key=data)

    def _open(self, record: MessageRecord) -> BinaryIO:
        assert isinstance(record.key, bytes)
        return io.BytesIO(record.key)


@implementer(IStoreAccount, IMarkedMailboxes)
class MemoryAccount:
    """One user's mailboxes, held in a dict keyed by canonical name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._mailboxes: dict[str, MemoryMailbox] = {}
        self._subscriptions: set[str] = set()
        self._add(names.INBOX)

    def _add(self, name: str) -> None:
        self._mailboxes[name] = MemoryMailbox(name, next(_validity))

    def list_mailboxes(self) -> list[str]:
        return list(self._mailboxes)

    def mailbox(self, name: str) -> defer.Deferred[IStoreMailbox]:
        name = names.normalize_mailbox(name)
        if name not in self._mailboxes:
            return defer.fail(NoSuchMailbox(f"no mailbox {name!r}"))
        return defer.succeed(self._mailboxes[name])

    def create(self, name: str) -> None:
        name = names.normalize_mailbox(name)
        if name in self._mailboxes:
            raise MailboxExists(f"mailbox {name!r} exists")
        for parent in names.parents(name):
            if parent not in self._mailboxes:
                self._add(parent)
        self._add(name)

    def delete(self, name: str) -> None:
        name = names.normalize_mailbox(name)
        if name == names.INBOX:
            raise InvalidMailboxName("INBOX cannot be deleted")
        if name not in self._mailboxes:
            raise NoSuchMailbox(f"no mailbox {name!r}")
        del self._mailboxes[name]

    def rename(self, old: str, new: str) -> None:
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
                box.name = new + name[len(old):]
                self._mailboxes[box.name] = box

    def _move_inbox(self, new: str) -> None:
        """RFC 3501 6.3.5: INBOX's messages move to ``new``; INBOX stays, empty."""
        self.create(new)
        inbox, target = self._mailboxes[names.INBOX], self._mailboxes[new]
        target._index_added(inbox._records[uid] for uid in inbox.uids())
        inbox._index_removed(list(inbox.uids()))

    def is_marked(self, name: str) -> bool:
        box = self._mailboxes.get(name)
        return box is not None and box.recent_count() > 0

    def subscriptions(self) -> set[str]:
        return set(self._subscriptions)

    def subscribe(self, name: str) -> None:
        self._subscriptions.add(names.normalize_mailbox(name))

    def unsubscribe(self, name: str) -> None:
        self._subscriptions.discard(names.normalize_mailbox(name))


@implementer(IStore, IAccountListing)
class MemoryStore:
    """Accounts created on first use, kept for the life of the process."""

    def __init__(self) -> None:
        self._accounts: dict[str, MemoryAccount] = {}

    def account(self, name: str) -> defer.Deferred[IStoreAccount]:
        name = names.check_user_name(name)
        if name not in self._accounts:
            self._accounts[name] = MemoryAccount(name)
        return defer.succeed(self._accounts[name])

    def account_names(self) -> list[str]:
        return sorted(self._accounts)

    def close(self) -> None:
        """Nothing to release."""
