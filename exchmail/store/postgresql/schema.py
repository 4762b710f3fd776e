"""The PostgreSQL store's schema, as numbered migrations.

``exchmail db init`` creates the schema of an empty database;
``exchmail db upgrade`` applies the migrations a database has not had yet.
Each migration runs in one transaction together with the bump of
``exchmail_schema.version``, so a database is always at one version; no
migration drops data (a future one that must, refuses without ``force``).

Tables (one row per ...):

- ``accounts``: user; ``quota_limit`` in octets (0: none).
- ``mailboxes``: mailbox of an account; ``uid_next`` and ``highestmodseq``
  are bumped together, under the row lock, by every change to the
  mailbox, so that changes commit in ``highestmodseq`` order (frontends
  read "everything after the modseq I know" and miss nothing).
  ``highestmodseq`` is what CONDSTORE (RFC 7162) reports (HIGHESTMODSEQ);
  ``first_recent`` the lowest UID no session of any frontend has claimed
  as \\Recent yet.
- ``messages``: message in a mailbox: UID, flags, internal date, size, the
  modseq of its last change, and the body it shows.
- ``expunged``: UIDs removed, with the modseq of the removal (what other
  frontends, and later QRESYNC's VANISHED, learn expunges from).
- ``bodies`` / ``body_chunks``: content, stored once per SHA-256 and shared
  by every copy, cut into chunks so that it is streamed, never loaded whole.
- ``body_orphans``: bodies that lost their last message; deleted after a
  grace period, so that a reader already streaming one can finish.
- ``subscriptions``: subscribed names (which need not exist).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exchmail.errors import StoreError

#: The migrations, in order; migration ``n`` (1-based) takes a database to version ``n``.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE SEQUENCE uid_validity_seq;
    SELECT setval('uid_validity_seq', extract(epoch FROM now())::bigint);
    CREATE TABLE accounts (
        id bigserial PRIMARY KEY,
        name text NOT NULL UNIQUE,
        quota_limit bigint NOT NULL DEFAULT 0
    );
    CREATE TABLE mailboxes (
        id bigserial PRIMARY KEY,
        account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
        name text NOT NULL,
        uid_validity bigint NOT NULL DEFAULT nextval('uid_validity_seq'),
        uid_next bigint NOT NULL DEFAULT 1,
        highestmodseq bigint NOT NULL DEFAULT 1,
        first_recent bigint NOT NULL DEFAULT 1,
        special_use text[] NOT NULL DEFAULT '{}',
        UNIQUE (account_id, name)
    );
    CREATE TABLE subscriptions (
        account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
        name text NOT NULL,
        PRIMARY KEY (account_id, name)
    );
    CREATE TABLE bodies (
        id bigserial PRIMARY KEY,
        sha256 bytea NOT NULL UNIQUE,
        size bigint NOT NULL,
        chunk_size integer NOT NULL
    );
    CREATE TABLE body_chunks (
        body_id bigint NOT NULL REFERENCES bodies ON DELETE CASCADE,
        seq integer NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (body_id, seq)
    );
    ALTER TABLE body_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
    CREATE TABLE messages (
        mailbox_id bigint NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
        uid bigint NOT NULL,
        body_id bigint NOT NULL REFERENCES bodies,
        flags text[] NOT NULL DEFAULT '{}',
        internal_date double precision NOT NULL,
        size bigint NOT NULL,
        modseq bigint NOT NULL,
        PRIMARY KEY (mailbox_id, uid)
    );
    CREATE INDEX messages_changes ON messages (mailbox_id, modseq);
    CREATE INDEX messages_body ON messages (body_id);
    CREATE TABLE expunged (
        mailbox_id bigint NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
        uid bigint NOT NULL,
        modseq bigint NOT NULL,
        PRIMARY KEY (mailbox_id, uid)
    );
    CREATE INDEX expunged_changes ON expunged (mailbox_id, modseq);
    CREATE TABLE body_orphans (
        body_id bigint PRIMARY KEY,
        since timestamptz NOT NULL DEFAULT now()
    );
    """,
)

LATEST = len(MIGRATIONS)


class SchemaError(StoreError):
    """The database's schema is missing, too old or newer than this exchmail."""


def current_version(conn: Any) -> int | None:
    """The schema version of the database behind ``conn``; ``None`` if it has none."""
    row = conn.execute("SELECT to_regclass('exchmail_schema') IS NOT NULL").fetchone()
    if not row[0]:
        return None
    found = conn.execute("SELECT version FROM exchmail_schema").fetchone()
    return int(found[0]) if found else 0


def check(conn: Any) -> None:
    """Refuse to serve a database whose schema is not the one this code writes."""
    version = current_version(conn)
    if version is None:
        raise SchemaError("the database has no exchmail schema: run 'exchmail db init'")
    if version < LATEST:
        raise SchemaError(
            f"the database schema is version {version}, this exchmail needs "
            f"{LATEST}: run 'exchmail db upgrade'"
        )
    if version > LATEST:
        raise SchemaError(
            f"the database schema is version {version}, newer than this "
            f"exchmail knows ({LATEST}): upgrade exchmail"
        )


def init(conn: Any, say: Callable[[str], None] = lambda _: None) -> int:
    """Create the schema in an empty database (refused if one exists); the version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('exchmail_schema'))")
        if current_version(conn) is not None:
            raise SchemaError("the database has an exchmail schema already: use 'exchmail db upgrade'")
        conn.execute("CREATE TABLE exchmail_schema (version integer NOT NULL)")
        conn.execute("INSERT INTO exchmail_schema VALUES (0)")
    return upgrade(conn, say)


def upgrade(conn: Any, say: Callable[[str], None] = lambda _: None) -> int:
    """Apply the migrations the database lacks, each in its own transaction; the version."""
    version = 0
    while True:
        with conn.transaction():
            # One migrator at a time, even with several frontends starting.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('exchmail_schema'))")
            found = current_version(conn)
            if found is None:
                raise SchemaError("the database has no exchmail schema: run 'exchmail db init'")
            version = found
            if version >= LATEST:
                return version
            conn.execute(MIGRATIONS[version])
            conn.execute("UPDATE exchmail_schema SET version = %s", (version + 1,))
        say(f"schema: migrated to version {version + 1}")
