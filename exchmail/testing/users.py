"""MemoryUsers: the accounts of a test server, in memory, without password hashing.

A test server adds and removes users many times a second; the accounts
file's scrypt hashes would make each addition cost tens of milliseconds.
This checker keeps the passwords themselves (test passwords, never real
ones), compares them in constant time, matches user names in any case as
Exchange does, and derives SCRAM-SHA-256 keys only when a client uses
SCRAM.
"""

from __future__ import annotations

import hmac
import threading
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from zope.interface import implementer

from exchmail.auth.sasl import scram_keys
from exchmail.interfaces import IDirectory, ISCRAMCredentials, ISCRAMKeys


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@implementer(ICredentialsChecker, IDirectory, ISCRAMKeys)
class MemoryUsers:
    """User names and passwords in a dict; safe to change from any thread."""

    credentialInterfaces = (IUsernamePassword, ISCRAMCredentials)

    def __init__(self) -> None:
        self._users: dict[str, tuple[str, str]] = {}  # lower-case name -> (name, password)
        self._scram: dict[str, Any] = {}
        self._lock = threading.Lock()

    def add(self, name: str, password: str) -> None:
        """Add ``name`` (or change its password)."""
        with self._lock:
            self._users[name.lower()] = (name, password)
            self._scram.pop(name.lower(), None)

    def remove(self, name: str) -> None:
        """Remove ``name``; its mail stays in the store."""
        with self._lock:
            self._users.pop(name.lower(), None)
            self._scram.pop(name.lower(), None)

    def names(self) -> list[str]:
        """The user names, as added."""
        with self._lock:
            return [name for name, _ in self._users.values()]

    # -- IDirectory -----------------------------------------------------------------------
    def user_exists(self, name: str) -> defer.Deferred[bool]:
        return defer.succeed(self.canonical_name(name) is not None)

    def canonical_name(self, name: str) -> str | None:
        entry = self._users.get(name.lower())
        return entry[0] if entry else None

    # -- ISCRAMKeys --------------------------------------------------------------------------
    def scram_keys(self, name: str) -> defer.Deferred[Any]:
        key = name.lower()
        with self._lock:
            entry = self._users.get(key)
            keys = self._scram.get(key)
        if entry is not None and keys is None:
            try:
                keys = scram_keys(entry[1])
            except ValueError:  # SASLprep refuses the password: no SCRAM for this user
                keys = None
            with self._lock:
                self._scram[key] = keys
        return defer.succeed(keys)

    # -- ICredentialsChecker ------------------------------------------------------------------
    def requestAvatarId(self, credentials: Any) -> defer.Deferred[Any]:
        """A Deferred of the user's name as added, or UnauthorizedLogin."""
        name = _text(credentials.username)
        entry = self._users.get(name.lower())
        if ISCRAMCredentials.providedBy(credentials):
            keys = self._scram.get(name.lower())
            if entry is None or keys is None or not credentials.check_stored_key(keys.stored_key):
                return defer.fail(UnauthorizedLogin("invalid user name or password"))
            return defer.succeed(entry[0])
        password = credentials.password
        secret = password if isinstance(password, bytes) else password.encode("utf-8")
        if entry is None or not hmac.compare_digest(secret, entry[1].encode("utf-8")):
            return defer.fail(UnauthorizedLogin("invalid user name or password"))
        return defer.succeed(entry[0])
