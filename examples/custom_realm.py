"""A custom store and checker: serving an application's SQLite tables over IMAP and POP3.

An existing application keeps its users and their messages in SQLite
(``app_users``, ``app_messages``).  This module lets exchmail serve them,
without copying anything into Maildir:

- :class:`SQLiteStore` (``IStore``) reads the messages where they are.  The
  application's ``INTEGER PRIMARY KEY AUTOINCREMENT`` id is the IMAP UID
  (and the POP3 UIDL): SQLite never reuses it and always hands out a larger
  one, which is exactly the UID rule.  exchmail's own state -- flags,
  UIDVALIDITY per folder, subscriptions -- lives in ``exchmail_*`` tables
  beside the application's, so its tables are only written when a client
  appends, copies or expunges (read-mostly).  Rows the application adds or
  deletes are picked up by ``refresh()`` and, while sessions listen to a
  folder, by polling it once per folder.
- :class:`AppChecker` (``ICredentialsChecker`` + ``IDirectory``) checks
  passwords against the application's own hashes (Django-style
  ``pbkdf2_sha256$iterations$salt$hash``), off the reactor thread.
- :func:`make_store` and :func:`make_checker` are the factories the
  configuration names::

      [store]
      backend = "python:custom_realm:make_store"
      [store.options]
      database = "app.sqlite"
      [auth]
      backend = "python:custom_realm:make_checker"
      [auth.options]
      database = "app.sqlite"

Run it (creates ``examples/custom_realm.sqlite`` with a demo user
``demo`` / ``demo password`` and two messages on first start; IMAP on
127.0.0.1:1143, POP3 on 127.0.0.1:1110)::

    python examples/custom_realm.py
    # or, through twistd and the configuration file:
    PYTHONPATH=examples twistd -n exchmail --config examples/custom_realm.toml

The store follows the rule of :mod:`exchmail.interfaces`: the index of an
open folder lives in memory (:class:`~exchmail.store.index.IndexedMailbox`)
and answers the synchronous methods; every query runs off the reactor
thread, through ``context.run_blocking``, on one connection behind a lock
(:class:`Database`; the schema and the queries are in
``custom_realm_sql.py`` beside this file).  It passes the store compliance kit
(``exchmail.testing.store_contract``), MODSEQ rules included (CONDSTORE
and QRESYNC: the ``exchmail_modseq`` tables); see
``tests/examples/test_custom_realm.py`` and ``docs/backends.md``.

A limit worth knowing: the row id is the UID, so a row the application
inserts into a folder while exchmail appends to the same folder, and that
ends up with a lower id than exchmail's row, is only seen after the folder
is next opened afresh (UIDs only grow while it is open).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

# The schema and its queries: the sibling module (examples/ is on sys.path).
import custom_realm_sql as sql
from custom_realm_sql import SCHEMA, Database
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from zope.interface import implementer

from exchmail.errors import InvalidMailboxName, NoSuchMailbox
from exchmail.interfaces import IDirectory, IStore, IStoreAccount, IStoreMailbox
from exchmail.store import names
from exchmail.store.crlf import to_crlf
from exchmail.store.index import EXPUNGE_MEMORY, FlagChange, IndexedMailbox, NewMessage
from exchmail.store.openboxes import OpenMailboxes
from exchmail.store.runner import RunBlocking, run_sync
from exchmail.store.watch import PollingWatch

# -- the store objects (reactor thread; every query through run_blocking) ---------------


class SQLiteMailbox(IndexedMailbox):
    """One folder of one owner; the index is the shared IndexedMailbox one.

    The row id is the UID, so the database chooses it (``uids_from_storage``).
    MODSEQs (:class:`~exchmail.interfaces.IModSeq`, which the index provides)
    are kept in the ``exchmail_modseq`` tables, so they survive restarts;
    messages the application added while no server ran get a new MODSEQ
    when the folder is loaded.
    """

    uids_from_storage = True

    def __init__(self, store: SQLiteStore, owner: str, name: str, folder: tuple[Any, ...]) -> None:
        uid_validity, uid_next, rows, (highest, floor, expunged, known) = folder
        # What is there is not new to anyone: \Recent starts at uid_next.
        super().__init__(
            name,
            uid_validity,
            uid_next,
            store.run_blocking,
            first_recent=uid_next,
            highest_modseq=highest,
            expunged=expunged,
            expunge_floor=floor,
        )
        self.store, self.owner = store, owner
        self._poll: PollingWatch | None = None
        self._add_rows(rows)  # each row gets a new MODSEQ; the stored ones are put back:
        modseqs, unknown = self._rows.modseqs, []
        for index, uid in enumerate(self._rows.uids):
            if uid in known:
                modseqs[index] = known[uid]
            else:
                unknown.append(uid)
        if unknown:  # new to the index: they keep the new MODSEQ, which is recorded
            self._highest = max(self._highest, max(modseqs, default=1))
            self._persist_modseq("M", self.highest_modseq(), unknown)
        else:  # nothing changed: HIGHESTMODSEQ stays what it was
            self._highest = max(highest, max(modseqs, default=1))

    def _add_rows(self, rows: list[Any]) -> None:
        self._add_messages(
            [NewMessage(flags, received, stored, exact) for _, received, stored, exact, flags in rows],
            [row[0] for row in rows],
        )

    # -- the backend hooks of IndexedMailbox (the *_blocking ones run in a thread) -------
    def _content_handle(self, row: int) -> int:
        return self._rows.uids[row]

    def _read_blocking(self, uid: int) -> bytes:
        return to_crlf(self.store.db.run(sql.q_raw, uid))

    def _deliver(
        self, source: bytes | BinaryIO, flags: frozenset[str], internal_date: float
    ) -> defer.Deferred[NewMessage]:
        def insert() -> NewMessage:
            raw = source if isinstance(source, bytes) else source.read()
            uid = self.store.db.run(sql.q_insert, self.owner, self.name, raw, flags, internal_date)
            return NewMessage(flags, internal_date, *sql.sizes(raw), uid=uid)

        return self.store.run_blocking(insert)

    def _store_flags(self, changes: list[FlagChange]) -> defer.Deferred[Any]:
        rows = [(change.uid, sql.flags_text(change.new)) for change in changes]
        d = self.store.query(sql.q_set_flags, rows)
        return d.addCallback(lambda _: ([(c.uid, c.new, {}) for c in changes], None))

    def _remove_messages(self, uids: list[int]) -> defer.Deferred[Any]:
        return self.store.query(sql.q_delete, uids).addCallback(lambda _: (uids, None))

    def _persist_added(self, uids: list[int]) -> defer.Deferred[Any] | None:
        return self._record_modseqs(list(self.modseqs(uids)), [], 0)

    def _persist_modseq(self, kind: str, modseq: int, uids: list[int]) -> defer.Deferred[Any] | None:
        if kind == "X":
            d = self._record_modseqs([], uids, modseq)
        else:
            d = self._record_modseqs([(uid, modseq) for uid in uids], [], 0)
        return d.addErrback(lambda failure: self.log.failure("cannot record MODSEQs", failure))

    def _record_modseqs(self, changed: list[tuple[int, int]], expunged: list[int], modseq: int) -> Any:
        """One transaction, in order with the others (the database runs them one at a time)."""
        return self.store.query(
            sql.q_modseq, self.uid_validity, self.highest_modseq(), changed, expunged, modseq, EXPUNGE_MEMORY
        )

    # -- rows the application added or deleted ---------------------------------------------
    def refresh(self) -> defer.Deferred[None]:
        return self._track(self._lock.run(self._refresh))

    def _refresh(self) -> defer.Deferred[None]:
        newest = self._rows.uids[-1] if len(self._rows) else 0
        d = self.store.query(sql.q_changes, self.owner, self.name, newest)
        return d.addCallback(self._apply_changes)

    def _apply_changes(self, changes: tuple[set[int], list[Any]]) -> None:
        present, rows = changes
        self._remove_uids([uid for uid in self.uids() if uid not in present])
        newest = self._rows.uids[-1] if len(self._rows) else 0
        fresh = [row for row in rows if row[0] > newest]  # not appended meanwhile
        self._add_rows(fresh)
        if fresh:
            self._persist_added([row[0] for row in fresh])

    # -- watching: poll once per mailbox while sessions listen ------------------------------
    def _listening(self, active: bool) -> None:
        if active and self.store.reactor is not None:
            self._poll = PollingWatch(self.store.reactor, self.store.poll_interval, self.refresh)
            self._poll.start()
        elif not active and self._poll is not None:
            self._poll.stop()
            self._poll = None
        super()._listening(active)


@implementer(IStoreAccount)
class SQLiteAccount:
    """One owner's folders: ``exchmail_folders`` rows (INBOX always exists)."""

    def __init__(self, store: SQLiteStore, name: str) -> None:
        self.store, self.name = store, name
        self._boxes = OpenMailboxes(store.reactor, store.release_after)
        self._lock = defer.DeferredLock()  # folder changes one at a time

    def _query(self, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        return self.store.query(f, self.name, *args)

    def _checked(self, name: str, then: Callable[[str], Any]) -> defer.Deferred[Any]:
        return defer.maybeDeferred(names.normalize_mailbox, name).addCallback(then)

    def list_mailboxes(self) -> defer.Deferred[list[str]]:
        return self._query(sql.q_list)

    def mailbox(self, name: str) -> defer.Deferred[IStoreMailbox]:
        return self._checked(name, lambda name: self._boxes.open(name, lambda: self._load(name)))

    def _load(self, name: str) -> defer.Deferred[SQLiteMailbox]:
        def loaded(folder: Any) -> SQLiteMailbox:
            if folder is None:
                raise NoSuchMailbox(f"no mailbox {name!r}")
            return SQLiteMailbox(self.store, self.name, name, folder)

        return self._query(sql.q_folder, name).addCallback(loaded)

    def create(self, name: str) -> defer.Deferred[None]:
        return self._checked(name, lambda name: self._lock.run(self._query, sql.q_create, name))

    def delete(self, name: str) -> defer.Deferred[None]:
        def drop(name: str) -> defer.Deferred[None]:
            if name == names.INBOX:
                raise InvalidMailboxName("INBOX cannot be deleted")
            self._boxes.pop(name)
            return self._query(sql.q_drop, name)

        return self._checked(name, lambda name: self._lock.run(drop, name))

    def rename(self, old: str, new: str) -> defer.Deferred[None]:
        d = defer.maybeDeferred(lambda: (names.normalize_mailbox(old), names.normalize_mailbox(new)))
        return d.addCallback(lambda pair: self._lock.run(self._rename, *pair))

    def _rename(self, old: str, new: str) -> defer.Deferred[None]:
        inbox = self._boxes.peek(names.INBOX) if old == names.INBOX else None

        def renamed(moves: list[tuple[str, str]]) -> None:
            targets = dict(moves)
            for box in self._boxes.rename(moves):  # open mailboxes keep working
                box.name = targets[box.name]
            if inbox is not None:  # its messages went to the new folder
                inbox.forget(list(inbox.uids()))

        def move() -> defer.Deferred[None]:
            return self._query(sql.q_rename, old, new).addCallback(renamed)

        # The open INBOX changes no flags while its rows move.
        return move() if inbox is None else inbox.lock.run(move)

    def subscriptions(self) -> defer.Deferred[set[str]]:
        return self._query(sql.q_subscriptions)

    def subscribe(self, name: str) -> defer.Deferred[None]:
        return self._checked(name, lambda name: self._query(sql.q_subscribe, name, True))

    def unsubscribe(self, name: str) -> defer.Deferred[None]:
        return self._checked(name, lambda name: self._query(sql.q_subscribe, name, False))


@implementer(IStore)
class SQLiteStore:
    """The application's database as an exchmail store; accounts exist on first use.

    :param run_blocking: runs the queries off the reactor thread (the
        service's ``context.run_blocking``); by default at once, for tests.
    :param reactor: polls folders that sessions listen to for rows the
        application added or deleted, and releases idle folders; ``None``:
        neither (``refresh()`` still picks the rows up).
    """

    def __init__(
        self,
        path: Path | str,
        run_blocking: RunBlocking | None = None,
        reactor: Any = None,
        poll_interval: float = 5.0,
        release_after: float | None = 300.0,
    ) -> None:
        self.db = Database(path)
        self.run_blocking: RunBlocking = run_blocking or run_sync
        self.reactor = reactor
        self.poll_interval = poll_interval
        self.release_after = release_after
        self._accounts: dict[str, SQLiteAccount] = {}

    def query(self, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        """Run ``f(connection, *args)`` in a thread."""
        return self.run_blocking(self.db.run, f, *args)

    def account(self, name: str) -> defer.Deferred[IStoreAccount]:
        def made(_: None, name: str) -> SQLiteAccount:
            return self._accounts.setdefault(name, SQLiteAccount(self, name))

        def open_account(name: str) -> Any:
            if name in self._accounts:
                return self._accounts[name]
            return self.query(sql.q_account, name).addCallback(made, name)

        return defer.maybeDeferred(names.check_user_name, name).addCallback(open_account)

    def close(self) -> None:
        self.db.close()


# -- the application's users and their password hashes -------------------------


def make_password(password: str, iterations: int = 100_000) -> str:
    """A hash in the application's format: ``pbkdf2_sha256$iterations$salt$base64``."""
    salt = secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


def check_password(password: bytes, encoded: str) -> bool:
    try:
        algorithm, iterations, salt, expected = encoded.split("$")
        if algorithm != "pbkdf2_sha256" or not 0 < int(iterations) <= 10_000_000:
            return False
        digest = hashlib.pbkdf2_hmac("sha256", password, salt.encode(), int(iterations))
        return hmac.compare_digest(base64.b64encode(digest).decode(), expected)
    except ValueError:
        return False


_DUMMY = make_password("not a password", iterations=100_000)


@implementer(ICredentialsChecker, IDirectory)
class AppChecker:
    """Checks user name/password credentials against ``app_users``.

    :param run_blocking: runs the (slow) hash check off the reactor thread;
        ``None`` checks synchronously.
    """

    credentialInterfaces = (IUsernamePassword,)

    def __init__(self, path: Path | str, run_blocking: Any = None) -> None:
        self.path = str(path)
        self._run_blocking = run_blocking
        sqlite3.connect(self.path).executescript(SCHEMA).connection.close()

    def _row(self, name: str) -> tuple[str, str] | None:
        db = sqlite3.connect(self.path)  # one per call: this runs in pool threads
        try:
            row = db.execute("SELECT login, password_hash FROM app_users WHERE login = ?", (name,)).fetchone()
        finally:
            db.close()
        return (row[0], row[1]) if row else None

    def _check(self, name: bytes, password: bytes) -> str:
        try:
            text = name.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        row = self._row(text) if text else None
        matched = check_password(password, row[1] if row else _DUMMY)
        if row is None or not matched or not password:
            raise UnauthorizedLogin("invalid user name or password")
        return names.check_user_name(row[0])

    def requestAvatarId(self, credentials: Any) -> defer.Deferred[Any]:
        name, password = credentials.username, credentials.password
        name = name.encode() if isinstance(name, str) else name
        password = password.encode() if isinstance(password, str) else password
        if self._run_blocking is not None:
            return self._run_blocking(self._check, name, password)  # type: ignore[no-any-return]
        return defer.maybeDeferred(self._check, name, password)

    def user_exists(self, name: str) -> bool:
        return self._row(name) is not None

    def canonical_name(self, name: str) -> str | None:
        row = self._row(name)
        return row[0] if row else None


# -- the factories named in the configuration ----------------------------------


def _database(context: Any) -> Path:
    value = context.options.get("database")
    if not isinstance(value, str) or not value:
        from exchmail.errors import ConfigError

        raise ConfigError("store.options.database: required (the application's SQLite file)")
    source = context.config.source
    base = Path(source).resolve().parent if source is not None else Path.cwd()
    path = base / value
    if context.options.get("create_demo") and not path.exists():
        create_demo(path)  # the example configuration works as shipped
    return path


def make_store(context: Any) -> SQLiteStore:
    """``[store] backend = "python:custom_realm:make_store"``."""
    return SQLiteStore(_database(context), run_blocking=context.run_blocking, reactor=context.reactor)


def make_checker(context: Any) -> AppChecker:
    """``[auth] backend = "python:custom_realm:make_checker"``."""
    return AppChecker(_database(context), run_blocking=context.run_blocking)


# -- running the example -----------------------------------------------------------


def create_demo(path: Path) -> None:
    """A demo database: user ``demo`` (password ``demo password``), two messages."""
    db = sqlite3.connect(str(path))
    db.executescript(SCHEMA)
    with db:
        if db.execute("SELECT 1 FROM app_users").fetchone() is None:
            db.execute(
                "INSERT INTO app_users VALUES (?, ?, ?)",
                ("demo", make_password("demo password"), "demo@example.org"),
            )
            for i, subject in enumerate(["Welcome", "Your order has shipped"], 1):
                db.execute(
                    "INSERT INTO app_messages (owner, raw, received) VALUES (?, ?, ?)",
                    (
                        "demo",
                        f"From: app@example.org\nTo: demo@example.org\n"
                        f"Subject: {subject}\n\nMessage {i} of the app.\n".encode(),
                        time.time(),
                    ),
                )
    db.close()


def main() -> None:
    from twisted.internet import reactor
    from twisted.python import log

    from exchmail.service import make_service
    from exchmail.service.config import load_config

    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))  # so that "python:custom_realm:..." imports this file
    create_demo(here / "custom_realm.sqlite")
    config = load_config(here / "custom_realm.toml")
    log.startLogging(sys.stdout)
    service = make_service(config, reactor=reactor)
    service.privilegedStartService()
    service.startService()
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    print(
        "IMAP on 127.0.0.1:1143, POP3 on 127.0.0.1:1110 (STARTTLS/STLS with "
        "custom-realm-data/tls/cert.pem); user 'demo', password 'demo password'"
    )
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
