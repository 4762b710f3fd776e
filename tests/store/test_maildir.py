"""Maildir backend specifics: files on disk, persistence, outside changes."""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import Recorder, call, result
from twisted.internet import defer
from twisted.python.failure import Failure

from exchmail.errors import NoSuchMailbox, NoSuchMessage, StoreError
from exchmail.store.maildir import MaildirStore, scan
from exchmail.store.maildir.deliver import CHUNK

MUTT_NAME = re.compile(
    r"^(?P<secs>\d+)\.M(?P<usec>\d+)P(?P<pid>\d+)Q(?P<q>\d+)\.(?P<host>[^,:/]+)"
    r",S=(?P<s>\d+),W=(?P<w>\d+):2,(?P<flags>[A-Za-z]*)$"
)


class QueueRunner:
    """A run_blocking that queues the work until flush(), like a thread pool
    whose threads have not run yet."""

    def __init__(self) -> None:
        self.queue: list[tuple[Callable[..., Any], tuple[Any, ...], defer.Deferred[Any]]] = []
        self.calls: list[str] = []

    def __call__(self, f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.queue.append((f, args, d))
        self.calls.append(f.__name__)
        return d

    def run_work(self) -> list[tuple[defer.Deferred[Any], Any]]:
        """Do the queued work (the 'thread' part) without firing callbacks."""
        done = []
        while self.queue:
            f, args, d = self.queue.pop(0)
            try:
                done.append((d, f(*args)))
            except Exception:  # noqa: BLE001 - a thread pool hands back any error
                done.append((d, Failure()))
        return done

    def flush(self) -> None:
        while self.queue:
            for d, outcome in self.run_work():
                if isinstance(outcome, Failure):
                    d.errback(outcome)
                else:
                    d.callback(outcome)


def result_of(runner: QueueRunner, d: defer.Deferred[Any]) -> Any:
    runner.flush()
    return result(d)


def count_listings(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Count the folder listings of scans from now on (``listings()`` tells)."""
    calls = []
    original = scan.list_folder

    def counting(folder: Path) -> Any:
        calls.append(folder)
        return original(folder)

    monkeypatch.setattr(scan, "list_folder", counting)
    return lambda: len(calls)


def age_folder(folder: Path) -> None:
    """Date new/ and cur/ an hour back, so that a scan's stamp is trusted."""
    old = time.time() - 3600
    for sub in ("new", "cur"):
        os.utime(folder / sub, (old, old))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "mail"


def open_inbox(root: Path, name: str = "INBOX") -> Any:
    account = call(MaildirStore(root).account, "bob")
    return call(account.mailbox, name)


def cur_files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder / "cur"))


def read(box: Any, uid: int) -> bytes:
    return call(box.read_message, uid)


def stream(box: Any, uid: int, size: int) -> bytes:
    reader = call(box.open_message, uid)
    chunks = []
    while chunk := call(reader.read, size):
        chunks.append(chunk)
    reader.close()
    return b"".join(chunks)


def drop_in(folder: Path, name: str, data: bytes, sub: str = "new") -> Path:
    """Deliver like an outside MDA: write in tmp/, rename into new/."""
    tmp = folder / "tmp" / name
    tmp.write_bytes(data)
    target = folder / sub / name
    tmp.rename(target)
    return target


# -- content ----------------------------------------------------------------
@pytest.mark.parametrize(
    "wire, stored",
    [
        (b"Subject: a\r\n\r\nbody\r\n", b"Subject: a\n\nbody\n"),
        (
            b"Subject: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe \xff\x00\x80\r\n",
            b"Subject: 8bit\n\nGr\xc3\xbc\xc3\x9fe \xff\x00\x80\n",
        ),
        (b"no newline at end", b"no newline at end"),
        (b"lone\rCR\r\n", b"lone\rCR\n"),
        (b"", b""),
    ],
)
def test_round_trip_crlf_on_wire_lf_on_disk(root: Path, wire: bytes, stored: bytes) -> None:
    box = open_inbox(root)
    uid = call(box.append, wire)
    assert read(box, uid) == wire
    record = box.message(uid)
    (name,) = cur_files(root / "bob")
    assert (root / "bob" / "cur" / name).read_bytes() == stored
    assert record.stored_size == len(stored) == os.path.getsize(root / "bob" / "cur" / name)
    assert record.exact_size == len(wire)
    match = MUTT_NAME.match(name)
    assert match and int(match["s"]) == len(stored) and int(match["w"]) == len(wire)


def test_bare_lf_source_served_as_crlf(root: Path) -> None:
    box = open_inbox(root)
    uid = call(box.append, b"Subject: lf\n\nline1\nline2\r\nline3\n")
    assert read(box, uid) == b"Subject: lf\r\n\r\nline1\r\nline2\r\nline3\r\n"
    assert box.message(uid).exact_size == len(read(box, uid))
    assert box.message(uid).stored_size == len(b"Subject: lf\n\nline1\nline2\nline3\n")


@pytest.mark.slow
def test_large_message_chunk_boundaries_and_partial_reads(root: Path) -> None:
    # A CRLF straddles every 64 KiB boundary of the source file.
    line = b"x" * (CHUNK - 1) + b"\r\n"
    wire = b"Subject: big\r\n\r\n" + line * 5 + b"\xfe\xff end\r\n"
    source = io.BytesIO(b"junk" + wire)
    source.seek(4)
    box = open_inbox(root)
    uid = call(box.append, source)
    record = box.message(uid)
    assert record.exact_size == len(wire)
    assert record.stored_size == len(wire) - wire.count(b"\r\n")
    reader = call(box.open_message, uid)
    assert call(reader.read, 9) == b"Subject: "
    assert call(reader.read, 5) == b"big\r\n"
    pieces = []
    while piece := call(reader.read, 7777):
        pieces.append(piece)
    reader.close()
    assert b"Subject: big\r\n" + b"".join(pieces) == wire
    assert stream(box, uid, 1) == wire
    assert read(box, uid) == wire


@pytest.mark.parametrize("offset", [-2, -1, 0, 1])
def test_cr_exactly_at_chunk_boundary(root: Path, offset: int) -> None:
    # Delivery side: a CRLF split between two source chunks.
    wire = b"a" * (CHUNK - 1 + offset) + b"\r\nb\r\n\r\n" + b"c" * 10 + b"\r\n"
    box = open_inbox(root)
    uid = call(box.append, io.BytesIO(wire))
    assert read(box, uid) == wire
    assert box.message(uid).exact_size == len(wire)
    # Read side: a file with CRLF dropped in by another program, whose CR
    # ends a 64 KiB read; it must not be doubled to CRCRLF.
    drop_in(root / "bob", "1700000009.M1P1Q1.mx", wire + b"bare\nlf\n")
    call(box.refresh)
    other = box.uids()[-1]
    assert read(box, other) == wire + b"bare\r\nlf\r\n"
    assert box.message(other).exact_size == len(wire) + 10


def test_internal_date_is_mtime(root: Path) -> None:
    box = open_inbox(root)
    uid = call(box.append, b"x\r\n", frozenset(), 1_234_567_890.5)
    (name,) = cur_files(root / "bob")
    assert os.stat(root / "bob" / "cur" / name).st_mtime == pytest.approx(1_234_567_890.5)
    assert open_inbox(root).message(uid).internal_date == pytest.approx(1_234_567_890.5)


def test_mutt_compatible_names_and_flag_letters(root: Path) -> None:
    box = open_inbox(root)
    flags = frozenset({"\\Seen", "\\Deleted", "\\Answered", "\\Flagged", "\\Draft", "$MDNSent"})
    call(box.append, b"x\r\n", flags)
    (name,) = cur_files(root / "bob")
    match = MUTT_NAME.match(name)
    assert match, name
    assert match["flags"] == "DFRSTa"
    assert (root / "bob" / "exchmail-keywords").read_text() == "0 $MDNSent\n"
    assert not os.listdir(root / "bob" / "tmp")
    assert not os.listdir(root / "bob" / "new")


# -- UIDs and persistence ----------------------------------------------------
def test_uids_never_reused_across_restart(root: Path) -> None:
    box = open_inbox(root)
    uids = [call(box.append, b"m%d\r\n" % i) for i in range(3)]
    assert uids == sorted(uids) and len(set(uids)) == 3
    validity = box.uid_validity
    call(box.set_flags, [uids[-1]], frozenset({"\\Deleted"}), "add")
    assert call(box.expunge) == [uids[-1]]
    header = (root / "bob" / "exchmail-uidlist").read_text().splitlines()[0]
    # nothing claimed yet; HIGHESTMODSEQ 6: three appends, one flag change, one expunge
    assert header == f"V{validity} N{uids[-1] + 1} R{uids[0]} H6 F0"
    again = open_inbox(root)  # a new store on the same root: a restart
    assert again is not box
    assert again.uid_validity == validity
    assert list(again.uids()) == uids[:2]
    assert again.uid_next == uids[-1] + 1
    assert again.claim_recent() == frozenset(uids[:2])  # still nobody has seen them
    assert call(again.append, b"new\r\n") == uids[-1] + 1
    assert read(again, uids[0]) == b"m0\r\n"


def test_flags_and_keywords_persist(root: Path) -> None:
    box = open_inbox(root)
    uid = call(box.append, b"x\r\n", frozenset({"\\Seen"}))
    call(box.set_flags, [uid], frozenset({"$Forwarded", "Junk", "\\Flagged"}), "add")
    call(box.set_flags, [uid], frozenset({"\\Seen"}), "remove")
    assert box.message(uid).flags == frozenset({"$Forwarded", "Junk", "\\Flagged"})
    (name,) = cur_files(root / "bob")
    assert name.endswith(":2,Fab")
    again = open_inbox(root)
    assert again.message(uid).flags == frozenset({"$Forwarded", "Junk", "\\Flagged"})
    keywords = (root / "bob" / "exchmail-keywords").read_text().splitlines()
    assert sorted(kw.split(" ", 1)[1] for kw in keywords) == ["$Forwarded", "Junk"]
    assert sorted(kw.split(" ", 1)[0] for kw in keywords) == ["0", "1"]


def test_too_many_keywords(root: Path) -> None:
    box = open_inbox(root)
    uid = call(box.append, b"x\r\n")
    call(box.set_flags, [uid], frozenset(f"kw{i}" for i in range(26)), "add")
    with pytest.raises(StoreError):
        call(box.set_flags, [uid], frozenset({"one-too-many"}), "add")
    assert len(box.message(uid).flags) == 26


def test_uidlist_repair_on_load(root: Path) -> None:
    box = open_inbox(root)
    a, b = call(box.append, b"a\r\n"), call(box.append, b"b\r\n")
    folder = root / "bob"
    name_a = next(n for n in cur_files(folder) if (folder / "cur" / n).read_bytes() == b"a\n")
    (folder / "cur" / name_a).unlink()  # removed behind our back
    drop_in(folder, "1500000000.zzz.otherhost", b"c\n", sub="cur")
    drop_in(folder, "1400000000.aaa.otherhost:2,S", b"d\n", sub="cur")
    again = open_inbox(root)
    assert again.uids()[0] == b
    assert len(again.uids()) == 3
    d_uid, c_uid = again.uids()[1:]
    assert b < d_uid < c_uid  # unlisted files get new UIDs in file name order
    assert again.message(d_uid).flags == frozenset({"\\Seen"})
    assert again.message(c_uid).exact_size == 3 and again.message(c_uid).stored_size == 2
    lines = (folder / "exchmail-uidlist").read_text().splitlines()
    lines = [line for line in lines if line[:1] not in ("M", "X")]  # MODSEQ lines
    assert [line.split()[0] for line in lines[1:]] == [str(b), str(d_uid), str(c_uid)]
    assert a not in again.uids()


def test_tmp_files_never_visible(root: Path) -> None:
    folder = root / "bob"
    box = open_inbox(root)
    (folder / "tmp" / "1600000000.M1P1Q1.crashed").write_bytes(b"Subject: half")
    call(box.refresh)
    assert list(box.uids()) == []
    assert list(open_inbox(root).uids()) == []


def test_failed_delivery_leaves_nothing(root: Path) -> None:
    class Broken(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def read(self, size: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 2:
                raise OSError("connection lost")
            return b"x" * 10

    box = open_inbox(root)
    with pytest.raises(OSError):
        call(box.append, Broken())
    assert list(box.uids()) == []
    for sub in ("tmp", "new", "cur"):
        assert os.listdir(root / "bob" / sub) == []


# -- outside changes ---------------------------------------------------------
def test_outside_delivery_seen_on_refresh(root: Path) -> None:
    box = open_inbox(root)
    box.claim_recent()
    listener = Recorder()
    box.add_listener(listener)
    drop_in(root / "bob", "1700000000.M5P9Q1.mx", b"Subject: hi\n\nfrom mda\n")
    call(box.refresh)
    (uid,) = box.uids()
    assert listener.events == [("added", [uid])]
    assert box.claim_recent() == frozenset({uid})
    assert read(box, uid) == b"Subject: hi\r\n\r\nfrom mda\r\n"
    assert box.message(uid).exact_size == 25 and box.message(uid).stored_size == 22
    assert cur_files(root / "bob") == ["1700000000.M5P9Q1.mx:2,"]
    call(box.refresh)
    assert list(box.uids()) == [uid]  # not added twice


def test_new_at_first_load_is_recent(root: Path) -> None:
    call(MaildirStore(root).account, "bob")
    drop_in(root / "bob", "1700000001.M1P1Q1.mx", b"x\n")
    box = open_inbox(root)
    assert box.claim_recent() == frozenset(box.uids())


def test_outside_flag_change_and_removal(root: Path) -> None:
    box = open_inbox(root)
    keep, gone = call(box.append, b"a\r\n"), call(box.append, b"b\r\n")
    listener = Recorder()
    box.add_listener(listener)
    cur = root / "bob" / "cur"
    keep_name, gone_name = box.filename(keep), box.filename(gone)
    (cur / keep_name).rename(cur / (keep_name.split(":")[0] + ":2,FS"))  # like mutt
    (cur / gone_name).unlink()
    before = box.highest_modseq()
    call(box.refresh)
    # RFC 7162: outside changes are changes too (new MODSEQs; the removal remembered)
    assert dict(box.modseqs([keep]))[keep] > before and box.expunged_since(before) == [gone]
    assert box.message(keep).flags == frozenset({"\\Flagged", "\\Seen"})
    assert box.message(gone) is None
    assert ("flags", [keep], None) in listener.events
    assert ("expunged", [gone]) in listener.events
    # The outside change sticks, and our next change builds on it.
    call(box.set_flags, [keep], frozenset({"\\Seen"}), "remove")
    assert cur_files(root / "bob") == [keep_name.split(":")[0] + ":2,F"]
    assert list(open_inbox(root).uids()) == [keep]


def test_refresh_cheap_when_unchanged(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = QueueRunner()
    account = result_of(runner, MaildirStore(root, runner).account("bob"))
    d = account.mailbox("INBOX")
    runner.flush()
    box = result(d)
    old = time.time() - 3600
    for sub in ("new", "cur"):
        os.utime(root / "bob" / sub, (old, old))
    box.refresh()
    runner.flush()  # first refresh after settling rescans once
    listings = count_listings(monkeypatch)
    result_of(runner, box.refresh())
    assert listings() == 0  # nothing changed: one stat of new/ and cur/, no listing
    drop_in(root / "bob", "1700000002.M1P1Q1.mx", b"x\n")
    result_of(runner, box.refresh())
    assert listings() == 1
    assert len(box.uids()) == 1


# -- threads: index changes only in callbacks --------------------------------
def test_blocking_work_goes_through_run_blocking(root: Path) -> None:
    runner = QueueRunner()
    account = result_of(runner, MaildirStore(root, runner).account("bob"))
    first, second = account.mailbox("INBOX"), account.mailbox("inbox")
    runner.flush()
    box = result(first)
    assert result(second) is box  # concurrent opens share one object
    d = box.append(b"x\r\n")
    assert runner.calls[-1] == "deliver"
    done = runner.run_work()  # the file is in cur/ now, but not yet indexed
    assert len(cur_files(root / "bob")) == 1
    assert list(box.uids()) == []
    # A refresh that sees the half-finished delivery must not index it.
    refreshed = box.refresh()
    runner.flush()
    result(refreshed)
    assert list(box.uids()) == []
    for deferred, outcome in done:
        deferred.callback(outcome)
    uid = result_of(runner, d)  # once its UID list line is written
    assert list(box.uids()) == [uid]
    refreshed = box.refresh()
    runner.flush()
    result(refreshed)
    assert list(box.uids()) == [uid]


# -- account operations ------------------------------------------------------
def test_delete_removes_only_own_directory(root: Path) -> None:
    account = call(MaildirStore(root).account, "bob")
    call(account.create, "A/B")
    box = call(account.mailbox, "A")
    call(box.append, b"x\r\n")
    call(account.delete, "A")
    assert not (root / "bob" / ".A").exists()
    assert (root / "bob" / ".A.B" / "cur").is_dir()
    assert [e for e in os.listdir(root / "bob") if e.startswith("..")] == []
    with pytest.raises(NoSuchMailbox):
        call(box.append, b"y\r\n")
    assert not (root / "bob" / ".A").exists()
    call(account.create, "A")
    assert call(account.mailbox, "A") is not box


def test_rename_moves_directories_and_open_objects(root: Path) -> None:
    account = call(MaildirStore(root).account, "bob")
    call(account.create, "Old/Kid")
    kid = call(account.mailbox, "Old/Kid")
    call(account.rename, "Old", "Neu")
    assert sorted(e for e in os.listdir(root / "bob") if e.startswith(".")) == [".Neu", ".Neu.Kid"]
    assert kid.name == "Neu/Kid" and kid.path == root / "bob" / ".Neu.Kid"
    uid = call(kid.append, b"x\r\n")
    assert len(cur_files(root / "bob" / ".Neu.Kid")) == 1
    assert list(open_inbox(root, "Neu/Kid").uids()) == [uid]


def test_rename_inbox_on_disk(root: Path) -> None:
    account = call(MaildirStore(root).account, "bob")
    inbox = call(account.mailbox, "INBOX")
    uid = call(inbox.append, b"x\r\n", frozenset({"$Work", "\\Seen"}))
    call(account.rename, "INBOX", "Old Mail")
    assert cur_files(root / "bob") == []
    saved = open_inbox(root, "Old Mail")
    assert saved.uid_validity != inbox.uid_validity
    assert saved.message(uid).flags == frozenset({"$Work", "\\Seen"})
    assert list(open_inbox(root).uids()) == []
    assert call(inbox.append, b"y\r\n") > uid


def test_subscriptions_file(root: Path) -> None:
    account = call(MaildirStore(root).account, "bob")
    call(account.subscribe, "Entwürfe")
    call(account.subscribe, "A/B")
    path = root / "bob" / "subscriptions"
    assert sorted(path.read_text("utf-8").splitlines()) == ["A/B", "Entwürfe"]
    again = call(MaildirStore(root).account, "bob")
    assert call(again.subscriptions) == {"A/B", "Entwürfe"}
    assert [e for e in os.listdir(root / "bob") if "tmp." in e] == []


def test_expunge_removes_files(root: Path) -> None:
    box = open_inbox(root)
    a, b = call(box.append, b"a\r\n"), call(box.append, b"b\r\n")
    call(box.set_flags, [a], frozenset({"\\Deleted"}), "add")
    assert call(box.expunge) == [a]
    (name,) = cur_files(root / "bob")
    assert (root / "bob" / "cur" / name).read_bytes() == b"b\n"
    assert list(open_inbox(root).uids()) == [b]


def test_own_changes_do_not_force_a_rescan(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Appends, flag changes and expunges of our own keep the folder stamp
    trusted, so a later refresh (every NOOP) does not list the folder again;
    an outside delivery after them is still found."""
    runner = QueueRunner()
    account = result_of(runner, MaildirStore(root, runner).account("bob"))
    d = account.mailbox("INBOX")
    runner.flush()
    box = result(d)
    age_folder(root / "bob")  # else the stamp of a folder created just now is not trusted
    result_of(runner, box.refresh())
    for data in (b"one\r\n", b"two\r\n"):
        d = box.append(data)
        runner.flush()
        result(d)
    result_of(runner, box.set_flags([box.uids()[0]], frozenset({"\\Deleted"}), "add"))
    result_of(runner, box.expunge())
    listings = count_listings(monkeypatch)
    result_of(runner, box.refresh())
    assert listings() == 0
    drop_in(root / "bob", "1700000003.M1P1Q1.mx", b"x\n")
    result_of(runner, box.refresh())
    assert listings() == 1
    assert len(box.uids()) == 2


def test_is_marked_follows_unseen_new_mail(root: Path) -> None:
    """IMarkedMailboxes: new/ files mark an unopened folder; claiming \\Recent unmarks it."""
    from zope.interface.verify import verifyObject

    from exchmail.interfaces import IMarkedMailboxes

    account = call(MaildirStore(root).account, "bob")
    verifyObject(IMarkedMailboxes, account)
    call(account.create, "Box")
    assert call(account.marked, ["Box", "Nope"]) == set()
    drop_in(root / "bob" / ".Box", "1700000004.M1P1Q1.mx", b"x\n")
    assert call(account.marked, ["Box", "Nope"]) == {"Box"}
    box = call(account.mailbox, "Box")
    assert call(account.marked, ["Box"]) == {"Box"}  # opened, but no session has claimed it
    box.claim_recent()
    assert call(account.marked, ["Box"]) == set()


# -- files another program removed behind the index's back ---------------------------
def test_read_of_a_file_removed_by_another_program(root: Path) -> None:
    box = open_inbox(root)
    keep, gone = call(box.append, b"a\r\n"), call(box.append, b"b\r\n")
    (root / "bob" / "cur" / box.filename(gone)).unlink()
    with pytest.raises(NoSuchMessage, match=f"message UID {gone} is gone"):
        call(box.read_message, gone)
    # One trip for many: the missing one is None, the others are read.
    assert call(box.read_messages, [keep, gone]) == [b"a\r\n", None]
    call(box.refresh)  # the index learns of the removal at the next scan
    assert list(box.uids()) == [keep]


def test_copy_skips_a_file_removed_by_another_program(root: Path) -> None:
    box = open_inbox(root)
    account = call(MaildirStore(root).account, "bob")
    call(account.create, "Copies")
    target = call(account.mailbox, "Copies")
    first, second = call(box.append, b"one\r\n"), call(box.append, b"two\r\n")
    (root / "bob" / "cur" / box.filename(first)).unlink()
    assert call(box.copy_to, [first, second], target) == [(second, 1)]
    assert read(target, 1) == b"two\r\n"


def test_keywords_another_process_added_are_learnt_on_refresh(root: Path) -> None:
    """Two servers (or exchmail and a tool) on one tree: the second sees the
    first's new keyword letters with their names, and can use them itself."""
    ours, theirs = open_inbox(root), open_inbox(root)
    uid = call(ours.append, b"x\r\n")
    call(theirs.refresh)
    call(ours.set_flags, [uid], frozenset({"Work", "$Label1"}), "add")
    call(theirs.refresh)
    assert theirs.message(uid).flags == frozenset({"Work", "$Label1"})
    other = call(theirs.append, b"y\r\n", frozenset({"Work"}))  # the same letter, not a new one
    assert len((root / "bob" / "exchmail-keywords").read_text().splitlines()) == 2
    assert open_inbox(root).message(other).flags == frozenset({"Work"})


def test_append_racing_a_delete_of_its_folder(root: Path) -> None:
    runner = QueueRunner()
    account = result_of(runner, MaildirStore(root, runner).account("bob"))
    result_of(runner, account.create("Doomed"))
    box = result_of(runner, account.mailbox("Doomed"))
    appended = box.append(b"late\r\n")  # its file is being written...
    deleted = account.delete("Doomed")  # ...when another session deletes the folder
    runner.flush()
    result(deleted)
    with pytest.raises(NoSuchMailbox, match="'Doomed' was deleted"):
        result(appended)
    assert "Doomed" not in result_of(runner, account.list_mailboxes())


def run_reversed(runner: QueueRunner) -> None:
    """Do the queued work last-asked first (a thread pool may), then flush."""
    runner.queue.reverse()
    runner.flush()


def test_an_append_under_way_follows_its_folder_through_a_rename(root: Path) -> None:
    """A RENAME that moves the folder before the delivery's thread writes
    into it: the delivery failed with FileNotFoundError (NO [SERVERBUG]),
    its file left in tmp/ (found by a concurrency fuzzer). Now it is made
    again at the new place once the rename is done, the orphan removed."""
    runner = QueueRunner()
    account = result_of(runner, MaildirStore(root, runner).account("bob"))
    result_of(runner, account.create("Shared"))
    box = result_of(runner, account.mailbox("Shared"))
    appended = box.append(b"Subject: t\r\n\r\nx\r\n")
    renamed = account.rename("Shared", "Moved")
    run_reversed(runner)  # the rename's thread work first, then the delivery's
    runner.flush()
    result(renamed)
    uid = result(appended)
    moved = root / "bob" / ".Moved"
    assert box.name == "Moved" and list(box.uids()) == [uid]
    assert read(box, uid) == b"Subject: t\r\n\r\nx\r\n"
    assert len(cur_files(moved)) == 1 and os.listdir(moved / "tmp") == []
    assert f"{uid} " in (moved / "exchmail-uidlist").read_text()
    again = result_of(runner, MaildirStore(root, runner).account("bob"))
    assert list(result_of(runner, again.mailbox("Moved")).uids()) == [uid]


def test_an_append_under_way_when_its_folder_is_deleted(root: Path) -> None:
    runner = QueueRunner()
    account = result_of(runner, MaildirStore(root, runner).account("bob"))
    result_of(runner, account.create("Doomed"))
    box = result_of(runner, account.mailbox("Doomed"))
    appended = box.append(b"x\r\n")
    deleted = account.delete("Doomed")
    run_reversed(runner)
    runner.flush()
    result(deleted)
    failure = []
    appended.addErrback(failure.append)
    assert failure and failure[0].check(NoSuchMailbox)  # NO [TRYCREATE], not an internal error


def test_uid_list_writes_wait_for_a_rename(root: Path) -> None:
    """The UID list line of a delivery is written before the folder moves or
    after, at its new place -- never to a path that is gone."""
    runner = QueueRunner()
    account = result_of(runner, MaildirStore(root, runner).account("bob"))
    result_of(runner, account.create("Shared"))
    box = result_of(runner, account.mailbox("Shared"))
    appended = box.append(b"x\r\n")
    for d, outcome in runner.run_work():  # the delivery only: its line is asked for now
        d.callback(outcome)
    assert runner.calls[-1] == "append_lines"
    renamed = account.rename("Shared", "Moved")
    assert runner.calls[-1] == "append_lines"  # the rename waits for the write under way
    runner.flush()
    result(renamed)
    uid = result(appended)
    assert f"{uid} " in (root / "bob" / ".Moved" / "exchmail-uidlist").read_text()
    box.set_flags([uid], frozenset({"\\Flagged"}), "add")
    runner.flush()
    assert "M" in (root / "bob" / ".Moved" / "exchmail-uidlist").read_text()


class FailingOnSecond:
    """A destination whose second append fails (a full disk, say)."""

    def __init__(self, box: Any) -> None:
        self.box, self.appends = box, 0

    def append(self, *args: Any) -> Any:
        self.appends += 1
        if self.appends == 2:
            return defer.fail(OSError(28, "No space left on device"))
        return self.box.append(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.box, name)


@pytest.mark.parametrize("store", ["maildir", "memory"])
def test_copy_is_all_or_nothing(root: Path, store: str) -> None:
    """RFC 3501 6.4.7: a COPY that fails leaves the destination as it was;
    the copies made before the failure were left behind."""
    from exchmail.store.memory import MemoryStore

    account = call((MaildirStore(root) if store == "maildir" else MemoryStore()).account, "bob")
    call(account.create, "Target")
    source = call(account.mailbox, "INBOX")
    for n in range(3):
        call(source.append, b"Subject: %d\r\n\r\nx\r\n" % n)
    target = call(account.mailbox, "Target")
    failure = []
    source.copy_to(source.uids(), FailingOnSecond(target)).addErrback(failure.append)
    assert failure and failure[0].check(OSError)
    assert list(target.uids()) == []
    if store == "maildir":
        assert cur_files(root / "bob" / ".Target") == []
    assert len(call(source.copy_to, source.uids(), target)) == 3  # and a good COPY works


def test_a_second_delivery_reads_a_copy_source_from_its_start(root: Path) -> None:
    """A COPY's source (a message file in wire form) was read by the first
    try; the second, after a RENAME, must store all of it again."""
    from exchmail.store.maildir.deliver import KeywordSink, deliver, open_wire

    open_inbox(root)  # makes the maildir
    folder = root / "bob"
    original = folder / "original"
    original.write_bytes(b"Subject: x\n\n" + b"line\n" * 30000)
    source = open_wire(original)
    assert len(source.read()) == len(original.read_bytes()) + 30002  # consumed, as by a failed try
    (folder / "tmp" / "orphan").write_bytes(b"partial")
    done = deliver(folder, "again", source, "", time.time(), None, KeywordSink(), "orphan")
    assert not (folder / "tmp" / "orphan").exists()
    assert (folder / "cur" / done.filename).read_bytes() == original.read_bytes()
    assert done.exact_size == len(original.read_bytes()) + 30002
    source.close()
