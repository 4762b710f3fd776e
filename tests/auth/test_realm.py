"""MailRealm and LoginMind (exchmail.auth.realm): IStoreAccount avatars for every
protocol, per-protocol rules from the login's mind, directory quotas."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface import implementer
from zope.interface.verify import verifyObject

from exchmail.auth.directory import DirectoryUser
from exchmail.auth.realm import LoginMind, MailRealm
from exchmail.interfaces import ILoginMind, IStoreAccount, IUserQuota
from exchmail.store.memory import MemoryStore


def result_of(d: defer.Deferred) -> Any:
    results: list = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]


def refused(result: Any) -> bool:
    return isinstance(result, Failure) and result.check(UnauthorizedLogin) is not None


IMAP_ONLY = DirectoryUser("carol", protocols=frozenset({"imap"}))


def test_login_mind_is_a_frozen_ilogin_mind():
    mind = LoginMind("imap", "192.0.2.7", secure=True)
    assert verifyObject(ILoginMind, mind)
    assert (mind.protocol, mind.address, mind.secure) == ("imap", "192.0.2.7", True)
    assert LoginMind("pop3") == LoginMind("pop3", "", False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        mind.protocol = "pop3"  # type: ignore[misc]


@pytest.mark.parametrize("protocol", ["imap", "pop3", "lmtp"])
def test_every_protocol_gets_the_store_account(protocol):
    store = MemoryStore()
    interface, account, logout = result_of(
        MailRealm(store).requestAvatar("alice", LoginMind(protocol), IStoreAccount)
    )
    assert interface is IStoreAccount and IStoreAccount.providedBy(account)
    assert account.name == "alice" and logout() is None


def test_per_protocol_rules_come_from_the_mind():
    realm = MailRealm(MemoryStore())
    ok = result_of(realm.requestAvatar(IMAP_ONLY, LoginMind("imap"), IStoreAccount))
    assert ok[1].name == "carol" and type(ok[1].name) is str
    assert refused(result_of(realm.requestAvatar(IMAP_ONLY, LoginMind("pop3"), IStoreAccount)))
    # Delivery (LMTP) is not an ImapEnabled/PopEnabled matter.
    assert not isinstance(
        result_of(realm.requestAvatar(IMAP_ONLY, LoginMind("lmtp"), IStoreAccount)), Failure
    )


def test_without_a_login_mind_restricted_users_are_refused():
    realm = MailRealm(MemoryStore())
    assert refused(result_of(realm.requestAvatar(IMAP_ONLY, None, IStoreAccount)))
    assert result_of(realm.requestAvatar("alice", None, IStoreAccount))[1].name == "alice"


def test_other_interfaces_are_not_served():
    failure = result_of(MailRealm(MemoryStore()).requestAvatar("alice", LoginMind("pop3"), ILoginMind))
    assert isinstance(failure, Failure) and failure.check(NotImplementedError)


def test_directory_quota_is_applied():
    @implementer(IUserQuota)
    class QuotaMemoryStore(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.quotas: dict[str, int] = {}

        def set_user_quota(self, name: str, limit: int) -> None:
            self.quotas[name] = limit

    store = QuotaMemoryStore()
    user = DirectoryUser("dave", quota=1000)
    result_of(MailRealm(store).requestAvatar(user, LoginMind("imap"), IStoreAccount))
    assert store.quotas == {"dave": 1000}


def test_through_a_portal():
    from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
    from twisted.cred.credentials import UsernamePassword

    checker = InMemoryUsernamePasswordDatabaseDontUse(alice=b"pw")
    portal = Portal(MailRealm(MemoryStore()), [checker])
    interface, account, _ = result_of(
        portal.login(UsernamePassword(b"alice", b"pw"), LoginMind("pop3", "127.0.0.1"), IStoreAccount)
    )
    assert account.name == "alice"
