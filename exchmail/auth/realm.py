"""MailRealm: hands out store accounts as avatars, and LoginMind, who is logging in.

Sessions call ``portal.login(credentials, LoginMind(protocol, address,
secure), IStoreAccount)``: IMAP and POP3 alike get the user's
:class:`~exchmail.interfaces.IStoreAccount` (POP3 builds its maildrop from
the account's INBOX).  The mind's ``protocol`` drives the per-protocol
rules (Exchange's ImapEnabled/PopEnabled, e.g. LDAP groups).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm
from twisted.internet import defer
from zope.interface import implementer

from exchmail.auth.directory import IMAP, POP3, protocol_allowed
from exchmail.interfaces import ILoginMind, IStore, IStoreAccount, IUserQuota


@implementer(ILoginMind)
@dataclass(frozen=True)
class LoginMind:
    """The ``mind`` of a login: which protocol, from which address, over TLS or not.

    :ivar protocol: ``"imap"``, ``"pop3"`` or ``"lmtp"``.
    :ivar address: the client's IP address (``""`` if unknown).
    :ivar secure: whether the connection is protected by TLS.
    """

    protocol: str
    address: str = ""
    secure: bool = False


def _protocol_refused(avatar_id: Any, mind: Any) -> str | None:
    """Why ``avatar_id`` may not log in with ``mind`` (a protocol name), or ``None``.

    Only IMAP and POP3 are restricted (ImapEnabled/PopEnabled).  A login
    without an :class:`ILoginMind` is refused for users restricted to some
    protocols, since the realm cannot tell which one is asked for.
    """
    protocol = mind.protocol if ILoginMind.providedBy(mind) else None
    if protocol is None:
        if getattr(avatar_id, "protocols", None) is not None:
            return "an unknown protocol"
        return None
    if protocol in (IMAP, POP3) and not protocol_allowed(avatar_id, protocol):
        return protocol
    return None


@implementer(IRealm)
class MailRealm:
    """One realm over one store, so IMAP and POP3 sessions see the same mail.

    Avatars are :class:`~exchmail.interfaces.IStoreAccount` providers; the
    logout callable does nothing (the store shares and releases mailboxes
    itself).  A quota carried by the avatar ID (an LDAP quota attribute) is
    applied to stores that provide :class:`~exchmail.interfaces.IUserQuota`.
    """

    def __init__(self, store: IStore) -> None:
        self.store = store

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> defer.Deferred[tuple]:
        """A Deferred of ``(IStoreAccount, account, logout)``; fails with
        UnauthorizedLogin if the user may not use the mind's protocol."""
        if IStoreAccount not in interfaces:
            return defer.fail(NotImplementedError(f"no avatar for {interfaces!r}"))
        refused = _protocol_refused(avatarId, mind)
        if refused is not None:
            return defer.fail(UnauthorizedLogin(f"{refused} is not enabled for this user"))
        name = avatarId.decode("utf-8") if isinstance(avatarId, bytes) else str(avatarId)
        quota = getattr(avatarId, "quota", None)
        if quota is not None and IUserQuota.providedBy(self.store):
            self.store.set_user_quota(name, quota)  # e.g. an LDAP quota attribute
        d = defer.maybeDeferred(self.store.account, name)
        return d.addCallback(lambda account: (IStoreAccount, account, lambda: None))
