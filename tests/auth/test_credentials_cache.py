"""The verified-credentials cache (exchmail.auth.cache), its use by AccountsChecker,
and the hash pool (exchmail.auth.hashpool).  Time comes from a task.Clock only."""

from __future__ import annotations

import hashlib
import os
import queue
import time
from typing import Any

import pytest
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from exchmail.auth import accounts as accounts_module
from exchmail.auth import checker as checker_module
from exchmail.auth.accounts import AccountsFile
from exchmail.auth.cache import DEFAULT_MAX_ENTRIES, DEFAULT_TTL, CredentialsCache
from exchmail.auth.checker import AccountsChecker
from exchmail.auth.hashpool import HashPool
from exchmail.auth.sasl import SCRAMCredentials
from exchmail.errors import ConfigError, DirectoryUnavailable
from exchmail.service.config import load_config


def result_of(d: defer.Deferred) -> Any:
    """The result of an already fired Deferred (a Failure if it failed)."""
    results: list = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]


def refused(result: Any) -> bool:
    return isinstance(result, Failure) and result.check(UnauthorizedLogin) is not None


# -- CredentialsCache ----------------------------------------------------------------


def test_cache_remembers_only_the_exact_password_and_folds_the_name():
    clock = Clock()
    cache = CredentialsCache(ttl=60, clock=clock.seconds)
    cache.remember("Alice", b"pw", "Alice")
    assert cache.get("alice", b"pw") == "Alice" and cache.get("ALICE", b"pw") == "Alice"
    assert cache.get("alice", b"pw2") is None and cache.get("alice", b"") is None
    assert cache.get("alice", b"PW") is None and cache.get("bob", b"pw") is None


def test_cache_keeps_no_password_nor_plain_hash():
    cache = CredentialsCache(ttl=60)
    password = b"correct horse battery staple"
    cache.remember("alice", password, "alice")
    entry = repr(cache._entries)  # white-box: what the process memory holds
    for forbidden in (
        password,
        hashlib.sha256(password).digest(),
        hashlib.sha256(b"alice\0" + password).digest(),
    ):
        assert repr(forbidden)[2:-1] not in entry
    # The key is an HMAC with a per-cache random secret: another cache differs.
    other = CredentialsCache(ttl=60)
    assert other._digest("alice", password) != cache._digest("alice", password)


def test_cache_entries_expire_and_are_never_extended():
    clock = Clock()
    cache = CredentialsCache(ttl=300, clock=clock.seconds)
    cache.remember("alice", b"pw", "alice")
    clock.advance(299)
    assert cache.get("alice", b"pw") == "alice"  # used: still expires at 300
    clock.advance(1)
    assert cache.get("alice", b"pw") is None and len(cache) == 0


def test_cache_is_bounded_lru():
    cache = CredentialsCache(ttl=60, max_entries=3)
    for name in ("a", "b", "c"):
        cache.remember(name, b"pw", name)
    assert cache.get("a", b"pw") == "a"  # a is now the most recent
    cache.remember("d", b"pw", "d")
    assert len(cache) == 3 and cache.get("b", b"pw") is None
    assert [cache.get(n, b"pw") for n in ("a", "c", "d")] == ["a", "c", "d"]


def test_cache_forget_and_epoch_guard():
    cache = CredentialsCache(ttl=60)
    cache.remember("alice", b"pw", "alice")
    cache.forget("ALICE")
    assert cache.get("alice", b"pw") is None
    epoch = cache.epoch
    cache.forget("bob")  # a change while alice's verification was running
    cache.remember("alice", b"old", "alice", epoch)
    assert cache.get("alice", b"old") is None
    cache.remember("alice", b"pw", "alice", cache.epoch)
    assert cache.get("alice", b"pw") == "alice"
    cache.clear()
    assert len(cache) == 0


def test_cache_ttl_zero_is_off():
    cache = CredentialsCache(ttl=0)
    cache.remember("alice", b"pw", "alice")
    assert not cache.enabled and cache.get("alice", b"pw") is None and len(cache) == 0
    with pytest.raises(ValueError):
        CredentialsCache(ttl=-1)


# -- AccountsChecker with the cache -----------------------------------------------------


@pytest.fixture
def users(tmp_path):
    path = tmp_path / "users"
    f = AccountsFile(path)
    f.add("Alice", "wonderland")
    f.add("bob", "builder")
    return path


@pytest.fixture
def hashes(monkeypatch) -> list:
    """Every password hash the checker computes (the slow part a cache hit skips)."""
    calls: list = []
    real = accounts_module.verify_password

    def counting(password, encoded):
        calls.append(password)
        return real(password, encoded)

    monkeypatch.setattr(checker_module, "verify_password", counting)
    return calls


def login(checker: AccountsChecker, user: str, password: str) -> Any:
    return result_of(checker.requestAvatarId(UsernamePassword(user.encode(), password.encode())))


def test_repeat_login_is_served_from_the_cache(users, hashes):
    clock = Clock()
    checker = AccountsChecker(users, clock=clock.seconds)
    assert login(checker, "alice", "wonderland") == "Alice"
    assert len(hashes) == 1
    clock.advance(5)
    assert login(checker, "ALICE", "wonderland") == "Alice"
    assert len(hashes) == 1  # no second hash
    clock.advance(DEFAULT_TTL)
    assert login(checker, "alice", "wonderland") == "Alice"
    assert len(hashes) == 2  # expired: verified in full again


def test_failures_are_never_cached_and_never_pass(users, hashes):
    checker = AccountsChecker(users, clock=Clock().seconds)
    assert login(checker, "alice", "wonderland") == "Alice"
    for _ in range(2):
        assert refused(login(checker, "alice", "wonderland!"))
        assert refused(login(checker, "bob", "wonderland"))  # alice's password, bob's name
    assert len(hashes) == 5  # every failure paid the full hash
    assert login(checker, "alice", "wonderland") == "Alice" and len(hashes) == 5


def test_password_change_by_another_process_drops_the_entry(users, hashes):
    clock = Clock()
    checker = AccountsChecker(users, clock=clock.seconds)
    assert login(checker, "alice", "wonderland") == "Alice"
    assert login(checker, "bob", "builder") == "bob"
    AccountsFile(users).set_password("alice", "looking glass")  # `exchmail user passwd`
    clock.advance(checker.check_interval + 0.1)
    assert refused(login(checker, "alice", "wonderland"))
    assert checker.cache.get("alice", b"wonderland") is None
    assert login(checker, "alice", "looking glass") == "Alice"
    before = len(hashes)
    assert login(checker, "bob", "builder") == "bob"  # bob's line did not change: still cached
    assert len(hashes) == before


def test_removed_account_is_refused_at_once_after_the_check(users):
    clock = Clock()
    checker = AccountsChecker(users, clock=clock.seconds)
    assert login(checker, "bob", "builder") == "bob"
    AccountsFile(users).remove("bob")  # `exchmail user del`
    clock.advance(checker.check_interval + 0.1)
    assert refused(login(checker, "bob", "builder"))
    assert result_of(checker.user_exists("bob")) is False


def test_file_is_checked_at_most_once_per_interval_for_cache_hits(users):
    clock = Clock()
    reads: list = []

    def run_blocking(f, *args):
        reads.append(f.__name__)
        return defer.maybeDeferred(f, *args)

    checker = AccountsChecker(users, run_blocking=run_blocking, clock=clock.seconds)
    assert login(checker, "alice", "wonderland") == "Alice"
    assert reads == ["_read_if_changed", "_read_if_changed", "verify_password"]
    reads.clear()
    for _ in range(5):
        clock.advance(0.1)
        assert login(checker, "alice", "wonderland") == "Alice"
    assert reads == []  # cache hits within the interval: answered from memory
    clock.advance(checker.check_interval)
    assert login(checker, "alice", "wonderland") == "Alice"
    assert reads == ["_read_if_changed"]


def test_change_during_a_running_hash_is_not_cached(users):
    pending: list = []

    def hash_later(f, *args):
        d = defer.Deferred()
        pending.append((d, f, args))
        return d

    clock = Clock()
    checker = AccountsChecker(users, hash_blocking=hash_later, clock=clock.seconds)
    d = checker.requestAvatarId(UsernamePassword(b"alice", b"wonderland"))
    AccountsFile(users).set_password("alice", "new")  # while the old hash is checked
    result_of(checker.refresh())
    deferred, f, args = pending.pop()
    deferred.callback(f(*args))
    assert result_of(d) == "Alice"  # it was right when it began...
    assert checker.cache.get("alice", b"wonderland") is None  # ...but is not remembered


def test_same_size_change_within_the_timestamp_is_still_seen(users):
    """An in-place edit that keeps size, inode and modification time (a coarse
    timestamp) is caught: a recently modified file is read again at each check."""
    clock = Clock()
    checker = AccountsChecker(users, clock=clock.seconds)
    future = time.time_ns() + 60 * 10**9
    os.utime(users, ns=(future, future))  # "modified just now", whatever the clock says
    assert login(checker, "bob", "builder") == "bob"
    text = users.read_text()
    line = next(x for x in text.splitlines() if x.startswith("bob:"))
    other = users.parent / "other"  # a same-length line with another password
    AccountsFile(other).add("bob", "fixer1!")
    new_line = other.read_text().strip()
    assert len(new_line) == len(line)
    with open(users, "r+") as f:  # in place: same inode
        f.write(text.replace(line, new_line))
    os.utime(users, ns=(future, future))
    clock.advance(checker.check_interval + 0.1)
    assert refused(login(checker, "bob", "builder"))
    assert login(checker, "bob", "fixer1!") == "bob"


def test_scram_logins_bypass_the_cache(users):
    checker = AccountsChecker(users, clock=Clock().seconds)
    credentials = SCRAMCredentials(b"alice", b"auth message", b"\0" * 32)
    assert refused(result_of(checker.requestAvatarId(credentials)))
    assert len(checker.cache) == 0


def test_cache_ttl_zero_hashes_every_login(users, hashes):
    checker = AccountsChecker(users, cache_ttl=0, clock=Clock().seconds)
    for _ in range(3):
        assert login(checker, "alice", "wonderland") == "Alice"
    assert len(hashes) == 3


def test_full_hash_pool_is_a_temporary_failure(users):
    def full(f, *args):
        return defer.fail(DirectoryUnavailable("too many logins are waiting"))

    checker = AccountsChecker(users, hash_blocking=full, clock=Clock().seconds)
    failure = login(checker, "alice", "wonderland")
    assert isinstance(failure, Failure) and failure.check(DirectoryUnavailable)


# -- HashPool ---------------------------------------------------------------------------


class ThreadReactor:
    """Just enough reactor for deferToThreadPool: results are queued for the test thread."""

    def __init__(self) -> None:
        self.calls: queue.Queue = queue.Queue()

    def callFromThread(self, f, *args, **kwargs) -> None:
        self.calls.put((f, args, kwargs))

    def run_one(self) -> None:
        f, args, kwargs = self.calls.get(timeout=30)
        f(*args, **kwargs)


def test_hash_pool_runs_work_in_its_threads_and_stops():
    reactor = ThreadReactor()
    pool = HashPool(reactor, threads=2)
    pool.startService()
    try:
        results: list = []
        d = pool.run_blocking(accounts_module.verify_password, "pw", accounts_module.hash_password("pw"))
        d.addBoth(results.append)
        assert pool.waiting == 1
        reactor.run_one()
        assert results == [True] and pool.waiting == 0
    finally:
        pool.stopService()


def test_hash_pool_refuses_past_its_queue_bound():
    pool = HashPool(ThreadReactor(), threads=1, max_waiting=3)  # not started: nothing runs
    for _ in range(3):
        pool.run_blocking(time.sleep, 0)
    failures: list = []
    pool.run_blocking(time.sleep, 0).addErrback(failures.append)
    assert failures and failures[0].check(DirectoryUnavailable) and pool.waiting == 3
    pool.pool.stop()
    with pytest.raises(ValueError):
        HashPool(ThreadReactor(), threads=0)


# -- [auth] configuration ---------------------------------------------------------------


def test_auth_cache_config(tmp_path):
    path = tmp_path / "exchmail.toml"
    path.write_text("")
    auth = load_config(path).auth
    assert (auth.cache_ttl, auth.cache_size, auth.hash_threads) == (DEFAULT_TTL, DEFAULT_MAX_ENTRIES, 2)
    path.write_text("[auth]\ncache_ttl = 0\ncache_size = 50\nhash_threads = 1\n")
    auth = load_config(path).auth
    assert (auth.cache_ttl, auth.cache_size, auth.hash_threads) == (0.0, 50, 1)
    for text, key in (
        ("cache_ttl = -1", "auth.cache_ttl"),
        ("cache_ttl = true", "auth.cache_ttl"),
        ("cache_size = 0", "auth.cache_size"),
        ("hash_threads = 1.5", "auth.hash_threads"),
    ):
        path.write_text(f"[auth]\n{text}\n")
        with pytest.raises(ConfigError, match=key) as error:
            load_config(path)
        assert "\n" not in str(error.value)
    path.write_text(
        '[auth]\nbackend = "ldap"\ncache_ttl = 60\n[ldap]\n'
        'servers = ["ldap://127.0.0.1"]\nbase_dn = "dc=example"\n'
    )
    with pytest.raises(ConfigError, match="auth.cache_ttl: not used with auth.backend 'ldap'"):
        load_config(path)


def test_accounts_service_wires_checker_and_hash_pool(users):
    from exchmail.auth.checker import AccountsService

    reactor = ThreadReactor()
    service = AccountsService(reactor, users, None, cache_ttl=60, cache_size=5, threads=1)
    assert service.checker.cache.ttl == 60 and service.checker.cache.max_entries == 5
    service.startService()
    try:
        assert service.checker.canonical_name("ALICE") == "Alice"  # loaded at start
        results: list = []
        service.checker.requestAvatarId(UsernamePassword(b"alice", b"wonderland")).addBoth(results.append)
        assert results == [] and service.waiting == 1  # the hash runs in the service's pool
        reactor.run_one()
        assert results == ["Alice"] and len(service.checker.cache) == 1
    finally:
        service.stopService()
