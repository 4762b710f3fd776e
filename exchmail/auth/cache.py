"""A verified-credentials cache, as Dovecot's auth cache: repeat logins skip the hash.

Every login with the accounts file pays a full scrypt hash (about 60 ms
of CPU), which under load made logins the server's main cost.  A
:class:`CredentialsCache` remembers, for a while, that a user name and
password were verified, so the same user logging in again with the same
password is answered from memory.

What it keeps, and why that is safe:

- Only ``HMAC-SHA256(secret, folded user NUL password)`` with a secret
  drawn at random when the cache is made (one per process): never the
  password, never a plain hash of it that could be looked up elsewhere.
  A lookup recomputes the HMAC and compares it in constant time, so a
  wrong password can never match.
- Only successes: a failed verification is never remembered.
- Entries expire ``ttl`` seconds after the verification (they are never
  extended, so a long-lived client re-verifies at least once per ``ttl``),
  and the cache holds at most ``max_entries`` users, dropping the least
  recently used one first.
- :meth:`CredentialsCache.forget` drops a user at once (its checker calls
  it when the user's password changes or the account is removed), and
  :attr:`~CredentialsCache.epoch` lets a checker refuse to remember a
  verification that started before such a change (see :meth:`remember`).

The price: whoever can read the process memory gets, with the secret, a
fast-to-test verifier of recently used passwords instead of a slow scrypt
hash.  The TTL bounds how long.  ``ttl = 0`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

#: ``[auth] cache_ttl`` default: long enough for a client's burst of
#: parallel connections and for clients that reconnect every few minutes,
#: short enough that a verifier of a password does not linger in memory.
DEFAULT_TTL = 300.0
#: ``[auth] cache_size`` default: users remembered at most (about 200 bytes each).
DEFAULT_MAX_ENTRIES = 10_000


def fold(name: str) -> str:
    """The cache key of a user name: matched case-insensitively, as Exchange does."""
    return name.lower()


class CredentialsCache:
    """Remembers verified user name/password pairs for ``ttl`` seconds.

    Used on the reactor thread only (no locking).  The value remembered is
    whatever the checker returns as avatar ID (a canonical name, a
    :class:`~exchmail.auth.directory.DirectoryUser`).

    :param ttl: seconds an entry stays valid after the verification; ``0``
        disables the cache (nothing is remembered).
    :param max_entries: users remembered at most (least recently used go first).
    :param clock: seconds from a monotonic clock (``task.Clock().seconds`` in tests).
    """

    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0 or max_entries < 1:
            raise ValueError("ttl must be >= 0 and max_entries >= 1")
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._secret = secrets.token_bytes(32)
        self._entries: OrderedDict[str, tuple[float, bytes, Any]] = OrderedDict()
        #: Bumped by every :meth:`forget` and :meth:`clear`; see :meth:`remember`.
        self.epoch = 0

    @property
    def enabled(self) -> bool:
        """Whether anything is remembered at all (``ttl > 0``)."""
        return self.ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    def _digest(self, folded: str, password: bytes) -> bytes:
        message = folded.encode("utf-8", "surrogatepass") + b"\0" + password
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def get(self, name: str, password: bytes) -> Any | None:
        """The remembered avatar ID if ``name`` verified with exactly ``password``
        within the TTL, else ``None``."""
        folded = fold(name)
        entry = self._entries.get(folded)
        if entry is None:
            return None
        expires, digest, value = entry
        if self._clock() >= expires:
            del self._entries[folded]
            return None
        if not hmac.compare_digest(digest, self._digest(folded, password)):
            return None  # a wrong (or new) password: the caller verifies it in full
        self._entries.move_to_end(folded)
        return value

    def remember(self, name: str, password: bytes, value: Any, epoch: int | None = None) -> None:
        """Remember a *successful* verification of ``name`` with ``password``.

        :param epoch: the :attr:`epoch` read before the verification began;
            if a :meth:`forget` or :meth:`clear` happened since, nothing is
            remembered (the verification may have used a replaced password).
        """
        if not self.enabled or (epoch is not None and epoch != self.epoch):
            return
        folded = fold(name)
        self._entries.pop(folded, None)
        self._entries[folded] = (self._clock() + self.ttl, self._digest(folded, password), value)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, name: str) -> None:
        """Drop what is remembered for ``name`` (password changed, account removed)."""
        self.epoch += 1
        self._entries.pop(fold(name), None)

    def clear(self) -> None:
        """Drop everything."""
        self.epoch += 1
        self._entries.clear()
