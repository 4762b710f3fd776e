"""Watching for outside changes (once per mailbox) and releasing idle mailboxes."""

from __future__ import annotations

import gc
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
