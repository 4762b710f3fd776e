"""Tests of exchmail.auth.accounts: hashes, the accounts file and the checker."""

from __future__ import annotations

import base64
import errno
import hashlib
import os
import stat

import pytest
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from exchmail.auth import accounts as accounts_module
from exchmail.auth import checker as checker_module
from exchmail.auth.accounts import (
    AccountsFile,
    ensure_first_account,
    hash_password,
    verify_password,
)
from exchmail.auth.checker import AccountsChecker
from exchmail.errors import AccountError, InvalidUserName
from exchmail.interfaces import IDirectory


def result_of(d: defer.Deferred):
    """The result of an already fired Deferred (a Failure if it failed)."""
    results: list = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]


@pytest.fixture
def users(tmp_path):
    return tmp_path / "data" / "users"


# --- hashes -------------------------------------------------------------


def test_hash_format():
    encoded = hash_password("secret")
    empty, scheme, params, salt, digest = encoded.split("$")
    assert (empty, scheme, params) == ("", "scrypt", "n=16384,r=8,p=1")
    assert len(base64.b64decode(salt + "==")) == 16
    assert len(base64.b64decode(digest + "=")) == 32
    assert ":" not in encoded


def test_hashes_are_salted():
    assert hash_password("secret") != hash_password("secret")


def test_verify():
    encoded = hash_password("sécret")
    assert verify_password("sécret", encoded)
    assert verify_password("sécret".encode(), encoded)
    assert not verify_password("secret", encoded)
    assert not verify_password("", encoded)


def test_verify_pbkdf2():
    salt = b"0123456789abcdef"
    digest = hashlib.pbkdf2_hmac("sha256", b"hunter2", salt, 1000)
    encoded = (
        "$pbkdf2-sha256$i=1000$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()
    )
    assert verify_password("hunter2", encoded)
    assert not verify_password("hunter3", encoded)
    adapted = (
        "$pbkdf2-sha256$i=1000$"
        + base64.b64encode(salt).decode().rstrip("=").replace("+", ".")
        + "$"
        + base64.b64encode(digest).decode().rstrip("=").replace("+", ".")
    )
    assert verify_password("hunter2", adapted)


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plain",
        "$scrypt$",
        "$md5$x$y$z",
        "$scrypt$n=16384,r=8$AAAA$AAAA",
        "$scrypt$n=abc,r=8,p=1$AAAA$AAAA",
        "$scrypt$n=16384,r=8,p=1$!!!!$AAAA",
        "$scrypt$n=16384,r=8,p=1$AAAA$",
        "$scrypt$n=1048576,r=64,p=16$AAAA$AAAA",
        "$scrypt$n=3,r=8,p=1$AAAA$AAAA",
        "$pbkdf2-sha256$i=0$AAAA$AAAA",
        "x$scrypt$n=16384,r=8,p=1$AAAA$AAAA",
        "$md5$n=1$AAAA$AAAA",  # well formed, but no scheme of ours
    ],
)
def test_verify_malformed_is_false(encoded):
    assert verify_password("anything", encoded) is False


# --- the file -----------------------------------------------------------


def test_add_list_exists(users):
    f = AccountsFile(users)
    f.load()
    assert f.users() == []
    f.add("alice", "pw1")
    f.add("bob", "pw2")
    assert f.users() == ["alice", "bob"]
    assert f.exists("alice") and f.exists("ALICE") and not f.exists("carol")
    again = AccountsFile(users)
    again.load()
    assert again.users() == ["alice", "bob"]
    line = users.read_text().splitlines()[0]
    name, encoded, scram = line.split(":")
    assert name == "alice" and verify_password("pw1", encoded)
    assert scram.startswith("$scram-sha-256$i=")  # SCRAM keys, no password equivalent


def test_file_mode_0600(users):
    AccountsFile(users).add("alice", "pw")
    assert stat.S_IMODE(os.stat(users).st_mode) == 0o600
    assert not [p for p in users.parent.iterdir() if p.name != "users"], "no temp files left"


def test_add_duplicate(users):
    f = AccountsFile(users)
    f.add("alice", "pw")
    with pytest.raises(AccountError, match="already exists"):
        f.add("Alice", "pw")


def test_add_invalid_name(users):
    with pytest.raises(InvalidUserName):
        AccountsFile(users).add("../etc", "pw")
    with pytest.raises(InvalidUserName):
        AccountsFile(users).add("a:b", "pw")
    assert not users.exists()


def test_set_password(users):
    f = AccountsFile(users)
    f.add("alice", "old")
    f.set_password("alice", "new")
    f.load()
    assert verify_password("new", f.password_hash("alice"))
    with pytest.raises(AccountError, match="no such user 'bob'"):
        f.set_password("bob", "x")


def test_remove(users):
    f = AccountsFile(users)
    f.add("alice", "pw")
    f.add("bob", "pw")
    f.remove("alice")
    assert f.users() == ["bob"]
    with pytest.raises(AccountError, match="no such user"):
        f.remove("alice")


def test_comments_and_extra_fields_preserved(users):
    users.parent.mkdir()
    encoded = hash_password("pw")
    users.write_text(f"# accounts\n\nalice:{encoded}:scram-key:server-key\n")
    f = AccountsFile(users)
    f.add("bob", "pw2")
    lines = users.read_text().splitlines()
    assert lines[:3] == ["# accounts", "", f"alice:{encoded}:scram-key:server-key"]
    assert lines[3].startswith("bob:$scrypt$")


def test_damaged_scram_and_nt_fields_are_ignored(users):
    users.parent.mkdir()
    encoded = hash_password("pw")
    users.write_text(
        f"alice:{encoded}:$scram-sha-256$garbage:$nt$not-hex\n"
        f"bob:{encoded}:$nt$00112233\n"  # an NT hash is 16 octets
        f"carol:{encoded}\n"
    )
    f = AccountsFile(users)
    f.load()
    for name in ("alice", "bob", "carol", "nobody"):
        assert f.scram_keys(name) is None and f.nt_hash(name) is None, name
    assert verify_password("pw", f.password_hash("alice"))  # the login itself still works


def test_password_saslprep_refuses_gets_no_scram_keys(users):
    f = AccountsFile(users)
    f.add("alice", "bell\x07pw")  # a control character: SASLprep prohibits it
    assert f.scram_keys("alice") is None
    assert verify_password("bell\x07pw", f.password_hash("alice"))
    assert "$scram-sha-256$" not in users.read_text()


def test_failed_write_keeps_the_old_file_and_no_temporary_one(users, monkeypatch):
    f = AccountsFile(users)
    f.add("alice", "pw")
    before = users.read_text()

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(AccountError, match=f"cannot write accounts file {users}: No space left on device"):
        f.add("bob", "pw")
    assert users.read_text() == before
    assert os.listdir(users.parent) == ["users"]


def test_unreadable_file(tmp_path):
    f = AccountsFile(tmp_path)  # a directory cannot be read as a file
    with pytest.raises(AccountError, match=f"cannot read accounts file {tmp_path}"):
        f.load()


@pytest.mark.parametrize(
    "text,message",
    [
        ("alice\n", ":1: expected 'name:\\$scheme\\$...'"),
        ("alice:plaintext\n", ":1: expected"),
        (f"alice:{'$scrypt$x$y$z'}\nALICE:{'$scrypt$x$y$z'}\n", ":2: duplicate user 'ALICE'"),
    ],
)
def test_malformed_file(users, text, message):
    users.parent.mkdir()
    users.write_text(text)
    with pytest.raises(AccountError, match=message):
        AccountsFile(users).load()


def test_ensure_first_account(users):
    created = ensure_first_account(users)
    assert created is not None
    name, password = created
    assert name == "newcomer" and len(password) >= 12
    f = AccountsFile(users)
    f.load()
    assert f.users() == ["newcomer"]
    assert verify_password(password, f.password_hash("newcomer"))
    assert ensure_first_account(users) is None


def test_ensure_first_account_on_empty_file(users):
    users.parent.mkdir()
    users.write_text("# nobody yet\n")
    assert ensure_first_account(users) is not None
    assert users.read_text().startswith("# nobody yet\nnewcomer:")


def test_ensure_first_account_keeps_existing(users):
    AccountsFile(users).add("alice", "pw")
    assert ensure_first_account(users) is None
    assert "newcomer" not in users.read_text()


# --- the checker --------------------------------------------------------


@pytest.fixture
def checker(users):
    AccountsFile(users).add("Alice", "wonderland")
    return AccountsChecker(users)


def test_checker_interfaces(checker):
    assert verifyObject(ICredentialsChecker, checker)
    assert verifyObject(IDirectory, checker)


def test_checker_success(checker):
    assert result_of(checker.requestAvatarId(UsernamePassword(b"Alice", b"wonderland"))) == "Alice"


def test_checker_returns_canonical_name(checker):
    assert result_of(checker.requestAvatarId(UsernamePassword(b"alice", b"wonderland"))) == "Alice"


def test_checker_accepts_str_credentials(checker):
    assert result_of(checker.requestAvatarId(UsernamePassword("Alice", "wonderland"))) == "Alice"


@pytest.mark.parametrize(
    "username,password",
    [
        (b"Alice", b"wrong"),
        (b"Alice", b""),
        (b"bob", b"wonderland"),
        (b"\xff\xfe", b"wonderland"),
        (b"", b""),
        (b"../Alice", b"wonderland"),
    ],
)
def test_checker_failure(checker, username, password):
    failure = result_of(checker.requestAvatarId(UsernamePassword(username, password)))
    assert failure.check(UnauthorizedLogin)


def test_unknown_user_still_hashes(checker, monkeypatch):
    calls = []
    real = accounts_module.verify_password

    def spy(password, encoded):
        calls.append(encoded)
        return real(password, encoded)

    monkeypatch.setattr(checker_module, "verify_password", spy)
    result_of(checker.requestAvatarId(UsernamePassword(b"nobody", b"x"))).trap(UnauthorizedLogin)
    result_of(checker.requestAvatarId(UsernamePassword(b"\xff", b"x"))).trap(UnauthorizedLogin)
    assert len(calls) == 2
    assert all(c.startswith("$scrypt$n=16384,r=8,p=1$") for c in calls)


def test_checker_runs_file_reads_and_hashes_off_the_reactor_thread(users):
    """Reading the file goes through run_blocking (the store's pool), the hash
    through hash_blocking (the hash pool); nothing runs inline."""
    AccountsFile(users).add("alice", "pw")
    io: list = []
    hashes: list = []

    def queue(into):
        def run(f, *args):
            d = defer.Deferred()
            into.append((d, f, args))
            return d

        return run

    clock = Clock()
    checker = AccountsChecker(users, run_blocking=queue(io), hash_blocking=queue(hashes), clock=clock.seconds)
    assert checker.canonical_name("alice") is None  # nothing read yet; a read has started
    results: list = []
    checker.requestAvatarId(UsernamePassword(b"alice", b"pw")).addBoth(results.append)
    assert results == [] and len(io) == 1 and hashes == []  # joined the read under way
    while io:
        deferred, f, args = io.pop(0)
        deferred.callback(f(*args))
    assert results == [] and len(hashes) == 1
    deferred, f, args = hashes.pop()
    assert f is accounts_module.verify_password
    deferred.callback(f(*args))
    assert results == ["alice"]
    assert checker.canonical_name("ALICE") == "alice"


def test_checker_reloads_on_change(users):
    AccountsFile(users).add("Alice", "wonderland")
    clock = Clock()
    checker = AccountsChecker(users, clock=clock.seconds)
    assert result_of(checker.user_exists("bob")) is False
    AccountsFile(users).add("bob", "builder")
    # A full verification always checks the file first: a new user works at once.
    assert result_of(checker.requestAvatarId(UsernamePassword(b"bob", b"builder"))) == "bob"
    assert result_of(checker.user_exists("bob")) is True
    AccountsFile(users).set_password("bob", "fixer")
    clock.advance(checker.check_interval + 0.1)  # answers from memory re-check once a second
    failure = result_of(checker.requestAvatarId(UsernamePassword(b"bob", b"builder")))
    assert failure.check(UnauthorizedLogin)
    assert result_of(checker.requestAvatarId(UsernamePassword(b"bob", b"fixer"))) == "bob"
    AccountsFile(users).remove("bob")
    clock.advance(checker.check_interval + 0.1)
    assert result_of(checker.user_exists("bob")) is False
    assert checker.canonical_name("bob") is None


def test_checker_keeps_last_good_accounts(checker, users):
    assert result_of(checker.user_exists("alice")) is True
    with open(users, "a") as f:
        f.write("garbage line\n")
    assert result_of(checker.refresh()) is None
    assert result_of(checker.user_exists("alice")) is True
    assert result_of(checker.requestAvatarId(UsernamePassword(b"alice", b"wonderland"))) == "Alice"


def test_checker_without_file(tmp_path):
    checker = AccountsChecker(tmp_path / "missing")
    assert result_of(checker.user_exists("alice")) is False
    failure = result_of(checker.requestAvatarId(UsernamePassword(b"alice", b"x")))
    assert failure.check(UnauthorizedLogin)


def test_directory(checker):
    assert result_of(checker.user_exists("alice")) is True
    assert checker.canonical_name("ALICE") == "Alice"
    assert checker.canonical_name("bob") is None
