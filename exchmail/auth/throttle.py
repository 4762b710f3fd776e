"""Failed-login throttling across sessions, per client address and per account.

Exchange only drops a session after four failures (MS-STANXIMAP V0058,
MS-STANXPOP3 C0005); a client that reconnects may guess on.  This adds a
budget that outlives the sessions: within ``window`` seconds,

- after ``delay_after`` failures from one address (or for one account)
  every further attempt is held back, ``base_delay`` seconds after the first
  such failure and twice as long after each further one, up to ``max_delay``;
- after ``block_after`` failures the address (or account) is blocked for
  ``block_duration`` seconds: every attempt is refused, even one with the
  right password, with the same answer as a wrong password, so the client
  cannot tell what failed.

Addresses and accounts have their own thresholds (``ip_*`` and
``account_*``).  The delay is taken before the password is checked, so a
held-back attempt is as slow whether or not it will succeed; it never
blocks the reactor (``callLater``).  A successful login clears the
account's failures but not the address's.  A temporary failure of the
account directory (:class:`~exchmail.errors.DirectoryUnavailable`) does not
count.  Blocks are logged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.logger import Logger


@dataclass(frozen=True)
class ThrottleSettings:
    """The ``[throttle]`` table of the configuration."""

    enabled: bool = True
    window: float = 900.0
    ip_delay_after: int = 10
    ip_block_after: int = 40
    account_delay_after: int = 5
    account_block_after: int = 15
    base_delay: float = 1.0
    max_delay: float = 16.0
    block_duration: float = 900.0


class _Record:
    __slots__ = ("failures", "blocked_until")

    def __init__(self) -> None:
        self.failures: deque[float] = deque()
        self.blocked_until = 0.0


class LoginThrottle:
    """Counts failed logins by address and by account; shared by IMAP and POP3.

    :param clock: an ``IReactorTime`` (a ``task.Clock`` in tests).
    """

    log = Logger(namespace="exchmail.auth.throttle")
    #: Records kept at most per kind; the oldest are forgotten first.
    MAX_RECORDS = 100_000

    def __init__(self, settings: ThrottleSettings, clock: Any) -> None:
        self.settings = settings
        self.clock = clock
        self._records: dict[tuple[str, str], _Record] = {}

    # -- bookkeeping ---------------------------------------------------------------
    def _limits(self, kind: str) -> tuple[int, int]:
        s = self.settings
        return ((s.ip_delay_after, s.ip_block_after) if kind == "ip"
                else (s.account_delay_after, s.account_block_after))

    def _record(self, kind: str, key: str, create: bool = False) -> _Record | None:
        record = self._records.get((kind, key))
        now = self.clock.seconds()
        if record is not None:
            while record.failures and record.failures[0] <= now - self.settings.window:
                record.failures.popleft()
            if not record.failures and record.blocked_until <= now:
                del self._records[(kind, key)]
                record = None
        if record is None and create:
            if len(self._records) >= self.MAX_RECORDS:
                self._records.pop(next(iter(self._records)))
            record = self._records[(kind, key)] = _Record()
        return record

    def _keys(self, ip: str, account: str) -> list[tuple[str, str]]:
        keys = [("ip", ip)] if ip else []
        if account:
            keys.append(("account", account.lower()))
        return keys

    # -- the policy ------------------------------------------------------------------
    def blocked(self, ip: str, account: str) -> bool:
        """Whether an attempt from ``ip`` for ``account`` is refused outright now."""
        if not self.settings.enabled:
            return False
        now = self.clock.seconds()
        for kind, key in self._keys(ip, account):
            record = self._record(kind, key)
            if record is not None and record.blocked_until > now:
                return True
        return False

    def delay(self, ip: str, account: str) -> float:
        """How long to hold back an attempt from ``ip`` for ``account`` (0: none)."""
        if not self.settings.enabled:
            return 0.0
        s, longest = self.settings, 0.0
        for kind, key in self._keys(ip, account):
            record = self._record(kind, key)
            delay_after, _ = self._limits(kind)
            if record is None or not delay_after or len(record.failures) < delay_after:
                continue
            excess = len(record.failures) - delay_after
            longest = max(longest, min(s.base_delay * 2 ** min(excess, 32), s.max_delay))
        return longest

    def failed(self, ip: str, account: str) -> None:
        """Count a failed attempt; start a block when a budget is spent."""
        if not self.settings.enabled:
            return
        now = self.clock.seconds()
        for kind, key in self._keys(ip, account):
            record = self._record(kind, key, create=True)
            assert record is not None
            record.failures.append(now)
            _, block_after = self._limits(kind)
            if block_after and len(record.failures) >= block_after and record.blocked_until <= now:
                record.blocked_until = now + self.settings.block_duration
                record.failures.clear()
                self.log.warn("Blocking logins {what} {key} for {duration:.0f} s after "
                              "{count} failed attempts",
                              what="from" if kind == "ip" else "for account", key=key,
                              duration=self.settings.block_duration, count=block_after)

    def succeeded(self, ip: str, account: str) -> None:
        """A successful login clears the account's failures (not the address's)."""
        if account:
            self._records.pop(("account", account.lower()), None)

    # -- the wrapper the protocols use -------------------------------------------------
    def attempt(self, ip: str, account: str,
                login: Callable[[], defer.Deferred[Any]]) -> defer.Deferred[Any]:
        """Run ``login()`` under the policy: held back, refused while blocked, counted.

        A refusal while blocked fails with ``UnauthorizedLogin``, as a wrong
        password does.
        """
        if self.blocked(ip, account):
            self.log.info("Refused a login {ip} for {account}: blocked", ip=ip, account=account)
            d: defer.Deferred[Any] = defer.Deferred()
            self.clock.callLater(self.settings.max_delay if self.settings.enabled else 0,
                                 d.errback, UnauthorizedLogin("blocked"))
            return d
        delay = self.delay(ip, account)
        if delay:
            d = defer.Deferred()
            self.clock.callLater(delay, d.callback, None)
            d.addCallback(lambda _: login())
        else:
            d = defer.maybeDeferred(login)

        def counted(result: Any) -> Any:
            self.succeeded(ip, account)
            return result

        def refused(failure: Any) -> Any:
            if failure.check(UnauthorizedLogin):
                self.failed(ip, account)
            return failure

        return d.addCallbacks(counted, refused)


def guarded_login(throttle: LoginThrottle | None, ip: str, credentials: Any,
                  login: Callable[[], defer.Deferred[Any]]) -> defer.Deferred[Any]:
    """``login()`` through ``throttle`` (if any), keyed by the credentials' user name."""
    if throttle is None:
        return defer.maybeDeferred(login)
    name = getattr(credentials, "username", b"") or b""
    account = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
    return throttle.attempt(ip, account, login)
