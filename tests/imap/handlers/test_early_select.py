"""SELECT of a mailbox opened early (IEarlyOpen; exchmail.imap.handlers
``needs_details`` and the session's wait).

A Maildir folder of files dropped in by another program is selected as soon
as its names are read; commands that look only at flags, UIDs and MODSEQs
are answered at once, and the others wait until the mailbox has learnt
every message's internal date and sizes.  The store's thread pool is a
queue here, so the test decides when the learning happens.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "store"))
from harness import Harness  # noqa: E402
from test_maildir import QueueRunner, drop_in  # noqa: E402

from exchmail.store.maildir import MaildirStore, mailbox  # noqa: E402

DATE = 1_600_000_000  # 13-Sep-2020 12:26:40 +0000


@pytest.fixture
def runner() -> QueueRunner:
    return QueueRunner()


@pytest.fixture
def selected(tmp_path: Path, runner: QueueRunner) -> Any:
    return select_early(tmp_path, runner)


def select_early(tmp_path: Path, runner: QueueRunner) -> Any:
    """A session that selected INBOX (three files dropped in by another
    program) before the mailbox learnt their dates and sizes."""
    harness = Harness("rfc3501", store=MaildirStore(tmp_path, runner))
    client = harness.imap()
    client.line("L1 LOGIN alice pw")
    runner.flush()
    assert b"L1 OK" in client.take()
    for i in range(3):
        path = drop_in(
            tmp_path / "alice", f"170000000{i}.M1P1Q1.mx", b"Subject: %d\n\n" % i + b"x" * i + b"\n"
        )
        os.utime(path, (DATE, DATE))
    client.line("S1 SELECT INBOX")
    for d, outcome in runner.run_work():  # the load, not the learning it queues
        d.callback(outcome)
    answer = client.take()
    assert b"* 3 EXISTS" in answer and b"S1 OK" in answer
    assert runner.queue, "nothing left to learn"
    return client


@pytest.mark.parametrize(
    "command, expected",
    [
        ("UID FETCH 1:* (FLAGS)", b"* 3 FETCH (UID 3 FLAGS (\\Recent))"),
        ("FETCH 1:3 (UID FLAGS)", b"* 2 FETCH (UID 2 FLAGS (\\Recent))"),
        ("SEARCH UNSEEN", b"* SEARCH 1 2 3"),
        ("UID SEARCH UID 1:2 NOT DELETED", b"* SEARCH 1 2"),
        ("CAPABILITY", b"* CAPABILITY IMAP4rev1"),
    ],
)
def test_index_only_commands_are_answered_at_once(selected: Any, command: str, expected: bytes) -> None:
    answer = selected.line(f"T1 {command}")
    assert expected in answer and b"T1 OK" in answer


@pytest.mark.parametrize(
    "command, expected",
    [
        ("FETCH 1:* (RFC822.SIZE)", b"* 3 FETCH (RFC822.SIZE 18)"),
        ("FETCH 2 (INTERNALDATE)", b'* 2 FETCH (INTERNALDATE "13-Sep-2020 12:26:40 +0000")'),
        ("UID SEARCH LARGER 16", b"* SEARCH 2 3"),
        ("FETCH 1 (BODY.PEEK[HEADER])", b"Subject: 0\r\n\r\n"),
        ("SEARCH SUBJECT 2", b"* SEARCH 3"),
        ("STATUS INBOX (MESSAGES UNSEEN)", b'* STATUS "INBOX" (MESSAGES 3 UNSEEN 3)'),
    ],
)
def test_commands_that_need_dates_sizes_or_content_wait(
    selected: Any, runner: QueueRunner, command: str, expected: bytes
) -> None:
    assert selected.line(f"T1 {command}") == b""
    runner.flush()
    answer = selected.send()  # and run what the answer put off to the next turn
    assert expected in answer and b"T1 OK" in answer


def test_a_failed_learning_fails_the_command_not_the_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> Any:
        raise PermissionError("no reading here")

    monkeypatch.setattr(mailbox, "learn_details", broken)
    runner = QueueRunner()
    client = select_early(tmp_path, runner)
    client.line("T1 FETCH 1 (RFC822.SIZE)")
    runner.flush()
    assert client.send().startswith(b"T1 NO [SERVERBUG]")
    assert b"T2 OK" in client.line("T2 UID FETCH 1:* (FLAGS)")
