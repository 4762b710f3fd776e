"""Watching for outside changes (once per mailbox) and releasing idle mailboxes."""

from __future__ import annotations

import gc
import shutil
import weakref
from pathlib import Path
from typing import Any

import pytest
from helpers import Recorder, call
from test_maildir import drop_in
from twisted.internet.task import Clock

from exchmail.store.maildir import MaildirStore
from exchmail.store.maildir.watch import MaildirWatcher, OwnChanges

POLL = 5.0
RELEASE = 300.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Any:
    store = MaildirStore(
        tmp_path / "mail", reactor=clock, watch="poll", poll_interval=POLL, release_after=RELEASE
    )
    yield store
    store.close()


# -- own changes and inotify events ------------------------------------------------------
def test_own_changes_explain_their_events() -> None:
    own = OwnChanges()
    own.expect([("cur", "a:2,"), ("cur", "a:2,S")])
    assert own.explained("cur", "a:2,") and own.explained("cur", "a:2,S")
    assert not own.explained("cur", "a:2,S")  # each event once
    own.expect_delivery("1700.M1P2Q3.host")
    assert own.explained("cur", "1700.M1P2Q3.host,S=1,W=2:2,")
    assert not own.explained("new", "other")


def test_events_during_a_scan_wait_for_what_it_touched() -> None:
    own = OwnChanges()
    own.scan_started()
    assert own.explained("new", "m1")  # held back
    assert own.explained("new", "m2")
    # The scan moved m1 itself (and m3, whose events are still to come).
    touched = [("new", "m1"), ("cur", "m1:2,"), ("new", "m3"), ("cur", "m3:2,")]
    assert own.scan_finished(touched) is True  # m2 was someone else's
    assert own.explained("cur", "m1:2,") and own.explained("new", "m3")
    own.scan_started()
    assert own.scan_finished([]) is False
    assert not own.explained("new", "m4")  # no scan running: a change to look at


# -- one watch per mailbox ---------------------------------------------------------------------
def test_ten_thousand_listeners_on_a_hundred_mailboxes_cost_a_hundred_watches(
    store: Any, clock: Clock
) -> None:
    account = call(store.account, "bob")
    boxes = []
    for number in range(100):
        call(account.create, f"F{number}")
        boxes.append(call(account.mailbox, f"F{number}"))
    listeners = [Recorder() for _ in range(100)]
    for box in boxes:
        for listener in listeners:
            box.add_listener(listener)
    assert store.watcher.watched == 100
    polls = [call for call in clock.getDelayedCalls() if call.getTime() == POLL]
    assert len(polls) == 100  # one poll per mailbox and interval, not per session
    for box in boxes:
        for listener in listeners:
            box.remove_listener(listener)
    assert store.watcher.watched == 0
    assert not [call for call in clock.getDelayedCalls() if call.getTime() == POLL]


def test_polling_reports_outside_changes_once_per_mailbox(store: Any, clock: Clock) -> None:
    account = call(store.account, "bob")
    box = call(account.mailbox, "INBOX")
    first, second = Recorder(), Recorder()
    box.add_listener(first)
    box.add_listener(second)
    drop_in(store.root / "bob", "1700000020.M1P1Q1.mx", b"Subject: hi\n\nx\n")
    clock.advance(POLL)
    (uid,) = box.uids()
    assert first.events == second.events == [("added", [uid])]
    cur = store.root / "bob" / "cur"
    name = box.filename(uid)
    (cur / name).rename(cur / (name + "S"))
    clock.advance(POLL)
    assert first.events[-1] == ("flags", [uid], None)
    box.remove_listener(first)
    box.remove_listener(second)
    drop_in(store.root / "bob", "1700000021.M1P1Q1.mx", b"x\n")
    clock.advance(POLL * 3)
    assert len(box.uids()) == 1  # nobody listens: nobody polls (refresh() still works)
    call(box.refresh)
    assert len(box.uids()) == 2


def test_inotify_is_chosen_only_where_usable(clock: Clock) -> None:
    assert MaildirWatcher(clock, "auto")._use_inotify is False  # a Clock reads no descriptors
    with pytest.raises(ValueError):
        MaildirWatcher(clock, "sometimes")


# -- idle release ------------------------------------------------------------------------------
def test_busy_or_listened_mailboxes_are_kept(store: Any, clock: Clock) -> None:
    account = call(store.account, "bob")
    box = call(account.mailbox, "INBOX")
    listener = Recorder()
    box.add_listener(listener)
    clock.advance(RELEASE * 3)
    assert account._boxes.peek("INBOX") is box and "INBOX" in account._boxes._open
    box.remove_listener(listener)
    clock.advance(RELEASE - 1)
    call(box.append, b"x\r\n")  # use counts: the clock starts again
    clock.advance(RELEASE - 1)
    assert "INBOX" in account._boxes._open
    clock.advance(RELEASE)
    assert "INBOX" not in account._boxes._open  # released: only weakly held now


def test_released_mailbox_is_reloaded_with_recent_and_marked_kept(store: Any, clock: Clock) -> None:
    account = call(store.account, "bob")
    call(account.create, "Box")
    box = call(account.mailbox, "Box")
    box.claim_recent()
    uid = call(box.append, b"x\r\n")
    ref = weakref.ref(box)
    del box
    clock.advance(RELEASE + 1)
    gc.collect()
    assert ref() is None
    assert call(account.marked, ["Box"]) == {"Box"}  # still new to every session
    again = call(account.mailbox, "Box")
    assert again.claim_recent() == frozenset({uid})
    assert call(account.marked, ["Box"]) == set()


# -- inotify, with real events read by hand --------------------------------------------------
class _Box:
    """What the watcher needs of a mailbox: its folder and the callbacks."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[tuple[str | None, str | None]] = []
        self.rewatched = 0
        self.refreshes = 0

    def outside_event(self, sub: str | None, name: str | None) -> None:
        self.events.append((sub, name))

    def refresh(self) -> None:
        self.refreshes += 1

    def watch_again(self) -> None:
        self.rewatched += 1


@pytest.fixture
def fd_reactor() -> Any:
    """A real (epoll) reactor that is never run: the test reads the inotify
    descriptor itself, so the events are real and their order is fixed."""
    from twisted.internet.epollreactor import EPollReactor

    reactor = EPollReactor()
    yield reactor
    reactor.removeAll()
    reactor.waker.connectionLost(None)
    reactor._poller.close()


def maildir(path: Path) -> Path:
    for sub in ("new", "cur", "tmp"):
        (path / sub).mkdir(parents=True)
    return path


def test_inotify_reports_the_files_others_change(tmp_path: Path, fd_reactor: Any) -> None:
    watcher = MaildirWatcher(fd_reactor, "inotify")
    box = _Box(maildir(tmp_path / "box"))
    assert watcher.watch(box) == "inotify" and watcher.watched == 1
    (box.path / "new" / "m1").write_bytes(b"x")
    (box.path / "cur" / "m0:2,").write_bytes(b"y")
    (box.path / "cur" / "m0:2,").unlink()
    watcher._notifier.doRead()
    assert box.events == [("new", "m1"), ("cur", "m0:2,"), ("cur", "m0:2,")]
    watcher.close()


def test_folder_deleted_by_us_after_unwatch_is_quiet(tmp_path: Path, fd_reactor: Any) -> None:
    """DELETE removes the folder, then stops watching it, before the events are read."""
    watcher = MaildirWatcher(fd_reactor, "inotify")
    box, other = _Box(maildir(tmp_path / "box")), _Box(maildir(tmp_path / "other"))
    watcher.watch(box)
    watcher.watch(other)
    notifier = watcher._notifier
    shutil.rmtree(box.path)
    watcher.unwatch(box)
    notifier.doRead()
    assert box.events == [] and watcher._notifier is notifier and watcher.watched == 1
    (other.path / "new" / "m1").write_bytes(b"x")  # the other folder is still watched
    notifier.doRead()
    assert other.events == [("new", "m1")]
    watcher.close()


def test_folder_deleted_by_another_program_is_scanned_and_rewatched(tmp_path: Path, fd_reactor: Any) -> None:
    watcher = MaildirWatcher(fd_reactor, "inotify")
    box = _Box(maildir(tmp_path / "box"))
    watcher.watch(box)
    shutil.rmtree(box.path / "cur")
    watcher._notifier.doRead()
    # A scan finds out what happened; INotify closes itself on a deleted
    # directory, so the mailboxes are watched anew, after the current events.
    assert box.events == [(None, None)]
    assert watcher._notifier is None and watcher.watched == 0 and box.rewatched == 0
    fd_reactor.runUntilCurrent()
    assert box.rewatched == 1
    watcher.close()


def test_folder_inotify_cannot_watch_is_polled(tmp_path: Path, fd_reactor: Any) -> None:
    watcher = MaildirWatcher(fd_reactor, "inotify", poll_interval=POLL)
    box = _Box(tmp_path / "half")
    (box.path / "new").mkdir(parents=True)  # no cur/: the second watch fails
    assert watcher.watch(box) == "poll"
    assert watcher._notifier is not None and not watcher._notifier._watchpoints  # new/'s watch undone
    watcher.close()


def test_lost_inotify_descriptor_rewatches_its_mailboxes(tmp_path: Path, fd_reactor: Any) -> None:
    from twisted.python.failure import Failure

    watcher = MaildirWatcher(fd_reactor, "inotify")
    box = _Box(maildir(tmp_path / "box"))
    watcher.watch(box)
    notifier = watcher._notifier
    notifier.connectionLost(Failure(OSError("inotify descriptor closed")))
    assert watcher._notifier is None and watcher.watched == 0
    fd_reactor.runUntilCurrent()  # the rewatch is scheduled, not done inside the loss
    assert box.rewatched == 1
    watcher.close()


def test_inotify_asked_for_where_unusable_polls(clock: Clock) -> None:
    from twisted.logger import globalLogPublisher

    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        watcher = MaildirWatcher(clock, "inotify")
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert watcher._use_inotify is False
    assert any("inotify is not usable here" in e.get("log_format", "") for e in events)


def test_own_changes_are_remembered_up_to_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    from exchmail.store.maildir import watch

    monkeypatch.setattr(watch, "MAX_EXPECTED", 3)
    own = OwnChanges()
    own.expect([("cur", f"m{i}") for i in range(5)])
    assert not own.explained("cur", "m0") and not own.explained("cur", "m1")  # the oldest went
    assert all(own.explained("cur", f"m{i}") for i in range(2, 5))


# -- a watched Maildir mailbox ---------------------------------------------------------------
def test_watched_mailbox_follows_a_rename(store: Any, clock: Clock) -> None:
    account = call(store.account, "bob")
    call(account.create, "Old")
    box = call(account.mailbox, "Old")
    listener = Recorder()
    box.add_listener(listener)
    call(account.rename, "Old", "New")
    assert box.name == "New" and box.path == store.root / "bob" / ".New"
    drop_in(box.path, "1700000030.M1P1Q1.mx", b"x\n")  # watched at its new place
    clock.advance(POLL)
    assert listener.events == [("added", list(box.uids()))] and len(box.uids()) == 1
    box.remove_listener(listener)


def test_content_lost_while_watched_is_scanned_soon(store: Any, clock: Clock) -> None:
    from exchmail.errors import NoSuchMessage
    from exchmail.store.maildir.mailbox import WATCH_DELAY

    box = call(call(store.account, "bob").mailbox, "INBOX")
    uid = call(box.append, b"x\r\n")
    listener = Recorder()
    box.add_listener(listener)
    (box.path / "cur" / box.filename(uid)).unlink()
    with pytest.raises(NoSuchMessage):
        call(box.read_message, uid)
    clock.advance(WATCH_DELAY)  # not the next poll: a scan right away
    assert listener.events == [("expunged", [uid])] and list(box.uids()) == []
    box.remove_listener(listener)


def test_watch_again_looks_for_changes_made_meanwhile(store: Any, clock: Clock) -> None:
    from exchmail.store.maildir.mailbox import WATCH_DELAY

    box = call(call(store.account, "bob").mailbox, "INBOX")
    listener = Recorder()
    box.add_listener(listener)
    drop_in(box.path, "1700000031.M1P1Q1.mx", b"x\n")  # while the watch was broken
    box.watch_again()
    assert store.watcher.watched == 1
    clock.advance(WATCH_DELAY)
    assert listener.events == [("added", list(box.uids()))] and len(box.uids()) == 1
    box.remove_listener(listener)
