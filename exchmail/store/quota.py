"""Per-account storage quotas, enforced in the store layer (MS-STANXPOP3 E0003/E0004).

:class:`QuotaStore` wraps any :class:`~exchmail.interfaces.IStore`.  Every
path that adds mail goes through :meth:`IStoreMailbox.append` of the
wrapped mailboxes (IMAP APPEND, IMAP COPY via ``copy_to``, local delivery
by embedders), so the quota holds for all of them; a refused addition
raises :class:`~exchmail.errors.OverQuota`, which IMAP answers
``NO [OVERQUOTA]`` and POP3 ``-ERR [SYS/PERM]``.

Usage is the sum of the stored sizes of every message in every mailbox of
the account, like Exchange's mailbox size.  It is computed through the
asynchronous store API (opening a mailbox scans it in the store's threads)
and summed from the open indexes, never by walking files on the reactor
thread.  When an addition takes the
usage to the warning threshold or past it, a warning message is put into
the account's INBOX, once (again only after the usage has dropped below
the threshold), as RFC 1939 section 8 suggests.

The check and the addition are not one atomic step: two concurrent
additions may together go past the limit by at most one message each.
"""

from __future__ import annotations

import email.utils
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import alsoProvides, implementer

from exchmail.errors import NoSuchMailbox, OverQuota
from exchmail.interfaces import (
    IAccountListing,
    IAccountQuota,
    IEarlyOpen,
    IMarkedMailboxes,
    ISpecialUseMailboxes,
    IStore,
    IStoreAccount,
    IStoreMailbox,
    IUserQuota,
)

log = Logger(namespace="exchmail.store.quota")


@dataclass(frozen=True)
class QuotaLimits:
    """One account's limits in octets; 0 means "none"."""

    limit: int = 0
    warning: int = 0


@dataclass(frozen=True)
class QuotaPolicy:
    """The default limits and per-user exceptions (user names match in any case)."""

    default: QuotaLimits = QuotaLimits()
    users: Mapping[str, QuotaLimits] = field(default_factory=dict)
    #: Limits the account directory gave at login (lower-case names); they
    #: win over the configured ones.
    directory: dict[str, QuotaLimits] = field(default_factory=dict)

    def limits_for(self, user: str) -> QuotaLimits:
        if user.lower() in self.directory:
            return self.directory[user.lower()]
        lowered = {name.lower(): limits for name, limits in self.users.items()}
        return lowered.get(user.lower(), self.default)

    @property
    def active(self) -> bool:
        """Whether any account has a limit or a warning threshold."""
        every = [self.default, *self.users.values()]
        return any(limits.limit or limits.warning for limits in every)


def source_size(source: bytes | BinaryIO) -> int:
    """The octets an append source holds (a file from its position to its end).

    0 for a stream that cannot seek (a message being copied, converted on
    the fly): the copy was checked as a whole before (``copy_to``).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return len(source)
    try:
        if not source.seekable():
            return 0
        here = source.tell()
        end = source.seek(0, 2)
        source.seek(here)
    except (OSError, ValueError):
        return 0
    return end - here


def mailbox_size(box: Any) -> int:
    """The stored octets of every message of an open mailbox."""
    total = getattr(box, "total_stored_size", None)
    if total is not None:
        return int(total())  # summed from the index columns, no record built
    records = (box.message(uid) for uid in list(box.uids()))
    return sum(record.stored_size for record in records if record is not None)


def warning_message(user: str, usage: int, limits: QuotaLimits, now: float) -> bytes:
    """The RFC 5322 message (CRLF) that tells ``user`` the mailbox is nearly full."""
    limit = f"{limits.limit} octets" if limits.limit else "no hard limit"
    lines = [
        "From: Mail System <postmaster@localhost>",
        f"To: {user}",
        "Subject: Your mailbox is almost full",
        f"Date: {email.utils.formatdate(now)}",
        f"Message-ID: {email.utils.make_msgid('quota', 'exchmail.invalid')}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        f"Your mailbox holds {usage} octets; the warning threshold is {limits.warning} octets",
        f"and the limit is {limit}. Please delete messages you no longer need.",
        "",
    ]
    return "\r\n".join(lines).encode("ascii", "replace")


def check_room(mailbox: Any, octets: int) -> defer.Deferred[None]:
    """Fail with :class:`OverQuota` if adding ``octets`` to ``mailbox`` would take
    its account past the limit; succeed at once for a store without quotas.

    For additions of several messages at once (IMAP MULTIAPPEND): one check
    of their total before the first is stored, so that all fit or none is
    added.  Each ``append`` checks again, as always.
    """
    if isinstance(mailbox, QuotaMailbox):
        return defer.maybeDeferred(mailbox.account.check, octets)
    return defer.succeed(None)


@implementer(IStore, IUserQuota)
class QuotaStore:
    """An :class:`IStore` whose accounts enforce ``policy``."""

    def __init__(self, store: IStore, policy: QuotaPolicy, clock: Callable[[], float] = time.time) -> None:
        if IAccountListing.providedBy(store):  # optional interfaces pass through
            alsoProvides(self, IAccountListing)
        self.store = store
        self.policy = policy
        self.clock = clock
        self._accounts: dict[str, QuotaAccount] = {}

    def account(self, name: str) -> defer.Deferred[IStoreAccount]:
        d = defer.maybeDeferred(self.store.account, name)
        return d.addCallback(self._wrap)

    def _wrap(self, account: IStoreAccount) -> QuotaAccount:
        wrapper = self._accounts.get(account.name)
        if wrapper is None or wrapper.wrapped is not account:
            wrapper = QuotaAccount(account, self.policy.limits_for(account.name), self.clock)
            self._accounts[account.name] = wrapper
        return wrapper

    def set_user_quota(self, name: str, limit: int) -> None:
        """A directory quota: ``limit`` octets, with the warning at 90 % of it."""
        limits = QuotaLimits(limit, limit * 9 // 10)
        self.policy.directory[name.lower()] = limits
        wrapper = self._accounts.get(name)
        if wrapper is not None:
            wrapper.limits = limits

    def close(self) -> Any:
        return self.store.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@implementer(IStoreAccount, IAccountQuota)
class QuotaAccount:
    """An account wrapper: hands out :class:`QuotaMailbox` wrappers, tracks the warning."""

    def __init__(self, account: IStoreAccount, limits: QuotaLimits, clock: Callable[[], float]) -> None:
        self.wrapped = account
        self.limits = limits
        self.clock = clock
        self.warned = False
        self._boxes: weakref.WeakKeyDictionary[Any, QuotaMailbox] = weakref.WeakKeyDictionary()
        # Optional interfaces pass through.
        for optional in (IMarkedMailboxes, ISpecialUseMailboxes, IEarlyOpen):
            if optional.providedBy(account):
                alsoProvides(self, optional)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)

    def mailbox(self, name: str) -> defer.Deferred[IStoreMailbox]:
        d = defer.maybeDeferred(self.wrapped.mailbox, name)
        return d.addCallback(self._wrap)

    def mailbox_early(self, name: str) -> defer.Deferred[tuple[QuotaMailbox, Any]]:
        """(IEarlyOpen, if the wrapped account provides it)"""
        d = defer.maybeDeferred(IEarlyOpen(self.wrapped).mailbox_early, name)
        return d.addCallback(lambda opened: (self._wrap(opened[0]), opened[1]))

    def _wrap(self, mailbox: Any) -> QuotaMailbox:
        wrapper = self._boxes.get(mailbox)
        if wrapper is None:
            wrapper = self._boxes[mailbox] = QuotaMailbox(mailbox, self)
        return wrapper

    @defer.inlineCallbacks
    def usage(self):
        """A Deferred of the stored octets of every message in every mailbox."""
        total = 0
        mailboxes = yield defer.maybeDeferred(self.wrapped.list_mailboxes)
        for name in mailboxes:
            try:
                box = yield defer.maybeDeferred(self.wrapped.mailbox, name)
            except NoSuchMailbox:
                continue  # deleted meanwhile
            total += mailbox_size(box)
        return total

    @defer.inlineCallbacks
    def quota(self):
        """A Deferred of ``(used, limit)`` octets (IMAP QUOTA, RFC 9208)."""
        used = yield self.usage()
        return used, self.limits.limit

    @defer.inlineCallbacks
    def check(self, extra: int):
        """Fail with :class:`OverQuota` if ``extra`` more octets would exceed the limit."""
        if not self.limits.limit:
            return None
        used = yield self.usage()
        if used + extra > self.limits.limit:
            raise OverQuota(
                f"Mailbox is full: {used} of {self.limits.limit} octets used, the message has {extra}"
            )
        return None

    @defer.inlineCallbacks
    def added(self):
        """After an addition: put a warning into INBOX when the threshold is reached."""
        if not self.limits.warning:
            return None
        used = yield self.usage()
        if used < self.limits.warning:
            self.warned = False
            return None
        if self.warned:
            return None
        self.warned = True
        inbox = yield defer.maybeDeferred(self.wrapped.mailbox, "INBOX")
        text = warning_message(self.wrapped.name, used, self.limits, self.clock())
        yield defer.maybeDeferred(inbox.append, text)
        log.info(
            "quota warning delivered to {user}: {used} octets used (warning at {warning})",
            user=self.wrapped.name,
            used=used,
            warning=self.limits.warning,
        )
        return None


@implementer(IStoreMailbox)
class QuotaMailbox:
    """A mailbox wrapper whose ``append`` and ``copy_to`` consult the account's quota.

    Everything else is the wrapped mailbox's; listeners are told about the
    wrapped object, which is shared by all sessions like any store mailbox.
    """

    def __init__(self, mailbox: IStoreMailbox, account: QuotaAccount) -> None:
        self.wrapped = mailbox
        self.account = account

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)

    @defer.inlineCallbacks
    def append(
        self,
        source: bytes | BinaryIO,
        flags: frozenset[str] = frozenset(),
        internal_date: float | None = None,
    ):
        yield self.account.check(source_size(source))
        uid = yield defer.maybeDeferred(self.wrapped.append, source, flags, internal_date)
        try:
            yield self.account.added()
        except Exception:  # noqa: BLE001 - the message is stored; only the warning failed
            log.failure("cannot deliver the quota warning to {user}", user=self.wrapped.name)
        return uid

    @defer.inlineCallbacks
    def copy_to(self, uids: Iterable[int], target: IStoreMailbox):
        uids = sorted(set(uids))
        if isinstance(target, QuotaMailbox):
            records = (self.wrapped.message(uid) for uid in uids)
            yield target.account.check(sum(r.stored_size for r in records if r is not None))
        pairs = yield defer.maybeDeferred(self.wrapped.copy_to, uids, target)
        return pairs
