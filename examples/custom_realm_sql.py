"""The SQL side of examples/custom_realm.py: the schema and its queries.

Every ``q_*`` function takes the locked SQLite connection first and runs in
one of the store's pool threads (through :class:`Database`); nothing here
touches the reactor.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exchmail.errors import InvalidMailboxName, MailboxExists, NoSuchMailbox, NoSuchMessage
from exchmail.store import names
from exchmail.store.crlf import wire_size

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
-- CONDSTORE/QRESYNC (RFC 7162): each message's MODSEQ, each folder's
-- HIGHESTMODSEQ and its remembered expunges, keyed by the folder's
-- UIDVALIDITY (which RENAME keeps).
CREATE TABLE IF NOT EXISTS exchmail_modseq (
    message_id INTEGER PRIMARY KEY, modseq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS exchmail_highest_modseq (
    uid_validity INTEGER PRIMARY KEY, highest INTEGER NOT NULL, floor INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS exchmail_expunged (
    uid_validity INTEGER NOT NULL, modseq INTEGER NOT NULL, uid INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS exchmail_expunged_folder ON exchmail_expunged (uid_validity, modseq);
"""

validity = itertools.count(int(time.time()))


def flags_text(flags: frozenset[str]) -> str:
    return " ".join(sorted(flags))


def sizes(raw: bytes) -> tuple[int, int]:
    """The stored size of ``raw`` and its size in wire form (CRLF)."""
    return len(raw), wire_size(raw)


class Database:
    """One SQLite connection shared by the store's threads, used one at a time.

    Every query runs in ``run_blocking``'s threads as ``db.run(f, *args)``,
    which calls ``f(connection, *args)`` under the lock; a store over a
    server database would use a connection pool instead.
    """

    def __init__(self, path: Path | str) -> None:
        self._connection = sqlite3.connect(str(path), check_same_thread=False)
        self._connection.executescript(SCHEMA)
        self._lock = threading.Lock()

    def run(self, f: Callable[..., Any], *args: Any) -> Any:
        with self._lock:
            return f(self._connection, *args)

    def close(self) -> None:
        with self._lock:
            self._connection.close()


# -- the queries (each runs in a thread, on the locked connection) ---------------------


def q_folder(db: sqlite3.Connection, owner: str, name: str) -> tuple[int, int, list[Any], Any] | None:
    """A folder's UIDVALIDITY, UID lower bound, message rows and MODSEQ state, or None."""
    row = db.execute(
        "SELECT uid_validity FROM exchmail_folders WHERE owner = ? AND name = ?", (owner, name)
    ).fetchone()
    if row is None:
        return None
    seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'app_messages'").fetchone()
    rows = q_rows(db, owner, name, 0)
    return row[0], (seq[0] if seq else 0) + 1, rows, q_modseq_state(db, row[0], rows)


def q_modseq_state(db: sqlite3.Connection, validity: int, rows: list[Any]) -> tuple[Any, ...]:
    """``(highest, floor, [(modseq, uid)] expunged, {uid: modseq})`` of a folder."""
    state = db.execute(
        "SELECT highest, floor FROM exchmail_highest_modseq WHERE uid_validity = ?", (validity,)
    ).fetchone()
    expunged = db.execute(
        "SELECT modseq, uid FROM exchmail_expunged WHERE uid_validity = ? ORDER BY modseq, uid",
        (validity,),
    ).fetchall()
    known: dict[int, int] = {}
    for start in range(0, len(rows), 500):  # SQLite's bound on host parameters
        ids = [row[0] for row in rows[start : start + 500]]
        marks = ",".join("?" * len(ids))
        known.update(
            db.execute(f"SELECT message_id, modseq FROM exchmail_modseq WHERE message_id IN ({marks})", ids)
        )
    highest, floor = state if state else (1, 0)
    return highest, floor, [(m, u) for m, u in expunged], known


def q_modseq(
    db: sqlite3.Connection,
    validity: int,
    highest: int,
    changed: list[tuple[int, int]],
    expunged: list[int],
    modseq: int,
    keep: int,
) -> None:
    """Record new MODSEQs (``changed``: (uid, modseq)), expunges at ``modseq``, and
    HIGHESTMODSEQ; the oldest expunges beyond ``keep`` are forgotten (the floor)."""
    with db:
        # max(): two transactions may run in either order (pool threads)
        db.executemany(
            "INSERT INTO exchmail_modseq VALUES (?, ?) ON CONFLICT (message_id) DO UPDATE "
            "SET modseq = max(modseq, excluded.modseq)",
            changed,
        )
        if expunged:
            db.executemany("DELETE FROM exchmail_modseq WHERE message_id = ?", [(u,) for u in expunged])
            db.executemany(
                "INSERT INTO exchmail_expunged VALUES (?, ?, ?)", [(validity, modseq, u) for u in expunged]
            )
        floor_row = db.execute(
            "SELECT modseq FROM exchmail_expunged WHERE uid_validity = ? ORDER BY modseq DESC, uid DESC "
            "LIMIT 1 OFFSET ?",
            (validity, keep),
        ).fetchone()
        floor = floor_row[0] if floor_row else 0
        if floor:
            db.execute(
                "DELETE FROM exchmail_expunged WHERE uid_validity = ? AND modseq <= ?", (validity, floor)
            )
        db.execute(
            "INSERT INTO exchmail_highest_modseq VALUES (?, ?, ?) ON CONFLICT (uid_validity) DO UPDATE "
            "SET highest = max(highest, excluded.highest), floor = max(floor, excluded.floor)",
            (validity, highest, floor),
        )


def q_rows(db: sqlite3.Connection, owner: str, name: str, after: int) -> list[Any]:
    """``(id, received, stored size, wire size, flags)`` of rows above ``after``."""
    rows = db.execute(
        "SELECT m.id, m.received, m.raw, f.flags FROM app_messages m "
        "LEFT JOIN exchmail_flags f ON f.message_id = m.id "
        "WHERE m.owner = ? AND m.folder = ? AND m.id > ? ORDER BY m.id",
        (owner, name, after),
    )
    return [
        (uid, received, *sizes(raw), frozenset((flags or "").split())) for uid, received, raw, flags in rows
    ]


def q_changes(db: sqlite3.Connection, owner: str, name: str, after: int) -> tuple[set[int], list[Any]]:
    """The ids still present, and the rows added above ``after``."""
    present = {
        row[0]
        for row in db.execute("SELECT id FROM app_messages WHERE owner = ? AND folder = ?", (owner, name))
    }
    return present, q_rows(db, owner, name, after)


def q_raw(db: sqlite3.Connection, uid: int) -> bytes:
    row = db.execute("SELECT raw FROM app_messages WHERE id = ?", (uid,)).fetchone()
    if row is None:
        raise NoSuchMessage(f"message UID {uid} is gone")
    return bytes(row[0])


def q_insert(
    db: sqlite3.Connection, owner: str, name: str, raw: bytes, flags: frozenset[str], internal_date: float
) -> int:
    with db:  # one transaction: the message and its flags, or nothing
        cursor = db.execute(
            "INSERT INTO app_messages (owner, folder, raw, received) VALUES (?, ?, ?, ?)",
            (owner, name, raw, internal_date),
        )
        uid = int(cursor.lastrowid or 0)
        if flags:
            db.execute("INSERT INTO exchmail_flags VALUES (?, ?)", (uid, flags_text(flags)))
    return uid


def q_set_flags(db: sqlite3.Connection, changes: list[tuple[int, str]]) -> None:
    with db:
        db.executemany("INSERT OR REPLACE INTO exchmail_flags VALUES (?, ?)", changes)


def q_delete(db: sqlite3.Connection, uids: list[int]) -> None:
    with db:
        db.executemany("DELETE FROM app_messages WHERE id = ?", [(uid,) for uid in uids])
        db.executemany("DELETE FROM exchmail_flags WHERE message_id = ?", [(uid,) for uid in uids])


def q_exists(db: sqlite3.Connection, owner: str, name: str) -> bool:
    return (
        db.execute("SELECT 1 FROM exchmail_folders WHERE owner = ? AND name = ?", (owner, name)).fetchone()
        is not None
    )


def q_add_folders(db: sqlite3.Connection, owner: str, folders: list[str]) -> None:
    """Add ``folders`` and their missing parents."""
    with db:
        for name in folders:
            for each in [*names.parents(name), name]:
                if not q_exists(db, owner, each):
                    db.execute(
                        "INSERT INTO exchmail_folders VALUES (?, ?, ?)",
                        (owner, each, next(validity) & 0xFFFFFFFF or 1),
                    )


def q_account(db: sqlite3.Connection, owner: str) -> None:
    """INBOX, and the folders the application put messages into, exist."""
    folders = [names.INBOX]
    for (folder,) in db.execute("SELECT DISTINCT folder FROM app_messages WHERE owner = ?", (owner,)):
        try:
            folders.append(names.normalize_mailbox(folder))
        except InvalidMailboxName:
            continue
    q_add_folders(db, owner, folders)


def q_list(db: sqlite3.Connection, owner: str) -> list[str]:
    return [row[0] for row in db.execute("SELECT name FROM exchmail_folders WHERE owner = ?", (owner,))]


def q_create(db: sqlite3.Connection, owner: str, name: str) -> None:
    if q_exists(db, owner, name):
        raise MailboxExists(f"mailbox {name!r} exists")
    q_add_folders(db, owner, [name])


def q_drop(db: sqlite3.Connection, owner: str, name: str) -> None:
    if not q_exists(db, owner, name):
        raise NoSuchMailbox(f"no mailbox {name!r}")
    with db:
        db.execute(
            "DELETE FROM exchmail_flags WHERE message_id IN (SELECT id FROM "
            "app_messages WHERE owner = ? AND folder = ?)",
            (owner, name),
        )
        db.execute("DELETE FROM app_messages WHERE owner = ? AND folder = ?", (owner, name))
        validity = db.execute(
            "SELECT uid_validity FROM exchmail_folders WHERE owner = ? AND name = ?", (owner, name)
        ).fetchone()[0]
        db.execute("DELETE FROM exchmail_highest_modseq WHERE uid_validity = ?", (validity,))
        db.execute("DELETE FROM exchmail_expunged WHERE uid_validity = ?", (validity,))
        db.execute("DELETE FROM exchmail_folders WHERE owner = ? AND name = ?", (owner, name))


def q_rename(db: sqlite3.Connection, owner: str, old: str, new: str) -> list[tuple[str, str]]:
    """Rename ``old`` and its children (INBOX: move its messages); the moves."""
    if not q_exists(db, owner, old):
        raise NoSuchMailbox(f"no mailbox {old!r}")
    if q_exists(db, owner, new):
        raise MailboxExists(f"mailbox {new!r} exists")
    if names.is_inferior(new, old):
        raise InvalidMailboxName("cannot rename a mailbox below itself")
    if old == names.INBOX:  # RFC 3501 6.3.5: the messages move, INBOX stays
        q_add_folders(db, owner, [new])
        with db:
            db.execute(
                "UPDATE app_messages SET folder = ? WHERE owner = ? AND folder = ?", (new, owner, names.INBOX)
            )
        return []
    q_add_folders(db, owner, names.parents(new))
    moves = [
        (name, new + name[len(old) :])
        for name in sorted(q_list(db, owner))
        if name == old or names.is_inferior(name, old)
    ]
    with db:
        for name, target in moves:
            db.execute(
                "UPDATE exchmail_folders SET name = ? WHERE owner = ? AND name = ?", (target, owner, name)
            )
            db.execute(
                "UPDATE app_messages SET folder = ? WHERE owner = ? AND folder = ?", (target, owner, name)
            )
    return moves


def q_subscriptions(db: sqlite3.Connection, owner: str) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM exchmail_subscriptions WHERE owner = ?", (owner,))}


def q_subscribe(db: sqlite3.Connection, owner: str, name: str, on: bool) -> None:
    with db:
        if on:
            db.execute("INSERT OR IGNORE INTO exchmail_subscriptions VALUES (?, ?)", (owner, name))
        else:
            db.execute("DELETE FROM exchmail_subscriptions WHERE owner = ? AND name = ?", (owner, name))
