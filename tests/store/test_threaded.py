"""The Maildir store with a real thread pool on a running reactor.

Everywhere else the store tests run the blocking work at once (``run_sync``)
so that Deferreds fire immediately.  Here the work goes through
``deferToThreadPool`` on the reactor that tests/conftest.py runs in a
thread, the way the service runs it: the compliance kit, inotify watching
and concurrent sessions, for real.  Waits are bounded; nothing asserts how
long anything took.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Recorder
from test_contract import drop_into_maildir
from twisted.internet import defer, reactor
from twisted.internet.threads import blockingCallFromThread
from twisted.python.threadpool import ThreadPool

from exchmail.store.maildir import MaildirStore
from exchmail.store.maildir.watch import inotify_usable
from exchmail.store.runner import pool_runner
from exchmail.testing.store_contract import MESSAGE, StoreContract

STEP = 0.05
MAX_STEPS = 200


def on_reactor(f: Any, *args: Any, **kwargs: Any) -> Any:
    """Run ``f`` on the reactor thread and wait for its (Deferred) result."""
    return blockingCallFromThread(reactor, defer.maybeDeferred, f, *args, **kwargs)


@pytest.fixture
def pool(reactor_thread: Any) -> Iterator[ThreadPool]:
    threads = ThreadPool(minthreads=1, maxthreads=4, name="test-store")
    threads.start()
    yield threads
    threads.stop()


def make_store(root: Path, pool: ThreadPool, **options: Any) -> MaildirStore:
    return MaildirStore(root, run_blocking=pool_runner(reactor, pool), reactor=reactor, **options)


class TestThreadedMaildirStore(StoreContract):
    release_after = 0.2
    watch_step = STEP

    @pytest.fixture
    def store(self, tmp_path: Path, pool: ThreadPool) -> Iterator[Any]:
        store = make_store(tmp_path / "mail", pool, release_after=self.release_after)
        yield store
        on_reactor(store.close)

    def call(self, f: Any, *args: Any, **kwargs: Any) -> Any:
        return on_reactor(f, *args, **kwargs)

    def now(self, f: Any, *args: Any) -> Any:
        return on_reactor(f, *args)

    def reopen(self, store: Any) -> Any:
        return MaildirStore(store.root)  # synchronous: read what the threads wrote

    def outside_append(self, store: Any, user: str, mailbox: str, message: bytes) -> bool:
        drop_into_maildir(store.root / user, f"1700000000.M1P{os.getpid()}Q9.outside", message)
        return True

    def advance(self, store: Any, seconds: float) -> None:
        time.sleep(seconds)


def wait_for(condition: Any) -> None:
    for _ in range(MAX_STEPS):
        if on_reactor(condition):
            return
        time.sleep(STEP)
    raise AssertionError("the condition did not come true")


@pytest.mark.skipif(not inotify_usable(reactor), reason="needs inotify")
def test_inotify_reports_outside_changes_and_ignores_own(tmp_path: Path, pool: ThreadPool) -> None:
    store = make_store(tmp_path / "mail", pool, watch="inotify")
    try:
        box = on_reactor(lambda: store.account("bob").addCallback(lambda account: account.mailbox("INBOX")))
        listener = Recorder()
        on_reactor(box.add_listener, listener)
        assert box._watch_mode == "inotify"
        scans = []
        original = box._refresh_locked

        def counted(force: bool) -> Any:
            scans.append(force)
            return original(force)

        box._refresh_locked = counted
        # Own changes: appends, flag changes, expunges cause no scan.
        uid = on_reactor(box.append, MESSAGE)
        on_reactor(box.set_flags, [uid], frozenset({"\\Deleted", "$Kw"}), "add", "me")
        on_reactor(box.expunge)
        time.sleep(10 * STEP)  # let the events of our own changes arrive
        assert scans == []
        # Another program's delivery is reported without refresh().
        drop_into_maildir(store.root / "bob", "1700000100.M1P1Q1.mda", b"Subject: mda\r\n\r\nx\r\n")
        wait_for(lambda: len(listener.events) == 4)
        (new,) = listener.events[-1][1]
        assert listener.events[-1] == ("added", [new])
        assert on_reactor(box.read_message, new) == b"Subject: mda\r\n\r\nx\r\n"
        # ... and so is another program's flag change.
        cur = store.root / "bob" / "cur"
        name = box.filename(new)
        (cur / name).rename(cur / (name + "F"))
        wait_for(lambda: listener.events[-1] == ("flags", [new], None))
        on_reactor(box.remove_listener, listener)
        assert store.watcher is not None and store.watcher.watched == 0
    finally:
        on_reactor(store.close)


def test_many_sessions_changing_flags_at_once(tmp_path: Path, pool: ThreadPool) -> None:
    """Twenty sessions each add their own keyword to every message at once, in
    threads: the per-mailbox lock keeps every change."""
    store = make_store(tmp_path / "mail", pool, watch="off")
    box = on_reactor(lambda: store.account("bob").addCallback(lambda account: account.mailbox("INBOX")))
    uids = [on_reactor(box.append, MESSAGE) for _ in range(5)]

    def everyone() -> defer.Deferred[Any]:
        return defer.gatherResults(
            [defer.maybeDeferred(box.set_flags, uids, frozenset({f"$S{n}"}), "add", n) for n in range(20)]
        )

    on_reactor(everyone)
    expected = frozenset(f"$S{n}" for n in range(20))
    assert all(box.message(uid).flags == expected for uid in uids)
    again = on_reactor(
        lambda: MaildirStore(store.root).account("bob").addCallback(lambda account: account.mailbox("INBOX"))
    )
    assert all(again.message(uid).flags == expected for uid in uids)
    on_reactor(store.close)
