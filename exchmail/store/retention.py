"""Retention policy: remove messages older than a per-folder age (MS-STANXPOP3 E0005).

Like Exchange's, the policy belongs to the store, not to a protocol: it
removes messages whose internal date (arrival time) is older than the age
configured for their folder, in every account, and both IMAP and POP3
sessions see the removals as ordinary expunges.  :class:`RetentionService`
runs it periodically on the injected reactor and logs what it removed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.application.internet import TimerService
from twisted.internet import defer
from twisted.logger import Logger

from exchmail.errors import NoSuchMailbox
from exchmail.interfaces import IStore
from exchmail.store import names

log = Logger(namespace="exchmail.store.retention")

DELETED = "\\Deleted"


@dataclass(frozen=True)
class RetentionPolicy:
    """``folders`` maps a mailbox name to the largest age kept, in seconds."""

    folders: Mapping[str, float] = field(default_factory=dict)
    interval: float = 3600.0


@defer.inlineCallbacks
def apply_retention(store: IStore, users: Iterable[str], policy: RetentionPolicy, now: float):
    """Remove what ``policy`` says is too old; a Deferred of ``{(user, folder): [uids]}``.

    A failure in one folder is logged and does not stop the others.
    """
    removed: dict[tuple[str, str], list[int]] = {}
    for user in users:
        try:
            account = yield defer.maybeDeferred(store.account, user)
        except Exception:  # noqa: BLE001 - one bad account must not stop the run
            log.failure("retention: cannot open the account of {user}", user=user)
            continue
        try:
            listed = yield defer.maybeDeferred(account.list_mailboxes)
        except Exception:  # noqa: BLE001
            log.failure("retention: cannot list the mailboxes of {user}", user=user)
            continue
        existing = {names.normalize_mailbox(n).lower(): n for n in listed}
        for folder, max_age in policy.folders.items():
            name = existing.get(names.normalize_mailbox(folder).lower())
            if name is None:
                continue
            try:
                gone = yield _expire_folder(account, name, now - max_age)
            except NoSuchMailbox:
                continue
            except Exception:  # noqa: BLE001
                log.failure("retention: failed in {user}/{folder}", user=user, folder=name)
                continue
            if gone:
                removed[(user, name)] = gone
                log.info(
                    "retention: removed {count} message(s) older than {age} s from "
                    "{user}/{folder} (UIDs {uids})",
                    count=len(gone),
                    age=max_age,
                    user=user,
                    folder=name,
                    uids=gone,
                )
    return removed


@defer.inlineCallbacks
def _expire_folder(account: Any, name: str, cutoff: float):
    mailbox = yield defer.maybeDeferred(account.mailbox, name)
    yield defer.maybeDeferred(mailbox.refresh)
    old = _older_than(mailbox, cutoff)
    if not old:
        return []
    yield defer.maybeDeferred(mailbox.set_flags, old, frozenset({DELETED}), "add", "retention")
    gone = yield defer.maybeDeferred(mailbox.expunge, old)
    return list(gone)


def _older_than(mailbox: Any, cutoff: float) -> list[int]:
    """The UIDs of messages that arrived before ``cutoff``."""
    fast = getattr(mailbox, "uids_older_than", None)
    if fast is not None:
        return list(fast(cutoff))  # from the index columns, no record built
    return [
        uid
        for uid in list(mailbox.uids())
        if (record := mailbox.message(uid)) is not None and record.internal_date < cutoff
    ]


class RetentionService(TimerService):
    """Runs :func:`apply_retention` every ``policy.interval`` seconds (first run at start)."""

    name = "retention"

    def __init__(
        self,
        store: IStore,
        users: Callable[[], Any],
        policy: RetentionPolicy,
        reactor: Any,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(policy.interval, self.run_once)
        self.clock = reactor  # TimerService schedules its LoopingCall on this
        self.store = store
        self.users = users
        self.policy = policy
        self.now = clock or reactor.seconds
        self.running_run: defer.Deferred[Any] | None = None

    def run_once(self) -> defer.Deferred[Any]:
        """One pass over every user; never fails (errors are logged)."""
        d = defer.maybeDeferred(self.users)
        d.addCallback(lambda users: apply_retention(self.store, users, self.policy, self.now()))
        d.addErrback(lambda f: log.failure("retention run failed", f))
        self.running_run = d
        return d
