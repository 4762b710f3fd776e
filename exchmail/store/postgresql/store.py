"""PostgreSQLStore: every frontend's mail in one shared PostgreSQL database.

Any number of exchmail processes (frontends) may serve the same database
at once, behind any TCP load balancer, with no session affinity: the
database holds all state (UIDs, flags, bodies, subscriptions, \\Recent
claims), each frontend only an index of the mailboxes its sessions use,
kept current by LISTEN/NOTIFY (see :mod:`.mailbox` and :mod:`.notify`).

One mailbox object per mailbox per frontend: objects are kept by mailbox
id in a weak dictionary, so that every session of this frontend shares
one while any holds it; the store itself holds each for ``keep_open``
seconds after its last open, then lets it go (it is loaded afresh on the
next open).  Every open reads the mailbox's row from the database,
so a mailbox renamed, deleted or re-created by another frontend is seen.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from exchmail.interfaces import (
    IAccountListing,
    IMarkedMailboxes,
    ISpecialUseMailboxes,
    IStore,
    IStoreAccount,
    IStoreMailbox,
)
from exchmail.store import modseq, names
from exchmail.store.postgresql import folders, schema
from exchmail.store.postgresql.db import Database
from exchmail.store.postgresql.mailbox import PostgreSQLMailbox
from exchmail.store.postgresql.notify import Notifier
from exchmail.store.postgresql.settings import PostgreSQLSettings
from exchmail.store.runner import RunBlocking, run_sync

log = Logger(namespace="exchmail.store.postgresql")


@implementer(IStoreAccount, IMarkedMailboxes, ISpecialUseMailboxes)
class PostgreSQLAccount:
    """One user's mailboxes (rows of ``mailboxes`` with the account's id)."""

    def __init__(self, store: PostgreSQLStore, account_id: int, name: str) -> None:
        self.name = name
        self.account_id = account_id
        self._store = store
        #: The mailboxes this frontend has open, by the name they were opened under.
        self._open_names: weakref.WeakValueDictionary[str, PostgreSQLMailbox] = weakref.WeakValueDictionary()

    def _do(self, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        return self._store.transact(f, self.account_id, *args)

    def list_mailboxes(self) -> defer.Deferred[list[str]]:
        return self._do(folders.list_names)

    def mailbox(self, name: str) -> defer.Deferred[IStoreMailbox]:
        try:
            name = names.normalize_mailbox(name)
        except Exception:
            return defer.fail()
        box = self._open_names.get(name)
        if box is not None and box.name == name:
            # Open here already: one transaction checks the name still means
            # this mailbox and brings the index up to date.
            d = box.lock.run(box.reopen, self.account_id, name)
            return d.addCallback(
                lambda current: self._store.keep(current) if current is not None else self._load(name)
            )
        return self._load(name)

    def _load(self, name: str) -> defer.Deferred[Any]:
        return self._do(self._open_blocking, name).addCallback(self._opened, name)

    def _open_blocking(self, conn: Any, account: int, name: str) -> Any:
        head = folders.head(conn, account, name)
        box = self._store.open_box(head[0])
        if box is not None and box.uid_validity == head[1]:
            return head, None, None  # open already: a sync brings it up to date
        # One more expunge than the index keeps: it tells whether older ones exist.
        return folders.load(conn, account, name, modseq.EXPUNGE_MEMORY + 1)

    def _opened(self, loaded: tuple[folders.Head, list[Any] | None, Any], name: str) -> Any:
        (box_id, validity, uid_next, highest, first_recent), rows, expunged = loaded
        box = self._store.open_box(box_id)
        if box is not None and box.uid_validity == validity:
            box.name = name
            self._open_names[name] = box
            kept = box
            refreshed: defer.Deferred[Any] = box.refresh()
            return refreshed.addCallback(lambda _: self._store.keep(kept))
        if rows is None:  # it was dropped meanwhile: load it again
            return self.mailbox(name)
        box = PostgreSQLMailbox(
            self._store, box_id, name, validity, uid_next, highest, first_recent, rows, expunged
        )
        self._store.boxes[box_id] = box
        self._open_names[name] = box
        return self._store.keep(box)

    def create(self, name: str) -> defer.Deferred[None]:
        return (
            self._named(name).addCallback(lambda n: self._do(folders.create, n)).addCallback(lambda _: None)
        )

    def delete(self, name: str) -> defer.Deferred[None]:
        d = self._named(name).addCallback(lambda n: self._do(folders.delete, n, self._store.frontend_id))
        return d.addCallback(self._store.refresh_ids).addCallback(lambda _: None)

    def rename(self, old: str, new: str) -> defer.Deferred[None]:
        d = defer.maybeDeferred(lambda: (names.normalize_mailbox(old), names.normalize_mailbox(new)))
        d.addCallback(
            lambda both: self._do(folders.rename, *both, self._store.frontend_id).addCallback(
                self._renamed, both
            )
        )
        return d.addCallback(lambda _: None)

    def _renamed(self, moved: list[tuple[int, str]], both: tuple[str, str]) -> Any:
        for box_id, name in moved:
            box = self._store.open_box(box_id)
            if box is not None:
                box.name = name
                self._open_names[name] = box
        if both[0] == names.INBOX:  # its messages went: tell its sessions
            inbox = [box for box in self._store.boxes.values() if box.name == names.INBOX]
            return defer.gatherResults([box.refresh() for box in inbox]).addCallback(lambda _: None)
        return None

    def _named(self, name: str) -> defer.Deferred[str]:
        return defer.maybeDeferred(names.normalize_mailbox, name)

    def subscriptions(self) -> defer.Deferred[set[str]]:
        return self._do(folders.subscriptions)

    def subscribe(self, name: str) -> defer.Deferred[None]:
        return self._named(name).addCallback(lambda n: self._do(folders.subscribe, n, True))

    def unsubscribe(self, name: str) -> defer.Deferred[None]:
        return self._named(name).addCallback(lambda n: self._do(folders.subscribe, n, False))

    def marked(self, names_: Iterable[str]) -> defer.Deferred[set[str]]:
        """Mailboxes open here answer from the index (claims not yet written
        count); the others from the database."""
        wanted = list(names_)
        local = {box.name: box for box in self._store.boxes.values() if box.name in wanted}
        d = self._do(folders.marked, [name for name in wanted if name not in local])
        return d.addCallback(lambda found: found | {n for n, box in local.items() if box.recent_count()})

    def special_uses(self) -> defer.Deferred[dict[str, frozenset[str]]]:
        return self._do(folders.special_uses)

    def set_special_use(self, name: str, uses: frozenset[str]) -> defer.Deferred[None]:
        return self._named(name).addCallback(lambda n: self._do(folders.set_special_use, n, frozenset(uses)))


@implementer(IStore, IAccountListing)
class PostgreSQLStore:
    """The mail of every account, in one PostgreSQL database.

    :param db: a :class:`Database` (or build one from ``settings``).
    :param run_blocking: where queries run (the service passes its store
        thread pool; the default runs them at once, for scripts and tests).
    :param reactor: for notifications and polling (``None``: neither).
    :param listen: whether to LISTEN for other frontends' changes (needs a
        running reactor); otherwise only polling notices them.
    """

    def __init__(
        self,
        db: Database,
        run_blocking: RunBlocking | None = None,
        reactor: Any = None,
        poll_interval: float = 5.0,
        listen: bool = True,
        keep_open: float = 300.0,
    ) -> None:
        self.db = db
        self.run_blocking: RunBlocking = run_blocking or run_sync
        self.reactor = reactor
        self.poll_interval = poll_interval
        self.keep_open = keep_open
        self._kept: dict[int, tuple[PostgreSQLMailbox, Any]] = {}
        #: Names this process in NOTIFY payloads, so it skips its own changes.
        self.frontend_id = uuid.uuid4().hex[:12]
        self.boxes: weakref.WeakValueDictionary[int, PostgreSQLMailbox] = weakref.WeakValueDictionary()
        self._watched: dict[int, PostgreSQLMailbox] = {}
        self._accounts: dict[str, PostgreSQLAccount] = {}
        self._checked = False
        self.notifier: Notifier | None = None
        if listen and reactor is not None:
            self.notifier = Notifier(db.dsn, self.frontend_id, reactor, self.refresh_ids, self._resync)
            self.notifier.start()

    @classmethod
    def from_settings(
        cls, settings: PostgreSQLSettings, reactor: Any = None, run_blocking: RunBlocking | None = None
    ) -> PostgreSQLStore:
        """A store over a new connection pool, as ``[store]`` describes it."""
        db = Database(settings.dsn, settings.pool_size, int(settings.statement_timeout * 1000))
        store = cls(db, run_blocking, reactor, settings.poll_interval)
        if reactor is not None:
            # Tell the operator now, not at the first login, if the database
            # cannot be reached or lacks the schema (the server runs anyway).
            checked = store.transact(lambda conn: None)
            checked.addErrback(
                lambda f: log.error("the mailbox database is not ready: {why}", why=f.getErrorMessage())
            )
        return store

    # -- running transactions ------------------------------------------------------------
    def transact(self, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        """Run ``f(conn, *args)`` in one transaction through ``run_blocking``."""
        return self.run_blocking(self._in_transaction, f, *args)

    def _in_transaction(self, f: Callable[..., Any], *args: Any) -> Any:
        with self.db.transaction() as conn:
            if not self._checked:
                schema.check(conn)
                self._checked = True
            return f(conn, *args)

    # -- accounts ------------------------------------------------------------------------
    def account(self, name: str) -> defer.Deferred[IStoreAccount]:
        try:
            name = names.check_user_name(name)
        except Exception:
            return defer.fail()
        if name in self._accounts:
            return defer.succeed(self._accounts[name])
        return self.transact(folders.account_id, name).addCallback(self._account, name)

    def _account(self, account_id: int, name: str) -> PostgreSQLAccount:
        return self._accounts.setdefault(name, PostgreSQLAccount(self, account_id, name))

    def account_names(self) -> defer.Deferred[list[str]]:
        return self.transact(folders.account_names)

    # -- open mailboxes and notifications ------------------------------------------------
    def keep(self, box: PostgreSQLMailbox) -> PostgreSQLMailbox:
        """Hold ``box`` for ``keep_open`` seconds after its last open (with a
        reactor), so that opening it again soon (STATUS, SELECT) costs one
        small transaction instead of reading its whole index."""
        if self.reactor is None or not self.keep_open:
            return box
        kept = self._kept.pop(box.mailbox_id, None)
        if kept is not None and kept[1].active():
            kept[1].cancel()
        timer = self.reactor.callLater(self.keep_open, self._kept.pop, box.mailbox_id, None)
        self._kept[box.mailbox_id] = (box, timer)
        return box

    def open_box(self, box_id: int) -> PostgreSQLMailbox | None:
        """The mailbox object of ``box_id`` if this frontend has one."""
        return self.boxes.get(box_id)

    def watch(self, box: PostgreSQLMailbox) -> None:
        """``box`` has listeners: sync it when another frontend changes it."""
        self._watched[box.mailbox_id] = box

    def unwatch(self, box: PostgreSQLMailbox) -> None:
        if self._watched.get(box.mailbox_id) is box:
            del self._watched[box.mailbox_id]

    def refresh_ids(self, ids: Iterable[int] | int) -> None:
        """Mailboxes ``ids`` changed elsewhere: sync those open here."""
        for box_id in [ids] if isinstance(ids, int) else ids:
            box = self.boxes.get(box_id)
            if box is not None:
                box.refresh().addErrback(self._sync_failed, box)

    def _resync(self) -> None:
        self.refresh_ids(list(self._watched))

    def _sync_failed(self, failure: Any, box: PostgreSQLMailbox) -> None:
        log.failure("syncing mailbox {name} failed", failure, name=box.name)

    def close(self) -> None:
        """Stop listening and close the connections."""
        if self.notifier is not None:
            self.notifier.stop()
        for _, timer in self._kept.values():
            if timer.active():
                timer.cancel()
        self._kept.clear()
        self.db.close()
