"""Regression tests for robustness defects at the session level, in memory.

Each test is named after the defect it guards against; its docstring says
how the old core (before the session rewrite: ``exchmail/imap/server.py``
with its own reader, ``IN_MEMORY_LITERAL`` and regex LIST matching) failed
it.  Everything runs on tests/harness.py (StringTransport, task.Clock):
no sockets, no reactor thread, no wall-clock assertions.
"""

from __future__ import annotations

import tempfile

import pytest
from harness import Harness
from twisted.logger import globalLogPublisher

from exchmail.session import reader as reader_module
from exchmail.session.reader import (
    Command,
    InputReader,
    LiteralSegment,
    ReaderLimits,
    Refused,
    SpooledLiteral,
)

#: The literal chain of defect 1: one literal just over the old in-memory
#: limit (256 KiB), then 1,700 one-octet LITERAL+ literals on one command.
FIRST = 256 * 1024 + 1
CHAIN = 1700


@pytest.fixture
def spool_files(monkeypatch) -> list:
    """Every temporary file opened while the test runs (counted at ``tempfile.TemporaryFile``)."""
    opened: list = []
    real = tempfile.TemporaryFile

    def counting(*args, **kwargs):
        file = real(*args, **kwargs)
        opened.append(file)
        return file

    monkeypatch.setattr(reader_module.tempfile, "TemporaryFile", counting)
    return opened


@pytest.fixture
def internal_errors():
    """Failures logged while the test runs (internal errors are logged with a traceback)."""
    failures: list = []

    def observe(event: dict) -> None:
        if event.get("log_failure") is not None:
            failures.append(event["log_failure"])

    globalLogPublisher.addObserver(observe)
    yield failures
    globalLogPublisher.removeObserver(observe)


def literal_chain(head: bytes) -> bytes:
    """``head {262145+}`` + data, then `` {1+}CRLFx`` x 1,700, the line still open."""
    return head + b" {%d+}\r\n" % FIRST + b"x" * FIRST + b" {1+}\r\nx" * CHAIN


# -- 1: temporary files before login --------------------------------------------------------
def test_preauth_literal_chain_cannot_open_temporary_files(spool_files, internal_errors):
    """Defect 1: a client that had not logged in could make the server open a
    temporary file per literal.

    The old reader kept literals in memory only while a command's literals
    added up to 256 KiB and opened a new ``TemporaryFile`` for *each* literal
    past that, before login and for any command: this chain opened 1,701
    files (one file descriptor each) and then answered ``BAD too many
    arguments``.  Now literals before login are kept in memory and bounded
    (64 KiB a command), so the first literal is refused and its data, and
    the rest of the command, thrown away as they arrive.
    """
    c = Harness().imap()
    out = c.send(literal_chain(b"Z LOGIN"))
    assert c.session.reader.buffered == 0  # what is thrown away is not held
    out += c.send(b"\r\n")
    assert out == b"Z NO [TOOBIG] Literal larger than 65536 octets\r\n"
    assert spool_files == []
    assert c.line("a NOOP") == b"a OK NOOP completed.\r\n"
    assert c.login() == b"L1 OK LOGIN completed.\r\n"
    assert internal_errors == []


def test_literal_chain_after_login_uses_one_spool_file(spool_files, internal_errors):
    """Defect 1, logged in: one command never opens more than one temporary file.

    The old reader opened one file per literal past 256 KiB (1,701 here).
    Now all spooled literals of a command share one file, the command is
    refused at MAX_LITERALS literals, and its file is closed.
    """
    c = Harness().imap()
    c.login()
    out = c.send(literal_chain(b"Z APPEND INBOX") + b"\r\n")
    assert out == b"Z BAD [LIMIT] Too many literals in one command\r\n"
    assert len(spool_files) == 1 and spool_files[0].closed
    assert c.line("a NOOP") == b"a OK NOOP completed.\r\n"
    assert internal_errors == []


def test_reader_spools_all_literals_of_a_command_in_one_file(spool_files):
    """Defect 1, in the reader itself: however many literals a command has,
    those past the memory budget share one temporary file, handed to the
    :class:`Command` (which closes it).  The old reader opened one per literal."""
    limits = ReaderLimits(max_line=16 * 1024, max_literal_total=1 << 30, max_literals=CHAIN + 1)
    reader = InputReader(limits)
    reader.feed(literal_chain(b"Z APPEND INBOX") + b"\r\n")
    command = reader.next_event()
    assert isinstance(command, Command)
    literals = [s.data for s in command.segments if isinstance(s, LiteralSegment)]
    assert len(literals) == CHAIN + 1
    assert all(isinstance(data, SpooledLiteral) for data in literals)
    assert spool_files == [command.spool]
    assert {data.file for data in literals} == {command.spool}
    assert literals[0].size == FIRST and literals[-1].read_all() == b"x"
    assert [data.offset for data in literals[1:4]] == [FIRST, FIRST + 1, FIRST + 2]
    command.close()
    assert command.spool.closed


def test_reader_refusing_a_command_closes_its_spool_file(spool_files):
    """Defect 1, refused midway: the command's one file is closed at once."""
    reader = InputReader(ReaderLimits(max_line=16 * 1024, max_literal_total=1 << 30, max_literals=10))
    reader.feed(literal_chain(b"Z APPEND INBOX") + b"\r\n")
    events = []
    for _ in range(CHAIN + 10):  # bounded: one event per call at most
        event = reader.next_event()
        if event is None:
            break
        events.append(event)
    assert events == [Refused(b"Z APPEND INBOX {%d+}" % FIRST, "count", 10)]
    assert len(spool_files) == 1 and spool_files[0].closed
    assert reader.buffered == 0


# -- 5: large literals before login ----------------------------------------------------------
def test_preauth_large_literal_is_not_spooled_to_disk(spool_files, internal_errors):
    """Defect 5: before login a client could send a literal of up to
    max_literal_size (50 MB) and the server spooled it to disk.

    The old reader answered ``{300000}`` with ``+ Ready for literal data``
    and wrote the data to a temporary file.  Now the literals of a command
    before login add up to at most 64 KiB and stay in memory; after login
    the profile's max_literal_size applies again.
    """
    c = Harness().imap()
    refused = b"NO [TOOBIG] Literal larger than 65536 octets\r\n"
    assert c.line("a LOGIN {300000}") == b"a " + refused
    assert c.line("b LOGIN {65537}") == b"b " + refused
    # LITERAL+ literals count together: the second one is over the budget.
    out = c.send(b"c LOGIN {40000+}\r\n" + b"u" * 40000 + b" {40000+}\r\n" + b"p" * 40000 + b"\r\n")
    assert out == b"c " + refused
    # 64 KiB is allowed, in memory.
    assert c.line("d LOGIN {65536}") == b"+ Ready for literal data\r\n"
    assert c.send(b"u" * 65536 + b" pw\r\n") == b"d NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    assert spool_files == []
    assert c.login() == b"L1 OK LOGIN completed.\r\n"
    assert c.line("e APPEND INBOX {300000}") == b"+ Ready for literal data\r\n"
    assert c.send(b"Subject: big\r\n\r\n" + b"x" * (300000 - 16) + b"\r\n").startswith(b"e OK [APPENDUID ")
    assert len(spool_files) == 1 and spool_files[0].closed
    assert internal_errors == []


# -- 3: deeply nested SEARCH ------------------------------------------------------------------
NESTED_SEARCHES = {
    "parentheses": b"(" * 322 + b"ALL" + b")" * 322,
    "not": b"NOT " * 483 + b"ALL",
    "or": b"OR " * 483 + b"ALL " * 483 + b"ALL",
    "parentheses-900": b"(" * 900 + b"ALL" + b")" * 900,
    "not-900": b"NOT " * 900 + b"ALL",
}


@pytest.mark.parametrize("profile", ["exchange2010", "rfc3501"])
@pytest.mark.parametrize("shape", sorted(NESTED_SEARCHES))
def test_deeply_nested_search_is_bad_not_serverbug(profile, shape, internal_errors):
    """Defect 3: SEARCH criteria nested hundreds deep.

    The old parser put no depth limit on SEARCH keys and walked them
    recursively.  It answered ``(`` x 322 with ``OK`` in both profiles and
    NOT/OR x 483 with ``OK`` under rfc3501 (``NO [LIMIT]`` under
    exchange2010 only because of its 10-key limit); at 900 levels the
    recursion overflowed: ``NO [SERVERBUG]`` and a RecursionError logged.
    Now lists, NOT and OR together may nest 32 deep in every profile,
    checked while parsing without recursion: ``BAD``, and the session goes on.
    """
    h = Harness(profile)
    h.deliver(b"Subject: x\r\n\r\nhello\r\n")
    c = h.imap()
    c.login()
    assert b"s OK" in c.line("s SELECT INBOX")
    out = c.line(b"n1 SEARCH " + NESTED_SEARCHES[shape])
    assert out.startswith(b"n1 BAD ") and b"nested too deeply" in out
    assert b"SERVERBUG" not in out
    assert c.line("n2 SEARCH ALL") == b"* SEARCH 1\r\nn2 OK SEARCH completed.\r\n"
    assert internal_errors == []


# -- 4: APPEND date-time range ----------------------------------------------------------------
def append(c, date: bytes, tag: bytes = b"a") -> bytes:
    return c.send(tag + b' APPEND INBOX "' + date + b'" {5+}\r\nhello\r\n')


@pytest.mark.parametrize(
    "date",
    [
        b"31-Dec-9999 23:59:59 -2359",  # after the end of 9999 in UTC
        b" 1-Jan-0000 00:00:00 +0000",  # year 0
        b"01-Jan-0000 00:00:00 +0000",
        b"01-Jan-2000 00:00:00 +9999",  # no such zone
        b"31-Dec-1899 23:59:59 +0000",  # before 1900
    ],
)
def test_append_date_out_of_range_is_bad(date, internal_errors):
    """Defect 4: APPEND accepted any date-time that matched the pattern.

    The old parser turned ``31-Dec-9999 23:59:59 -2359`` into an instant in
    the year 10000 (FETCH then showed ``"01-Jan-10000 23:58:59 +0000"``,
    which no client can parse), took year 0 for 2000, and a ``+9999`` zone
    as 99 hours 99 minutes.  Now the zone must be a time of day and the
    instant between 1900 and the end of 9999 in UTC: ``BAD``, nothing
    stored, the session goes on.
    """
    h = Harness()
    c = h.imap()
    c.login()
    out = append(c, date)
    assert out.startswith(b"a BAD invalid date-time")
    assert list(h.mailbox().uids()) == []
    assert c.line("b NOOP") == b"b OK NOOP completed.\r\n"
    assert internal_errors == []


def test_append_edge_dates_are_kept_exactly():
    """Defect 4, the other side: the first and last instants allowed are
    stored as given and FETCH INTERNALDATE shows them unchanged."""
    h = Harness()
    c = h.imap()
    c.login()
    for date in (b"01-Jan-1900 00:00:00 +0000", b"31-Dec-9999 23:59:59 +0000"):
        assert b"a OK [APPENDUID " in append(c, date)
    c.line("s SELECT INBOX")
    assert c.line("f FETCH 1:* INTERNALDATE") == (
        b'* 1 FETCH (INTERNALDATE "01-Jan-1900 00:00:00 +0000")\r\n'
        b'* 2 FETCH (INTERNALDATE "31-Dec-9999 23:59:59 +0000")\r\n'
        b"f OK FETCH completed.\r\n"
    )


# -- 2: LIST pattern matching ----------------------------------------------------------------
@pytest.mark.parametrize("pattern", [b"*a*a*a*a*b", b"*a" * 12 + b"*b"])
def test_list_pattern_with_many_wildcards_completes(pattern, internal_errors):
    """Defect 2: LIST patterns were matched with a backtracking regex.

    The old matcher compiled ``*a*a*a*a*b`` to ``^.*a.*a.*a.*a.*b$``: against
    a name of 200 ``a`` that is of the order of 200**5 steps on the reactor
    thread (measured on the old code: 1 s at 80 characters, 2.7 s at 100,
    so roughly 90 s at 200, with every session of the server stalled); with
    12 stars it would not finish at all, so this test hangs on the old code.
    Now the matcher is linear in the name and the pattern; the command just
    completes, with no match.
    """
    h = Harness()
    account = h.account()
    account.create("a" * 200)
    c = h.imap()
    c.login()
    assert c.line(b'l1 LIST "" "' + pattern + b'"') == b"l1 OK LIST completed.\r\n"
    # The name is there to be matched: a pattern it fits lists it.
    expected = b'* LIST () "/" "' + b"a" * 200 + b'"\r\nl2 OK LIST completed.\r\n'
    assert c.line('l2 LIST "" "*a*a*a*a"') == expected
    assert internal_errors == []


# -- oversized lines --------------------------------------------------------------------------
@pytest.mark.parametrize("logged_in", [False, True])
def test_oversized_id_like_line_is_toobig(logged_in, internal_errors):
    """A ~30 KB line (an ID with a huge value) is over max_command_size (10 KiB):
    ``BAD [TOOBIG]`` once the line ends, nothing of it held, and the session
    goes on.  (The old reader did this too; it guards the new one.)"""
    c = Harness().imap()
    if logged_in:
        c.login()
    line = b'i1 ID ("name" "' + b"x" * 30000 + b'")'
    assert c.send(line[:15000]) == b""
    assert c.session.reader.buffered <= 10240
    assert c.send(line[15000:] + b"\r\n") == b"i1 BAD [TOOBIG] Command line too long\r\n"
    assert c.line("i2 NOOP") == b"i2 OK NOOP completed.\r\n"
    assert internal_errors == []
