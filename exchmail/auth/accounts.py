"""The accounts file: salted password hashes, and a checker that reads them.

One account per line::

    name:$scrypt$n=16384,r=8,p=1$<salt>$<hash>[:<extra>...]

``<salt>`` and ``<hash>`` are base64 (written without padding; read with
or without).  ``$pbkdf2-sha256$i=<iterations>$<salt>$<hash>`` hashes are
accepted for verification too.  Lines that are blank or start with ``#``
are ignored and kept on rewrite, as are extra ``:``-separated fields after
the hash.  One such field holds the account's SCRAM-SHA-256 keys
(``$scram-sha-256$i=<iterations>$<salt>$<StoredKey>$<ServerKey>``, see
:mod:`exchmail.auth.sasl`); :meth:`AccountsFile.add` and
:meth:`~AccountsFile.set_password` write it, so accounts created before it
existed can use SCRAM once their password is set again.  With NTLM
configured, another field holds the NT hash (``$nt$<hex>``, see
:mod:`exchmail.auth.ntlm`): it is password-equivalent, so it is written
only when asked for (``nt_hash=True``) and dropped at every other change of
the password.

User names are those of :func:`exchmail.store.names.check_user_name` and
are matched case-insensitively, as Exchange matches them; the spelling in
the file is the canonical one.  Rewrites are atomic (temporary file in the
same folder, fsync, rename) and the file is created with mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from exchmail.auth.cache import DEFAULT_MAX_ENTRIES, DEFAULT_TTL, CredentialsCache
from exchmail.auth.hashpool import DEFAULT_THREADS, HashPool
from exchmail.auth.sasl import SCRAMKeys, scram_keys
from exchmail.errors import AccountError
from exchmail.interfaces import IDirectory, INTLMCredentials, ISCRAMCredentials, ISCRAMKeys
from exchmail.store.names import check_user_name

SCRYPT_N, SCRYPT_R, SCRYPT_P = 16384, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
_MAX_SCRYPT_MEMORY = 256 * 1024 * 1024
_MAX_PBKDF2_ITERATIONS = 10_000_000

#: The user created by :func:`ensure_first_account`.
FIRST_USER = "newcomer"

#: A hash that matches no password, verified for unknown users so that a
#: failed login takes as long whether or not the user exists.
_DUMMY_HASH = "$scrypt$n=16384,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    text = text.replace(".", "+")  # passlib's "adapted base64"
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def hash_password(password: str) -> str:
    """A new salted scrypt hash of ``password`` in the accounts-file format."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=HASH_BYTES
    )
    return f"$scrypt$n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}${_b64encode(salt)}${_b64encode(digest)}"


def _params(text: str) -> dict[str, int]:
    params = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        params[key] = int(value)
    return params


def _compute(password: bytes, encoded: str) -> tuple[bytes, bytes]:
    """The (computed, expected) digests for ``encoded``; ValueError if malformed."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0]:
        raise ValueError("not a $scheme$params$salt$hash string")
    scheme, params, salt, expected = parts[1], _params(parts[2]), _b64decode(parts[3]), _b64decode(parts[4])
    if not expected:
        raise ValueError("empty hash")
    if scheme == "scrypt":
        n, r, p = params["n"], params["r"], params["p"]
        if 128 * n * r * p > _MAX_SCRYPT_MEMORY:
            raise ValueError("scrypt parameters too large")
        return hashlib.scrypt(
            password, salt=salt, n=n, r=r, p=p, dklen=len(expected), maxmem=_MAX_SCRYPT_MEMORY + 1024 * 1024
        ), expected
    if scheme == "pbkdf2-sha256":
        iterations = params["i"]
        if not 0 < iterations <= _MAX_PBKDF2_ITERATIONS:
            raise ValueError("bad iteration count")
        return hashlib.pbkdf2_hmac("sha256", password, salt, iterations, dklen=len(expected)), expected
    raise ValueError(f"unknown scheme {scheme!r}")


def verify_password(password: str | bytes, encoded: str) -> bool:
    """Whether ``password`` matches the ``encoded`` hash (False if malformed).

    ``bytes`` passwords are used as they are; ``str`` ones are UTF-8 encoded.
    """
    if isinstance(password, str):
        password = password.encode("utf-8")
    try:
        computed, expected = _compute(password, encoded)
    except (ValueError, KeyError, TypeError, binascii.Error, MemoryError):
        return False
    return hmac.compare_digest(computed, expected)


@dataclass
class _Account:
    name: str
    encoded: str
    extra: tuple[str, ...] = ()

    def line(self) -> str:
        return ":".join((self.name, self.encoded, *self.extra))

    def scram(self) -> SCRAMKeys | None:
        for field in self.extra:
            if field.startswith(_SCRAM_PREFIX):
                try:
                    return SCRAMKeys.decode(field)
                except ValueError:
                    return None
        return None

    def nt_hash(self) -> bytes | None:
        for field in self.extra:
            if field.startswith(_NT_PREFIX):
                try:
                    value = bytes.fromhex(field[len(_NT_PREFIX):])
                except ValueError:
                    return None
                return value if len(value) == 16 else None
        return None

    def set_secret(self, password: str, nt_hash: bool = False) -> None:
        """Hash ``password`` and replace the SCRAM keys (dropped if SASLprep refuses it)
        and the NT hash (written only with ``nt_hash``)."""
        self.encoded = hash_password(password)
        extra = [f for f in self.extra if not f.startswith((_SCRAM_PREFIX, _NT_PREFIX))]
        try:
            extra.insert(0, scram_keys(password).encode())
        except ValueError:
            pass  # SASLprep prohibits the password: no SCRAM for this account
        if nt_hash:
            from exchmail.auth.ntlm import nt_hash as compute_nt_hash

            try:
                extra.append(_NT_PREFIX + compute_nt_hash(password).hex())
            except ImportError:
                raise AccountError("NT hashes need the pyspnego package "
                                   "(pip install 'exchmail[ntlm]')") from None
        self.extra = tuple(extra)


_SCRAM_PREFIX = "$scram-sha-256$"
_NT_PREFIX = "$nt$"


class AccountsFile:
    """The accounts file at ``path``; a missing file holds no accounts.

    Every change re-reads the file first and then rewrites it atomically,
    so separate processes (the CLI, a running server) see each other's
    complete versions.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lines: list[str | _Account] = []
        self._index: dict[str, _Account] = {}  # folded name -> account

    def load(self) -> None:
        """(Re-)read the file.  :raises AccountError: if it cannot be read or parsed."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise AccountError(f"cannot read accounts file {self.path}: {reason}") from None
        lines: list[str | _Account] = []
        seen: set[str] = set()
        for number, raw in enumerate(text.splitlines(), 1):
            if not raw.strip() or raw.lstrip().startswith("#"):
                lines.append(raw)
                continue
            name, *fields = raw.split(":")
            if not fields or not fields[0].startswith("$"):
                raise AccountError(f"{self.path}:{number}: expected 'name:$scheme$...'")
            if name.lower() in seen:
                raise AccountError(f"{self.path}:{number}: duplicate user {name!r}")
            seen.add(name.lower())
            lines.append(_Account(name, fields[0], tuple(fields[1:])))
        self._lines = lines
        self._reindex()

    def _reindex(self) -> None:
        self._index = {a.name.lower(): a for a in self._accounts()}

    def _accounts(self) -> list[_Account]:
        return [line for line in self._lines if isinstance(line, _Account)]

    def _find(self, name: str) -> _Account | None:
        return self._index.get(name.lower())

    def lines_by_user(self) -> dict[str, str]:
        """Folded user name -> the account's whole line (hash, SCRAM keys, extras)."""
        return {folded: account.line() for folded, account in self._index.items()}

    def users(self) -> list[str]:
        """The user names, in file order (as last loaded or written)."""
        return [a.name for a in self._accounts()]

    def exists(self, name: str) -> bool:
        """Whether ``name`` (any case) has an account (as last loaded or written)."""
        return self._find(name) is not None

    def canonical_name(self, name: str) -> str | None:
        """The spelling of ``name`` in the file, or ``None`` if it has no account."""
        account = self._find(name)
        return account.name if account else None

    def password_hash(self, name: str) -> str | None:
        """The encoded hash of ``name``, or ``None`` if it has no account."""
        account = self._find(name)
        return account.encoded if account else None

    def scram_keys(self, name: str) -> SCRAMKeys | None:
        """The SCRAM-SHA-256 keys of ``name``, or ``None`` (unknown user, or no keys)."""
        account = self._find(name)
        return account.scram() if account else None

    def nt_hash(self, name: str) -> bytes | None:
        """The NT hash of ``name``, or ``None`` (unknown user, or none stored)."""
        account = self._find(name)
        return account.nt_hash() if account else None

    def add(self, name: str, password: str, nt_hash: bool = False) -> None:
        """Add an account (with its NT hash if ``nt_hash``, for NTLM).

        :raises AccountError: if ``name`` exists (any case).
        :raises InvalidUserName: if ``name`` is not a safe user name.
        """
        check_user_name(name)
        self.load()
        if self._find(name):
            raise AccountError(f"user {name!r} already exists")
        account = _Account(name, "")
        account.set_secret(password, nt_hash)
        self._lines.append(account)
        self._reindex()
        self._write()

    def set_password(self, name: str, password: str, nt_hash: bool = False) -> None:
        """Replace the password of ``name`` (and its NT hash, kept only if
        ``nt_hash``).  :raises AccountError: if unknown."""
        self.load()
        account = self._find(name)
        if account is None:
            raise AccountError(f"no such user {name!r}")
        account.set_secret(password, nt_hash)
        self._write()

    def remove(self, name: str) -> None:
        """Delete the account of ``name``.  :raises AccountError: if unknown."""
        self.load()
        account = self._find(name)
        if account is None:
            raise AccountError(f"no such user {name!r}")
        self._lines.remove(account)
        self._reindex()
        self._write()

    def _write(self) -> None:
        text = "".join((line.line() if isinstance(line, _Account) else line) + "\n" for line in self._lines)
        folder = self.path.parent
        tmp = folder / f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            _fsync_dir(folder)
        except OSError as e:
            raise AccountError(f"cannot write accounts file {self.path}: {e.strerror or e}") from None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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

        d = self._run_hash(verify_password, secret, encoded or _DUMMY_HASH)
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


def ensure_first_account(path: Path) -> tuple[str, str] | None:
    """Create the account ``newcomer`` with a random password if there is none.

    :return: ``(name, password)`` if an account was created (the caller
        shows it once), else ``None``.
    :raises AccountError: if the file cannot be read or written.
    """
    accounts = AccountsFile(path)
    accounts.load()
    if accounts.users():
        return None
    password = secrets.token_urlsafe(12)
    accounts.add(FIRST_USER, password)
    return FIRST_USER, password
