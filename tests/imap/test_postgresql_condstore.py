"""CONDSTORE/QRESYNC (RFC 7162) with real clients on the PostgreSQL store.

Two servers (two frontends, the ``modern`` profile) share one database of
the private cluster (tests/conftest.py).  IMAPClient enables CONDSTORE,
reads HIGHESTMODSEQ at SELECT and fetches CHANGEDSINCE on one frontend
after the other changed the mailbox; a raw client resynchronises with
QRESYNC across frontends and races a STORE UNCHANGEDSINCE.  The values
must be the database's on both frontends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import PASSWORD, RunningServer, postgresql_store_config, start_server
from imapclient import IMAPClient
from test_bad_input import Client, status

from exchmail.profile import load_profile

TIMEOUT = 10


def message(subject: str) -> bytes:
    return (
        f"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: {subject}\r\n"
        f"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nbody of {subject}\r\n"
    ).encode()


@pytest.fixture
def frontends(reactor_thread: Any, tmp_path: Path, pg_dsn: str) -> Iterator[list[RunningServer]]:
    """Two servers over the same database."""
    changes = {"profile": load_profile("modern"), **postgresql_store_config(pg_dsn)}
    started = [start_server(tmp_path / f"f{n}", config_changes=changes) for n in range(2)]
    assert all(type(s.store).__name__ in ("PostgreSQLStore", "QuotaStore") for s in started)
    yield started
    for server in started:
        server.stop()


def client(server: RunningServer) -> IMAPClient:
    c = IMAPClient("127.0.0.1", server.imap_port, ssl=False, timeout=TIMEOUT)
    c.login("alice", PASSWORD)
    return c


def database_modseqs(dsn: str) -> tuple[int, dict[int, int]]:
    """(highestmodseq, {uid: modseq}) of alice's INBOX in the database."""
    with psycopg.connect(dsn) as conn:
        box, highest = conn.execute(
            "SELECT b.id, b.highestmodseq FROM mailboxes b JOIN accounts a ON a.id = b.account_id "
            "WHERE a.name = 'alice' AND b.name = 'INBOX'"
        ).fetchone()
        rows = conn.execute("SELECT uid, modseq FROM messages WHERE mailbox_id = %s", (box,)).fetchall()
    return int(highest), {int(uid): int(m) for uid, m in rows}


def fetched_modseqs(c: IMAPClient) -> dict[int, int]:
    return {uid: data[b"MODSEQ"][0] for uid, data in c.fetch(c.search(), ["MODSEQ"]).items()}


@pytest.mark.slow
def test_imapclient_condstore_across_frontends(frontends: list[RunningServer], pg_dsn: str) -> None:
    one, two = frontends
    with client(one) as c:
        for subject in ("one", "two", "three"):
            c.append("INBOX", message(subject))
        assert c.enable("CONDSTORE") == [b"CONDSTORE"]
        highest = c.select_folder("INBOX", readonly=True)[b"HIGHESTMODSEQ"]
        assert (highest, fetched_modseqs(c)) == database_modseqs(pg_dsn)
        assert c.fetch([1, 2, 3], ["FLAGS"], modifiers=[f"CHANGEDSINCE {highest}"]) == {}
    with client(two) as other:  # the other frontend: the same values, then a change
        other.enable("CONDSTORE")
        assert other.select_folder("INBOX")[b"HIGHESTMODSEQ"] == highest
        assert (highest, fetched_modseqs(other)) == database_modseqs(pg_dsn)
        other.add_flags([2], [b"\\Flagged"])
    with client(one) as c:
        c.enable("CONDSTORE")
        info = c.select_folder("INBOX", readonly=True)
        assert info[b"HIGHESTMODSEQ"] > highest
        assert (info[b"HIGHESTMODSEQ"], fetched_modseqs(c)) == database_modseqs(pg_dsn)
        changed = c.fetch([1, 2, 3], ["FLAGS"], modifiers=[f"CHANGEDSINCE {highest}"])
        assert list(changed) == [2]
        assert changed[2][b"FLAGS"] == (b"\\Flagged",)
        assert changed[2][b"MODSEQ"] == (info[b"HIGHESTMODSEQ"],)
        assert c.search(["MODSEQ", str(highest + 1)]) == [2]


def highest_of(lines: list[bytes]) -> int:
    return int(re.search(rb"HIGHESTMODSEQ (\d+)", b" ".join(lines)).group(1))


def test_qresync_and_unchangedsince_across_frontends(frontends: list[RunningServer], pg_dsn: str) -> None:
    """A QRESYNC client of frontend two learns frontend one's expunge as
    VANISHED (EARLIER) and its flag change with its MODSEQ; a STORE
    UNCHANGEDSINCE on two fails for the message one changed."""
    one, two = frontends
    with client(one) as c:
        for subject in ("a", "b", "c"):
            c.append("INBOX", message(subject))
    watcher = Client(two.imap_port)
    watcher.login()
    assert status(watcher.run(b"ENABLE QRESYNC")[-1]) == b"OK"
    lines = watcher.run(b"SELECT INBOX")
    validity = int(re.search(rb"UIDVALIDITY (\d+)", b" ".join(lines)).group(1))
    known = highest_of(lines)
    watcher.run(b"CLOSE")
    changer = Client(one.imap_port)
    changer.login()
    changer.run(b"SELECT INBOX")
    changer.run(b"UID STORE 1 +FLAGS (\\Deleted)")
    changer.run(b"EXPUNGE")
    changer.run(b"UID STORE 2 +FLAGS (\\Seen)")
    lines = watcher.run(b"SELECT INBOX (QRESYNC (%d %d 1:3))" % (validity, known))
    assert status(lines[-1]) == b"OK", lines
    highest, modseqs = database_modseqs(pg_dsn)
    assert highest_of(lines) == highest
    assert b"* VANISHED (EARLIER) 1" in lines, lines
    fetches = [line for line in lines if b" FETCH (" in line]
    assert len(fetches) == 1 and b"UID 2" in fetches[0] and b"\\Seen" in fetches[0], lines
    assert b"MODSEQ (%d)" % modseqs[2] in fetches[0], lines
    changer.run(b"UID STORE 3 +FLAGS (\\Answered)")  # after the watcher's HIGHESTMODSEQ
    lines = watcher.run(b"UID STORE 2:3 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)" % highest)
    assert lines[-1].split(b" ", 1)[1].startswith(b"OK [MODIFIED 3]"), lines
    lines = watcher.run(b"UID FETCH 2:3 (FLAGS MODSEQ)")
    flags = {
        int(m.group(1)): m.group(2)
        for m in (re.search(rb"UID (\d+) .*FLAGS \(([^)]*)\)", x) for x in lines)
        if m
    }
    assert b"\\Flagged" in flags[2] and b"\\Flagged" not in flags[3] and b"\\Answered" in flags[3], lines
    highest, modseqs = database_modseqs(pg_dsn)
    for line in lines[:-1]:
        uid = int(re.search(rb"UID (\d+)", line).group(1))
        assert b"MODSEQ (%d)" % modseqs[uid] in line, lines
    watcher.close()
    changer.close()
