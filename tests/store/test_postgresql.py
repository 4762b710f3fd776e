"""The PostgreSQL store against a real private cluster (tests/conftest.py).

The compliance kit runs twice: with the queries run at once on the test's
thread and a Clock driving the polling (another store over the same
database plays the other frontend), and with a real thread pool on the
running reactor, where other frontends' changes arrive by LISTEN/NOTIFY.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from helpers import Recorder
from test_threaded import on_reactor, wait_for
from twisted.internet import reactor
from twisted.internet.task import Clock
from twisted.python.threadpool import ThreadPool

from exchmail.errors import StoreUnavailable
from exchmail.store.postgresql import schema
from exchmail.store.postgresql.db import Database
from exchmail.store.postgresql.store import PostgreSQLStore
from exchmail.store.runner import pool_runner
from exchmail.testing import call
from exchmail.testing.store_contract import MESSAGE, StoreContract

POLL = 5.0
RELEASE_AFTER = 30.0


def sync_store(dsn: str, clock: Any = None) -> PostgreSQLStore:
    return PostgreSQLStore(
        Database(dsn, pool_size=2), reactor=clock, poll_interval=POLL, listen=False, keep_open=RELEASE_AFTER
    )


def other_frontend_append(dsn: str, user: str, mailbox: str, message: bytes) -> None:
    other = sync_store(dsn)
    try:
        box = call(call(other.account, user).mailbox, mailbox)
        call(box.append, message)
    finally:
        other.close()


class TestPostgreSQLStore(StoreContract):
    """Queries at once; a Clock drives the polling and the release of
    mailboxes nobody holds."""

    release_after = RELEASE_AFTER

    @pytest.fixture
    def store(self, pg_dsn: str) -> Iterator[Any]:
        self.clock = Clock()
        store = sync_store(pg_dsn, self.clock)
        yield store
        store.close()

    def reopen(self, store: Any) -> Any:
        return sync_store(store.db.dsn)

    def outside_append(self, store: Any, user: str, mailbox: str, message: bytes) -> bool:
        other_frontend_append(store.db.dsn, user, mailbox, message)
        return True

    def advance(self, store: Any, seconds: float) -> None:
        self.clock.advance(seconds)


@pytest.fixture
def pool(reactor_thread: Any) -> Iterator[ThreadPool]:
    threads = ThreadPool(minthreads=1, maxthreads=4, name="test-pg")
    threads.start()
    yield threads
    threads.stop()


def threaded_store(dsn: str, pool: ThreadPool, poll_interval: float = 0.0) -> PostgreSQLStore:
    store = PostgreSQLStore(
        Database(dsn, pool_size=4),
        run_blocking=pool_runner(reactor, pool),
        reactor=reactor,
        poll_interval=poll_interval,
    )
    assert store.notifier is not None
    assert store.notifier.listening.wait(10)
    return store


class TestThreadedPostgreSQLStore(StoreContract):
    """A real thread pool; other frontends' changes come by NOTIFY (no polling)."""

    watch_step = 0.05

    @pytest.fixture
    def store(self, pg_dsn: str, pool: ThreadPool) -> Iterator[Any]:
        store = threaded_store(pg_dsn, pool)
        yield store
        on_reactor(store.close)

    def call(self, f: Any, *args: Any, **kwargs: Any) -> Any:
        return on_reactor(f, *args, **kwargs)

    def now(self, f: Any, *args: Any) -> Any:
        return on_reactor(f, *args)

    def reopen(self, store: Any) -> Any:
        return sync_store(store.db.dsn)

    def outside_append(self, store: Any, user: str, mailbox: str, message: bytes) -> bool:
        other_frontend_append(store.db.dsn, user, mailbox, message)
        return True

    def advance(self, store: Any, seconds: float) -> None:
        import time

        time.sleep(seconds)


def open_inbox(store: PostgreSQLStore, user: str = "bob") -> Any:
    return on_reactor(lambda: store.account(user).addCallback(lambda account: account.mailbox("INBOX")))


def test_two_frontends_see_each_others_changes(pg_dsn: str, pool: ThreadPool) -> None:
    """Appends, flag changes and expunges on one store reach the listeners of
    another over the same database, in UID order, without polling."""
    one, two = threaded_store(pg_dsn, pool), threaded_store(pg_dsn, pool)
    try:
        box1, box2 = open_inbox(one), open_inbox(two)
        listener = Recorder()
        on_reactor(box2.add_listener, listener)
        uids = [on_reactor(box1.append, MESSAGE) for _ in range(3)]
        wait_for(lambda: list(box2.uids()) == uids)
        on_reactor(box1.set_flags, uids[:2], frozenset({"\\Deleted"}), "add")
        wait_for(lambda: box2.message(uids[0]).flags == frozenset({"\\Deleted"}))
        assert on_reactor(box2.expunge) == uids[:2]
        wait_for(lambda: list(box1.uids()) == uids[2:])
        assert ("flags", uids[:2], None) in listener.events
        added = [uid for event in listener.events if event[0] == "added" for uid in event[1]]
        assert added == uids
        on_reactor(box2.remove_listener, listener)
    finally:
        on_reactor(one.close)
        on_reactor(two.close)


def test_bodies_are_shared_between_copies(pg_dsn: str) -> None:
    store = sync_store(pg_dsn)
    try:
        account = call(store.account, "carol")
        call(account.create, "Copies")
        inbox, copies = call(account.mailbox, "INBOX"), call(account.mailbox, "Copies")
        uid = call(inbox.append, MESSAGE)
        call(inbox.append, MESSAGE)
        call(inbox.copy_to, [uid], copies)
        with psycopg.connect(pg_dsn) as conn:
            assert conn.execute("SELECT count(*) FROM bodies").fetchone()[0] == 1
            assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 3
    finally:
        store.close()


def test_schema_version_checked(pg_dsn: str) -> None:
    """A frontend refuses a database at another schema version; upgrade is idempotent."""
    with psycopg.connect(pg_dsn) as conn:
        schema.check(conn)
        assert schema.upgrade(conn) == schema.LATEST
        with pytest.raises(schema.SchemaError, match="already"):
            schema.init(conn)
        conn.execute("UPDATE exchmail_schema SET version = %s", (schema.LATEST + 1,))
        with pytest.raises(schema.SchemaError, match="newer"):
            schema.check(conn)
        conn.execute("UPDATE exchmail_schema SET version = 0")
        with pytest.raises(schema.SchemaError, match="db upgrade"):
            schema.check(conn)
        conn.rollback()


@pytest.mark.slow(waits=True)
def test_database_down_is_unavailable(pg_cluster: Any) -> None:
    """Nothing listens: the store answers StoreUnavailable, not an internal error."""
    from exchmail.testing.postgres import free_port

    store = PostgreSQLStore(
        Database(f"host=127.0.0.1 port={free_port()} dbname=x connect_timeout=1", pool_size=1), listen=False
    )
    store.db.pool.timeout = 2.0
    try:
        with pytest.raises(StoreUnavailable):
            call(store.account, "alice")
    finally:
        store.close()


@pytest.mark.slow(waits=True)
def test_reconnects_at_once_after_a_long_outage() -> None:
    """psycopg_pool doubles its delay between connection tries for as long as
    its reconnect timeout allows: with its default (300 s), tries came 0, 1,
    3, 7 and 15 s into the outage, so after 9 s down the store stayed
    unavailable for 6 s after the database was back.  With the timeout capped, the first
    transaction after the restart succeeds."""
    from exchmail.testing.postgres import PostgresCluster

    cluster = PostgresCluster()
    db = None
    try:
        db = Database(cluster.dsn, pool_size=1, reconnect_timeout=2.0)
        db.pool.timeout = 3.0  # more than the longest delay the cap allows
        with db.transaction() as conn:
            conn.execute("SELECT 1")
        cluster.stop("fast")
        outage_ends = time.monotonic() + 9.0
        failures = 0
        while time.monotonic() < outage_ends:
            with pytest.raises(StoreUnavailable):
                with db.transaction() as conn:
                    conn.execute("SELECT 1")
            failures += 1
        assert failures >= 3
        cluster.start()
        with db.transaction() as conn:
            assert conn.execute("SELECT 2").fetchone() == (2,)
    finally:
        if db is not None:
            db.close()
        cluster.destroy()


def test_store_table_keys(tmp_path: Any) -> None:
    from exchmail.errors import ConfigError
    from exchmail.service.config import load_config
    from exchmail.store.postgresql.settings import PostgreSQLSettings

    path = tmp_path / "exchmail.toml"
    path.write_text(
        '[store]\nbackend = "postgresql"\ndsn = "dbname=mail"\npool_size = 3\n'
        "statement_timeout = 2.5\npoll_interval = 0\n"
    )
    assert load_config(path).store.postgresql == PostgreSQLSettings("dbname=mail", 3, 2.5, 0.0)
    for bad, key in (
        ("pool_size = 0", "store.pool_size"),
        ('statement_timeout = "x"', "store.statement_timeout"),
        ("dsn = 5", "store.dsn"),
    ):
        path.write_text(f'[store]\nbackend = "postgresql"\n{bad}\n')
        with pytest.raises(ConfigError, match=key):
            load_config(path)
    path.write_text('[store]\nbackend = "maildir"\ndsn = "x"\n')
    with pytest.raises(ConfigError, match="store.dsn: only the postgresql backend"):
        load_config(path)


def test_names_changed_by_another_frontend(pg_dsn: str) -> None:
    """A mailbox this frontend has open, renamed, re-created or deleted by
    another frontend: opening by name gives what the name means now."""
    from exchmail.errors import NoSuchMailbox

    one, two = sync_store(pg_dsn), sync_store(pg_dsn)
    try:
        mine, theirs = call(one.account, "dave"), call(two.account, "dave")
        call(mine.create, "Box")
        box = call(mine.mailbox, "Box")
        uid = call(box.append, MESSAGE)
        call(theirs.rename, "Box", "Other")
        call(theirs.create, "Box")
        fresh = call(mine.mailbox, "Box")
        assert fresh is not box and fresh.uid_validity != box.uid_validity and list(fresh.uids()) == []
        moved = call(mine.mailbox, "Other")
        assert moved is box and box.name == "Other" and list(box.uids()) == [uid]
        call((call(theirs.mailbox, "Other")).append, MESSAGE)
        assert len(call(mine.mailbox, "Other").uids()) == 2  # brought up to date on open
        call(theirs.delete, "Other")
        with pytest.raises(NoSuchMailbox):
            call(mine.mailbox, "Other")
    finally:
        one.close()
        two.close()


def test_config_check_prints_store_keys_and_hides_the_dsn(tmp_path: Any, capsys: Any) -> None:
    from exchmail.cli import main

    path = tmp_path / "exchmail.toml"
    path.write_text('[store]\nbackend = "postgresql"\ndsn = "host=db password=secret"\npool_size = 4\n')
    main(["config", "check", "--config", str(path)])
    out = capsys.readouterr().out
    store = out[out.index("[store]") :]
    assert 'dsn = "****"' in store and "pool_size = 4" in store and "secret" not in out
