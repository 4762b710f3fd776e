"""Fault rules for client tests: the failures real servers produce, on demand.

A :class:`Faults` object holds :class:`FaultRule` objects.  The session core
asks it before each command (:meth:`Faults.command_starting`, the
:class:`~exchmail.session.faults.SessionFaults` hook) and the
:class:`~exchmail.testing.faultstore.FaultStore` asks it before each store
operation (:meth:`Faults.store_failure`).

Every rule is scoped by ``user`` (None: any; a command sent before login has
no user, so only rules without one match it), ``protocol`` (``"imap"``,
``"pop3"`` or None), ``command`` (a command name: ``"FETCH"`` matches
``FETCH`` and ``UID FETCH``, ``"UID FETCH"`` only the latter; None: any
command) and a count: the first ``skip`` matching commands pass, then the
rule fires on the next ``times`` ones (0: on every one).  ``fired`` says how
often it did.  Actions:

``reply``
    answer the command ``status`` (``NO``, ``BAD``, ``BYE``) ``text``
    instead of running it; BYE closes the connection.
``drop``
    close the connection ``when`` = ``"before"`` the command runs (no
    answer), ``"during"`` its response (after ``octets`` octets of it: in
    the middle of a FETCH literal or a RETR) or ``"after"`` its answer.
``delay``
    wait ``seconds`` before running the command.
``expunge``
    before the command runs, remove ``uids`` (all messages if empty) from
    ``folder`` of the session's user, as another session would
    (``\\Deleted`` then EXPUNGE).
``uidvalidity``
    before the command runs, give ``folder`` a new UIDVALIDITY (seen from
    the next SELECT, EXAMINE or STATUS on).
``store_error``
    make the store fail with a temporary error (IMAP ``NO [UNAVAILABLE]``,
    POP3 ``-ERR [SYS/TEMP]``): with ``command``, every store operation of
    the user while that command runs; without, the store ``operation``
    itself (``"append"``, ``"read_message"``, ``"mailbox"``... or None for
    any) counts and fails.

Rules are thread-safe to add from a test while the server runs.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from twisted.internet import defer

from exchmail.session.faults import DROP_AFTER, DROP_BEFORE, DROP_DURING, FaultAction
from exchmail.session.observe import SessionInfo

ACTIONS = ("reply", "drop", "delay", "expunge", "uidvalidity", "store_error")
STATUSES = ("NO", "BAD", "BYE")
DROPS = (DROP_BEFORE, DROP_DURING, DROP_AFTER)
PROTOCOLS = ("imap", "pop3")
#: Store operations a ``store_error`` rule can name (``IStoreMailbox``,
#: ``IStoreAccount`` and ``IStore`` methods).
OPERATIONS = (
    "account",
    "list_mailboxes",
    "mailbox",
    "create",
    "delete",
    "rename",
    "subscriptions",
    "subscribe",
    "unsubscribe",
    "read_message",
    "read_messages",
    "open_message",
    "append",
    "set_flags",
    "expunge",
    "copy_to",
    "replace_message",
    "refresh",
)
DEFAULT_TEXTS = {
    "NO": "[UNAVAILABLE] Injected failure; try again later",
    "BAD": "Injected protocol error",
    "BYE": "Server shutting down",
    "store_error": "The mailbox store is temporarily unavailable",
}
_ids = itertools.count(1)


@dataclass(eq=False)
class FaultRule:
    """One fault: what, to which commands, how often (see the module docstring).

    :raises ValueError: for an unknown action, status, drop point, protocol
        or operation, or a negative count.
    """

    action: str
    command: str | None = None
    user: str | None = None
    protocol: str | None = None
    skip: int = 0
    times: int = 1
    status: str = "NO"
    text: str = ""
    when: str = DROP_AFTER
    octets: int = 0
    seconds: float = 0.0
    folder: str = "INBOX"
    uids: tuple[int, ...] = ()
    operation: str | None = None
    #: How many matching commands (or operations) the rule has seen, and fired on.
    seen: int = field(default=0, init=False)
    fired: int = field(default=0, init=False)
    id: int = field(default_factory=lambda: next(_ids), init=False)

    def __post_init__(self) -> None:
        _check(self.action in ACTIONS, f"action must be one of {', '.join(ACTIONS)}")
        self.status = self.status.upper()
        _check(self.status in STATUSES, f"status must be one of {', '.join(STATUSES)}")
        _check(self.when in DROPS, f"when must be one of {', '.join(DROPS)}")
        _check(self.protocol in (None, *PROTOCOLS), "protocol must be 'imap' or 'pop3'")
        _check(self.operation in (None, *OPERATIONS), f"operation must be one of {', '.join(OPERATIONS)}")
        _check(
            self.skip >= 0 and self.times >= 0 and self.octets >= 0 and self.seconds >= 0,
            "skip, times, octets and seconds must not be negative",
        )
        self.command = self.command.upper() if self.command else None
        self.uids = tuple(int(uid) for uid in self.uids)
        if not self.text:
            key = "store_error" if self.action == "store_error" else self.status
            self.text = DEFAULT_TEXTS[key]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        """A rule from a JSON object (the control socket's ``fault`` request)."""
        known = {f.name for f in fields(cls) if f.init}
        unknown = sorted(set(data) - known)
        _check(not unknown, f"unknown rule field(s): {', '.join(unknown)}")
        _check("action" in data, "a rule needs an action")
        values = dict(data)
        if "uids" in values:
            values["uids"] = tuple(values["uids"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The rule as a JSON object, with its ``id``, ``seen`` and ``fired`` counts."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["uids"] = list(self.uids)
        return data

    @property
    def per_command(self) -> bool:
        """Whether the rule is matched against commands (not store operations)."""
        return self.action != "store_error" or self.command is not None

    def matches(self, session: SessionInfo, name: str) -> bool:
        """Whether a command ``name`` of ``session`` is in the rule's scope."""
        if self.protocol is not None and session.protocol != self.protocol:
            return False
        if self.user is not None and session.user.lower() != self.user.lower():
            return False
        if self.action in ("expunge", "uidvalidity", "store_error") and not (self.user or session.user):
            return False  # acts on a user's mail: not before login
        return self.command is None or name in (self.command, "UID " + self.command)

    def take(self) -> bool:
        """Count one matching event; True if the rule fires on it."""
        self.seen += 1
        if self.seen <= self.skip or (self.times and self.fired >= self.times):
            return False
        self.fired += 1
        return True


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


class Faults:
    """The rules of one server, and the store changes they make.

    :param store: the store *without* the fault wrapper (``expunge`` and
        ``uidvalidity`` change it as another session would, unhindered by
        ``store_error`` rules).
    """

    def __init__(self, store: Any = None) -> None:
        self.store = store
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._validity: dict[tuple[str, str], int] = {}
        self._armed: dict[str, FaultRule] = {}  # user (lower case) -> store_error rule

    # -- rules ------------------------------------------------------------------------------
    @property
    def rules(self) -> list[FaultRule]:
        """The rules, oldest first (a copy)."""
        with self._lock:
            return list(self._rules)

    def add(self, rule: FaultRule) -> FaultRule:
        """Add ``rule`` (it applies from the next command on) and return it."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule: FaultRule | int) -> None:
        """Remove a rule (or the rule with that ``id``)."""
        with self._lock:
            self._rules = [r for r in self._rules if r is not rule and r.id != rule]

    def clear(self) -> None:
        """Remove every rule (changed UIDVALIDITY values stay)."""
        with self._lock:
            self._rules.clear()
            self._armed.clear()

    def reply(self, command: str | None, status: str = "NO", text: str = "", **scope: Any) -> FaultRule:
        """Answer ``command`` with ``status`` and ``text`` instead of running it."""
        return self.add(FaultRule("reply", command, status=status, text=text, **scope))

    def bye(self, command: str | None, text: str = "", **scope: Any) -> FaultRule:
        """Answer ``command`` with BYE (IMAP ``* BYE text``, POP3 ``-ERR text``) and close."""
        return self.add(FaultRule("reply", command, status="BYE", text=text, **scope))

    def drop(
        self, command: str | None = None, when: str = DROP_AFTER, octets: int = 0, **scope: Any
    ) -> FaultRule:
        """Close the connection before, during (after ``octets`` octets of the
        response) or after ``command``."""
        return self.add(FaultRule("drop", command, when=when, octets=octets, **scope))

    def delay(self, command: str | None, seconds: float, **scope: Any) -> FaultRule:
        """Wait ``seconds`` before running ``command``."""
        return self.add(FaultRule("delay", command, seconds=seconds, **scope))

    def expunge(
        self, command: str | None, folder: str = "INBOX", uids: tuple[int, ...] = (), **scope: Any
    ) -> FaultRule:
        """Before ``command`` runs, expunge ``uids`` (all if empty) from ``folder``."""
        return self.add(FaultRule("expunge", command, folder=folder, uids=tuple(uids), **scope))

    def change_uidvalidity(self, command: str | None, folder: str = "INBOX", **scope: Any) -> FaultRule:
        """Before ``command`` runs, give ``folder`` a new UIDVALIDITY."""
        return self.add(FaultRule("uidvalidity", command, folder=folder, **scope))

    def store_error(
        self, operation: str | None = None, command: str | None = None, text: str = "", **scope: Any
    ) -> FaultRule:
        """Make the store fail with a temporary error: during ``command``, or at
        ``operation`` (any operation if both are None)."""
        return self.add(FaultRule("store_error", command, operation=operation, text=text, **scope))

    # -- the session hook ----------------------------------------------------------------------
    def command_starting(self, session: SessionInfo, name: str) -> FaultAction | None:
        """The :class:`~exchmail.session.faults.SessionFaults` hook."""
        with self._lock:
            firing = [
                rule
                for rule in self._rules
                if rule.per_command and rule.matches(session, name) and rule.take()
            ]
        if not firing:
            return None
        return self._action(session, firing)

    def _action(self, session: SessionInfo, firing: list[FaultRule]) -> FaultAction:
        delay = 0.0
        reply: tuple[str, str] | None = None
        drop: FaultRule | None = None
        before: list[Callable[[], Any]] = []
        after: list[Callable[[], Any]] = []
        for rule in firing:
            user = rule.user or session.user
            if rule.action == "delay":
                delay += rule.seconds
            elif rule.action == "reply" and reply is None:
                reply = (rule.status, rule.text)
            elif rule.action == "drop" and drop is None:
                drop = rule
            elif rule.action == "expunge":
                before.append(_bind(self.expunge_now, user, rule.folder, rule.uids))
            elif rule.action == "uidvalidity":
                before.append(_bind(self.change_uidvalidity_now, user, rule.folder))
            elif rule.action == "store_error":
                before.append(_bind(self._arm, user, rule))
                after.append(_bind(self._disarm, user, rule))
        return FaultAction(
            delay=delay,
            reply=reply,
            drop=drop.when if drop else None,
            cut_after=drop.octets if drop else 0,
            before=_chain(before) if before else None,
            after=_chain(after) if after else None,
        )

    # -- the store hooks -------------------------------------------------------------------------
    def store_failure(self, user: str, operation: str) -> str | None:
        """The error text if ``operation`` on ``user``'s mail must fail now, else None."""
        key = user.lower()
        with self._lock:
            armed = self._armed.get(key)
            if armed is not None and armed.operation in (None, operation):
                return armed.text
            for rule in self._rules:
                if (
                    rule.action == "store_error"
                    and rule.command is None
                    and (rule.user is None or rule.user.lower() == key)
                    and rule.operation in (None, operation)
                    and rule.take()
                ):
                    return rule.text
        return None

    def _arm(self, user: str, rule: FaultRule) -> None:
        with self._lock:
            self._armed[user.lower()] = rule

    def _disarm(self, user: str, rule: FaultRule) -> None:
        with self._lock:
            if self._armed.get(user.lower()) is rule:
                del self._armed[user.lower()]

    def uid_validity(self, user: str, folder: str, stored: int) -> int:
        """The UIDVALIDITY clients see for ``folder`` (``stored`` unless changed)."""
        return self._validity.get((user.lower(), folder), stored)

    # -- store changes "by another session" (on the reactor thread) ------------------------------
    def change_uidvalidity_now(self, user: str, folder: str) -> defer.Deferred[int]:
        """Give ``folder`` of ``user`` a new UIDVALIDITY; the Deferred has it."""
        d = self._open(user, folder)

        def change(box: Any) -> int:
            key = (user.lower(), box.name)
            new = (max(self._validity.get(key, 0), box.uid_validity) + 1) & 0xFFFFFFFF or 1
            self._validity[key] = new
            return new

        return d.addCallback(change)

    def expunge_now(self, user: str, folder: str, uids: tuple[int, ...] = ()) -> defer.Deferred[list[int]]:
        """Expunge ``uids`` (all if empty) from ``folder`` of ``user``; the Deferred
        has the UIDs removed.  Sessions with the folder open are told as of a
        change made by another session."""
        d = self._open(user, folder)

        @defer.inlineCallbacks
        def remove(box: Any) -> Any:
            chosen = list(uids) if uids else list(box.uids())
            if not chosen:
                return []
            yield defer.maybeDeferred(box.set_flags, chosen, frozenset({"\\Deleted"}), "add", None)
            removed = yield defer.maybeDeferred(box.expunge, chosen)
            return removed

        return d.addCallback(remove)

    def _open(self, user: str, folder: str) -> defer.Deferred[Any]:
        assert self.store is not None, "Faults.store is not set"
        d = defer.maybeDeferred(self.store.account, user)
        return d.addCallback(lambda account: account.mailbox(folder))


def _bind(f: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    return lambda: f(*args)


def _call(_: object, step: Callable[[], Any]) -> Any:
    return step()


def _chain(steps: list[Callable[[], Any]]) -> Callable[[], defer.Deferred[None]]:
    """One callable that runs ``steps`` in order, each after the previous one's Deferred."""

    def run() -> defer.Deferred[None]:
        d: defer.Deferred[Any] = defer.succeed(None)
        for step in steps:
            d.addCallback(_call, step)
        return d.addCallback(lambda _: None)

    return run
