"""CONDSTORE/QRESYNC MODSEQs of the PostgreSQL store across frontends (RFC 7162).

Two stores over one database play two frontends.  Every MODSEQ and
HIGHESTMODSEQ an index shows must be the database's (what the committing
transaction assigned), whichever frontend made the change; the expunges
each remembers are the database's expunge log; STORE UNCHANGEDSINCE is
decided by the database, so two frontends racing on one message cannot
both win.  (The store contract's own MODSEQ rules run in test_postgresql.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from test_postgresql import open_inbox, sync_store, threaded_store
from test_threaded import on_reactor, wait_for
from twisted.internet import defer
from twisted.python.threadpool import ThreadPool

from exchmail.interfaces import IModSeq
from exchmail.store import modseq as modseq_module
from exchmail.testing import call
from exchmail.testing.store_contract import MESSAGE

SEEN = frozenset({"\\Seen"})
FLAGGED = frozenset({"\\Flagged"})
DELETED = frozenset({"\\Deleted"})


@pytest.fixture
def pool(reactor_thread: Any) -> Iterator[ThreadPool]:
    threads = ThreadPool(minthreads=1, maxthreads=4, name="test-pg-modseq")
    threads.start()
    yield threads
    threads.stop()


def database(dsn: str, user: str = "bob") -> tuple[int, dict[int, int]]:
    """(highestmodseq, {uid: modseq}) of ``user``'s INBOX as the database has them."""
    with psycopg.connect(dsn) as conn:
        (box, highest) = conn.execute(
            "SELECT b.id, b.highestmodseq FROM mailboxes b JOIN accounts a ON a.id = b.account_id "
            "WHERE a.name = %s AND b.name = 'INBOX'",
            (user,),
        ).fetchone()
        rows = conn.execute("SELECT uid, modseq FROM messages WHERE mailbox_id = %s", (box,)).fetchall()
    return int(highest), {int(uid): int(m) for uid, m in rows}


def index(box: Any) -> tuple[int, dict[int, int]]:
    """(HIGHESTMODSEQ, {uid: MODSEQ}) as the index of ``box`` shows them."""
    return box.highest_modseq(), dict(box.modseqs(list(box.uids())))


def inbox(store: Any, user: str = "bob") -> Any:
    return call(call(store.account, user).mailbox, "INBOX")


def test_changes_on_one_frontend_carry_the_same_modseqs_on_the_other(pg_dsn: str) -> None:
    one, two = sync_store(pg_dsn), sync_store(pg_dsn)
    try:
        a, b = inbox(one), inbox(two)
        assert IModSeq.providedBy(a) and IModSeq.providedBy(b)
        uids = [call(a.append, MESSAGE) for _ in range(4)]
        assert index(a) == database(pg_dsn)
        call(b.refresh)
        assert index(b) == index(a) == database(pg_dsn)
        call(a.set_flags, uids[:2], SEEN, "add")
        call(a.set_flags, uids[1:3], DELETED, "add")
        before = a.highest_modseq()
        assert call(a.expunge) == uids[1:3]
        assert a.expunged_since(before) == uids[1:3]
        call(b.refresh)
        assert index(b) == index(a) == database(pg_dsn)
        assert b.expunged_since(before) == uids[1:3]
        assert b.expunged_since(before - 1) == uids[1:3] and b.expunged_since(b.highest_modseq()) == []
        assert b.message(uids[0]).flags == SEEN
        assert b.changed_since(before - 2) == [uids[0]]  # its \Seen, after the appends
    finally:
        one.close()
        two.close()


def test_interleaved_changes_show_the_committed_modseqs(pg_dsn: str) -> None:
    """A change that did not take the modseq after the index's (another
    frontend changed the mailbox meanwhile) is answered once the index has
    caught up: its messages then show the modseq it committed with, and
    HIGHESTMODSEQ is the database's, never a local count."""
    one, two = sync_store(pg_dsn), sync_store(pg_dsn)
    try:
        a, b = inbox(one), inbox(two)
        x, y = call(a.append, MESSAGE), call(a.append, MESSAGE)
        call(b.refresh)
        call(b.set_flags, [x], FLAGGED, "add")  # a has not seen it
        z = call(b.append, MESSAGE)
        call(a.set_flags, [y], SEEN, "add")  # a's change takes a later modseq
        assert index(a) == database(pg_dsn)
        assert a.message(x).flags == FLAGGED and z in a.uids()
        call(b.set_flags, [z], DELETED, "add")
        call(b.expunge)
        assert call(a.append, MESSAGE) not in (x, y, z)
        assert index(a) == database(pg_dsn)
        assert a.expunged_since(0) == [z]
        call(a.set_flags, [x], DELETED, "add")
        call(b.set_flags, [y], DELETED, "add")  # both \Deleted now; a knows of x only
        gone = call(a.expunge)
        assert x in gone and index(a) == database(pg_dsn)
        call(b.refresh)
        assert index(b) == index(a) and b.expunged_since(0) == a.expunged_since(0)
    finally:
        one.close()
        two.close()


def test_a_store_that_changes_nothing_takes_no_modseq(pg_dsn: str) -> None:
    store = sync_store(pg_dsn)
    try:
        box = inbox(store)
        uid = call(box.append, MESSAGE, SEEN)
        highest = database(pg_dsn)[0]
        call(box.set_flags, [uid], SEEN, "add")
        call(box.set_flags, [uid], FLAGGED, "remove")
        assert call(box.expunge) == []
        assert database(pg_dsn)[0] == highest == box.highest_modseq()
    finally:
        store.close()


def test_unchangedsince_is_decided_by_the_database(pg_dsn: str) -> None:
    """b has not seen a's change: its UNCHANGEDSINCE test still fails, and
    its index learns the change."""
    one, two = sync_store(pg_dsn), sync_store(pg_dsn)
    try:
        a, b = inbox(one), inbox(two)
        m, n = call(a.append, MESSAGE), call(a.append, MESSAGE)
        call(b.refresh)
        known = b.highest_modseq()
        result, modified = call(a.set_flags_unchanged_since, [m], SEEN, "add", known)
        assert (result, modified) == ({m: SEEN}, [])
        result, modified = call(b.set_flags_unchanged_since, [m, n], FLAGGED, "add", known)
        assert modified == [m] and result == {n: FLAGGED}
        assert b.message(m).flags == SEEN  # a's change, not b's
        call(a.refresh)
        assert index(a) == index(b) == database(pg_dsn)
        assert a.message(n).flags == FLAGGED and a.message(m).flags == SEEN
        # Only a failed test (b changes nothing): b's index still learns why.
        known = b.highest_modseq()
        call(a.set_flags, [n], SEEN, "add")
        assert call(b.set_flags_unchanged_since, [n], DELETED, "add", known) == ({}, [n])
        assert b.message(n).flags == FLAGGED | SEEN and index(b) == database(pg_dsn)
    finally:
        one.close()
        two.close()


def test_unchangedsince_race_between_frontends(pg_dsn: str, pool: ThreadPool) -> None:
    """Two frontends store UNCHANGEDSINCE the same MODSEQ at once, over real
    threads: exactly one wins each round, and both indexes end equal to the
    database (B learns A's changes by NOTIFY)."""
    one, two = threaded_store(pg_dsn, pool), threaded_store(pg_dsn, pool)
    try:
        a, b = open_inbox(one), open_inbox(two)
        uid = on_reactor(a.append, MESSAGE)
        wait_for(lambda: list(b.uids()) == [uid])
        for round_ in range(8):
            wait_for(lambda: b.highest_modseq() == a.highest_modseq())
            known = dict(a.modseqs([uid]))[uid]
            flags = frozenset({f"$round{round_}"})

            def race(known: int = known, flags: frozenset[str] = flags) -> defer.Deferred[Any]:
                return defer.gatherResults(
                    [
                        box.set_flags_unchanged_since([uid], flags | {f"$by{n}"}, "replace", known)
                        for n, box in enumerate((a, b))
                    ]
                )

            outcomes = on_reactor(race)
            won = [n for n, (_, modified) in enumerate(outcomes) if not modified]
            assert len(won) == 1, outcomes
            expected = flags | {f"$by{won[0]}"}
            assert outcomes[won[0]][0] == {uid: expected}
            wait_for(lambda expected=expected: b.message(uid).flags == a.message(uid).flags == expected)
        wait_for(lambda: index(a) == index(b))
        assert index(a) == database(pg_dsn)
    finally:
        on_reactor(one.close)
        on_reactor(two.close)


def test_notified_changes_carry_the_database_modseqs(pg_dsn: str, pool: ThreadPool) -> None:
    """With LISTEN/NOTIFY (no refresh asked for), B's index follows A's
    appends, flag changes and expunges with the same MODSEQs."""
    one, two = threaded_store(pg_dsn, pool), threaded_store(pg_dsn, pool)
    try:
        a, b = open_inbox(one), open_inbox(two)
        from helpers import Recorder

        listener = Recorder()
        on_reactor(b.add_listener, listener)  # b is watched: NOTIFY makes it sync
        uids = [on_reactor(a.append, MESSAGE) for _ in range(3)]
        on_reactor(a.set_flags, uids[:2], DELETED, "add")
        before = on_reactor(a.highest_modseq)
        on_reactor(a.expunge)
        wait_for(lambda: b.highest_modseq() == a.highest_modseq())
        assert on_reactor(index, b) == on_reactor(index, a) == database(pg_dsn)
        assert on_reactor(b.expunged_since, before) == uids[:2]
        on_reactor(b.remove_listener, listener)
    finally:
        on_reactor(one.close)
        on_reactor(two.close)


def test_expunge_memory_is_bounded(pg_dsn: str, monkeypatch: Any) -> None:
    """The index keeps the last EXPUNGE_MEMORY expunges of the log: older
    ones answer None, on the frontend that expunged, on one that synced and
    on one that opened the mailbox afterwards."""
    monkeypatch.setattr(modseq_module, "EXPUNGE_MEMORY", 3)
    one, two = sync_store(pg_dsn), sync_store(pg_dsn)
    try:
        a, b = inbox(one), inbox(two)
        uids = [call(a.append, MESSAGE, DELETED) for _ in range(5)]
        marks = []
        for uid in uids:
            marks.append(a.highest_modseq())
            assert call(a.expunge, [uid]) == [uid]
        call(b.refresh)
        later = sync_store(pg_dsn)
        try:
            for box in (a, b, inbox(later)):
                assert box.expunged_since(marks[0]) is None
                assert box.expunged_since(marks[2]) == uids[2:]
                assert box.expunged_since(marks[4]) == uids[4:]
                assert box.highest_modseq() == database(pg_dsn)[0]
        finally:
            later.close()
    finally:
        one.close()
        two.close()
