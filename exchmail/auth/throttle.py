"""Failed-login throttling across sessions, keyed so that nobody can lock out anybody.

Exchange only drops a session after four failures (MS-STANXIMAP V0058,
MS-STANXPOP3 C0005); a client that reconnects may guess on.  This adds
budgets that outlive the sessions and are shared by IMAP and POP3.
Failures count within ``window`` seconds, in three budgets:

- **(account, address)**, the main one: after ``pair_delay_after``
  failures for one account from one address, each further attempt from
  there is held back, ``base_delay`` seconds and twice as long after each
  further failure, up to ``max_delay``; after ``pair_block_after`` failures
  that account is refused *from that address* for ``block_duration``
  seconds.  Guessing a victim's password from one address locks out only
  that address, never the victim's own.
- **address**, higher (``ip_*``): spraying many accounts from one address
  is held back and then blocked for every account from there.
- **account**, over all addresses (``account_delay_after``): guessing one
  account from many addresses (a botnet) holds back every further attempt
  for it, up to ``account_max_delay``, but never blocks: a correct password
  from an address without failures of its own still logs in.

An (account, address) pair that logged in successfully within
``known_duration`` seconds is *known*: the address and account budgets do
not apply to it (only its own pair budget does), so a user's usual
clients keep working while someone sprays from the same NAT address or
guesses the user's password from elsewhere -- Dovecot's auth penalty and
fail2ban set-ups aim at the same.

A refused (blocked) attempt is answered exactly like a wrong password,
after ``max_delay`` seconds, and checks nothing, so it does not count
either.  The delay is taken before the password is checked, so a held-back
attempt is as slow whether or not it will succeed; it never blocks the
reactor (``callLater``).  A success clears its pair's failures, never the
address's or the account's (an attacker with one valid account could
otherwise reset them).  A temporary failure of the account directory
(:class:`~exchmail.errors.DirectoryUnavailable`) does not count.  Blocks
are logged.  Delays slow down *sequential* guessing; the blocks and the
budgets bound how many guesses one address makes in all.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.logger import Logger


class LoginBlocked(UnauthorizedLogin):
    """A login refused outright because its (account, address) pair or its
    address is blocked; answered exactly like a wrong password."""


@dataclass(frozen=True)
class ThrottleSettings:
    """The ``[throttle]`` table of the configuration (counts of 0 turn a rule off)."""

    enabled: bool = True
    #: Seconds a failure counts.
    window: float = 900.0
    #: Failures for one account from one address before attempts are held back.
    pair_delay_after: int = 3
    #: ... before that account is refused from that address.
    pair_block_after: int = 10
    #: Failures from one address (any accounts) before attempts are held back.
    ip_delay_after: int = 20
    #: ... before every account is refused from that address.
    ip_block_after: int = 100
    #: Failures for one account (any addresses) before attempts are held back.
    account_delay_after: int = 10
    #: The longest hold-back from the account budget (which never blocks).
    account_max_delay: float = 4.0
    #: The first hold-back; it doubles with each further failure.
    base_delay: float = 1.0
    #: The longest hold-back from the pair and address budgets.
    max_delay: float = 16.0
    #: Seconds a block lasts.
    block_duration: float = 900.0
    #: Seconds a successful (account, address) pair stays exempt from the
    #: address and account budgets (0: never exempt).
    known_duration: float = 7 * 86400.0


class _Record:
    __slots__ = ("failures", "blocked_until")

    def __init__(self) -> None:
        self.failures: deque[float] = deque()
        self.blocked_until = 0.0


class _Budget:
    """Failure times within the window per key, and blocks, for one kind of key.

    Holds at most ``max_records`` keys; the least recently failed is forgotten first.
    """

    def __init__(self, window: float, max_records: int) -> None:
        self.window = window
        self.max_records = max_records
        self._records: OrderedDict[Hashable, _Record] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def _record(self, key: Hashable, now: float) -> _Record | None:
        record = self._records.get(key)
        if record is None:
            return None
        while record.failures and record.failures[0] <= now - self.window:
            record.failures.popleft()
        if not record.failures and record.blocked_until <= now:
            del self._records[key]
            return None
        return record

    def failures(self, key: Hashable, now: float) -> int:
        record = self._record(key, now)
        return len(record.failures) if record is not None else 0

    def blocked(self, key: Hashable, now: float) -> bool:
        record = self._record(key, now)
        return record is not None and record.blocked_until > now

    def add(self, key: Hashable, now: float, block_after: int, duration: float) -> bool:
        """Count a failure; whether it started a block."""
        record = self._record(key, now)
        if record is None:
            record = self._records[key] = _Record()
            while len(self._records) > self.max_records:
                self._records.popitem(last=False)
        self._records.move_to_end(key)
        record.failures.append(now)
        if block_after and len(record.failures) >= block_after and record.blocked_until <= now:
            record.blocked_until = now + duration
            record.failures.clear()
            return True
        return False

    def clear(self, key: Hashable) -> None:
        self._records.pop(key, None)


class LoginThrottle:
    """Counts failed logins per (account, address), per address and per account.

    One instance is shared by IMAP and POP3.  Account names are matched
    case-insensitively; an empty address (unknown) is a key of its own.

    :param clock: an ``IReactorTime`` (a ``task.Clock`` in tests).
    """

    log = Logger(namespace="exchmail.auth.throttle")
    #: Keys kept at most per budget (and known pairs); the oldest are forgotten first.
    MAX_RECORDS = 100_000

    def __init__(self, settings: ThrottleSettings, clock: Any) -> None:
        self.settings = settings
        self.clock = clock
        self._pairs = _Budget(settings.window, self.MAX_RECORDS)
        self._ips = _Budget(settings.window, self.MAX_RECORDS)
        self._accounts = _Budget(settings.window, self.MAX_RECORDS)
        self._known: OrderedDict[tuple[str, str], float] = OrderedDict()

    # -- the policy ------------------------------------------------------------------
    def known(self, ip: str, account: str) -> bool:
        """Whether ``account`` logged in from ``ip`` within ``known_duration``."""
        key = (account.lower(), ip)
        until = self._known.get(key)
        if until is None:
            return False
        if until <= self.clock.seconds():
            del self._known[key]
            return False
        return True

    def blocked(self, ip: str, account: str) -> bool:
        """Whether an attempt from ``ip`` for ``account`` is refused outright now."""
        if not self.settings.enabled:
            return False
        now = self.clock.seconds()
        if account and self._pairs.blocked((account.lower(), ip), now):
            return True
        return bool(ip) and self._ips.blocked(ip, now) and not self.known(ip, account)

    def _growing(self, failures: int, after: int, cap: float) -> float:
        if not after or failures < after:
            return 0.0
        return min(self.settings.base_delay * 2 ** min(failures - after, 32), cap)

    def delay(self, ip: str, account: str) -> float:
        """How long to hold back an attempt from ``ip`` for ``account`` (0: none)."""
        s = self.settings
        if not s.enabled:
            return 0.0
        now, delays = self.clock.seconds(), [0.0]
        if account:
            failures = self._pairs.failures((account.lower(), ip), now)
            delays.append(self._growing(failures, s.pair_delay_after, s.max_delay))
        if not (account and self.known(ip, account)):
            if ip:
                delays.append(self._growing(self._ips.failures(ip, now), s.ip_delay_after, s.max_delay))
            if account:
                failures = self._accounts.failures(account.lower(), now)
                delays.append(self._growing(failures, s.account_delay_after, s.account_max_delay))
        return max(delays)

    def failed(self, ip: str, account: str) -> None:
        """Count a failed attempt (one whose password was checked); start blocks."""
        s = self.settings
        if not s.enabled:
            return
        now = self.clock.seconds()
        if account:
            folded = account.lower()
            if self._pairs.add((folded, ip), now, s.pair_block_after, s.block_duration):
                self.log.warn(
                    "Blocking logins for account {account} from {ip} for "
                    "{duration:.0f} s after {count} failed attempts",
                    account=folded,
                    ip=ip or "(unknown)",
                    duration=s.block_duration,
                    count=s.pair_block_after,
                )
            self._accounts.add(folded, now, 0, 0.0)  # the account budget never blocks
        if ip and self._ips.add(ip, now, s.ip_block_after, s.block_duration):
            self.log.warn(
                "Blocking logins from {ip} for {duration:.0f} s after {count} "
                "failed attempts (accounts that logged in from there recently "
                "are exempt)",
                ip=ip,
                duration=s.block_duration,
                count=s.ip_block_after,
            )

    def succeeded(self, ip: str, account: str) -> None:
        """A successful login clears its pair's failures and makes the pair known."""
        if not account:
            return
        key = (account.lower(), ip)
        self._pairs.clear(key)
        if self.settings.known_duration > 0:
            self._known.pop(key, None)
            self._known[key] = self.clock.seconds() + self.settings.known_duration
            while len(self._known) > self.MAX_RECORDS:
                self._known.popitem(last=False)

    # -- the wrapper the protocols use -------------------------------------------------
    def attempt(self, ip: str, account: str, login: Callable[[], defer.Deferred[Any]]) -> defer.Deferred[Any]:
        """Run ``login()`` under the policy: held back, refused while blocked, counted.

        A refusal while blocked fails with ``UnauthorizedLogin`` after
        ``max_delay`` seconds, as a held-back wrong password does.
        """
        if self.blocked(ip, account):
            self.log.info("Refused a login from {ip} for {account}: blocked", ip=ip, account=account)
            d: defer.Deferred[Any] = defer.Deferred()
            self.clock.callLater(self.settings.max_delay, d.errback, LoginBlocked("blocked"))
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


def credentials_account(credentials: Any) -> str:
    """The account name a login's credentials give (``""`` if none), as text."""
    name = getattr(credentials, "username", b"") or b""
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)


def guarded_login(
    throttle: LoginThrottle | None, ip: str, credentials: Any, login: Callable[[], defer.Deferred[Any]]
) -> defer.Deferred[Any]:
    """``login()`` through ``throttle`` (if any), keyed by ``ip`` and the credentials'
    user name."""
    if throttle is None:
        return defer.maybeDeferred(login)
    return throttle.attempt(ip, credentials_account(credentials), login)
