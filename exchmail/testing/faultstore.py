"""FaultStore: any :class:`~exchmail.interfaces.IStore` with store-level faults.

It wraps a real store (the in-memory one or a Maildir) for a test server:
before every asynchronous operation it asks its
:class:`~exchmail.testing.faults.Faults` whether the operation must fail
with :class:`~exchmail.errors.StoreUnavailable` (``store_error`` rules),
and its mailboxes report the UIDVALIDITY the faults say (``uidvalidity``
rules).  Everything else is the wrapped store's: the mailboxes are shared
by every session as before, and listeners hear of changes from the wrapped
mailbox.  The real stores know nothing of this.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from zope.interface import alsoProvides, implementer

from exchmail.errors import StoreUnavailable
from exchmail.interfaces import (
    IAccountListing,
    IBatchRead,
    IMarkedMailboxes,
    IStore,
    IStoreAccount,
    IStoreMailbox,
)
from exchmail.testing.faults import Faults

ACCOUNT_OPERATIONS = frozenset(
    {"list_mailboxes", "create", "delete", "rename", "subscriptions", "subscribe", "unsubscribe"}
)
MAILBOX_OPERATIONS = frozenset(
    {
        "read_message",
        "read_messages",
        "open_message",
        "append",
        "set_flags",
        "expunge",
        "copy_to",
        "replace_message",
        "refresh",
    }
)


def _guarded(
    faults: Faults, user: str, operation: str, method: Callable[..., Any]
) -> Callable[..., defer.Deferred[Any]]:
    """``method``, failing with StoreUnavailable when a rule says so."""

    def call(*args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        text = faults.store_failure(user, operation)
        if text is not None:
            return defer.fail(StoreUnavailable(text))
        return defer.maybeDeferred(method, *args, **kwargs)

    return call


@implementer(IStore)
class FaultStore:
    """An :class:`IStore` whose accounts and mailboxes obey ``faults``."""

    def __init__(self, store: IStore, faults: Faults) -> None:
        if IAccountListing.providedBy(store):  # optional interfaces pass through
            alsoProvides(self, IAccountListing)
        self.wrapped = store
        self.faults = faults
        self._accounts: dict[str, FaultAccount] = {}

    def account(self, name: str) -> defer.Deferred[IStoreAccount]:
        text = self.faults.store_failure(name, "account")
        if text is not None:
            return defer.fail(StoreUnavailable(text))
        return defer.maybeDeferred(self.wrapped.account, name).addCallback(self._wrap)

    def _wrap(self, account: IStoreAccount) -> FaultAccount:
        wrapper = self._accounts.get(account.name)
        if wrapper is None or wrapper.wrapped is not account:
            wrapper = self._accounts[account.name] = FaultAccount(account, self.faults)
        return wrapper

    def close(self) -> Any:
        return self.wrapped.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


@implementer(IStoreAccount)
class FaultAccount:
    """An account wrapper: guarded operations, :class:`FaultMailbox` mailboxes."""

    def __init__(self, account: IStoreAccount, faults: Faults) -> None:
        if IMarkedMailboxes.providedBy(account):
            alsoProvides(self, IMarkedMailboxes)
        self.wrapped = account
        self.faults = faults
        self._boxes: weakref.WeakKeyDictionary[Any, FaultMailbox] = weakref.WeakKeyDictionary()

    @property
    def name(self) -> str:
        return str(self.wrapped.name)

    def mailbox(self, name: str) -> defer.Deferred[IStoreMailbox]:
        call = _guarded(self.faults, self.name, "mailbox", self.wrapped.mailbox)
        return call(name).addCallback(self._wrap)

    def _wrap(self, mailbox: Any) -> FaultMailbox:
        wrapper = self._boxes.get(mailbox)
        if wrapper is None:
            wrapper = self._boxes[mailbox] = FaultMailbox(mailbox, self)
        return wrapper

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.wrapped, name)
        if name in ACCOUNT_OPERATIONS:
            return _guarded(self.faults, self.name, name, value)
        return value


@implementer(IStoreMailbox)
class FaultMailbox:
    """A mailbox wrapper: guarded operations and the faults' UIDVALIDITY."""

    def __init__(self, mailbox: IStoreMailbox, account: FaultAccount) -> None:
        if IBatchRead.providedBy(mailbox):
            alsoProvides(self, IBatchRead)
        self.wrapped = mailbox
        self.account = account

    @property
    def uid_validity(self) -> int:
        stored = int(self.wrapped.uid_validity)
        return self.account.faults.uid_validity(self.account.name, self.wrapped.name, stored)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.wrapped, name)
        if name in MAILBOX_OPERATIONS:
            return _guarded(self.account.faults, self.account.name, name, value)
        return value
