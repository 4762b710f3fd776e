"""AccountsChecker: logs users in against the accounts file.

Verified logins are remembered (:mod:`exchmail.auth.cache`), the file is
read off the reactor thread when it changes, and hashing runs in its own
pool (:class:`AccountsService`), so logins never queue in front of the
store's work.  The file format is :mod:`exchmail.auth.accounts`'.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from exchmail.auth.accounts import DUMMY_HASH, AccountsFile, verify_password
from exchmail.auth.cache import DEFAULT_MAX_ENTRIES, DEFAULT_TTL, CredentialsCache
from exchmail.auth.hashpool import DEFAULT_THREADS, HashPool
from exchmail.errors import AccountError
from exchmail.interfaces import IDirectory, INTLMCredentials, ISCRAMCredentials, ISCRAMKeys

#: Runs ``f(*args)`` somewhere else and returns a Deferred of its result,
#: e.g. ``functools.partial(threads.deferToThreadPool, reactor, pool)``.
RunBlocking = Callable[..., "defer.Deferred[Any]"]

#: (mtime_ns, size, inode) of the accounts file; all zero when it is missing.
_Stamp = tuple[int, int, int]
#: A file modified this recently (seconds) may change again without its stamp
#: changing (hashes have a fixed length, a replaced file's inode may be
#: reused, timestamps are coarse), so it is read again at the next check.
_RACY_SECONDS = 2.0


def _run_here(f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
    """The synchronous stand-in for ``run_blocking`` (tests, command-line tools)."""
    return defer.maybeDeferred(f, *args)


def _read_if_changed(path: Path, stamp: _Stamp | None) -> tuple[_Stamp | None, AccountsFile] | None:
    """(Blocking.) The file's contents if its stamp is no longer ``stamp``, else ``None``.

    :raises AccountError: if the file cannot be read or parsed.
    """
    try:
        st = os.stat(path)
        new: _Stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        racy = time.time() - st.st_mtime < _RACY_SECONDS
    except FileNotFoundError:
        new, racy = (0, 0, 0), False
    except OSError as e:
        raise AccountError(f"cannot stat accounts file {path}: {e.strerror or e}") from None
    if new == stamp:
        return None
    accounts = AccountsFile(path)
    accounts.load()
    return (None if racy else new), accounts


def _decode(name: bytes | str, password: bytes | str) -> tuple[str, bytes]:
    """The user name as text and the password as octets ("" and b"" if undecodable)."""
    try:
        text = name.decode("utf-8") if isinstance(name, bytes) else name
        secret = password.encode("utf-8") if isinstance(password, str) else password
    except UnicodeError:
        return "", b""
    return text, secret


@implementer(ICredentialsChecker, IDirectory, ISCRAMKeys)
class AccountsChecker:
    """Checks user name/password credentials against an accounts file.

    It is also the :class:`~exchmail.interfaces.IDirectory` of those users
    and the :class:`~exchmail.interfaces.ISCRAMKeys` source of SCRAM-SHA-256.

    The checker answers from an in-memory copy of the file.  The file is
    checked (a ``stat``, then a read if its modification time, size or
    inode changed) off the reactor thread through ``run_blocking``: before
    every full password verification, and at most once per
    ``check_interval`` seconds for answers from memory (cached logins,
    :meth:`user_exists`, :meth:`scram_keys`, SCRAM logins).  So accounts
    added, changed or removed with ``exchmail user add|passwd|del`` take
    effect on a running server within ``check_interval``.  If reading fails,
    the last good contents stay in use and the error is logged.

    Successful verifications are remembered in a
    :class:`~exchmail.auth.cache.CredentialsCache` (:attr:`cache`)
    (``cache_ttl`` seconds, at most ``cache_size`` users), so a repeat login
    with the same password skips the hash; a user's entry is dropped as
    soon as the file shows a change of that user's line (new password,
    removal).  SCRAM logins never use the cache.

    :param run_blocking: runs file reads off the reactor thread (the store's
        pool); ``None`` runs them synchronously (tests, command-line tools).
    :param hash_blocking: runs password hashes (the ``run_blocking`` of an
        :class:`~exchmail.auth.hashpool.HashPool`); ``None``: the same as
        ``run_blocking``.
    :param cache_ttl: seconds a verification is remembered; 0 disables the cache.
    :param cache_size: users remembered at most.
    :param clock: seconds from a monotonic clock (``task.Clock().seconds`` in tests).
    :param check_interval: seconds between file checks for answers from memory.
    """

    credentialInterfaces = (IUsernamePassword, ISCRAMCredentials, INTLMCredentials)
    log = Logger(namespace="exchmail.auth")

    def __init__(
        self,
        path: Path | str,
        run_blocking: RunBlocking | None = None,
        *,
        hash_blocking: RunBlocking | None = None,
        cache_ttl: float = DEFAULT_TTL,
        cache_size: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        check_interval: float = 1.0,
    ) -> None:
        self.path = Path(path)
        self._run_io: RunBlocking = run_blocking or _run_here
        self._run_hash: RunBlocking = hash_blocking or self._run_io
        self._clock = clock
        self.check_interval = check_interval
        self.cache = CredentialsCache(cache_ttl, cache_size, clock)
        self._file = AccountsFile(self.path)  # the in-memory copy; replaced, never changed
        self._stamp: _Stamp | None = None
        self._checked_at: float | None = None
        self._reading = False
        self._waiters: list[defer.Deferred[None]] = []

    # -- the in-memory copy ----------------------------------------------------------
    def refresh(self, max_age: float | None = None) -> defer.Deferred[None]:
        """Check the file (off the reactor thread) now, or, with ``max_age``, only
        if the last check is older; fires once the in-memory copy is current.

        Never fails: read errors are logged and the last good copy stays.
        """
        fresh = (
            max_age is not None
            and self._checked_at is not None
            and self._clock() - self._checked_at <= max_age
        )
        if fresh and not self._reading:
            return defer.succeed(None)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiters.append(waiter)
        self._start_reading()
        return waiter

    def _start_reading(self) -> None:
        if self._reading:
            return  # join the check under way
        self._reading = True
        started = self._clock()
        d = self._run_io(_read_if_changed, self.path, self._stamp)
        d.addBoth(self._read_done, started)

    def _read_done(self, result: Any, started: float) -> None:
        self._reading = False
        self._checked_at = started  # a broken file is retried at the next check, not sooner
        if isinstance(result, Failure):
            if result.check(AccountError):
                self.log.error("{error}; keeping the previous accounts", error=result.value)
            else:
                self.log.failure("Checking the accounts file failed; keeping the previous accounts", result)
        elif result is not None:
            stamp, accounts = result
            self._replace(accounts)
            self._stamp = stamp
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _replace(self, accounts: AccountsFile) -> None:
        """Use ``accounts`` from now on; forget cached logins of every user whose line changed."""
        old, new = self._file.lines_by_user(), accounts.lines_by_user()
        self._file = accounts
        for folded in old.keys() | new.keys():
            if old.get(folded) != new.get(folded):
                self.cache.forget(folded)

    # -- IDirectory and ISCRAMKeys -----------------------------------------------------
    def user_exists(self, name: str) -> defer.Deferred[bool]:
        """Whether ``name`` (any case) has an account; a Deferred."""
        d = self.refresh(self.check_interval)
        return d.addCallback(lambda _: self._file.canonical_name(name) is not None)

    def canonical_name(self, name: str) -> str | None:
        """The spelling of ``name`` in the accounts file, or ``None`` (from memory).

        Starts a check of the file when the last one is older than
        ``check_interval``, for later calls.
        """
        if self._checked_at is None or self._clock() - self._checked_at > self.check_interval:
            self._start_reading()
        return self._file.canonical_name(name)

    def scram_keys(self, name: str) -> defer.Deferred[Any]:
        """The SCRAM-SHA-256 keys of ``name`` (any case), or ``None``; a Deferred."""
        d = self.refresh(self.check_interval)
        return d.addCallback(lambda _: self._file.scram_keys(name))

    # -- ICredentialsChecker -----------------------------------------------------------
    def requestAvatarId(self, credentials: Any) -> defer.Deferred[Any]:
        """A Deferred firing with the canonical user name, or failing with
        :class:`~twisted.cred.error.UnauthorizedLogin` (or
        :class:`~exchmail.errors.DirectoryUnavailable` when the hash pool is full)."""
        d = self.refresh(self.check_interval)
        if ISCRAMCredentials.providedBy(credentials):
            return d.addCallback(lambda _: self._check_scram(credentials))
        if INTLMCredentials.providedBy(credentials):
            return d.addCallback(lambda _: self._check_ntlm(credentials))
        name, secret = _decode(credentials.username, credentials.password)
        return d.addCallback(self._cached_or_verified, name, secret)

    def _cached_or_verified(self, _: None, name: str, secret: bytes) -> Any:
        hit = self.cache.get(name, secret) if name else None
        if hit is not None:
            return hit
        return self.refresh().addCallback(self._verify, name, secret)

    def _verify(self, _: None, name: str, secret: bytes) -> defer.Deferred[str]:
        """The full check: the hash runs in the hash pool, also for unknown users
        (against a dummy hash), so a failure takes as long either way."""
        canonical = self._file.canonical_name(name) if name else None
        encoded = self._file.password_hash(name) if canonical else None
        epoch = self.cache.epoch  # a change during the hash must not be cached over

        def checked(matched: bool) -> str:
            if canonical is None or not matched:
                raise UnauthorizedLogin("invalid user name or password")
            self.cache.remember(name, secret, canonical, epoch)
            return canonical

        d = self._run_hash(verify_password, secret, encoded or DUMMY_HASH)
        return d.addCallback(checked)

    def _check_ntlm(self, credentials: Any) -> str:
        """NTLM against the account's NT hash (none stored: refused)."""
        name, _ = _decode(credentials.username, b"")
        canonical = self._file.canonical_name(name) if name else None
        stored = self._file.nt_hash(name) if canonical else None
        if canonical is None or stored is None or not credentials.check_nt_hash(stored):
            raise UnauthorizedLogin("invalid user name or password")
        return canonical

    def _check_scram(self, credentials: Any) -> str:
        name, _ = _decode(credentials.username, b"")
        canonical = self._file.canonical_name(name) if name else None
        keys = self._file.scram_keys(name) if canonical else None
        if canonical is None or keys is None or not credentials.check_stored_key(keys.stored_key):
            raise UnauthorizedLogin("invalid user name or password")
        return canonical


class AccountsService(HashPool):
    """The accounts backend as a service: a :class:`HashPool` and the checker hashing in it.

    Mirrors :class:`exchmail.auth.ldap.LDAPService`: add it to the service
    tree and give :attr:`checker` to the portal.  Starting it also loads
    the accounts file (off the reactor thread), so :meth:`AccountsChecker.canonical_name`
    answers from the start.

    :param run_blocking: the store's ``run_blocking`` (file reads).
    :param threads: hash threads (``[auth] hash_threads``).
    """

    name = "accounts"

    def __init__(
        self,
        reactor: Any,
        path: Path | str,
        run_blocking: RunBlocking | None,
        *,
        cache_ttl: float = DEFAULT_TTL,
        cache_size: int = DEFAULT_MAX_ENTRIES,
        threads: int = DEFAULT_THREADS,
    ) -> None:
        super().__init__(reactor, threads)
        self.checker = AccountsChecker(
            path,
            run_blocking,
            hash_blocking=self.run_blocking,
            cache_ttl=cache_ttl,
            cache_size=cache_size,
        )

    def startService(self) -> None:
        super().startService()
        self.checker.refresh()  # never fails: errors are logged
