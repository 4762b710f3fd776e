"""A custom realm: every user also sees a read-only tree of shared folders.

exchmail logs users in through a ``twisted.cred`` Portal; its realm turns a
checked user name into the :class:`~exchmail.interfaces.IStoreAccount` the
session works on.  The default realm (:class:`exchmail.auth.realm.MailRealm`)
hands out the user's own account.  This one wraps it: the user's own
folders, plus the folders of one shared account (``public`` by default)
under ``Public/``, read-only -- an announcements board, a company archive.

It shows what a realm can do that a store or a checker cannot: decide per
login (and per protocol: POP3 gets the plain account, it only sees INBOX)
what the session sees.  Give it to the service tree with the store it wraps::

    store = MaildirStore(data_dir / "mail", run_blocking=...)
    make_service(config, store=store, realm=SharedFoldersRealm(store))

(:func:`build_service` does that; ``tests/examples/test_shared_folders_realm.py``
runs it with real IMAP and POP3 clients.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.cred.portal import IRealm
from twisted.internet import defer
from zope.interface import implementer

from exchmail.errors import InvalidMailboxName
from exchmail.interfaces import ILoginMind, IStore, IStoreAccount, IStoreMailbox
from exchmail.store import names

PREFIX = "Public"


@implementer(IRealm)
class SharedFoldersRealm:
    """Hands out each user's account with ``store``'s ``shared`` account mounted
    read-only under ``Public/`` (IMAP), or the plain account (POP3, LMTP)."""

    def __init__(self, store: IStore, shared: str = "public") -> None:
        self.store = store
        self.shared = shared

    @defer.inlineCallbacks
    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any):
        if IStoreAccount not in interfaces:
            raise NotImplementedError("this realm serves IStoreAccount avatars only")
        name = avatarId.decode("utf-8") if isinstance(avatarId, bytes) else str(avatarId)
        own = yield defer.maybeDeferred(self.store.account, name)
        protocol = mind.protocol if ILoginMind.providedBy(mind) else "imap"
        if protocol != "imap" or names.normalize_mailbox(name) == self.shared:
            return IStoreAccount, own, lambda: None
        shared = yield defer.maybeDeferred(self.store.account, self.shared)
        return IStoreAccount, SharedFoldersAccount(own, shared), lambda: None


def _shared_name(name: str) -> str | None:
    """The shared account's folder a ``Public/...`` name stands for, or None."""
    if name == PREFIX:
        return ""
    if name.startswith(PREFIX + "/"):
        return name[len(PREFIX) + 1 :]
    return None


@implementer(IStoreAccount)
class SharedFoldersAccount:
    """The user's account, with the shared account's folders under ``Public/``."""

    def __init__(self, own: IStoreAccount, shared: IStoreAccount) -> None:
        self.own = own
        self.shared = shared
        self.name = own.name

    @defer.inlineCallbacks
    def list_mailboxes(self):
        mine = yield defer.maybeDeferred(self.own.list_mailboxes)
        theirs = yield defer.maybeDeferred(self.shared.list_mailboxes)
        return [n for n in mine if _shared_name(n) is None] + [f"{PREFIX}/{n}" for n in theirs]

    def mailbox(self, name: str) -> defer.Deferred[IStoreMailbox]:
        shared = _shared_name(name)
        if shared is None:
            return defer.maybeDeferred(self.own.mailbox, name)
        d = defer.maybeDeferred(self.shared.mailbox, shared)
        return d.addCallback(ReadOnlyMailbox)

    def _refuse_shared(self, *names_: str) -> None:
        if any(_shared_name(n) is not None for n in names_):
            raise InvalidMailboxName(f"folders under {PREFIX}/ are read-only")

    def create(self, name: str) -> defer.Deferred[None]:
        return defer.maybeDeferred(self._refuse_shared, name).addCallback(lambda _: self.own.create(name))

    def delete(self, name: str) -> defer.Deferred[None]:
        return defer.maybeDeferred(self._refuse_shared, name).addCallback(lambda _: self.own.delete(name))

    def rename(self, old: str, new: str) -> defer.Deferred[None]:
        return defer.maybeDeferred(self._refuse_shared, old, new).addCallback(
            lambda _: self.own.rename(old, new)
        )

    def subscriptions(self) -> defer.Deferred[set[str]]:
        return defer.maybeDeferred(self.own.subscriptions)

    def subscribe(self, name: str) -> defer.Deferred[None]:
        return defer.maybeDeferred(self.own.subscribe, name)

    def unsubscribe(self, name: str) -> defer.Deferred[None]:
        return defer.maybeDeferred(self.own.unsubscribe, name)


@implementer(IStoreMailbox)
class ReadOnlyMailbox:
    """A shared mailbox as every user sees it: content and flags as stored;
    flag changes are not kept (each reader's \\Seen would be everyone's),
    and nothing can be added or removed."""

    def __init__(self, mailbox: IStoreMailbox) -> None:
        self._mailbox = mailbox

    def __getattr__(self, name: str) -> Any:
        # name, uid_validity, uid_next, uids, message, recent_count, claim_recent,
        # listeners, read_message, open_message, refresh, copy_to (copying *out*
        # of the shared folder is allowed)
        return getattr(self._mailbox, name)

    def set_flags(
        self, uids: Iterable[int], flags: frozenset[str], mode: str, origin: object = None
    ) -> defer.Deferred[dict[int, frozenset[str]]]:
        current = {uid: record.flags for uid in uids if (record := self._mailbox.message(uid)) is not None}
        return defer.succeed(current)

    def _read_only(self, *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        return defer.fail(InvalidMailboxName(f"folders under {PREFIX}/ are read-only"))

    append = expunge = replace_message = _read_only


def build_service(config: Any, store: IStore | None = None) -> Any:
    """exchmail's service tree for ``config`` with this realm over ``store``
    (a :class:`~exchmail.store.memory.MemoryStore` when not given; a Maildir
    store works the same way)."""
    from exchmail.service import make_service
    from exchmail.store.memory import MemoryStore

    store = store if store is not None else MemoryStore()
    return make_service(config, store=store, realm=SharedFoldersRealm(store))
