"""MailRealm: hands out store accounts as avatars for every protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm
from twisted.internet import defer
from zope.interface import implementer

from exchmail.auth.directory import protocol_allowed
from exchmail.interfaces import ILoginMind, IStore, IStoreAccount, IUserQuota


@implementer(ILoginMind)
@dataclass(frozen=True)
class LoginMind:
    """The ``mind`` sessions pass to ``Portal.login``: protocol, client address, TLS."""

    protocol: str
    address: str = ""
    secure: bool = False


@implementer(IRealm)
class MailRealm:
    """One realm over one store, so IMAP and POP3 sessions see the same mail.

    Every protocol asks for :class:`~exchmail.interfaces.IStoreAccount`;
    the session's :class:`~exchmail.interfaces.ILoginMind` says which
    protocol it is, for the per-user protocol rules (Exchange's
    ImapEnabled/PopEnabled, e.g. from an LDAP group).
    """

    def __init__(self, store: IStore) -> None:
        self.store = store

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> defer.Deferred[tuple]:
        if IStoreAccount not in interfaces:
            return defer.fail(NotImplementedError(f"no avatar for {interfaces!r}"))
        protocol = mind.protocol if ILoginMind.providedBy(mind) else None
        if protocol is not None and not protocol_allowed(avatarId, protocol):
            return defer.fail(UnauthorizedLogin(f"{protocol} is not enabled for this user"))
        name = avatarId.decode("utf-8") if isinstance(avatarId, bytes) else avatarId
        quota = getattr(avatarId, "quota", None)
        if quota is not None and IUserQuota.providedBy(self.store):
            self.store.set_user_quota(name, quota)  # e.g. an LDAP quota attribute
        d = defer.maybeDeferred(self.store.account, name)
        return d.addCallback(lambda account: (IStoreAccount, account, lambda: None))
