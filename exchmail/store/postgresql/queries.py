"""The blocking transactions of one mailbox (run through ``run_blocking``).

Every change takes the mailbox row's lock first (:func:`lock`) and, if it
changes anything, the next ``mailboxes.highestmodseq`` (:func:`bump`),
holding the lock until commit: changes to one mailbox therefore commit in
modseq order, UIDs are handed out in that order too, and no modseq is
taken by a change that changed nothing.  Readers of a mailbox's changes
take the same row ``FOR SHARE`` (:func:`changes_since`), so that what they
read is exactly the mailbox as of the ``highestmodseq`` they read with it.
These are the MODSEQs of CONDSTORE/QRESYNC (RFC 7162): every frontend's
index shows the values the committing transaction assigned.  Each change
ends with a ``NOTIFY`` on :data:`CHANNEL` (delivered at commit) naming the
mailbox and the frontend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO

from exchmail.errors import NoSuchMailbox
from exchmail.store.postgresql.bodies import as_file, orphan_bodies, store_body

#: The LISTEN/NOTIFY channel; the payload is "<mailbox id> <frontend id>".
CHANNEL = "exchmail_changes"
DELETED = "\\Deleted"

#: A message as the index holds it: (uid, flags, internal_date, size, body_id, modseq).
Row = tuple[int, frozenset[str], float, int, int, int]
ROW_COLUMNS = "uid, flags, internal_date, size, body_id, modseq"


@dataclass(frozen=True)
class Changes:
    """What changed in a mailbox after a modseq, as of ``modseq`` (one consistent read).

    ``expunged`` holds ``(modseq, uid)`` pairs, ascending by modseq.
    """

    exists: bool
    uid_next: int
    modseq: int
    first_recent: int
    rows: list[Row]
    expunged: list[tuple[int, int]]


@dataclass(frozen=True)
class FlagsOutcome:
    """What a STORE did: the modseq it took (None if it changed nothing),
    the flags now stored of the UIDs it applied to, and those that failed
    an UNCHANGEDSINCE test (RFC 7162 §3.1.3)."""

    modseq: int | None
    stored: dict[int, frozenset[str]]
    modified: list[int]


def notify(conn: Any, mailbox_id: int, frontend: str) -> None:
    """Tell every frontend, at commit, that ``mailbox_id`` changed."""
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{mailbox_id} {frontend}"))


def lock(conn: Any, mailbox_id: int) -> int:
    """Lock the mailbox row until commit (every writer does, first); its highestmodseq."""
    row = conn.execute(
        "SELECT highestmodseq FROM mailboxes WHERE id = %s FOR UPDATE", (mailbox_id,)
    ).fetchone()
    if row is None:
        raise NoSuchMailbox("the mailbox was deleted")
    return int(row[0])


def bump(conn: Any, mailbox_id: int, uids: int = 0) -> tuple[int, int]:
    """Lock the mailbox row, take ``uids`` UIDs and the next modseq: (first UID, modseq)."""
    row = conn.execute(
        "UPDATE mailboxes SET uid_next = uid_next + %s, highestmodseq = highestmodseq + 1 "
        "WHERE id = %s RETURNING uid_next - %s, highestmodseq",
        (uids, mailbox_id, uids),
    ).fetchone()
    if row is None:
        raise NoSuchMailbox("the mailbox was deleted")
    return int(row[0]), int(row[1])


def _row(uid: int, flags: list[str], date: float, size: int, body: int, modseq: int) -> Row:
    return int(uid), frozenset(flags), float(date), int(size), int(body), int(modseq)


def load_rows(conn: Any, mailbox_id: int) -> list[Row]:
    """Every message of the mailbox, ascending by UID."""
    rows = conn.execute(
        f"SELECT {ROW_COLUMNS} FROM messages WHERE mailbox_id = %s ORDER BY uid", (mailbox_id,)
    ).fetchall()
    return [_row(*row) for row in rows]


def load_expunged(conn: Any, mailbox_id: int, limit: int) -> list[tuple[int, int]]:
    """The last ``limit`` expunges of the log, ``(modseq, uid)`` ascending."""
    rows = conn.execute(
        "SELECT modseq, uid FROM expunged WHERE mailbox_id = %s ORDER BY modseq DESC, uid DESC LIMIT %s",
        (mailbox_id, limit),
    ).fetchall()
    return [(int(modseq), int(uid)) for modseq, uid in reversed(rows)]


def changes_since(conn: Any, mailbox_id: int, modseq: int) -> Changes:
    """What changed after ``modseq``.  The mailbox row is read ``FOR SHARE``:
    no change can commit until this transaction ends, so the rows and
    expunges read are exactly those up to the highestmodseq read."""
    head = conn.execute(
        "SELECT uid_next, highestmodseq, first_recent FROM mailboxes WHERE id = %s FOR SHARE",
        (mailbox_id,),
    ).fetchone()
    if head is None:
        return Changes(False, 0, modseq, 0, [], [])
    if int(head[1]) <= modseq:  # nothing happened (the common poll)
        return Changes(True, int(head[0]), int(head[1]), int(head[2]), [], [])
    rows = conn.execute(
        f"SELECT {ROW_COLUMNS} FROM messages WHERE mailbox_id = %s AND modseq > %s ORDER BY uid",
        (mailbox_id, modseq),
    ).fetchall()
    gone = conn.execute(
        "SELECT modseq, uid FROM expunged WHERE mailbox_id = %s AND modseq > %s ORDER BY modseq, uid",
        (mailbox_id, modseq),
    ).fetchall()
    return Changes(
        True,
        int(head[0]),
        int(head[1]),
        int(head[2]),
        [_row(*row) for row in rows],
        [(int(m), int(uid)) for m, uid in gone],
    )


def append(
    conn: Any,
    mailbox_id: int,
    frontend: str,
    source: bytes | BinaryIO,
    flags: frozenset[str],
    internal_date: float,
) -> tuple[int, Row]:
    """Store the body (or share an equal one) and add the message: (modseq, its row)."""
    body_id, size = store_body(conn, as_file(source))
    uid, modseq = bump(conn, mailbox_id, 1)
    conn.execute(
        "INSERT INTO messages (mailbox_id, uid, body_id, flags, internal_date, size, modseq) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (mailbox_id, uid, body_id, sorted(flags), internal_date, size, modseq),
    )
    notify(conn, mailbox_id, frontend)
    return modseq, (uid, frozenset(flags), internal_date, size, body_id, modseq)


def copy(
    conn: Any, source_id: int, target_id: int, frontend: str, uids: list[int]
) -> tuple[int | None, list[tuple[int, int]], list[Row]]:
    """Copy messages (sharing their bodies) in one transaction:
    (modseq, or None if none was left to copy; (old, new) UID pairs; the new rows)."""
    # The target's row lock first, as every writer takes it, so that a COPY
    # into the same mailbox cannot deadlock with a STORE there.
    lock(conn, target_id)
    rows = conn.execute(
        "SELECT uid, body_id, flags, internal_date, size FROM messages "
        "WHERE mailbox_id = %s AND uid = ANY(%s) ORDER BY uid",
        (source_id, uids),
    ).fetchall()
    if not rows:
        return None, [], []
    first, modseq = bump(conn, target_id, len(rows))
    pairs = [(int(row[0]), first + n) for n, row in enumerate(rows)]
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO messages (mailbox_id, uid, body_id, flags, internal_date, size, modseq) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (target_id, new, row[1], row[2], row[3], row[4], modseq)
                for (_, new), row in zip(pairs, rows, strict=True)
            ],
        )
    notify(conn, target_id, frontend)
    added = [
        _row(new, row[2], row[3], row[4], row[1], modseq) for (_, new), row in zip(pairs, rows, strict=True)
    ]
    return modseq, pairs, added


def _flag_change(mode: str) -> tuple[str, str]:
    """The SET clause of a STORE and the condition of its changing anything."""
    if mode == "add":
        return (
            "flags = ARRAY(SELECT DISTINCT f FROM unnest(flags || %(f)s::text[]) AS f ORDER BY f)",
            "NOT flags @> %(f)s::text[]",
        )
    if mode == "remove":
        return (
            "flags = ARRAY(SELECT f FROM unnest(flags) AS f WHERE f <> ALL(%(f)s::text[]) ORDER BY f)",
            "flags && %(f)s::text[]",
        )
    return ("flags = %(f)s::text[]", "NOT (flags @> %(f)s::text[] AND flags <@ %(f)s::text[])")


def set_flags(
    conn: Any,
    mailbox_id: int,
    frontend: str,
    uids: list[int],
    flags: frozenset[str],
    mode: str,
    unchanged_since: int | None = None,
) -> FlagsOutcome:
    """Apply a STORE to the stored flags (not to what this frontend last saw,
    so that concurrent changes from other frontends are kept).  With
    ``unchanged_since``, only to the messages whose modseq is at most that,
    tested and changed under the mailbox lock (STORE UNCHANGEDSINCE)."""
    modseq = lock(conn, mailbox_id) + 1
    params = {"f": sorted(flags), "m": modseq, "box": mailbox_id, "uids": uids, "since": unchanged_since}
    modified: list[int] = []
    test = ""
    if unchanged_since is not None:
        test = " AND modseq <= %(since)s"
        found = conn.execute(
            "SELECT uid FROM messages WHERE mailbox_id = %(box)s AND uid = ANY(%(uids)s) "
            "AND modseq > %(since)s ORDER BY uid",
            params,
        ).fetchall()
        modified = [int(uid) for (uid,) in found]
    change, changes_anything = _flag_change(mode)
    changed = conn.execute(
        f"UPDATE messages SET {change}, modseq = %(m)s WHERE mailbox_id = %(box)s "
        f"AND uid = ANY(%(uids)s){test} AND {changes_anything} RETURNING uid",
        params,
    ).fetchall()
    if changed:
        conn.execute("UPDATE mailboxes SET highestmodseq = %s WHERE id = %s", (modseq, mailbox_id))
        notify(conn, mailbox_id, frontend)
    rows = conn.execute(
        "SELECT uid, flags FROM messages WHERE mailbox_id = %(box)s AND uid = ANY(%(uids)s) "
        "AND uid <> ALL(%(modified)s::bigint[])",
        {**params, "modified": modified},
    ).fetchall()
    stored = {int(uid): frozenset(now) for uid, now in rows}
    return FlagsOutcome(modseq if changed else None, stored, modified)


def remove(
    conn: Any, mailbox_id: int, frontend: str, uids: list[int] | None, highest: int, only_deleted: bool
) -> tuple[int | None, list[int]]:
    """Remove messages (only those flagged ``\\Deleted`` if ``only_deleted``;
    among ``uids`` if given; never above ``highest``, which the caller has
    seen): (the modseq taken, or None if nothing was to go; the removed
    UIDs, ascending, logged in ``expunged``)."""
    where = "mailbox_id = %s AND uid <= %s"
    params: list[Any] = [mailbox_id, highest]
    if only_deleted:
        where += " AND %s = ANY(flags)"
        params.append(DELETED)
    if uids is not None:
        where += " AND uid = ANY(%s)"
        params.append(uids)
    # Nothing to remove (the common EXPUNGE): no lock, no modseq.
    if not conn.execute(f"SELECT EXISTS (SELECT 1 FROM messages WHERE {where})", params).fetchone()[0]:
        return None, []
    lock(conn, mailbox_id)
    gone = conn.execute(f"DELETE FROM messages WHERE {where} RETURNING uid, body_id", params).fetchall()
    if not gone:  # removed by another frontend meanwhile
        return None, []
    _, modseq = bump(conn, mailbox_id)
    removed = sorted(int(uid) for uid, _ in gone)
    conn.execute(
        "INSERT INTO expunged (mailbox_id, uid, modseq) SELECT %s, u, %s "
        "FROM unnest(%s::bigint[]) AS u ON CONFLICT DO NOTHING",
        (mailbox_id, modseq, removed),
    )
    orphan_bodies(conn, sorted({int(body) for _, body in gone}))
    notify(conn, mailbox_id, frontend)
    return modseq, removed


def claim_recent(conn: Any, mailbox_id: int, first_recent: int) -> None:
    """Every UID below ``first_recent`` has been \\Recent for some session."""
    conn.execute(
        "UPDATE mailboxes SET first_recent = greatest(first_recent, %s) WHERE id = %s",
        (first_recent, mailbox_id),
    )
