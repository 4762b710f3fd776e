"""Dates and sizes learnt after a first load (exchmail.store.maildir.details,
scan.load / learn_details, IEarlyOpen on the Maildir account).

A first load reads names only: files whose names do not record their
internal date and sizes (dropped in by another program) get placeholder rows
that the mailbox fills in the background, under its lock.  ``mailbox_early``
hands the mailbox out at once; ``mailbox`` only when its index is complete.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import call, result
from test_maildir import QueueRunner, drop_in, result_of

from exchmail.errors import NoSuchMailbox
from exchmail.interfaces import IEarlyOpen
from exchmail.store.maildir import MaildirStore, mailbox, scan
from exchmail.store.quota import QuotaPolicy, QuotaStore

OLD = 1_600_000_000


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mail" / "bob"
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True)
    return folder


def drop_three(folder: Path) -> list[Path]:
    """Two files from another program (no sizes in the name), one of ours."""
    paths = [
        drop_in(folder, "1700000001.M1P1Q1.mx", b"Subject: a\n\nbody\n"),
        drop_in(folder, "1700000002.M1P1Q1.mx", b"Subject: b\r\n\r\nlonger body\r\n"),
        drop_in(folder, f"1700000003.M1P1Q1.ours,S=3,W=4,D={OLD}:2,S", b"x\n\n", sub="cur"),
    ]
    os.utime(paths[0], (OLD + 10, OLD + 10))
    os.utime(paths[1], (OLD + 20, OLD + 20))
    return paths


def open_early(root: Path, runner: QueueRunner) -> tuple[Any, Any, Any]:
    """The account, and the early-opened INBOX with its ``details_known``,
    after the load ran but before any of the learning did."""
    account = result_of(runner, MaildirStore(root, runner).account("bob"))
    opening = account.mailbox_early("INBOX")
    for d, outcome in runner.run_work():  # the load only: learning is queued by it
        d.callback(outcome)
    box, details_known = result(opening)
    return account, box, details_known


def outcome_of(d: Any) -> list[Any]:
    """A list that gets ``d``'s result when it fires (passed on unchanged)."""
    seen: list[Any] = []

    def keep(outcome: Any) -> Any:
        seen.append(outcome)
        return outcome

    d.addBoth(keep)
    return seen


def test_a_first_load_reads_names_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drop_three(folder)

    def no_reading(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the load read a file")

    monkeypatch.setattr(scan, "measure", no_reading)
    monkeypatch.setattr(scan, "file_info", no_reading)
    loaded = scan.load(folder, time.time())
    # UID 1 is the file found in cur/ (its name tells all); then the arrivals
    assert list(loaded.later.uids) == [2, 3]
    rows = loaded.builder.rows
    assert (rows.dates[0], rows.stored[0], rows.exact[0]) == (OLD, 3, 4)
    assert list(rows.exact[1:]) == [0, 0]  # placeholders


def test_learn_details_measures_and_follows_renames(folder: Path) -> None:
    a, b, _ = drop_three(folder)
    os.rename(a, folder / "cur" / "1700000001.M1P1Q1.mx:2,S")
    os.rename(b, folder / "cur" / "1700000002.M1P1Q1.mx:2,")
    found = scan.learn_details(folder, ["1700000001.M1P1Q1.mx:2,", "1700000002.M1P1Q1.mx:2,", "gone:2,"])
    assert found[0] is not None and found[1] is not None and found[2] is None
    assert (found[0].internal_date, found[0].stored_size, found[0].exact_size) == (OLD + 10, 17, 20)
    assert (found[1].internal_date, found[1].stored_size, found[1].exact_size) == (OLD + 20, 27, 27)
    assert found[0].filename == "1700000001.M1P1Q1.mx:2,S"  # found again by its base name


def test_early_open_shows_flags_at_once_and_details_when_learnt(folder: Path) -> None:
    drop_three(folder)
    runner = QueueRunner()
    account, box, details_known = open_early(folder.parent, runner)
    assert IEarlyOpen.providedBy(account)
    ours, first, second = box.uids()
    assert box.message(ours).flags == frozenset({"\\Seen"})
    assert (box.message(ours).stored_size, box.message(ours).internal_date) == (3, OLD)
    assert box.message(first).exact_size == 0  # not learnt yet
    learning, complete, refreshing = details_known(), account.mailbox("INBOX"), box.refresh()
    outcomes = [outcome_of(d) for d in (learning, complete, refreshing)]
    assert outcomes == [[], [], []]
    runner.flush()
    assert outcomes == [[None], [box], [None]]
    assert details_known() is None
    assert (box.message(first).internal_date, box.message(first).exact_size) == (OLD + 10, 20)
    assert (box.message(second).stored_size, box.message(second).exact_size) == (27, 27)
    assert box.total_stored_size() == 3 + 17 + 27


def test_details_are_learnt_in_batches(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mailbox, "DETAILS_BATCH", 2)
    for i in range(5):
        drop_in(folder, f"17000000{i:02d}.M1P1Q1.mx", b"m" * (i + 1) + b"\n")
    runner = QueueRunner()
    account, box, details_known = open_early(folder.parent, runner)
    learning = details_known()
    runner.flush()
    assert result(learning) is None
    assert runner.calls.count("learn_details") == 3
    assert [box.message(uid).exact_size for uid in box.uids()] == [3, 4, 5, 6, 7]


def test_a_file_gone_before_its_details_are_learnt(folder: Path) -> None:
    a, _, _ = drop_three(folder)
    runner = QueueRunner()
    account, box, details_known = open_early(folder.parent, runner)
    os.unlink(folder / "cur" / "1700000001.M1P1Q1.mx:2,")
    result_of(runner, details_known())
    assert result_of(runner, box.refresh()) is None  # the next scan notices the loss
    assert len(box.uids()) == 2


def test_learning_that_fails_fails_every_wait(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drop_three(folder)

    def broken(*args: Any) -> Any:
        raise PermissionError("no reading here")

    monkeypatch.setattr(mailbox, "learn_details", broken)
    runner = QueueRunner()
    account, box, details_known = open_early(folder.parent, runner)
    learning = details_known()
    runner.flush()
    with pytest.raises(PermissionError):
        result(learning)
    with pytest.raises(PermissionError):
        result(details_known())
    with pytest.raises(PermissionError):
        result(account.mailbox("INBOX"))


def test_a_folder_deleted_while_learning(folder: Path) -> None:
    drop_three(folder)
    runner = QueueRunner()
    account, box, details_known = open_early(folder.parent, runner)
    learning = details_known()
    box.deleted()
    runner.flush()
    with pytest.raises(NoSuchMailbox):
        result(learning)


def test_a_complete_folder_has_nothing_to_learn(folder: Path) -> None:
    drop_in(folder, f"1700000003.M1P1Q1.ours,S=3,W=4,D={OLD}:2,S", b"x\n\n", sub="cur")
    runner = QueueRunner()
    _, box, details_known = open_early(folder.parent, runner)
    assert details_known() is None
    assert "learn_details" not in runner.calls


def test_quota_accounts_open_early_too(folder: Path) -> None:
    drop_three(folder)
    store = QuotaStore(MaildirStore(folder.parent), QuotaPolicy())
    account = call(store.account, "bob")
    assert IEarlyOpen.providedBy(account)
    box, details_known = call(account.mailbox_early, "INBOX")
    assert details_known() is None  # run_sync: learnt at once
    assert box.wrapped is call(account.mailbox, "INBOX").wrapped
    assert [box.message(uid).exact_size for uid in box.uids()] == [4, 20, 27]
