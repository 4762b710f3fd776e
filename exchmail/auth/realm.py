"""MailRealm: hands out store accounts as avatars for every protocol."""

from __future__ import annotations

from typing import Any

from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm
from twisted.internet import defer
from zope.interface import implementer

from exchmail.auth.directory import IMAP, POP3, protocol_allowed
from exchmail.interfaces import IStore, IStoreAccount, IUserQuota


def _protocol(interfaces: tuple[Any, ...]) -> str | None:
    """The protocol (``"imap"``/``"pop3"``) a login asks an avatar for, if known."""
    from twisted.mail.pop3 import IMailbox

    if IStoreAccount in interfaces:
        return IMAP
    if IMailbox in interfaces:
        return POP3
    return None


@implementer(IRealm)
class MailRealm:
    """One realm over one store, so IMAP (and POP3) sessions see the same mail.

    IMAP sessions ask for :class:`~exchmail.interfaces.IStoreAccount`; the
    POP3 service adds its ``twisted.mail.pop3.IMailbox`` branch here.
    """

    def __init__(self, store: IStore) -> None:
        self.store = store

    def requestAvatar(self, avatarId: Any, mind: Any, *interfaces: Any) -> defer.Deferred[tuple]:
        protocol = _protocol(interfaces)
        if protocol is not None and not protocol_allowed(avatarId, protocol):
            # Exchange's per-user ImapEnabled/PopEnabled (e.g. an LDAP group).
            return defer.fail(UnauthorizedLogin(f"{protocol} is not enabled for this user"))
        name = avatarId.decode("utf-8") if isinstance(avatarId, bytes) else avatarId
        quota = getattr(avatarId, "quota", None)
        if quota is not None and IUserQuota.providedBy(self.store):
            self.store.set_user_quota(name, quota)  # e.g. an LDAP quota attribute
        if IStoreAccount in interfaces:
            d = defer.maybeDeferred(self.store.account, name)
            return d.addCallback(lambda account: (IStoreAccount, account, lambda: None))
        if protocol == POP3:
            return self._maildrop(name)
        return defer.fail(NotImplementedError(f"no avatar for {interfaces!r}"))

    @defer.inlineCallbacks
    def _maildrop(self, name: str):
        """POP3: a snapshot of the account's INBOX, taken after a refresh."""
        from twisted.mail.pop3 import IMailbox

        from exchmail.pop3.avatar import Maildrop

        account = yield defer.maybeDeferred(self.store.account, name)
        inbox = yield defer.maybeDeferred(account.mailbox, "INBOX")
        yield defer.maybeDeferred(inbox.refresh)
        return (IMailbox, Maildrop(account.name, inbox), lambda: None)
