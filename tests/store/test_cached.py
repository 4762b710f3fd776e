"""Reads that cannot wait for the disk (exchmail.store.cached) and the stores'
use of them: a message in the page cache is read on the reactor thread,
anything else in the store's threads as before."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from helpers import result
from test_maildir import QueueRunner, result_of

from exchmail.store import cached
from exchmail.store.maildir import MaildirStore
from exchmail.store.maildir import mailbox as maildir_mailbox

pytestmark = pytest.mark.skipif(not cached.available(), reason="openat2 RESOLVE_CACHED needs Linux 5.12")


def written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def evicted(path: Path) -> Path:
    """``path`` with its pages dropped from the page cache (if the file system lets go)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return path


def test_a_cached_file_is_read_whole(tmp_path: Path) -> None:
    path = written(tmp_path / "m", b"Subject: x\n\nbody\n")
    assert cached.read_cached(str(path), 17) == b"Subject: x\n\nbody\n"


def test_a_file_of_another_size_is_left_to_the_thread(tmp_path: Path) -> None:
    path = written(tmp_path / "m", b"twelve bytes")
    assert cached.read_cached(str(path), 11) is None  # longer than announced
    assert cached.read_cached(str(path), 13) is None  # shorter
    assert cached.read_cached(str(path), 12) == b"twelve bytes"


def test_a_big_file_is_left_to_the_thread(tmp_path: Path) -> None:
    size = cached.MAX_CACHED_READ + 1
    path = written(tmp_path / "big", b"x" * size)
    assert cached.read_cached(str(path), size) is None


def test_a_missing_file_is_not_read(tmp_path: Path) -> None:
    try:  # ENOENT if the kernel remembers there is no such name, else EAGAIN
        assert cached.read_cached(str(tmp_path / "gone"), 3) is None
    except FileNotFoundError:
        pass
    written(tmp_path / "there", b"abc")
    os.unlink(tmp_path / "there")  # now the kernel knows
    with pytest.raises(FileNotFoundError):
        cached.read_cached(str(tmp_path / "there"), 3)


def test_a_file_not_in_the_page_cache_is_left_to_the_thread(tmp_path: Path) -> None:
    path = evicted(written(tmp_path / "m", b"y" * 50_000))
    outcome = cached.read_cached(str(path), 50_000)
    if outcome is not None:
        pytest.skip("this file system kept the pages (tmpfs?)")
    assert outcome is None
    path.read_bytes()  # now cached again
    assert cached.read_cached(str(path), 50_000) == b"y" * 50_000


def test_a_fifo_is_neither_waited_for_nor_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    assert cached.read_cached(str(tmp_path / "fifo"), 3) is None  # returns at once


def test_without_openat2_nothing_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = written(tmp_path / "m", b"abc")
    monkeypatch.setattr(cached.sys, "platform", "freebsd14")
    cached._openat2.cache_clear()
    try:
        assert not cached.available()
        assert cached.read_cached(str(path), 3) is None
    finally:
        monkeypatch.undo()
        cached._openat2.cache_clear()


# -- the Maildir store ---------------------------------------------------------------------------
def open_with_queue(root: Path) -> tuple[QueueRunner, Any]:
    runner = QueueRunner()
    account = result_of(runner, MaildirStore(root, runner).account("bob"))
    box = result_of(runner, account.mailbox("INBOX"))
    for data in (b"one\r\n", b"two\r\n", b"three\r\n"):
        result_of(runner, box.append(data))
    return runner, box


def test_maildir_reads_cached_messages_without_a_thread(tmp_path: Path) -> None:
    runner, box = open_with_queue(tmp_path)
    one, two, three = box.uids()
    assert result(box.read_message(two)) == b"two\r\n"  # fired at once: no thread
    assert result(box.read_messages([one, three, 99])) == [b"one\r\n", b"three\r\n", None]
    assert runner.queue == []


def test_maildir_reads_the_rest_in_a_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner, box = open_with_queue(tmp_path)
    one, two, three = box.uids()
    original = maildir_mailbox.read_cached

    def cached_but_two(path: str, size: int) -> bytes | None:
        return None if path.endswith(box.filename(two)) else original(path, size)

    monkeypatch.setattr(maildir_mailbox, "read_cached", cached_but_two)
    reading = box.read_messages([one, two, three])
    assert len(runner.queue) == 1  # one thread trip, for message two alone
    assert result_of(runner, reading) == [b"one\r\n", b"two\r\n", b"three\r\n"]
    assert result_of(runner, box.read_message(two)) == b"two\r\n"


def test_maildir_cached_read_of_a_file_renamed_by_another_program(tmp_path: Path) -> None:
    runner, box = open_with_queue(tmp_path)
    one, two, _ = box.uids()
    cur = tmp_path / "bob" / "cur"
    os.rename(cur / box.filename(two), cur / (box.filename(two) + "S"))  # another program's flag change
    # Gone as far as the index knows (as with a read in a thread) ...
    assert result_of(runner, box.read_messages([one, two])) == [b"one\r\n", None]
    result_of(runner, box.refresh())
    # ... until a scan finds it under its new name
    assert box.message(two).flags == frozenset({"\\Seen"})
    assert result(box.read_messages([one, two])) == [b"one\r\n", b"two\r\n"]


def test_stat_cached_is_stat(tmp_path: Path) -> None:
    written(tmp_path / "f", b"abc")
    for path in (tmp_path, tmp_path / "f"):
        found = cached.stat_cached(str(path))
        assert found is not None
        assert (found.st_ino, found.st_mtime_ns, found.st_size) == (
            os.stat(path).st_ino,
            os.stat(path).st_mtime_ns,
            os.stat(path).st_size,
        )


def test_maildir_refresh_of_an_unchanged_folder_needs_no_thread(tmp_path: Path) -> None:
    runner = QueueRunner()
    account = result_of(runner, MaildirStore(tmp_path, runner).account("bob"))
    folder = tmp_path / "bob"
    for sub in ("new", "cur"):
        os.utime(folder / sub, ns=(1_600_000_000 * 10**9, 1_600_000_000 * 10**9))  # long unchanged
    box = result_of(runner, account.mailbox("INBOX"))
    assert result(box.refresh()) is None and runner.queue == []  # the kernel's caches answered
    written(folder / "new" / "1700000000.M1P1Q1.mx", b"Subject: new\n\n")  # another program
    refreshing = box.refresh()
    assert runner.queue  # the changed stamp sends the scan to a thread
    result_of(runner, refreshing)
    assert len(box.uids()) == 1
