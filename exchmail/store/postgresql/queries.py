"""The blocking transactions of one mailbox (run through ``run_blocking``).

Every change bumps ``mailboxes.highestmodseq`` first, which takes the
mailbox row's lock until commit: changes to one mailbox therefore commit in
modseq order, UIDs are handed out in that order too, and a frontend that
reads "every row changed after modseq N" after reading the mailbox's
modseq never misses one.  Each change ends with a ``NOTIFY`` on
:data:`CHANNEL` (delivered at commit) naming the mailbox and the frontend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO

from exchmail.errors import NoSuchMailbox
from exchmail.store.postgresql.bodies import as_file, orphan_bodies, store_body

#: The LISTEN/NOTIFY channel; the payload is "<mailbox id> <frontend id>".
CHANNEL = "exchmail_changes"
DELETED = "\\Deleted"

#: A message as the index holds it: (uid, flags, internal_date, size, body_id).
Row = tuple[int, frozenset[str], float, int, int]


@dataclass(frozen=True)
class Changes:
    """What changed in a mailbox after a modseq, as one read saw it."""

    exists: bool
    uid_next: int
    modseq: int
    first_recent: int
    rows: list[Row]
    expunged: list[int]


def notify(conn: Any, mailbox_id: int, frontend: str) -> None:
    """Tell every frontend, at commit, that ``mailbox_id`` changed."""
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"{mailbox_id} {frontend}"))


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


def _row(uid: int, flags: list[str], date: float, size: int, body: int) -> Row:
    return int(uid), frozenset(flags), float(date), int(size), int(body)


def load_rows(conn: Any, mailbox_id: int) -> list[Row]:
    """Every message of the mailbox, ascending by UID."""
    rows = conn.execute(
        "SELECT uid, flags, internal_date, size, body_id FROM messages WHERE mailbox_id = %s ORDER BY uid",
        (mailbox_id,),
    ).fetchall()
    return [_row(*row) for row in rows]


def changes_since(conn: Any, mailbox_id: int, modseq: int) -> Changes:
    """What changed after ``modseq``: the mailbox's counters are read first,
    so a change committed meanwhile is read again next time, never missed."""
    head = conn.execute(
        "SELECT uid_next, highestmodseq, first_recent FROM mailboxes WHERE id = %s", (mailbox_id,)
    ).fetchone()
    if head is None:
        return Changes(False, 0, modseq, 0, [], [])
    rows = conn.execute(
        "SELECT uid, flags, internal_date, size, body_id FROM messages "
        "WHERE mailbox_id = %s AND modseq > %s ORDER BY uid",
        (mailbox_id, modseq),
    ).fetchall()
    gone = conn.execute(
        "SELECT uid FROM expunged WHERE mailbox_id = %s AND modseq > %s ORDER BY uid", (mailbox_id, modseq)
    ).fetchall()
    return Changes(
        True,
        int(head[0]),
        int(head[1]),
        int(head[2]),
        [_row(*row) for row in rows],
        [int(uid) for (uid,) in gone],
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
    return modseq, (uid, frozenset(flags), internal_date, size, body_id)


def copy(
    conn: Any, source_id: int, target_id: int, frontend: str, uids: list[int]
) -> tuple[int, list[tuple[int, int]], list[Row]]:
    """Copy messages (sharing their bodies) in one transaction:
    (modseq, (old, new) UID pairs, the new rows)."""
    # The target's row lock first, as every writer takes it, so that a COPY
    # into the same mailbox cannot deadlock with a STORE there.
    _, modseq = bump(conn, target_id)
    rows = conn.execute(
        "SELECT uid, body_id, flags, internal_date, size FROM messages "
        "WHERE mailbox_id = %s AND uid = ANY(%s) ORDER BY uid",
        (source_id, uids),
    ).fetchall()
    if not rows:
        return modseq, [], []
    (first,) = conn.execute(
        "UPDATE mailboxes SET uid_next = uid_next + %s WHERE id = %s RETURNING uid_next - %s",
        (len(rows), target_id, len(rows)),
    ).fetchone()
    pairs = [(int(row[0]), int(first) + n) for n, row in enumerate(rows)]
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
    added = [_row(new, row[2], row[3], row[4], row[1]) for (_, new), row in zip(pairs, rows, strict=True)]
    return modseq, pairs, added


def set_flags(
    conn: Any, mailbox_id: int, frontend: str, uids: list[int], flags: frozenset[str], mode: str
) -> tuple[int, dict[int, frozenset[str]]]:
    """Apply a STORE to the stored flags (not to what this frontend last saw,
    so that concurrent changes from other frontends are kept); every
    existing UID's flags after it."""
    wanted = sorted(flags)
    _, modseq = bump(conn, mailbox_id)
    if mode == "add":
        change = (
            "flags = ARRAY(SELECT DISTINCT f FROM unnest(flags || %(f)s::text[]) AS f ORDER BY f)",
            "NOT flags @> %(f)s::text[]",
        )
    elif mode == "remove":
        change = (
            "flags = ARRAY(SELECT f FROM unnest(flags) AS f WHERE f <> ALL(%(f)s::text[]) ORDER BY f)",
            "flags && %(f)s::text[]",
        )
    else:
        change = ("flags = %(f)s::text[]", "NOT (flags @> %(f)s::text[] AND flags <@ %(f)s::text[])")
    params = {"f": wanted, "m": modseq, "box": mailbox_id, "uids": uids}
    changed = conn.execute(
        f"UPDATE messages SET {change[0]}, modseq = %(m)s WHERE mailbox_id = %(box)s "
        f"AND uid = ANY(%(uids)s) AND {change[1]} RETURNING uid",
        params,
    ).fetchall()
    if changed:
        notify(conn, mailbox_id, frontend)
    rows = conn.execute(
        "SELECT uid, flags FROM messages WHERE mailbox_id = %s AND uid = ANY(%s)", (mailbox_id, uids)
    ).fetchall()
    return modseq, {int(uid): frozenset(stored) for uid, stored in rows}


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
    _, modseq = bump(conn, mailbox_id)
    gone = conn.execute(f"DELETE FROM messages WHERE {where} RETURNING uid, body_id", params).fetchall()
    removed = sorted(int(uid) for uid, _ in gone)
    if removed:
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
