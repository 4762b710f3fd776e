"""The blocking transactions of an account: mailboxes, subscriptions, special use."""

from __future__ import annotations

from typing import Any

from exchmail.errors import InvalidMailboxName, MailboxExists, NoSuchMailbox
from exchmail.store import names
from exchmail.store.postgresql import queries
from exchmail.store.postgresql.bodies import orphan_bodies

#: A mailbox row as an open needs it: (id, uid_validity, uid_next, highestmodseq, first_recent).
Head = tuple[int, int, int, int, int]


def account_id(conn: Any, name: str) -> int:
    """The id of account ``name``, created (with its INBOX) on first use."""
    conn.execute("INSERT INTO accounts (name) VALUES (%s) ON CONFLICT (name) DO NOTHING", (name,))
    (found,) = conn.execute("SELECT id FROM accounts WHERE name = %s", (name,)).fetchone()
    conn.execute(
        "INSERT INTO mailboxes (account_id, name) VALUES (%s, %s) ON CONFLICT (account_id, name) DO NOTHING",
        (found, names.INBOX),
    )
    return int(found)


def account_names(conn: Any) -> list[str]:
    return [name for (name,) in conn.execute("SELECT name FROM accounts ORDER BY name").fetchall()]


def list_names(conn: Any, account: int) -> list[str]:
    rows = conn.execute("SELECT name FROM mailboxes WHERE account_id = %s", (account,)).fetchall()
    return [name for (name,) in rows]


def head(conn: Any, account: int, name: str, share: bool = False) -> Head:
    """The row of mailbox ``name``; NoSuchMailbox if there is none.  With
    ``share``, locked FOR SHARE: no change to the mailbox commits until the
    transaction ends (what it reads next is the mailbox as of this row)."""
    row = conn.execute(
        "SELECT id, uid_validity, uid_next, highestmodseq, first_recent FROM mailboxes "
        "WHERE account_id = %s AND name = %s" + (" FOR SHARE" if share else ""),
        (account, name),
    ).fetchone()
    if row is None:
        raise NoSuchMailbox(f"no mailbox {name!r}")
    return (int(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]))


#: A mailbox as an open loads it: its row, its messages, its last expunges.
Loaded = tuple[Head, list[queries.Row], list[tuple[int, int]]]


def load(conn: Any, account: int, name: str, expunges: int) -> Loaded:
    """A mailbox's row, messages and last ``expunges`` expunges, all as of
    the row's highestmodseq (see ``queries.changes_since``)."""
    found = head(conn, account, name, share=True)
    return found, queries.load_rows(conn, found[0]), queries.load_expunged(conn, found[0], expunges)


def reopen(conn: Any, account: int, name: str, box_id: int, modseq: int) -> queries.Changes | None:
    """What changed in mailbox ``box_id`` after ``modseq``, if ``name`` still
    names it (``None`` if another mailbox has the name now)."""
    if head(conn, account, name)[0] != box_id:
        return None
    return queries.changes_since(conn, box_id, modseq)


def _exists(conn: Any, account: int, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM mailboxes WHERE account_id = %s AND name = %s", (account, name))
    return row.fetchone() is not None


def _add_parents(conn: Any, account: int, name: str) -> None:
    for parent in names.parents(name):
        conn.execute(
            "INSERT INTO mailboxes (account_id, name) VALUES (%s, %s) "
            "ON CONFLICT (account_id, name) DO NOTHING",
            (account, parent),
        )


def create(conn: Any, account: int, name: str) -> int:
    """Create ``name`` and its missing parents; the new mailbox's id."""
    _add_parents(conn, account, name)
    row = conn.execute(
        "INSERT INTO mailboxes (account_id, name) VALUES (%s, %s) "
        "ON CONFLICT (account_id, name) DO NOTHING RETURNING id",
        (account, name),
    ).fetchone()
    if row is None:
        raise MailboxExists(f"mailbox {name!r} exists")
    return int(row[0])


def delete(conn: Any, account: int, name: str, frontend: str) -> int:
    """Delete ``name`` and its messages (its children stay); its id."""
    if name == names.INBOX:
        raise InvalidMailboxName("INBOX cannot be deleted")
    box = head(conn, account, name)[0]
    bodies = [
        b
        for (b,) in conn.execute(
            "SELECT DISTINCT body_id FROM messages WHERE mailbox_id = %s", (box,)
        ).fetchall()
    ]
    conn.execute("DELETE FROM mailboxes WHERE id = %s", (box,))
    orphan_bodies(conn, bodies)
    queries.notify(conn, box, frontend)
    return box


def rename(conn: Any, account: int, old: str, new: str, frontend: str) -> list[tuple[int, str]]:
    """Rename ``old`` and its children to ``new``: the (id, new name) of each moved."""
    head(conn, account, old)  # NoSuchMailbox
    if _exists(conn, account, new):
        raise MailboxExists(f"mailbox {new!r} exists")
    if names.is_inferior(new, old):
        raise InvalidMailboxName("cannot rename a mailbox below itself")
    if old == names.INBOX:
        return _move_inbox(conn, account, new, frontend)
    _add_parents(conn, account, new)
    rows = conn.execute(
        "UPDATE mailboxes SET name = %s || substr(name, %s) WHERE account_id = %s "
        "AND (name = %s OR left(name, %s) = %s) RETURNING id, name",
        (new, len(old) + 1, account, old, len(old) + 1, old + "/"),
    ).fetchall()
    return [(int(box), str(name)) for box, name in rows]


def _move_inbox(conn: Any, account: int, new: str, frontend: str) -> list[tuple[int, str]]:
    """RFC 3501 6.3.5: INBOX's messages move to a new mailbox; INBOX stays, empty."""
    inbox = head(conn, account, names.INBOX)[0]
    target = create(conn, account, new)
    uids = [
        uid for (uid,) in conn.execute("SELECT uid FROM messages WHERE mailbox_id = %s", (inbox,)).fetchall()
    ]
    if uids:
        queries.copy(conn, inbox, target, frontend, uids)
        queries.remove(conn, inbox, frontend, None, max(uids), False)
    return []


def subscriptions(conn: Any, account: int) -> set[str]:
    rows = conn.execute("SELECT name FROM subscriptions WHERE account_id = %s", (account,)).fetchall()
    return {name for (name,) in rows}


def subscribe(conn: Any, account: int, name: str, on: bool) -> None:
    if on:
        conn.execute("INSERT INTO subscriptions VALUES (%s, %s) ON CONFLICT DO NOTHING", (account, name))
    else:
        conn.execute("DELETE FROM subscriptions WHERE account_id = %s AND name = %s", (account, name))


def marked(conn: Any, account: int, wanted: list[str]) -> set[str]:
    """Those of ``wanted`` holding a message no session has claimed as \\Recent."""
    rows = conn.execute(
        "SELECT b.name FROM mailboxes b WHERE b.account_id = %s AND b.name = ANY(%s) AND EXISTS "
        "(SELECT 1 FROM messages m WHERE m.mailbox_id = b.id AND m.uid >= b.first_recent)",
        (account, wanted),
    ).fetchall()
    return {name for (name,) in rows}


def special_uses(conn: Any, account: int) -> dict[str, frozenset[str]]:
    rows = conn.execute(
        "SELECT name, special_use FROM mailboxes WHERE account_id = %s AND cardinality(special_use) > 0",
        (account,),
    ).fetchall()
    return {name: frozenset(uses) for name, uses in rows}


def set_special_use(conn: Any, account: int, name: str, uses: frozenset[str]) -> None:
    row = conn.execute(
        "UPDATE mailboxes SET special_use = %s WHERE account_id = %s AND name = %s RETURNING id",
        (sorted(uses), account, name),
    ).fetchone()
    if row is None:
        raise NoSuchMailbox(f"no mailbox {name!r}")
