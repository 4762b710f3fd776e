"""Shared fixtures: a reactor in a background thread and a running exchmail.

Tests talk to the real server over real loopback sockets with real
clients (imaplib, IMAPClient, curl); the reactor runs in a daemon thread
for the whole test session and each test starts its own service tree on
port 0.
"""

from __future__ import annotations

import sys

# ruff: noqa: E402 - the imports below come after this setting on purpose.
# PYTHONDONTWRITEBYTECODE=1 (a common container default, set on the
# machine the README's timing is measured on) made every test process
# rewrite the asserts of the test modules and compile exchmail anew in
# every run: each xdist worker spent 6-7 s of CPU before its first test
# instead of 2 s, and every Python subprocess compiled exchmail again.
# The test processes write the compiled files (into __pycache__, which git
# ignores); the processes they start read them.
sys.dont_write_bytecode = False

import base64
import functools
import hashlib
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import reactor
from twisted.internet.threads import blockingCallFromThread

from exchmail.auth.sasl import scram_keys
from exchmail.auth.throttle import ThrottleSettings
from exchmail.service import listening_ports, make_service
from exchmail.service.config import IMAPConfig, POP3Config, default_config

PASSWORD = "secret pw"

#: The scrypt cost (``n``) of the test accounts' password hashes.  The
#: accounts file's own (16384, some 60 ms of CPU per hash) made hashing most
#: of the CPU the in-process tests spend: each server's accounts were hashed
#: afresh, and each first login verifies one.  The accounts file keeps the
#: parameters in each hash and verifies whatever it reads, so a cheaper one
#: is a real account; tests/auth/test_accounts.py and tests/test_cli.py test
#: hashes of the default cost.
TEST_SCRYPT_N = 256


@functools.cache
def account_line(name: str, password: str = PASSWORD, nt_hash: bool = False) -> str:
    """The accounts-file line of ``name`` (scrypt hash, SCRAM keys, NT hash if
    ``nt_hash``), the format ``AccountsFile.add`` writes at ``TEST_SCRYPT_N``;
    computed once per test process."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii").rstrip("=")

    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=TEST_SCRYPT_N, r=8, p=1, dklen=32)
    encoded = f"$scrypt$n={TEST_SCRYPT_N},r=8,p=1${b64(salt)}${b64(digest)}"
    fields = [name, encoded, scram_keys(password).encode()]
    if nt_hash:
        from exchmail.auth.ntlm import nt_hash as compute_nt_hash

        fields.append("$nt$" + compute_nt_hash(password).hex())
    return ":".join(fields)


def add_accounts(path: Path, names: Iterable[str], password: str = PASSWORD, nt_hash: bool = False) -> None:
    """Append accounts for ``names`` (all with ``password``) to the accounts file
    ``path``, created with mode 0600 as ``AccountsFile`` creates it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = "".join(account_line(name, password, nt_hash) + "\n" for name in names)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(old + lines)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (setup.cfg): two workers per core.  Most tests wait on
    sockets, timers and the programs they drive (slapd, a KDC, PostgreSQL,
    Postfix), so one worker per core leaves the cores idle.  Measured on 2
    cores: -n 3 132 s, -n 4 106 s (earlier, before the slow tests started
    first: -n 2 171 s, -n 4 132 s, -n 6 138 s)."""
    return 2 * (os.cpu_count() or 1)


@pytest.hookimpl(trylast=True)  # after -m/-k have deselected
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the tests marked ``slow`` first, spread over the xdist workers.

    Started late, a test that takes 20 s keeps the run going alone at its
    end.  ``--dist worksteal`` (setup.cfg) hands each of the N workers one
    of N consecutive ranges of the collection (the first ``len // N``
    tests, then a ``// (N - 1)`` share of the rest, and so on) and lets a
    worker that runs out take the second half of the longest queue left.
    So each range starts with its share of the slow tests, dealt in turn;
    the rest keep their order, and with it their module fixtures and
    caches.  Without xdist (``-n 0``) the slow tests simply come first.

    Slow tests that mostly wait (``slow(waits=True)``: timers, sleeps, a
    stopped server) go at a different point of each range's slow tests
    (the first range's first, the last range's late), so that the workers
    do not all wait at once with both cores idle, as they did when the
    waiting tests, collected first, began every range.
    """

    def waits(item: pytest.Item) -> bool:
        marker = item.get_closest_marker("slow")
        return marker is not None and bool(marker.kwargs.get("waits"))

    computing = [item for item in items if item.get_closest_marker("slow") and not waits(item)]
    waiting = [item for item in items if waits(item)]
    if not computing and not waiting:
        return
    fast = iter([item for item in items if not item.get_closest_marker("slow")])
    workerinput = getattr(config, "workerinput", None)
    workers = int(workerinput["workercount"]) if workerinput else 1
    ordered: list[pytest.Item] = []
    left = len(items)
    for k in range(workers):
        size = left // (workers - k)
        left -= size
        mine = computing[k::workers]
        cut = len(mine) * k // workers
        slow = mine[:cut] + waiting[k::workers] + mine[cut:]
        ordered += slow + list(itertools.islice(fast, max(0, size - len(slow))))
    ordered += fast  # only if a range was smaller than its share of slow tests
    items[:] = ordered


@pytest.fixture(scope="session")
def reactor_thread() -> Iterator[Any]:
    """The global reactor, running in a daemon thread."""
    thread = threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False}, daemon=True)
    thread.start()
    yield reactor
    reactor.callFromThread(reactor.stop)
    thread.join(timeout=10)


def in_reactor(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``f`` on the reactor thread and wait for its (Deferred) result."""
    return blockingCallFromThread(reactor, f, *args, **kwargs)


@dataclass
class RunningServer:
    """A started exchmail service tree and how to reach it."""

    data_dir: Path
    imap_port: int
    service: Any
    store: Any
    pop3_port: int = 0

    def stop(self) -> None:
        in_reactor(self.service.stopService)


def start_server(
    tmp_path: Path,
    store: Any = None,
    profile_overrides: dict | None = None,
    users: tuple[str, ...] = ("alice", "bob"),
    login_type: str | None = None,
    config_changes: dict | None = None,
    realm: Any = None,
) -> RunningServer:
    """Start a server with a Maildir store (or ``store``) on a port-0 loopback listener.

    ``login_type`` sets ``auth.login_type`` (e.g. ``"SecureLogin"``); default: PlainTextLogin.
    POP3 listens on a port-0 loopback listener too (``pop3_port``); ``config_changes``
    replaces whole ``Config`` fields (e.g. ``{"quota": QuotaConfig(...)}``).
    """
    config = default_config(tmp_path)
    config = replace(
        config,
        imap=IMAPConfig(listen=("tcp:0:interface=127.0.0.1",)),
        pop3=POP3Config(listen=("tcp:0:interface=127.0.0.1",)),
        tls=None,
        throttle=ThrottleSettings(enabled=False),
    )  # on: config_changes["throttle"]
    if config_changes:
        config = replace(config, **config_changes)
    from exchmail.profile import load_profile
    from exchmail.profile.settings import LoginType

    profile = config.profile
    if profile_overrides:
        profile = load_profile(profile.name, profile_overrides)
    login = LoginType(login_type or "PlainTextLogin")
    config = replace(
        config,
        profile=replace(
            profile,
            imap=replace(profile.imap, login_type=login),
            pop3=replace(profile.pop3, login_type=login),
        ),
    )
    config.server.data_dir.mkdir(parents=True, exist_ok=True)
    add_accounts(config.auth.users_file, users)

    def start() -> Any:
        top = make_service(config, reactor=reactor, store=store, realm=realm)
        top.privilegedStartService()
        top.startService()
        return listening_ports(top).addCallback(lambda ports: (top, ports))

    top, ports = in_reactor(start)
    used_store = top.getServiceNamed("store").store
    pop3 = [s for s in top if (s.name or "").startswith("pop3:")]
    pop3_port = in_reactor(lambda: pop3[0].listening).getHost().port if pop3 else 0
    return RunningServer(config.server.data_dir, ports[0].getHost().port, top, used_store, pop3_port)


@pytest.fixture
def server(reactor_thread: Any, tmp_path: Path, profile_overrides: dict[str, Any]) -> Iterator[RunningServer]:
    """A running server over a Maildir store in ``tmp_path`` (profile: see ``profile_overrides``)."""
    running = start_server(tmp_path, profile_overrides=profile_overrides)
    yield running
    running.stop()


#: Settings that turn on the RFC-style features exchange2010 leaves off
#: (CHILDREN attributes, client keywords, 8-bit output, UTF-8 SEARCH, no
#: unsolicited responses...).  The functional client tests run with them,
#: so that they test those features; tests/conformance checks each
#: profile's own defaults.
FEATURES: dict[str, Any] = {
    "list_children_attributes": True,
    "client_keywords": True,
    "seven_bit_output": False,
    "search_charsets": ["US-ASCII", "UTF-8"],
    "exists_after_expunge": False,
    "unsolicited_exists": False,
    "notify_external_flag_changes": True,
    "list_reference_without_delimiter": "join",
    "backslash_names_as_literal": False,
    # A fresh account holds INBOX only (the default folders have tests of their own).
    "default_folders": [],
}


@pytest.fixture
def profile_overrides() -> dict[str, Any]:
    """Profile overrides of the ``server`` fixture (none: exchange2010); modules override it."""
    return {}


# -- PostgreSQL: one private cluster per test session, one database per test at a time ---
@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """A private PostgreSQL cluster (skipped, saying why, where it cannot run)."""
    from exchmail.testing import postgres

    reason = postgres.unavailable_reason()
    if reason:
        pytest.skip(reason)
    cluster = postgres.PostgresCluster()
    yield cluster
    cluster.destroy()


def _database_dsn(cluster: Any, name: str) -> str:
    return cluster.dsn.replace("dbname=exchmail", f"dbname={name}")


#: Empties a database with the exchmail schema: every table but the
#: schema's version, every sequence back to its start.
_EMPTY = """DO $$ DECLARE seq record; BEGIN
    EXECUTE (SELECT 'TRUNCATE ' || string_agg(format('%I', tablename), ', ') || ' RESTART IDENTITY CASCADE'
             FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'exchmail_schema');
    FOR seq IN SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' LOOP
        EXECUTE format('ALTER SEQUENCE %I RESTART', seq.sequencename);
    END LOOP;
END $$"""
#: What must not change for a database to be used again: its relations and
#: columns, constraints, triggers and functions.
_SHAPE = """SELECT (SELECT string_agg(concat_ws(':', c.relname, c.relkind, a.attname, a.atttypid),
                                      ',' ORDER BY c.relname, a.attnum)
                    FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
                    WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped),
                   (SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint
                    WHERE connamespace = 'public'::regnamespace),
                   (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal),
                   (SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace)"""


class TestDatabases:
    """The test databases of one cluster, each with the exchmail schema and
    no data, used again by later tests.

    Copying the template (CREATE DATABASE ... TEMPLATE) and dropping the
    copy change pg_database, after which every new connection rebuilds
    PostgreSQL's relation cache: that made 0.15 s of server CPU per test.
    A database given back has its connections ended and its tables emptied
    instead (0.04 s); one whose shape or schema version a test changed is
    dropped.
    """

    __test__ = False  # not a test class

    def __init__(self, cluster: Any) -> None:
        import psycopg

        from exchmail.store.postgresql import schema

        self.cluster = cluster
        self.names = (f"test{n}" for n in itertools.count(1))
        self.free: list[str] = []
        self.template = "exchmail_template"
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.template}")
        with psycopg.connect(self.dsn(self.template)) as conn:
            schema.init(conn)
            self.version = schema.LATEST
            self.shape = conn.execute(_SHAPE).fetchone()

    def dsn(self, name: str) -> str:
        """The DSN of database ``name`` in the cluster."""
        return _database_dsn(self.cluster, name)

    def take(self) -> str:
        """The name of an empty database with the schema."""
        import psycopg

        if self.free:
            return self.free.pop()
        name = next(self.names)
        with psycopg.connect(self.cluster.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        return name

    def give_back(self, name: str) -> None:
        """End the connections to ``name`` and empty it for the next test (or drop it)."""
        import psycopg

        with psycopg.connect(self.cluster.dsn, autocommit=True) as admin:
            if self._emptied(admin, name):
                self.free.append(name)
            else:
                admin.execute(f"DROP DATABASE {name} WITH (FORCE)")

    def _emptied(self, admin: Any, name: str) -> bool:
        import time

        import psycopg

        others = "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        for _ in range(100):  # a connection being opened may appear after the first round
            pids = [pid for (pid,) in admin.execute(others, (name,)).fetchall()]
            if not pids:
                break
            admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
            time.sleep(0.01)
        else:
            return False
        try:
            with psycopg.connect(self.dsn(name)) as conn:
                version = conn.execute("SELECT version FROM exchmail_schema").fetchall()
                if version != [(self.version,)] or conn.execute(_SHAPE).fetchone() != self.shape:
                    return False
                conn.execute(_EMPTY)
        except psycopg.Error:
            return False
        return True


@pytest.fixture(scope="session")
def pg_databases(pg_cluster: Any) -> TestDatabases:
    """The reusable test databases of the worker's cluster."""
    return TestDatabases(pg_cluster)


@pytest.fixture
def pg_dsn(pg_databases: TestDatabases) -> Iterator[str]:
    """The DSN of a database with the exchmail schema and no data, for this test alone."""
    name = pg_databases.take()
    yield pg_databases.dsn(name)
    pg_databases.give_back(name)


def postgresql_store_config(dsn: str) -> dict[str, Any]:
    """``config_changes`` for :func:`start_server`: the PostgreSQL store on ``dsn``."""
    from exchmail.service.config import StoreConfig
    from exchmail.store.postgresql.settings import PostgreSQLSettings

    return {"store": StoreConfig(backend="postgresql", postgresql=PostgreSQLSettings(dsn=dsn, pool_size=4))}
