"""Quota (MS-STANXPOP3 E0003/E0004) and retention (E0005) in the store layer."""

from __future__ import annotations

import pytest
from helpers import call, result
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher

from exchmail.errors import ConfigError, OverQuota
from exchmail.service.config import load_config
from exchmail.store.memory import MemoryStore
from exchmail.store.quota import QuotaLimits, QuotaPolicy, QuotaStore
from exchmail.store.retention import RetentionPolicy, RetentionService, apply_retention

DAY = 86400.0


def test_E0003_quota_refuses_append_and_copy_past_the_limit():
    store = QuotaStore(MemoryStore(), QuotaPolicy(QuotaLimits(limit=25)))
    account = call(store.account, "alice")
    inbox = call(account.mailbox, "INBOX")
    call(inbox.append, b"x" * 10)
    call(inbox.append, b"y" * 10)
    with pytest.raises(OverQuota):
        call(inbox.append, b"z" * 10)
    call(account.create, "Other")
    other = call(account.mailbox, "Other")
    with pytest.raises(OverQuota):
        call(inbox.copy_to, list(inbox.uids()), other)
    assert list(other.uids()) == []
    assert call(account.usage) == 20
    assert call(store.account, "alice") is account  # one wrapper per account


def test_E0004_warning_once_until_usage_drops():
    store = QuotaStore(MemoryStore(), QuotaPolicy(QuotaLimits(warning=20)), clock=lambda: 0.0)
    inbox = call(call(store.account, "alice").mailbox, "INBOX")
    call(inbox.append, b"x" * 10)
    assert len(inbox.uids()) == 1
    call(inbox.append, b"x" * 10)  # reaches 20: the warning goes in
    call(inbox.append, b"x" * 10)
    assert len(inbox.uids()) == 4
    warning = call(inbox.read_message, 3)
    assert b"Subject: Your mailbox is almost full" in warning and b"\r\n" in warning


def test_quota_policy_per_user_exception():
    policy = QuotaPolicy(QuotaLimits(limit=10), {"Bob": QuotaLimits()})
    assert policy.limits_for("bob") == QuotaLimits() and policy.active
    assert not QuotaPolicy().active


def _aged_store(clock_now: float):
    store = MemoryStore()
    account = call(store.account, "alice")
    inbox = call(account.mailbox, "INBOX")
    call(inbox.append, b"old", frozenset({"\\Seen"}), clock_now - 40 * DAY)
    call(inbox.append, b"new", frozenset(), clock_now - 1 * DAY)
    call(account.create, "Junk E-Mail")
    junk = call(account.mailbox, "Junk E-Mail")
    call(junk.append, b"junk", frozenset(), clock_now - 10 * DAY)
    return store, inbox, junk


def test_E0005_retention_removes_old_messages_per_folder_and_logs():
    now = 1_000_000_000.0
    store, inbox, junk = _aged_store(now)
    policy = RetentionPolicy({"INBOX": 30 * DAY, "junk e-mail": 7 * DAY, "Missing": DAY})
    events: list = []
    globalLogPublisher.addObserver(events.append)
    try:
        removed = call(apply_retention, store, ["alice"], policy, now)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert removed == {("alice", "INBOX"): [1], ("alice", "Junk E-Mail"): [1]}
    assert list(inbox.uids()) == [2] and list(junk.uids()) == []
    assert sum("retention: removed" in e.get("log_format", "") for e in events) == 2


def test_E0005_retention_service_runs_periodically_on_the_injected_clock():
    now = 1_000_000_000.0
    store, inbox, _ = _aged_store(now)
    clock = Clock()
    clock.advance(now)
    service = RetentionService(store, lambda: ["alice"], RetentionPolicy({"INBOX": 5 * DAY}, 60), clock)
    service.startService()
    assert list(inbox.uids()) == [2]  # first run at start: the 40-day-old one went
    clock.advance(5 * DAY)  # now the 1-day-old one is 6 days old; a later run takes it
    assert list(inbox.uids()) == []
    service.stopService()


@pytest.mark.parametrize(
    "text, message",
    [
        ("[quota]\nlimit = -1\n", "quota.limit: expected a number of octets"),
        ("[quota]\nlimt = 1\n", "quota.limt: unknown key"),
        ("[quota.users.bob]\nlimit = 'x'\n", "quota.users.bob.limit: expected a number of octets"),
        ("[retention]\ninterval = 0\n", "retention.interval: expected a positive number"),
        ("[retention.folders]\nINBOX = 'old'\n", "retention.folders.INBOX: expected a positive"),
    ],
)
def test_quota_and_retention_config_errors(tmp_path, text, message):
    path = tmp_path / "exchmail.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(path)


def test_quota_and_retention_config(tmp_path):
    path = tmp_path / "exchmail.toml"
    path.write_text(
        "[quota]\nlimit = 100\nwarning = 90\n[quota.users.bob]\nlimit = 5\n"
        '[retention]\ninterval = 60\n[retention.folders]\n"Deleted Items" = 30\n'
    )
    config = load_config(path)
    assert (config.quota.limit, config.quota.warning) == (100, 90)
    assert config.quota.users == {"bob": (5, 90)}
    assert config.retention.interval == 60 and config.retention.folders == {"Deleted Items": 30}


def test_directory_quota_from_the_realm_limits_the_mailbox():
    """An LDAP quota attribute (DirectoryUser.quota) becomes the user's limit at login."""
    from exchmail.auth.directory import DirectoryUser
    from exchmail.auth.realm import MailRealm
    from exchmail.errors import OverQuota
    from exchmail.interfaces import IStoreAccount, IUserQuota
    from exchmail.store.memory import MemoryStore
    from exchmail.store.quota import QuotaPolicy, QuotaStore

    store = QuotaStore(MemoryStore(), QuotaPolicy())
    assert IUserQuota.providedBy(store)
    realm = MailRealm(store)
    _, account, _ = result(realm.requestAvatar(DirectoryUser("dora", quota=100), None, IStoreAccount))
    inbox = result(account.mailbox("INBOX"))
    result(inbox.append(b"x" * 60))
    with pytest.raises(OverQuota):
        result(inbox.append(b"y" * 60))
    # Without a directory quota the configured default (none) applies.
    _, other, _ = result(realm.requestAvatar("erin", None, IStoreAccount))
    result(result(other.mailbox("INBOX")).append(b"z" * 500))
    assert store.policy.limits_for("DORA").limit == 100


def test_stores_list_their_accounts_for_periodic_jobs(tmp_path):
    """IAccountListing: retention reaches every account with mail, e.g. LDAP users
    who are in no accounts file; the quota wrapper passes the listing through."""
    from zope.interface.verify import verifyObject

    from exchmail.interfaces import IAccountListing
    from exchmail.store.maildir import MaildirStore
    from exchmail.store.memory import MemoryStore
    from exchmail.store.quota import QuotaPolicy, QuotaStore

    maildir = MaildirStore(tmp_path / "mail")
    for name in ("zoe", "adam"):
        call(maildir.account, name)
    (tmp_path / "mail" / "not a user").mkdir()
    memory = MemoryStore()
    call(memory.account, "carol")
    for store, expected in (
        (maildir, ["adam", "zoe"]),
        (memory, ["carol"]),
        (QuotaStore(maildir, QuotaPolicy()), ["adam", "zoe"]),
    ):
        verifyObject(IAccountListing, store)
        assert call(store.account_names) == expected


class _Faults:
    """A store over a MemoryStore whose accounts and folders fail on purpose."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def account(self, user: str):
        if user == "broken":
            raise OSError("cannot open the account")
        account = call(self.store.account, user)
        return _FaultyAccount(account) if user == "faulty" else account


class _FaultyAccount:
    def __init__(self, account) -> None:
        self.account = account

    def list_mailboxes(self):
        return ["INBOX", "Vanished", "Exploding"]

    def mailbox(self, name: str):
        from exchmail.errors import NoSuchMailbox

        if name == "Vanished":  # deleted between the listing and the opening
            raise NoSuchMailbox(name)
        if name == "Exploding":
            raise RuntimeError("the folder is broken")
        return self.account.mailbox(name)


class _NoListing:
    def __init__(self, account) -> None:
        self.account = account

    def list_mailboxes(self):
        raise OSError("cannot list")


def test_E0005_retention_failures_are_logged_and_the_run_goes_on():
    now = 1_000_000_000.0
    memory, inbox, _ = _aged_store(now)
    faulty_inbox = call(call(memory.account, "faulty").mailbox, "INBOX")
    call(faulty_inbox.append, b"old", frozenset(), now - 40 * DAY)
    store = _Faults(memory)
    original = store.account
    store.account = lambda user: _NoListing(None) if user == "nolist" else original(user)  # type: ignore[method-assign]
    policy = RetentionPolicy({"INBOX": 30 * DAY, "Vanished": DAY, "Exploding": DAY})
    events: list = []
    globalLogPublisher.addObserver(events.append)
    try:
        removed = call(apply_retention, store, ["broken", "nolist", "faulty", "alice"], policy, now)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert removed == {("faulty", "INBOX"): [1], ("alice", "INBOX"): [1]}
    failures = [(e["log_format"], e["log_failure"].getErrorMessage()) for e in events if "log_failure" in e]
    assert failures == [
        ("retention: cannot open the account of {user}", "cannot open the account"),
        ("retention: cannot list the mailboxes of {user}", "cannot list"),
        ("retention: failed in {user}/{folder}", "the folder is broken"),
    ]


def test_E0005_retention_of_a_mailbox_without_the_index_shortcut():
    """A custom store's mailbox without uids_older_than: each message's date is read."""
    now = 1_000_000_000.0
    store, inbox, _ = _aged_store(now)

    class Plain:
        def __getattr__(self, name):
            if name == "uids_older_than":
                raise AttributeError(name)
            return getattr(inbox, name)

    from exchmail.store.retention import _older_than

    assert _older_than(Plain(), now - 30 * DAY) == [1]
    assert _older_than(Plain(), now - 50 * DAY) == []
    assert call(apply_retention, store, ["alice"], RetentionPolicy({"INBOX": 50 * DAY}), now) == {}


def test_E0005_retention_service_in_the_service_tree(tmp_path):
    """[retention] adds the periodic run; a store that cannot list its accounts
    takes the users of the accounts file."""
    from twisted.internet.testing import MemoryReactorClock

    from exchmail.auth.accounts import AccountsFile
    from exchmail.service.build import make_service

    path = tmp_path / "exchmail.toml"
    path.write_text(
        f'[server]\ndata_dir = "{tmp_path}"\n[imap]\nlisten = []\n[pop3]\nlisten = []\n'
        '[retention]\ninterval = 60\n[retention.folders]\n"Deleted Items" = 30\n'
    )
    AccountsFile(tmp_path / "users").add("alice", "pw")

    class Unlisted:  # a custom store without IAccountListing
        def __init__(self) -> None:
            self.store = MemoryStore()

        def account(self, user):
            return self.store.account(user)

    from twisted.internet import defer

    from exchmail.service.build import StoreService

    listed = MemoryStore()  # IAccountListing: the accounts the store holds
    call(listed.account, "carol")
    for store, users in ((Unlisted(), ["alice"]), (listed, ["carol"])):
        top = make_service(load_config(path), reactor=MemoryReactorClock(), store=store)
        retention = [s for s in top if getattr(s, "name", None) == "retention"]
        assert len(retention) == 1 and retention[0].policy.folders == {"Deleted Items": 30 * DAY}
        assert retention[0].policy.interval == 60
        # The accounts file is read in the store's pool (run inline here: not started).
        (pool,) = [s for s in top if isinstance(s, StoreService)]
        pool.run_blocking = lambda f, *args: defer.maybeDeferred(f, *args)  # type: ignore[method-assign]
        assert call(retention[0].users) == users
