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
  deletes are picked up by ``refresh()`` (IMAP NOOP/IDLE, each POP3 login).
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

The store runs its SQL on the reactor thread: a local SQLite file answers
these small indexed queries in microseconds.  A store over a remote
database would run them through ``context.run_blocking`` instead.  It
passes the store compliance kit (``exchmail.testing.store_contract``); see
``tests/examples/test_custom_realm.py`` and ``docs/backends.md``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import itertools
import secrets
import sqlite3
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from zope.interface import implementer

from exchmail.errors import InvalidMailboxName, MailboxExists, NoSuchMailbox
from exchmail.interfaces import IDirectory, IStore, IStoreAccount, IStoreMailbox
from exchmail.store import names
from exchmail.store.index import IndexedMailbox, MessageRecord

SCHEMA = """
-- The application's tables (it owns them; exchmail reads them and adds rows
-- only for APPEND/COPY, and deletes rows only for EXPUNGE/DELETE).
CREATE TABLE IF NOT EXISTS app_users (
    login TEXT PRIMARY KEY COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    email TEXT
);
CREATE TABLE IF NOT EXISTS app_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: the IMAP UID
    owner TEXT NOT NULL,
    folder TEXT NOT NULL DEFAULT 'INBOX',
    raw BLOB NOT NULL,                      -- RFC 5322 message, CRLF or LF
    received REAL NOT NULL                  -- seconds since the epoch
);
CREATE INDEX IF NOT EXISTS app_messages_folder ON app_messages (owner, folder, id);
-- exchmail's state beside them.
CREATE TABLE IF NOT EXISTS exchmail_folders (
    owner TEXT NOT NULL, name TEXT NOT NULL, uid_validity INTEGER NOT NULL,
    PRIMARY KEY (owner, name)
);
CREATE TABLE IF NOT EXISTS exchmail_flags (
    message_id INTEGER PRIMARY KEY, flags TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exchmail_subscriptions (
    owner TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (owner, name)
);
"""

_validity = itertools.count(int(time.time()))


def to_crlf(raw: bytes) -> bytes:
    """``raw`` with bare LF line ends turned into CRLF (the store's wire form)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _flags_text(flags: frozenset[str]) -> str:
    return " ".join(sorted(flags))


class SQLiteMailbox(IndexedMailbox):
    """One folder of one owner; the index is the shared IndexedMailbox one."""

    def __init__(self, db: sqlite3.Connection, owner: str, name: str, uid_validity: int) -> None:
        seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'app_messages'").fetchone()
        super().__init__(name, uid_validity, uid_next=(seq[0] if seq else 0) + 1)
        self.db, self.owner = db, owner
        self._index_added(self._load(), recent=False)

    def _load(self, after: int = 0) -> list[MessageRecord]:
        rows = self.db.execute(
            "SELECT m.id, m.raw, m.received, f.flags FROM app_messages m "
            "LEFT JOIN exchmail_flags f ON f.message_id = m.id "
            "WHERE m.owner = ? AND m.folder = ? AND m.id > ? ORDER BY m.id",
            (self.owner, self.name, after)).fetchall()
        return [self._record(uid, raw, received, frozenset((flags or "").split()))
                for uid, raw, received, flags in rows]

    @staticmethod
    def _record(uid: int, raw: bytes, received: float, flags: frozenset[str]) -> MessageRecord:
        return MessageRecord(uid, flags, received, len(raw), len(to_crlf(raw)), key=uid)

    # -- the backend hooks of IndexedMailbox --------------------------------
    def _open(self, record: MessageRecord) -> BinaryIO:
        row = self.db.execute("SELECT raw FROM app_messages WHERE id = ?",
                              (record.key,)).fetchone()
        return io.BytesIO(to_crlf(row[0]) if row else b"")

    def _deliver(self, source: bytes | BinaryIO, flags: frozenset[str],
                 internal_date: float) -> MessageRecord:
        raw = source if isinstance(source, bytes) else source.read()
        with self.db:  # one transaction: the message and its flags, or nothing
            cursor = self.db.execute(
                "INSERT INTO app_messages (owner, folder, raw, received) VALUES (?, ?, ?, ?)",
                (self.owner, self.name, raw, internal_date))
            uid = int(cursor.lastrowid or 0)
            if flags:
                self.db.execute("INSERT INTO exchmail_flags VALUES (?, ?)",
                                (uid, _flags_text(flags)))
        return self._record(uid, raw, internal_date, flags)

    def _store_flags(self, record: MessageRecord, flags: frozenset[str]) -> MessageRecord:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO exchmail_flags VALUES (?, ?)",
                            (record.uid, _flags_text(flags)))
        return replace(record, flags=flags)

    def _remove(self, record: MessageRecord) -> None:
        with self.db:
            self.db.execute("DELETE FROM app_messages WHERE id = ?", (record.uid,))
            self.db.execute("DELETE FROM exchmail_flags WHERE message_id = ?", (record.uid,))

    # -- rows the application added or deleted ---------------------------------
    def refresh(self) -> defer.Deferred[None]:
        present = {row[0] for row in self.db.execute(
            "SELECT id FROM app_messages WHERE owner = ? AND folder = ?",
            (self.owner, self.name))}
        gone = [uid for uid in self.uids() if uid not in present]
        self._index_removed(gone)
        newest = self.uids()[-1] if len(self.uids()) else 0
        self._index_added(self._load(after=newest))
        return defer.succeed(None)


@implementer(IStoreAccount)
class SQLiteAccount:
    """One owner's folders: ``exchmail_folders`` rows (INBOX always exists)."""

    def __init__(self, db: sqlite3.Connection, name: str) -> None:
        self.db, self.name = db, name
        self._open_boxes: dict[str, SQLiteMailbox] = {}
        # INBOX, and the folders the application put messages into, exist.
        folders = {names.INBOX} | {row[0] for row in db.execute(
            "SELECT DISTINCT folder FROM app_messages WHERE owner = ?", (name,))}
        for folder in folders:
            try:
                folder = names.normalize_mailbox(folder)
            except InvalidMailboxName:
                continue
            for each in [*names.parents(folder), folder]:
                if not self._exists(each):
                    self._insert(each)

    def _exists(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM exchmail_folders WHERE owner = ? AND name = ?",
                               (self.name, name)).fetchone() is not None

    def _insert(self, name: str) -> None:
        with self.db:
            self.db.execute("INSERT INTO exchmail_folders VALUES (?, ?, ?)",
                            (self.name, name, next(_validity) & 0xFFFFFFFF or 1))

    def list_mailboxes(self) -> list[str]:
        return [row[0] for row in self.db.execute(
            "SELECT name FROM exchmail_folders WHERE owner = ?", (self.name,))]

    def mailbox(self, name: str) -> defer.Deferred[IStoreMailbox]:
        name = names.normalize_mailbox(name)
        box = self._open_boxes.get(name)
        if box is None:
            row = self.db.execute(
                "SELECT uid_validity FROM exchmail_folders WHERE owner = ? AND name = ?",
                (self.name, name)).fetchone()
            if row is None:
                return defer.fail(NoSuchMailbox(f"no mailbox {name!r}"))
            box = self._open_boxes[name] = SQLiteMailbox(self.db, self.name, name, row[0])
        return defer.succeed(box)

    def create(self, name: str) -> None:
        name = names.normalize_mailbox(name)
        if self._exists(name):
            raise MailboxExists(f"mailbox {name!r} exists")
        for each in [*names.parents(name), name]:
            if not self._exists(each):
                self._insert(each)

    def delete(self, name: str) -> None:
        name = names.normalize_mailbox(name)
        if name == names.INBOX:
            raise InvalidMailboxName("INBOX cannot be deleted")
        if not self._exists(name):
            raise NoSuchMailbox(f"no mailbox {name!r}")
        with self.db:
            self.db.execute("DELETE FROM exchmail_flags WHERE message_id IN (SELECT id FROM "
                            "app_messages WHERE owner = ? AND folder = ?)", (self.name, name))
            self.db.execute("DELETE FROM app_messages WHERE owner = ? AND folder = ?",
                            (self.name, name))
            self.db.execute("DELETE FROM exchmail_folders WHERE owner = ? AND name = ?",
                            (self.name, name))
        self._open_boxes.pop(name, None)

    def rename(self, old: str, new: str) -> None:
        old, new = names.normalize_mailbox(old), names.normalize_mailbox(new)
        if not self._exists(old):
            raise NoSuchMailbox(f"no mailbox {old!r}")
        if self._exists(new):
            raise MailboxExists(f"mailbox {new!r} exists")
        if names.is_inferior(new, old):
            raise InvalidMailboxName("cannot rename a mailbox below itself")
        if old == names.INBOX:  # RFC 3501 6.3.5: the messages move, INBOX stays
            self.create(new)
            with self.db:
                self.db.execute("UPDATE app_messages SET folder = ? WHERE owner = ? AND "
                                "folder = ?", (new, self.name, names.INBOX))
            inbox = self._open_boxes.get(names.INBOX)
            if inbox is not None:
                inbox._index_removed(list(inbox.uids()))
            return
        for parent in names.parents(new):
            if not self._exists(parent):
                self._insert(parent)
        moving = sorted(n for n in self.list_mailboxes() if n == old or names.is_inferior(n, old))
        with self.db:
            for name in moving:
                target = new + name[len(old):]
                self.db.execute("UPDATE exchmail_folders SET name = ? WHERE owner = ? AND "
                                "name = ?", (target, self.name, name))
                self.db.execute("UPDATE app_messages SET folder = ? WHERE owner = ? AND "
                                "folder = ?", (target, self.name, name))
        for name in moving:  # open mailboxes keep working under their new names
            box = self._open_boxes.pop(name, None)
            if box is not None:
                box.name = new + name[len(old):]
                self._open_boxes[box.name] = box

    def subscriptions(self) -> set[str]:
        return {row[0] for row in self.db.execute(
            "SELECT name FROM exchmail_subscriptions WHERE owner = ?", (self.name,))}

    def subscribe(self, name: str) -> None:
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO exchmail_subscriptions VALUES (?, ?)",
                            (self.name, names.normalize_mailbox(name)))

    def unsubscribe(self, name: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM exchmail_subscriptions WHERE owner = ? AND name = ?",
                            (self.name, names.normalize_mailbox(name)))


@implementer(IStore)
class SQLiteStore:
    """The application's database as an exchmail store; accounts exist on first use."""

    def __init__(self, path: Path | str) -> None:
        # Used on the reactor thread only; created wherever the service is built.
        self.db = sqlite3.connect(str(path), check_same_thread=False)
        self.db.executescript(SCHEMA)
        self._accounts: dict[str, SQLiteAccount] = {}

    def account(self, name: str) -> defer.Deferred[IStoreAccount]:
        name = names.check_user_name(name)
        if name not in self._accounts:
            self._accounts[name] = SQLiteAccount(self.db, name)
        return defer.succeed(self._accounts[name])

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
            row = db.execute("SELECT login, password_hash FROM app_users WHERE login = ?",
                             (name,)).fetchone()
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
    return base / value


def make_store(context: Any) -> SQLiteStore:
    """``[store] backend = "python:custom_realm:make_store"``."""
    return SQLiteStore(_database(context))


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
            db.execute("INSERT INTO app_users VALUES (?, ?, ?)",
                       ("demo", make_password("demo password"), "demo@example.org"))
            for i, subject in enumerate(["Welcome", "Your order has shipped"], 1):
                db.execute("INSERT INTO app_messages (owner, raw, received) VALUES (?, ?, ?)",
                           ("demo", f"From: app@example.org\nTo: demo@example.org\n"
                                    f"Subject: {subject}\n\nMessage {i} of the app.\n".encode(),
                            time.time()))
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
    print("IMAP on 127.0.0.1:1143, POP3 on 127.0.0.1:1110; user 'demo', "
          "password 'demo password'")
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
