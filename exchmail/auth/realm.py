"""MailRealm: hands out store accounts as avatars for every protocol."""

from __future__ import annotations

from typing import Any

from twisted.cred.portal import IRealm
from twisted.internet import defer
from zope.interface import implementer

from exchmail.interfaces import IStore, IStoreAccount


@implementer(IRealm)
class MailRealm:
    """One realm over one store, so IMAP (and POP3) sessions see the same mail.

    IMAP sessions ask for :class:`~exchmail.interfaces.IStoreAccount`; the
    POP3 service adds its ``twisted.mail.pop3.IMailbox`` branch here.
    """

    def __init__(self, store: IStore) -> None:
        self.store = store

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> defer.Deferred[tuple]:
        name = avatarId.decode("utf-8") if isinstance(avatarId, bytes) else avatarId
        if IStoreAccount in interfaces:
            d = defer.maybeDeferred(self.store.account, name)
            return d.addCallback(lambda account: (IStoreAccount, account, lambda: None))
        return defer.fail(NotImplementedError(f"no avatar for {interfaces!r}"))
