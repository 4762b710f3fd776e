"""The shared index: columns, records, memory per message, CRLF conversion, readers."""

from __future__ import annotations

import gc
import io
import tracemalloc
from pathlib import Path

import pytest
from helpers import call

from exchmail.store.columns import Columns, FlagTable, MessageRecord
from exchmail.store.crlf import CRLFConverter, LFConverter, to_crlf, wire_size
from exchmail.store.maildir.filenames import KeywordMap
from exchmail.store.maildir.mailbox import MaildirMailbox
from exchmail.store.maildir.scan import FileInfo, IndexBuilder, Loaded
from exchmail.store.readers import BytesReader, FileReader
from exchmail.store.runner import run_sync

SEEN = frozenset({"\\Seen"})


# -- columns ----------------------------------------------------------------------------
def test_columns_rows_records_and_copy_on_write() -> None:
    rows = Columns((None,))
    for uid in (3, 5, 9, 10):
        rows.append(uid, float(uid), uid * 10, uid * 11, SEEN if uid % 2 else frozenset(), (f"key{uid}",))
    assert rows.find(9) == 2 and rows.find(4) == -1 and rows.find(11) == -1
    assert rows.first_at_or_after(6) == 2
    assert rows.record(1) == MessageRecord(5, SEEN, 5.0, 50, 55)
    handed_out = rows.uids
    rows.remove([0, 2])
    assert list(handed_out) == [3, 5, 9, 10]  # a list handed out never shrinks
    assert list(rows.uids) == [5, 10] and rows.extra[0] == ["key5", "key10"]
    assert list(rows.stored) == [50, 100] and rows.flags_of(1) == frozenset()
    with pytest.raises(ValueError):
        rows.append(7, 0.0, 0, 0, frozenset())  # UIDs only grow


def test_handed_out_uids_never_change_not_even_by_appends() -> None:
    from exchmail.store.memory import MemoryMailbox

    box = MemoryMailbox("INBOX", 1)
    first = call(box.append, b"a")
    held = box.uids()
    second = call(box.append, b"b")
    assert list(held) == [first] and list(box.uids()) == [first, second]
    third = call(box.append, b"c")  # nobody held the newest list: appended in place
    assert list(box.uids()) == [first, second, third]


def test_flag_table_interns_sets() -> None:
    table = FlagTable()
    a = table.id(frozenset({"\\Seen", "$Work"}))
    assert table.id(frozenset({"$Work", "\\Seen"})) == a
    assert table[0] == frozenset() and table[a] == {"\\Seen", "$Work"}
    assert table.ids_with("\\Seen") == {a}


def test_unused_flag_sets_are_dropped_after_removals() -> None:
    rows = Columns()
    for uid in range(1, 201):
        rows.append(uid, 0.0, 0, 0, frozenset({f"kw{uid}"}))
    rows.remove(range(0, 199))
    assert list(rows.uids) == [200]
    assert rows.flags_of(0) == {"kw200"} and len(rows.table) <= 2


@pytest.mark.slow
def test_index_memory_per_message_is_at_most_200_bytes() -> None:
    """An open Maildir mailbox of 100,000 messages, measured with tracemalloc:
    everything its index holds (columns, names, tables), per message."""
    count = 100_000
    host = "mail01.example.org"
    letters = ["", "S", "RS", "FS", "Sa"]
    files = [
        FileInfo(
            f"{1600000000 + i}.M{i % 999999}P4242Q{i + 1}.{host},S={900 + i % 7000},"
            f"W={930 + i % 7000}:2,{letters[i % 5]}",
            False,
            1.6e9 + i,
            900 + i % 7000,
            930 + i % 7000,
        )
        for i in range(count)
    ]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        builder = IndexBuilder(KeywordMap({0: "$Work"}))
        for uid, info in enumerate(files, 1):
            builder.add(uid, info)
        box = MaildirMailbox(
            "INBOX", Path("/unused"), run_sync, Loaded(1, count + 1, count + 1, builder, None, False)
        )
        del builder
        gc.collect()
        per_message = (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        tracemalloc.stop()
    assert len(box.uids()) == count
    assert box.message(78).flags == frozenset({"\\Seen", "\\Answered"})
    assert box.filename(77) == files[76].filename
    assert per_message <= 200, f"{per_message:.0f} bytes per message"


# -- CRLF conversion ----------------------------------------------------------------------
WIRE_CASES = [
    b"a\nb\r\nc\rd\n\n",
    b"already\r\ncrlf\r\n",
    b"\n\n\r\r\n\r",
    b"cr cr lf\r\r\n",
    b"",
    b"no line end",
]


@pytest.mark.parametrize("data", WIRE_CASES)
@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_crlf_converter_matches_whole_conversion_across_chunks(data: bytes, size: int) -> None:
    converter = CRLFConverter()
    out = b"".join(converter.feed(data[i : i + size]) for i in range(0, len(data), size))
    out += converter.flush()
    assert out == to_crlf(data)
    assert len(out) == wire_size(data)


def test_crlf_leaves_wire_form_alone() -> None:
    wire = b"Subject: x\r\n\r\nline\r\nlone\rcr\r\n"
    assert to_crlf(wire) == wire
    assert to_crlf(b"bare\nlf\n") == b"bare\r\nlf\r\n"


@pytest.mark.parametrize("data", WIRE_CASES + [b"x\r\r\ny\n"])
@pytest.mark.parametrize("size", [1, 2, 5, 64])
def test_lf_converter_counts_the_wire_size_it_will_be_read_back_as(data: bytes, size: int) -> None:
    converter = LFConverter()
    stored = b"".join(converter.feed(data[i : i + size]) for i in range(0, len(data), size))
    stored += converter.flush()
    assert stored == data.replace(b"\r\n", b"\n")
    assert converter.stored == len(stored)
    assert converter.exact == len(to_crlf(stored))


# -- readers ------------------------------------------------------------------------------
def read_all(reader: object, size: int) -> bytes:
    chunks = []
    while chunk := call(reader.read, size):  # type: ignore[attr-defined]
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("size", [1, 7, 16, 65536])
@pytest.mark.parametrize("cr_at", [14, 15, 16])
def test_file_reader_converts_across_chunks(size: int, cr_at: int) -> None:
    # The reader reads 16 octets at a time: a CR ends some of those reads.
    stored = (b"x" * cr_at + b"\r" + b"\nnext\n\n") * 5 + b"end\r"
    wire = to_crlf(stored)
    reader = FileReader(run_sync, io.BytesIO(stored), len(wire), chunk=16).prime()
    assert read_all(reader, size) == wire
    reader.close()
    already = FileReader(run_sync, io.BytesIO(wire), len(wire), chunk=16).prime()
    assert read_all(already, size) == wire  # CRLF content comes out unchanged


def test_file_reader_delivers_exactly_the_announced_size() -> None:
    short = FileReader(run_sync, io.BytesIO(b"abc\n"), 8).prime()
    assert read_all(short, 3) == b"abc\r\n   "  # padded: the client was told 8
    long = FileReader(run_sync, io.BytesIO(b"abcdef"), 4).prime()
    assert read_all(long, 100) == b"abcd"


def test_reader_refuses_reads_after_close_and_overlapping_reads() -> None:
    deferreds = []

    def later(f: object, *args: object) -> object:
        from twisted.internet import defer

        d: defer.Deferred[object] = defer.Deferred()
        deferreds.append((d, f, args))
        return d

    source = io.BytesIO(b"x" * 200_000)
    reader = FileReader(later, source, 200_000)
    first = reader.read(10)
    with pytest.raises(RuntimeError):
        call(reader.read, 10)
    reader.close()  # while the read is in flight: the file closes when it ends
    assert not source.closed
    d, f, args = deferreds.pop()
    d.callback(f(*args))  # type: ignore[operator]
    assert source.closed
    call(lambda: first)
    with pytest.raises(ValueError):
        call(reader.read, 10)
    memory = BytesReader(b"abc")
    assert call(memory.read, 2) == b"ab" and call(memory.read, 2) == b"c"
    memory.close()
    with pytest.raises(ValueError):
        call(memory.read, 1)


# -- IndexedMailbox behaviour shared by the stores --------------------------------------------
def test_a_failing_listener_is_logged_and_the_others_still_hear() -> None:
    from helpers import Recorder
    from twisted.logger import globalLogPublisher

    from exchmail.store.memory import MemoryStore

    class Broken(Recorder):
        def messages_added(self, mailbox: object, uids: list[int]) -> None:
            raise RuntimeError("listener bug")

    box = call(call(MemoryStore().account, "alice").mailbox, "INBOX")
    broken, healthy = Broken(), Recorder()
    box.add_listener(broken)
    box.add_listener(healthy)
    events: list[dict[str, object]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        uid = call(box.append, b"Subject: x\r\n\r\n")
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert healthy.events == [("added", [uid])]
    (failure,) = [e for e in events if "log_failure" in e]
    assert failure["method"] == "messages_added" and failure["listener"] is broken
    assert "listener bug" in failure["log_failure"].getErrorMessage()  # type: ignore[attr-defined]


def test_flag_modes() -> None:
    from exchmail.store.index import apply_flag_mode

    current, change = frozenset({"\\Seen", "a"}), frozenset({"a", "b"})
    assert apply_flag_mode(current, change, "replace") == change
    assert apply_flag_mode(current, change, "add") == {"\\Seen", "a", "b"}
    assert apply_flag_mode(current, change, "remove") == {"\\Seen"}
    with pytest.raises(ValueError, match="unknown flag mode 'toggle'"):
        apply_flag_mode(current, change, "toggle")
