"""Issue 14's extensions in memory (the harness: StringTransport, task.Clock,
MemoryStore): CONDSTORE/QRESYNC (RFC 7162), ESEARCH (4731), SEARCHRES (5182),
WITHIN (5032), CONTEXT=SEARCH/SORT (5267), SORT/THREAD (5256), NOTIFY
(5465), ENABLE IMAP4rev2 (9051), and every one of them unknown (BAD) in the
Exchange profiles."""

from __future__ import annotations

import re

import pytest
from harness import Harness
from twisted.internet.task import Clock
from zope.interface import implementer_only

from exchmail.interfaces import IBatchRead, IIndexScan, IStoreMailbox
from exchmail.store import names
from exchmail.store.memory import MemoryAccount, MemoryMailbox, MemoryStore


def message(subject: str, date: str = "01 Jan 2024 10:00:00 +0000", extra: str = "") -> bytes:
    return (
        f"From: A <a@example.org>\r\nSubject: {subject}\r\nDate: Mon, {date}\r\n{extra}\r\nbody {subject}\r\n"
    ).encode()


@pytest.fixture
def modern():
    harness = Harness("modern")
    for number in range(1, 6):
        harness.deliver(message(f"m{number}"), date=1_700_000_000.0 + number)
    return harness


@pytest.fixture
def alice(modern):
    c = modern.imap()
    c.login()
    return c


def highest(output: bytes) -> int:
    return int(re.search(rb"HIGHESTMODSEQ (\d+)", output).group(1))


# -- CONDSTORE -----------------------------------------------------------------------------
def test_condstore_select_fetch_store_search(alice):
    out = alice.line("a SELECT INBOX (CONDSTORE)")
    start = highest(out)
    assert b"a OK [READ-WRITE]" in out
    out = alice.line("b STORE 2 +FLAGS (\\Seen)")
    modseq = int(re.search(rb"\* 2 FETCH \(FLAGS \([^)]*\) MODSEQ \((\d+)\)\)", out).group(1))
    assert modseq > start
    assert alice.line(f"c FETCH 1:* (FLAGS) (CHANGEDSINCE {start})").startswith(
        b"* 2 FETCH (FLAGS (\\Recent \\Seen) MODSEQ (%d))\r\nc OK" % modseq
    )
    assert alice.line(f"d SEARCH MODSEQ {modseq}") == (
        b"* SEARCH 2 (MODSEQ %d)\r\nd OK SEARCH completed.\r\n" % modseq
    )
    after = modseq + 1
    assert alice.line(f'e SEARCH MODSEQ "/flags/\\\\seen" all {after}').startswith(b"* SEARCH\r\n")
    out = alice.line(f"f STORE 1:2 (UNCHANGEDSINCE {start}) +FLAGS.SILENT (\\Flagged)")
    assert b"* 1 FETCH (MODSEQ (" in out and b"f OK [MODIFIED 2]" in out
    last = int(re.search(rb"\* 1 FETCH \(MODSEQ \((\d+)\)\)", out).group(1))
    assert b'* STATUS "INBOX" (HIGHESTMODSEQ %d)' % last in alice.line("g STATUS INBOX (HIGHESTMODSEQ)")


def test_condstore_is_enabled_by_fetch_modseq(alice):
    alice.line("a SELECT INBOX")
    out = alice.line("b FETCH 1 (MODSEQ)")
    assert out.startswith(b"* OK [HIGHESTMODSEQ ") and b"* 1 FETCH (MODSEQ (" in out


def test_other_sessions_flag_changes_carry_modseq(modern, alice):
    alice.line("e ENABLE CONDSTORE")
    alice.line("a SELECT INBOX")
    bob = modern.imap()
    bob.login()
    bob.line("s SELECT INBOX")
    bob.line("t STORE 3 +FLAGS (\\Answered)")
    out = alice.line("n NOOP")
    assert re.search(rb"\* 3 FETCH \(FLAGS \(\\Answered \\Recent\) MODSEQ \(\d+\)\)", out), out


# -- QRESYNC -----------------------------------------------------------------------------------
def test_qresync_select_reports_vanished_and_changes(modern, alice):
    assert alice.line("e ENABLE QRESYNC") == b"* ENABLED QRESYNC\r\ne OK ENABLE completed.\r\n"
    out = alice.line("a SELECT INBOX")
    validity = int(re.search(rb"UIDVALIDITY (\d+)", out).group(1))
    known = highest(out)
    alice.line("b STORE 2 +FLAGS (\\Seen)")
    alice.line("c STORE 4 +FLAGS (\\Deleted)")
    out = alice.line("d EXPUNGE")
    assert b"* VANISHED 4\r\n" in out and b"EXPUNGE\r\n" not in out.replace(b"d OK EXPUNGE", b"")
    out = alice.line(f"f SELECT INBOX (QRESYNC ({validity} {known} 1:5))")
    assert b"* OK [CLOSED]" in out
    assert b"* VANISHED (EARLIER) 4\r\n" in out
    assert re.search(rb"\* 2 FETCH \(UID 2 FLAGS \([^)]*\\Seen\) MODSEQ \(\d+\)\)", out), out
    out = alice.line(f"g UID FETCH 1:* (FLAGS) (CHANGEDSINCE {known} VANISHED)")
    assert b"* VANISHED (EARLIER) 4\r\n" in out and b"UID 2" in out
    # a wrong UIDVALIDITY: no VANISHED, no FETCH (the client resynchronises in full)
    out = alice.line(f"h SELECT INBOX (QRESYNC ({validity + 1} {known}))")
    assert b"VANISHED" not in out and b"FETCH" not in out and b"h OK" in out


def test_qresync_needs_enable(alice):
    assert b"a BAD QRESYNC parameter without ENABLE QRESYNC" in alice.line("a SELECT INBOX (QRESYNC (1 1))")
    alice.line("b SELECT INBOX")
    assert alice.line("c UID FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)").startswith(b"* OK [HIGHESTMODSEQ")
    assert b"c BAD VANISHED needs ENABLE QRESYNC" in alice.line(
        "c UID FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)"
    )
    assert b"d BAD" in alice.line("d FETCH 1:* FLAGS (CHANGEDSINCE 1 VANISHED)")  # UID only


def test_forgotten_expunges_report_every_missing_uid(modern, alice, monkeypatch):
    box = modern.mailbox()
    monkeypatch.setattr(box, "expunged_since", lambda modseq: None)  # memory too short
    alice.line("e ENABLE QRESYNC")
    out = alice.line("a SELECT INBOX")
    validity = int(re.search(rb"UIDVALIDITY (\d+)", out).group(1))
    alice.line("b STORE 3 +FLAGS.SILENT (\\Deleted)")
    alice.line("c EXPUNGE")
    out = alice.line(f"d SELECT INBOX (QRESYNC ({validity} 1 1:9))")
    assert b"* VANISHED (EARLIER) 3\r\n" in out  # 1:9 cut to UIDNEXT-1 = 5


# -- NOMODSEQ: a store without IModSeq -----------------------------------------------------------
@implementer_only(IStoreMailbox, IBatchRead, IIndexScan)
class PlainMailbox(MemoryMailbox):
    """A mailbox that keeps no MODSEQs (as a custom store might)."""


class PlainAccount(MemoryAccount):
    def _add(self, name: str) -> MemoryMailbox:
        box = self._mailboxes[name] = PlainMailbox(name, 7)
        return box


class PlainStore(MemoryStore):
    def _account(self, name: str) -> MemoryAccount:
        name = names.check_user_name(name)
        return self._accounts.setdefault(name, PlainAccount(name))


def test_nomodseq_store():
    harness = Harness("modern", store=PlainStore())
    harness.deliver(message("x"))
    c = harness.imap()
    c.login()
    out = c.line("a SELECT INBOX (CONDSTORE)")
    assert b"* OK [NOMODSEQ]" in out and b"a OK" in out
    assert b"b BAD [NOMODSEQ]" in c.line("b FETCH 1 (MODSEQ)")
    assert b"c BAD [NOMODSEQ]" in c.line("c STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\\Seen)")
    assert b"(HIGHESTMODSEQ 0)" in c.line("d STATUS INBOX (HIGHESTMODSEQ)")
    assert b"e OK" in c.line("e STORE 1 +FLAGS (\\Seen)")  # plain STORE works as ever


# -- ESEARCH, SEARCHRES, WITHIN, CONTEXT ------------------------------------------------------------
def test_esearch_results(alice):
    alice.line("a SELECT INBOX")
    alice.line("b STORE 2,4 +FLAGS (\\Seen)")
    assert alice.line("c SEARCH RETURN (MIN MAX COUNT) SEEN").startswith(
        b'* ESEARCH (TAG "c") MIN 2 MAX 4 COUNT 2\r\n'
    )
    assert alice.line("d UID SEARCH RETURN () ALL").startswith(b'* ESEARCH (TAG "d") UID ALL 1:5\r\n')
    assert alice.line("e SEARCH RETURN (MIN) 99").startswith(b'* ESEARCH (TAG "e")\r\n')
    assert b"f BAD" in alice.line("f SEARCH RETURN (BOGUS) ALL")


def test_searchres_saves_for_dollar(alice):
    alice.line("a SELECT INBOX")
    out = alice.line("b SEARCH RETURN (SAVE) 2:3")
    assert out == b"b OK SEARCH completed.\r\n"  # SAVE alone: no ESEARCH (RFC 5182 §2.1)
    assert alice.line("c FETCH $ (UID)") == (
        b"* 2 FETCH (UID 2)\r\n* 3 FETCH (UID 3)\r\nc OK FETCH completed.\r\n"
    )
    assert alice.line("d SEARCH $ 3:5").startswith(b"* SEARCH 3\r\n")
    alice.line("e SEARCH RETURN (SAVE MAX) ALL")
    assert alice.line("f UID SEARCH $").startswith(b"* SEARCH 5\r\n")


def test_within_older_younger():
    clock = Clock()
    clock.advance(1_700_000_004.5)  # the messages are 1..5 s after 1_700_000_000
    harness = Harness("modern", clock=clock)
    for number in range(1, 6):
        harness.deliver(message(f"m{number}"), date=1_700_000_000.0 + number)
    alice = harness.imap()
    alice.login()
    alice.line("a SELECT INBOX")
    assert alice.line("b SEARCH YOUNGER 2").startswith(b"* SEARCH 3 4 5\r\n")
    assert alice.line("c SEARCH OLDER 2").startswith(b"* SEARCH 1 2\r\n")
    assert b"d BAD" in alice.line("d SEARCH OLDER 0")


def test_context_search_updates(modern, alice):
    alice.line("a SELECT INBOX")
    out = alice.line("b SEARCH RETURN (UPDATE ALL) SEEN")
    assert out.startswith(b'* ESEARCH (TAG "b")\r\n')  # nothing matches yet
    out = alice.line("c STORE 1,2,4 +FLAGS (\\Seen)")
    assert b'* ESEARCH (TAG "b") ADDTO (0 1:2,4)\r\n' in out
    out = alice.line("d STORE 4 +FLAGS.SILENT (\\Deleted)")
    out = alice.line("e EXPUNGE")
    assert out.index(b'* ESEARCH (TAG "b") REMOVEFROM (0 4)') < out.index(b"* 4 EXPUNGE")
    modern.deliver(message("new"), flags=frozenset({"\\Seen"}))
    out = alice.line("f NOOP")
    assert b"* 5 EXISTS" in out and b'* ESEARCH (TAG "b") ADDTO (0 5)' in out
    assert alice.line('g CANCELUPDATE "b"') == b"g OK CANCELUPDATE completed.\r\n"
    out = alice.line("h STORE 3 +FLAGS (\\Seen)")
    assert b"ESEARCH" not in out
    assert b"i NO" in alice.line('i CANCELUPDATE "zz"')


def test_context_search_updates_while_idling(modern, alice):
    alice.line("a SELECT INBOX")
    alice.line("b SEARCH RETURN (UPDATE) SEEN")
    assert alice.line("i IDLE").startswith(b"+ ")
    modern.deliver(message("seen"), flags=frozenset({"\\Seen"}))
    out = alice.send(b"")
    assert b"* 6 EXISTS" in out and b'* ESEARCH (TAG "b") ADDTO (0 6)' in out, out
    assert alice.line("DONE").endswith(b"i OK IDLE completed.\r\n")


def test_context_sort_partial(alice):
    alice.line("a SELECT INBOX")
    out = alice.line("b SORT RETURN (PARTIAL 2:3) (REVERSE ARRIVAL) US-ASCII ALL")
    assert out.startswith(b'* ESEARCH (TAG "b") PARTIAL (2:3 4,3)\r\n')
    out = alice.line("c SEARCH RETURN (PARTIAL 4:9) ALL")
    assert out.startswith(b'* ESEARCH (TAG "c") PARTIAL (4:9 4:5)\r\n')
    assert b"d BAD" in alice.line("d SEARCH RETURN (PARTIAL 1:*) ALL")


# -- SORT and THREAD -----------------------------------------------------------------------------
def test_sort_and_thread_commands():
    harness = Harness("modern")
    harness.deliver(message("Re: b", "03 Jan 2024 10:00:00 +0000", "References: <a@x>\r\n"), date=30.0)
    harness.deliver(message("b", "01 Jan 2024 10:00:00 +0000", "Message-ID: <a@x>\r\n"), date=20.0)
    harness.deliver(message("a", "02 Jan 2024 10:00:00 +0000"), date=10.0)
    c = harness.imap()
    c.login()
    c.line("s SELECT INBOX")
    assert c.line("a SORT (SUBJECT) UTF-8 ALL").startswith(b"* SORT 3 1 2\r\n")
    assert c.line("b SORT (ARRIVAL) US-ASCII ALL").startswith(b"* SORT 3 2 1\r\n")
    assert c.line("c SORT (DATE) US-ASCII ALL").startswith(b"* SORT 2 3 1\r\n")
    assert c.line("d UID SORT (REVERSE DATE) US-ASCII 1:2").startswith(b"* SORT 1 2\r\n")
    assert c.line("e SORT RETURN (MIN MAX) (SUBJECT) US-ASCII ALL").startswith(
        b'* ESEARCH (TAG "e") MIN 1 MAX 3\r\n'
    )
    assert c.line("f THREAD REFERENCES US-ASCII ALL").startswith(b"* THREAD (2 1)(3)\r\n")
    assert c.line("g THREAD ORDEREDSUBJECT US-ASCII ALL").startswith(b"* THREAD (2 1)(3)\r\n")
    assert c.line("k UID THREAD REFERENCES US-ASCII 1").startswith(b"* THREAD (1)\r\n")
    assert b"h BAD" in c.line("h SORT (REVERSE) US-ASCII ALL")
    assert b"i BAD" in c.line("i THREAD BOGUS US-ASCII ALL")
    assert b"j NO [BADCHARSET" in c.line("j SORT (DATE) KOI8-R ALL")


# -- NOTIFY ------------------------------------------------------------------------------------------
def test_notify_status_of_other_mailboxes(modern, alice):
    alice.line("c CREATE Other")
    modern.deliver(message("o"), name="Other")
    out = alice.line("a NOTIFY SET STATUS (MAILBOXES Other (MessageNew MessageExpunge))")
    assert b'* STATUS "Other" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY ' in out and b"a OK" in out
    modern.deliver(message("p"), name="Other")
    out = alice.take()
    assert b'* STATUS "Other" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY ' in out, out
    alice.line("s SELECT Other")  # now selected: EXISTS tells, not STATUS (RFC 5465 §5)
    modern.deliver(message("p2"), name="Other")
    out = alice.line("m NOOP")
    assert b"* 3 EXISTS" in out and b"STATUS" not in out, out
    assert alice.line("b NOTIFY NONE") == b"b OK NOTIFY completed.\r\n"
    modern.deliver(message("q"), name="Other")
    assert b"STATUS" not in alice.line("n NOOP")
    assert b"d BAD" in alice.line("d NOTIFY SET (BOGUS (MessageNew))")


# -- IMAP4rev2 ------------------------------------------------------------------------------------------
def test_enable_imap4rev2(modern):
    plain = modern.imap()
    plain.login()
    assert b"* 5 RECENT" in plain.line("a EXAMINE INBOX")
    c = modern.imap()
    c.login()
    assert c.line("e ENABLE IMAP4rev2") == b"* ENABLED IMAP4REV2\r\ne OK ENABLE completed.\r\n"
    out = c.line("a EXAMINE INBOX")
    assert b"RECENT" not in out
    assert c.line("b SEARCH 1:2").startswith(b'* ESEARCH (TAG "b") ALL 1:2\r\n')
    assert b"* OK [CLOSED]" in c.line("d EXAMINE INBOX")
    assert c.line("f FETCH 1 FLAGS").startswith(b"* 1 FETCH (FLAGS ())\r\n")  # no \\Recent
    assert plain.line("g FETCH 1 FLAGS").startswith(b"* 1 FETCH (FLAGS (\\Recent))\r\n")
    modern.mailbox().set_flags([2, 3], frozenset({"\\Deleted"}), "add")
    assert b"(MESSAGES 5 DELETED 2)" in c.line("h STATUS INBOX (MESSAGES DELETED)")


# -- off in the Exchange profiles -------------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [
        "SELECT INBOX (CONDSTORE)",
        "FETCH 1 (MODSEQ)",
        "FETCH 1 FLAGS (CHANGEDSINCE 1)",
        "STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Seen)",
        "SEARCH RETURN (MIN) ALL",
        "SEARCH MODSEQ 1",
        "SEARCH YOUNGER 5",
        "FETCH $ FLAGS",
        "SORT (DATE) US-ASCII ALL",
        "THREAD REFERENCES US-ASCII ALL",
        'CANCELUPDATE "a"',
        "NOTIFY NONE",
        "ENABLE CONDSTORE",
        "STATUS INBOX (HIGHESTMODSEQ)",
    ],
)
def test_off_in_exchange2010(command):
    harness = Harness("exchange2010")
    harness.deliver(message("x"))
    c = harness.imap()
    c.login()
    c.line("s SELECT INBOX")
    out = c.line("t " + command)
    assert out.startswith(b"t BAD"), out
    assert b"u OK" in c.line("u NOOP")  # the session goes on


def test_sort_update_is_refused(alice):
    alice.line("a SELECT INBOX")
    assert alice.line("b SORT RETURN (UPDATE) (DATE) US-ASCII ALL").startswith(b"b NO [CANNOT]")


# -- PREVIEW (RFC 8970) -------------------------------------------------------------------------------
def test_fetch_preview():
    harness = Harness("modern")
    harness.deliver(b"Subject: a\r\n\r\nHello   there,\r\n  this is the body.\r\n")
    html_part = (
        b"Subject: b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=x\r\n"
        b"\r\n--x\r\nContent-Type: text/html; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>Caf=C3=A9 &amp; "
        b'<b>"tea"</b></p>\r\n--x--\r\n'
    )
    harness.deliver(html_part)
    harness.deliver(b"Subject: c\r\n\r\n" + b"word " * 100 + b"\r\n")
    c = harness.imap()
    c.login()
    c.line("s SELECT INBOX")
    assert c.line("a FETCH 1 (PREVIEW)").startswith(b'* 1 FETCH (PREVIEW "Hello there, this is the body.")')
    out = c.line("b FETCH 2 (PREVIEW (LAZY))")
    text = 'Café & "tea"'.encode()
    assert out.startswith(b"* 2 FETCH (PREVIEW {%d}\r\n" % len(text) + text + b")"), out
    value = re.search(rb'PREVIEW "([^"]*)"', c.line("d FETCH 3 PREVIEW")).group(1)
    assert len(value) <= 200 and value.startswith(b"word word") and value.endswith(b"word")
    assert b"e BAD" in c.line("e FETCH 1 (PREVIEW (EAGER))")
    assert b"* 1 FETCH (FLAGS" in c.line("f FETCH 1 FLAGS")
