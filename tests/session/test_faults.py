"""Fault injection in the session core (exchmail.session.faults), in memory.

The rules come from exchmail.testing.faults and the store wrapper from
exchmail.testing.faultstore; the sessions are the real IMAP and POP3
sessions on a StringTransport with a task.Clock (tests/harness.py).
"""

from __future__ import annotations

import pytest
from harness import Harness

from exchmail.store.memory import MemoryStore
from exchmail.testing.faults import FaultRule, Faults
from exchmail.testing.faultstore import FaultStore

MESSAGE = b"Subject: test\r\n\r\n" + b"0123456789" * 20 + b"\r\n"


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def harness(faults: Faults) -> Harness:
    inner = MemoryStore()
    faults.store = inner
    harness = Harness(store=FaultStore(inner, faults), faults=faults)
    for _ in range(3):
        harness.deliver(MESSAGE)
    return harness


def selected(harness: Harness):
    imap = harness.imap()
    imap.login()
    assert b"OK" in imap.line("S1 SELECT INBOX")
    return imap


def test_no_faults_is_the_default():
    harness = Harness()
    assert harness.contexts["imap"].faults is None
    imap = harness.imap()
    assert imap.line("a NOOP").endswith(b"a OK NOOP completed.\r\n")


def test_reply_no_replaces_the_command_once(harness, faults):
    rule = faults.reply("SELECT", "NO", "[UNAVAILABLE] Mailbox database offline")
    imap = harness.imap()
    imap.login()
    assert imap.line("a SELECT INBOX") == b"a NO [UNAVAILABLE] Mailbox database offline\r\n"
    assert b"a OK [READ-WRITE]" in imap.line("a SELECT INBOX")
    assert (rule.seen, rule.fired) == (2, 1)


def test_reply_bad_uses_the_tag(harness, faults):
    faults.reply("NOOP", "BAD", "Injected")
    imap = harness.imap()
    assert imap.line("x1 NOOP") == b"x1 BAD Injected\r\n"


def test_fetch_matches_uid_fetch_but_not_the_reverse(harness, faults):
    plain = faults.reply("UID FETCH", "NO", "uid only", times=0)
    imap = selected(harness)
    assert imap.line("f1 FETCH 1 FLAGS").endswith(b"f1 OK FETCH completed.\r\n")
    assert imap.line("f2 UID FETCH 1 FLAGS") == b"f2 NO uid only\r\n"
    assert plain.fired == 1
    faults.clear()
    both = faults.reply("FETCH", "NO", "both", times=0)
    assert imap.line("f3 FETCH 1 FLAGS") == b"f3 NO both\r\n"
    assert imap.line("f4 UID FETCH 1 FLAGS") == b"f4 NO both\r\n"
    assert both.fired == 2


def test_bye_closes_without_a_tagged_answer(harness, faults):
    faults.bye("FETCH", "Server shutting down")
    imap = selected(harness)
    assert imap.line("f1 FETCH 1 FLAGS") == b"* BYE Server shutting down\r\n"
    assert imap.closed


def test_skip_and_times_count_matching_commands(harness, faults):
    rule = faults.reply("NOOP", "NO", "third and fourth", skip=2, times=2)
    imap = harness.imap()
    answers = [imap.line(f"n{i} NOOP") for i in range(5)]
    assert [a.split(b" ")[1] for a in answers] == [b"OK", b"OK", b"NO", b"NO", b"OK"]
    assert (rule.seen, rule.fired) == (5, 2)


def test_user_scope_waits_for_the_login(harness, faults):
    faults.reply(None, "NO", "bob only", user="BOB", times=0)
    imap = harness.imap()
    assert b"a OK" in imap.line("a NOOP")  # no user yet
    imap.login("bob")
    assert imap.line("b NOOP") == b"b NO bob only\r\n"
    other = harness.imap()
    other.login("alice")
    assert b"c OK" in other.line("c NOOP")


def test_protocol_scope(harness, faults):
    faults.reply(None, "NO", "pop3 only", protocol="pop3", times=0)
    assert b"a OK" in harness.imap().line("a NOOP")
    pop3 = harness.pop3()
    assert pop3.line("CAPA") == b"-ERR pop3 only\r\n"


def test_drop_before_sends_nothing(harness, faults):
    faults.drop("EXAMINE", when="before")
    imap = harness.imap()
    imap.login()
    assert imap.line("a EXAMINE INBOX") == b""
    assert imap.closed


def test_drop_after_answers_then_closes(harness, faults):
    faults.drop(when="after", skip=1, user="alice")  # the second command after login
    imap = selected(harness)
    assert imap.line("n NOOP").endswith(b"n OK NOOP completed.\r\n")
    assert imap.closed


def test_drop_during_cuts_a_fetch_literal(harness, faults):
    faults.drop("FETCH", when="during", octets=40)
    imap = selected(harness)
    out = imap.line("f UID FETCH 2 BODY.PEEK[]")
    assert len(out) == 40
    assert out.startswith(b"* 2 FETCH (UID 2 BODY[] {")
    assert imap.closed
    assert b"f OK" not in imap.take()


def test_drop_during_a_short_response_closes_at_its_end(harness, faults):
    faults.drop("NOOP", when="during", octets=10_000)
    imap = harness.imap()
    assert imap.line("a NOOP") == b"a OK NOOP completed.\r\n"
    assert imap.closed


def test_drop_during_pop3_retr(harness, faults):
    faults.drop("RETR", when="during", octets=50)
    pop3 = harness.pop3()
    pop3.login()
    out = pop3.line("RETR 1")
    assert len(out) == 50 and out.startswith(b"+OK")
    assert pop3.closed


def test_delay_holds_the_answer_on_the_clock(harness, faults):
    faults.delay("NOOP", 30)
    imap = harness.imap()
    assert imap.line("a NOOP") == b""
    harness.clock.advance(29)
    assert imap.take() == b""
    harness.clock.advance(1)
    assert imap.take() == b"a OK NOOP completed.\r\n"


def test_delay_then_client_gone_runs_nothing(harness, faults):
    faults.delay("SELECT", 5)
    imap = harness.imap()
    imap.login()
    assert imap.line("a SELECT INBOX") == b""
    imap.close()
    harness.clock.advance(5)
    assert imap.take() == b""


def test_pop3_reply_and_bye(harness, faults):
    faults.reply("RETR", "NO", "[SYS/TEMP] Try again later")
    faults.bye("LIST", "[SYS/TEMP] Shutting down")
    pop3 = harness.pop3()
    pop3.login()
    assert pop3.line("RETR 1") == b"-ERR [SYS/TEMP] Try again later\r\n"
    assert pop3.line("LIST") == b"-ERR [SYS/TEMP] Shutting down\r\n"
    assert pop3.closed


def test_expunge_between_two_commands(harness, faults):
    faults.expunge("NOOP", uids=(2,))
    imap = selected(harness)
    assert imap.line("n NOOP") == b"* 2 EXPUNGE\r\nn OK NOOP completed.\r\n"
    assert list(harness.mailbox().uids()) == [1, 3]


def test_expunge_is_held_during_fetch(harness, faults):
    faults.expunge("FETCH", uids=(1,))
    imap = selected(harness)
    out = imap.line("f FETCH 1:3 FLAGS")
    assert b"EXPUNGE" not in out  # RFC 3501 7.4.1
    assert imap.line("n NOOP").startswith(b"* 1 EXPUNGE\r\n")


def test_uidvalidity_changes_at_the_next_select(harness, faults):
    before = harness.mailbox().uid_validity
    faults.change_uidvalidity("SELECT")
    imap = harness.imap()
    imap.login()
    out = imap.line("a SELECT INBOX")
    assert b"[UIDVALIDITY %d]" % (before + 1) in out
    assert b"[UIDVALIDITY %d]" % (before + 1) in imap.line("b SELECT INBOX")


def test_store_error_during_a_command(harness, faults):
    faults.store_error(command="UID FETCH", text="Database is offline")
    imap = selected(harness)
    out = imap.line("f UID FETCH 1 BODY[]")
    assert out.endswith(b"f NO [UNAVAILABLE] Database is offline\r\n")
    assert b"f OK" in imap.line("f UID FETCH 1 BODY[]")


def test_store_error_by_operation_in_pop3(harness, faults):
    rule = faults.store_error("read_messages", user="alice")  # RETR reads ahead in batches
    pop3 = harness.pop3()
    pop3.login()
    assert pop3.line("RETR 1") == b"-ERR [SYS/TEMP] " + rule.text.encode() + b"\r\n"
    assert pop3.line("RETR 1").startswith(b"+OK")


def test_store_error_on_append(harness, faults):
    faults.store_error("append")
    imap = harness.imap()
    imap.login()
    out = imap.send(b"a APPEND INBOX {5+}\r\nhello\r\n")
    assert out.startswith(b"a NO [UNAVAILABLE] ")
    assert len(harness.mailbox().uids()) == 3


def test_several_rules_combine(harness, faults):
    faults.delay("NOOP", 2)
    faults.reply("NOOP", "NO", "late no")
    imap = harness.imap()
    assert imap.line("a NOOP") == b""
    harness.clock.advance(2)
    assert imap.take() == b"a NO late no\r\n"


def test_rule_validation_and_json_round_trip():
    with pytest.raises(ValueError, match="action"):
        FaultRule("explode")
    with pytest.raises(ValueError, match="status"):
        FaultRule("reply", status="MAYBE")
    with pytest.raises(ValueError, match="unknown rule field"):
        FaultRule.from_dict({"action": "drop", "colour": "red"})
    rule = FaultRule.from_dict({"action": "expunge", "command": "noop", "uids": [3]})
    assert rule.command == "NOOP" and rule.uids == (3,)
    data = rule.to_dict()
    assert data["uids"] == [3] and data["fired"] == 0 and data["id"] == rule.id
