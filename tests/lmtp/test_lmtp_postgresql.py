"""LMTP delivery into the PostgreSQL store: 250 only after the commit, 4xx while
the database is away (the MTA keeps the message and retries), 250 again once
it is back."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import in_reactor, postgresql_store_config, start_server
from test_lmtp_clients import lmtp_send

from exchmail.lmtp.settings import LMTPSettings
from exchmail.store.postgresql import schema
from exchmail.store.postgresql.db import Database
from exchmail.store.postgresql.store import PostgreSQLStore
from exchmail.testing import call, postgres
from exchmail.testing.postgres import PostgresCluster

MESSAGE = b"From: s@example.com\r\nSubject: by lmtp\r\n\r\nhello\r\n"
RECIPIENTS = ["alice@example.org", "bob@example.org"]


pytestmark = pytest.mark.skipif(
    postgres.unavailable_reason() is not None, reason=str(postgres.unavailable_reason())
)


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    """A cluster of this test's own (it is stopped and started again)."""
    own = PostgresCluster()
    with psycopg.connect(own.dsn) as conn:
        schema.init(conn)
    yield own
    own.destroy()


def stored(dsn: str, user: str) -> list[bytes]:
    """What the database holds for ``user``'s INBOX, read by another store."""
    store = PostgreSQLStore(Database(dsn, pool_size=1), listen=False)
    try:
        box = call(call(store.account, user).mailbox, "INBOX")
        return [call(box.read_message, uid) for uid in box.uids()]
    finally:
        store.close()


@pytest.mark.slow(waits=True)
def test_acknowledged_after_commit_and_temporary_failure_while_down(
    reactor_thread: Any, tmp_path: Path, cluster: PostgresCluster
) -> None:
    lmtp = LMTPSettings(listen=("tcp:0:interface=127.0.0.1",))
    running = start_server(tmp_path, config_changes={**postgresql_store_config(cluster.dsn), "lmtp": lmtp})
    try:
        (tcp,) = [s for s in running.service if (s.name or "").startswith("lmtp:tcp")]
        port = in_reactor(lambda: tcp.listening).getHost().port
        with smtplib.LMTP("127.0.0.1", port) as client:
            codes, replies = lmtp_send(client, "s@example.com", RECIPIENTS, MESSAGE)
            assert [code for code, _ in replies] == [250, 250]
        for user in ("alice", "bob"):
            assert [m.endswith(MESSAGE) for m in stored(cluster.dsn, user)] == [True]
        cluster.stop("fast")
        with smtplib.LMTP("127.0.0.1", port) as client:
            codes, replies = lmtp_send(client, "s@example.com", RECIPIENTS, MESSAGE)
            refused = [code for code in codes.values() if code != 250] + [code for code, _ in replies]
            assert refused and all(400 <= code < 500 for code in refused), (codes, replies)
        cluster.start()
        for _ in range(100):
            with smtplib.LMTP("127.0.0.1", port) as client:
                codes, replies = lmtp_send(client, "s@example.com", RECIPIENTS[:1], MESSAGE)
            if codes[RECIPIENTS[0]] == 250 and replies and replies[0][0] == 250:
                break
        assert replies[0][0] == 250
        assert len(stored(cluster.dsn, "alice")) == 2
    finally:
        running.stop()
