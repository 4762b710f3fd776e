"""Maildir on disk: compatibility with existing files, dates, \\Recent, tmp/ cleanup,
UID list writing, and races between threads and the index."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import Recorder, call, result
from test_maildir import QueueRunner, cur_files, drop_in, open_inbox, result_of

from exchmail.errors import NoSuchMailbox
from exchmail.store.maildir import MaildirStore, deliver, uidlist
from exchmail.store.maildir import mailbox as maildir_mailbox
from exchmail.store.maildir.scan import TMP_MAX_AGE, clean_tmp

HOUR = 3600


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "mail"


def make_folder(root: Path) -> Path:
    folder = root / "bob"
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return folder


# -- files written by earlier versions and by other programs ---------------------------
def test_old_uidlist_and_files_load_unchanged(root: Path) -> None:
    """A folder as the previous version left it: header without R, garbage lines."""
    folder = make_folder(root)
    (folder / "cur" / "1600000000.M1P1Q1.old,S=2,W=3:2,S").write_bytes(b"a\n")
    (folder / "cur" / "1600000001.M1P1Q2.old,S=2,W=3:2,Fa").write_bytes(b"b\n")
    (folder / "exchmail-keywords").write_text("0 $Work\n")
    (folder / "exchmail-uidlist").write_text(
        "V1234 N40\n7 1600000000.M1P1Q1.old,S=2,W=3\nnot a line\n"
        "12 1600000001.M1P1Q2.old,S=2,W=3\n5 out-of-order\n"
    )
    box = open_inbox(root)
    assert box.uid_validity == 1234 and list(box.uids()) == [7, 12] and box.uid_next == 40
    assert box.message(12).flags == frozenset({"\\Flagged", "$Work"})
    assert box.claim_recent() == frozenset()  # found in cur/: not new to anyone
    assert call(box.read_message, 7) == b"a\r\n"
    assert call(box.append, b"c\r\n") == 40
    lines = uid_lines(folder / "exchmail-uidlist")
    assert lines[0] == "V1234 N40" and lines[-1] == f"40 {box.filename(40)[:-3]}"
    assert list(open_inbox(root).uids()) == [7, 12, 40]


def test_new_uidlist_lines_are_skipped_by_old_readers() -> None:
    """R lines and the R header field are invisible to the old parser's rules
    (a line is a message if it starts with a digit; header fields by letter)."""
    data = (
        uidlist.UidList(
            9, 20, [(3, "base")], first_recent=15, highest_modseq=7, modseqs={3: 5}, expunged=[(6, 4)]
        ).serialize()
        + b"R17\n"
    )
    lines = data.decode().splitlines()
    assert lines == ["V9 N20 R15 H7 F0", "3 base", "M5 3", "X6 4", "R17"]
    assert not any(line.split(" ")[0].isdigit() for line in lines[2:])
    # ...and the new parser reads them back
    parsed = uidlist.UidList.parse(data)
    assert parsed is not None
    assert (parsed.highest_modseq, parsed.modseqs, parsed.expunged) == (7, {3: 5}, [(6, 4)])
    parsed = uidlist.UidList.parse(data)
    assert parsed is not None and parsed.first_recent == 17 and parsed.entries == [(3, "base")]


def test_bare_lf_and_crlf_files_from_other_programs(root: Path) -> None:
    box = open_inbox(root)
    drop_in(root / "bob", "1700000010.M1P1Q1.mutt", b"Subject: lf\n\nbody\n")
    drop_in(root / "bob", "1700000011.M1P1Q1.win", b"Subject: crlf\r\n\r\nbody\r\n")
    call(box.refresh)
    lf, crlf = box.uids()
    assert call(box.read_message, lf) == b"Subject: lf\r\n\r\nbody\r\n"
    assert call(box.read_message, crlf) == b"Subject: crlf\r\n\r\nbody\r\n"
    assert (box.message(lf).exact_size, box.message(crlf).exact_size) == (21, 23)
    assert (box.message(lf).stored_size, box.message(crlf).stored_size) == (18, 23)


# -- internal dates ---------------------------------------------------------------------
def test_dates_beyond_the_file_system_are_kept_in_the_name(root: Path) -> None:
    box = open_inbox(root)
    late = call(box.append, b"x\r\n", frozenset(), 253402300799.0)  # 9999-12-31T23:59:59Z
    usual = call(box.append, b"y\r\n", frozenset(), 1_234_567_890.0)
    assert ",D=253402300799:2," in box.filename(late)
    assert ",D=" not in box.filename(usual)  # the mtime holds it
    cur = root / "bob" / "cur"
    assert os.stat(cur / box.filename(usual)).st_mtime == 1_234_567_890.0
    again = open_inbox(root)
    assert again.message(late).internal_date == 253402300799.0
    assert again.message(usual).internal_date == 1_234_567_890.0


# -- \Recent ---------------------------------------------------------------------------------
def test_recent_survives_restart_until_claimed(root: Path) -> None:
    box = open_inbox(root)
    box.claim_recent()
    first = call(box.append, b"a\r\n")
    assert open_inbox(root).claim_recent() == frozenset({first})  # a new process
    assert open_inbox(root).claim_recent() == frozenset()  # claimed for good
    drop_in(root / "bob", "1700000012.M1P1Q1.mx", b"b\n")
    again = open_inbox(root)
    assert again.claim_recent() == frozenset(again.uids()[-1:])


# -- tmp/ ----------------------------------------------------------------------------------
def test_tmp_leftovers_older_than_36_hours_are_removed(root: Path, monkeypatch) -> None:
    folder = make_folder(root)
    (folder / "tmp" / "leftover").write_bytes(b"half a message")
    (folder / "tmp" / "olddir").mkdir()
    # The files were just made (their change time is now): pretend 37 hours pass.
    later = time.time() + TMP_MAX_AGE + HOUR
    monkeypatch.setattr(time, "time", lambda: later)
    box = open_inbox(root)
    assert os.listdir(folder / "tmp") == ["olddir"]  # only files go
    assert list(box.uids()) == []
    # Also on a rescan of an open mailbox.
    (folder / "tmp" / "second").write_bytes(b"half a message")
    later += TMP_MAX_AGE + HOUR
    drop_in(folder, "1700000013.M1P1Q1.mx", b"x\n")
    call(box.refresh)
    assert os.listdir(folder / "tmp") == ["olddir"]


def test_tmp_keeps_a_delivery_whose_date_is_old(root: Path) -> None:
    """A delivery in progress sets its file's mtime to the message's internal
    date (here two days ago): the change time says it is new, so it stays."""
    folder = make_folder(root)
    path = folder / "tmp" / "in-flight"
    path.write_bytes(b"a message being delivered")
    old = time.time() - 2 * TMP_MAX_AGE
    os.utime(path, (old, old))
    assert clean_tmp(folder, time.time()) == []
    assert path.exists()
    assert clean_tmp(folder, time.time() + TMP_MAX_AGE + HOUR) == ["in-flight"]


# -- the UID list ------------------------------------------------------------------------------
def uid_lines(path: Path) -> list[str]:
    """The header and message lines of a UID list (without its MODSEQ lines)."""
    return [line for line in path.read_text().splitlines() if line[:1] not in ("M", "X")]


def test_small_expunges_in_a_large_folder_do_not_rewrite_the_uid_list(root: Path) -> None:
    box = open_inbox(root)
    uids = [call(box.append, b"m\r\n") for _ in range(10)]
    path = root / "bob" / "exchmail-uidlist"
    call(box.set_flags, uids[:2], frozenset({"\\Deleted"}), "add")
    call(box.expunge)
    assert len(uid_lines(path)) == 11  # stale lines stay for now
    again = open_inbox(root)  # they are dropped (and the file rewritten) on load
    assert list(again.uids()) == uids[2:]
    assert uid_lines(path)[0].startswith("V") and len(uid_lines(path)) == 9
    call(again.set_flags, uids[2:7], frozenset({"\\Deleted"}), "add")
    call(again.expunge)  # now half of the lines would be stale: rewritten
    assert [int(line.split()[0]) for line in uid_lines(path)[1:]] == uids[7:]
    assert call(again.append, b"n\r\n") == uids[-1] + 1


def test_uid_list_write_failure_is_logged_and_caught_up(root: Path, monkeypatch: Any) -> None:
    box = open_inbox(root)
    calls = []

    def broken(folder: Path, lines: Any) -> None:
        calls.append(lines)
        raise OSError("disk full")

    monkeypatch.setattr(uidlist, "append_lines", broken)
    uid = call(box.append, b"x\r\n")  # the message is stored: the append succeeds
    assert calls and uid in box.uids()
    monkeypatch.undo()
    second = call(box.append, b"y\r\n")  # the next write is a whole new file
    assert list(open_inbox(root).uids()) == [uid, second]


def test_concurrent_deliveries_never_lose_keywords(root: Path) -> None:
    runner = QueueRunner()
    account = result_of(runner, MaildirStore(root, runner).account("bob"))
    box = result_of(runner, account.mailbox("INBOX"))
    first = box.append(b"a\r\n", frozenset({"$One"}))
    second = box.append(b"b\r\n", frozenset({"$Two"}))
    # The threads run in the opposite order: the older map must not win.
    queued = runner.queue[:]
    runner.queue.clear()
    for f, args, d in reversed(queued):
        d.callback(f(*args))
    runner.flush()
    result(first), result(second)
    assert (root / "bob" / "exchmail-keywords").read_text() == "0 $One\n1 $Two\n"
    again = open_inbox(root)
    assert {again.message(uid).flags for uid in again.uids()} == {frozenset({"$One"}), frozenset({"$Two"})}


# -- races between the threads and the index --------------------------------------------------
def test_read_finds_a_message_renamed_meanwhile(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(maildir_mailbox, "read_cached", lambda path, size: None)  # read in the thread
    runner = QueueRunner()
    account = result_of(runner, MaildirStore(root, runner).account("bob"))
    box = result_of(runner, account.mailbox("INBOX"))
    uid = result_of(runner, box.append(b"body\r\n"))
    reading = box.read_message(uid)  # queued with the current file name
    flagging = box.set_flags([uid], frozenset({"\\Seen"}), "add")
    read_work = runner.queue.pop(0)
    runner.flush()  # the rename happens first
    result(flagging)
    f, args, d = read_work
    try:
        f(*args)
    except FileNotFoundError:
        from twisted.python.failure import Failure

        d.errback(Failure())
    runner.flush()  # the read is tried again, under the lock, with the new name
    assert result(reading) == b"body\r\n"


def test_flag_change_on_a_file_renamed_by_another_program(root: Path) -> None:
    box = open_inbox(root)
    uid = call(box.append, b"x\r\n")
    listener = Recorder()
    box.add_listener(listener)
    cur = root / "bob" / "cur"
    name = box.filename(uid)
    (cur / name).rename(cur / (name.split(":")[0] + ":2,F"))  # like mutt
    assert call(box.set_flags, [uid], frozenset({"\\Seen"}), "add") == {uid: frozenset()}
    call(box.refresh)  # the next scan finds what happened
    assert box.message(uid).flags == frozenset({"\\Flagged"})
    assert listener.events == [("flags", [uid], None)]


def test_expunge_stops_at_the_first_failure_and_keeps_what_went(root: Path, monkeypatch: Any) -> None:
    box = open_inbox(root)
    uids = [call(box.append, b"m\r\n", frozenset({"\\Deleted"})) for _ in range(3)]
    listener = Recorder()
    box.add_listener(listener)
    real_unlink = os.unlink
    seen = []

    def unlink(path: Any) -> None:
        seen.append(path)
        if len(seen) == 2:
            raise PermissionError("read-only file system")
        real_unlink(path)

    monkeypatch.setattr(deliver.os, "unlink", unlink)
    with pytest.raises(PermissionError):
        call(box.expunge)
    assert listener.events == [("expunged", [uids[0]])]
    assert list(box.uids()) == uids[1:]
    assert len(cur_files(root / "bob")) == 2


def test_open_racing_with_delete_is_not_kept(root: Path) -> None:
    runner = QueueRunner()
    account = result_of(runner, MaildirStore(root, runner).account("bob"))
    result_of(runner, account.create("Box"))
    opening = account.mailbox("Box")
    load = runner.queue.pop(0)
    result_of(runner, account.delete("Box"))
    runner.queue.insert(0, load)
    runner.flush()  # the stale load is redone, and now finds nothing
    with pytest.raises(NoSuchMailbox):
        result(opening)


@pytest.mark.parametrize("hint", [0, 5, 17, 18, 19, 1000])
def test_read_wire_reads_the_whole_file_whatever_the_size_hint(tmp_path: Path, hint: int) -> None:
    from exchmail.store.maildir.deliver import read_wire

    path = tmp_path / "m"
    path.write_bytes(b"A: b\n\nline\n.dot\n")  # 17 octets stored, 21 on the wire
    assert read_wire(path, hint) == b"A: b\r\n\r\nline\r\n.dot\r\n"
    assert read_wire(path) == b"A: b\r\n\r\nline\r\n.dot\r\n"


@pytest.mark.parametrize(
    "size", [0, 1, 2, deliver.CHUNK - 1, deliver.CHUNK, deliver.CHUNK + 1, 2 * deliver.CHUNK + 3]
)
def test_measure_counts_every_octet_around_chunk_edges(tmp_path: Path, size: int) -> None:
    # Bare LFs and CRLFs, one CRLF split across the chunk edge.
    data = (b"ab\ncd\r\n" * (size // 7 + 1))[:size]
    if size > deliver.CHUNK:
        data = data[: deliver.CHUNK - 1] + b"\r\n" + data[deliver.CHUNK + 1 :]
    path = tmp_path / "m"
    path.write_bytes(data)
    wire = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert deliver.measure(path) == (len(data), len(wire))
    stored, exact, mtime = deliver.measure(path, with_mtime=True)
    assert (stored, exact, mtime) == (len(data), len(wire), path.stat().st_mtime)


def test_a_big_load_gives_freed_memory_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from exchmail.store.maildir import scan

    for sub in ("cur", "new", "tmp"):
        (tmp_path / "box" / sub).mkdir(parents=True)
    for i in range(3):
        drop_in(tmp_path / "box", f"{i}.M{i}P1.host", b"Subject: %d\n\nbody\n" % i)
    released: list[bool] = []
    monkeypatch.setattr(scan, "release_free_memory", lambda: released.append(True))
    monkeypatch.setattr(scan, "TRIM_AFTER", 3)
    assert len(scan.load(tmp_path / "box", time.time()).builder.rows) == 3
    assert released == [True]
    monkeypatch.setattr(scan, "TRIM_AFTER", 4)  # a smaller folder keeps what it freed
    scan.load(tmp_path / "box", time.time())
    assert released == [True]


def test_release_free_memory_runs_where_the_c_library_cannot_trim(monkeypatch: pytest.MonkeyPatch) -> None:
    from exchmail.store.maildir import scan

    scan.release_free_memory()  # glibc here: trims
    monkeypatch.setattr(scan, "_malloc_trim", lambda: None)
    scan.release_free_memory()  # musl and others: nothing to do, no error
