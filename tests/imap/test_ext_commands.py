"""The extension commands in memory: MOVE, UNSELECT, ID, QUOTA, LITERAL-,
APPENDLIMIT, STATUS=SIZE; each in the profiles that have it on and refused
in those that do not, with bad input answered BAD/NO and the session intact."""

from __future__ import annotations

import pytest
from harness import Harness

from exchmail.store.memory import MemoryStore
from exchmail.store.quota import QuotaLimits, QuotaPolicy, QuotaStore

MESSAGE = b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


def connect(profile: str = "modern", store=None, **overrides):
    harness = Harness(profile, overrides, store=store)
    connection = harness.imap()
    connection.login()
    return harness, connection


def lines(output: bytes) -> list[bytes]:
    return output.split(b"\r\n")[:-1]


def alive(c) -> None:
    assert c.line("zz NOOP").endswith(b"zz OK NOOP completed.\r\n")


# -- MOVE (RFC 6851) -------------------------------------------------------------------------------
def selected_with(count: int, profile: str = "modern", **overrides):
    harness, c = connect(profile, **overrides)
    for i in range(count):
        harness.deliver(MESSAGE + b"%d\r\n" % i)
    c.line("s1 CREATE Dest")
    c.line("s2 SELECT INBOX")
    return harness, c


def test_move_copyuid_then_expunge_then_ok():
    harness, c = selected_with(3)
    target = harness.mailbox(name="Dest")
    out = lines(c.line("m1 MOVE 2 Dest"))
    assert out == [
        b"* OK [COPYUID %d 2 1] Moved" % target.uid_validity,
        b"* 2 EXPUNGE",
        b"m1 OK MOVE completed.",
    ]
    assert list(harness.mailbox().uids()) == [1, 3]
    assert list(target.uids()) == [1]
    assert "\\Deleted" not in target.message(1).flags


def test_uid_move_ranges_keep_flags():
    harness, c = selected_with(4)
    c.line("f1 STORE 1 +FLAGS (\\Seen)")
    out = lines(c.line("m1 UID MOVE 1,3:4 Dest"))
    assert out[0].startswith(b"* OK [COPYUID ") and out[0].endswith(b" 1,3:4 1:3] Moved")
    assert out[1:] == [b"* 4 EXPUNGE", b"* 3 EXPUNGE", b"* 1 EXPUNGE", b"m1 OK MOVE completed."]
    assert harness.mailbox(name="Dest").message(1).flags == frozenset({"\\Seen"})


def test_move_to_the_same_mailbox_gives_new_uids():
    harness, c = selected_with(1)
    out = lines(c.line("m1 MOVE 1 INBOX"))
    validity = harness.mailbox().uid_validity
    assert out[:2] == [b"* OK [COPYUID %d 1 2] Moved" % validity, b"* 1 EXPUNGE"]
    assert b"* 1 EXISTS" in out and out[-1] == b"m1 OK MOVE completed."


def test_move_of_nothing_and_errors_keep_the_session():
    harness, c = selected_with(2)
    assert c.line("m1 UID MOVE 99 Dest") == b"m1 OK MOVE completed.\r\n"
    assert c.line("m2 MOVE 1 Nowhere") == b"m2 NO [TRYCREATE] Mailbox does not exist\r\n"
    assert c.line("m3 MOVE 5 Dest") == b"m3 BAD Invalid message sequence number\r\n"
    assert c.line("m4 MOVE 1").startswith(b"m4 BAD missing argument")
    assert c.line("m5 MOVE x Dest").startswith(b"m5 BAD invalid sequence set")
    assert list(harness.mailbox().uids()) == [1, 2]
    alive(c)


def test_move_needs_a_selected_read_write_mailbox():
    harness, c = connect()
    c.line("c1 CREATE Dest")
    assert c.line("m1 MOVE 1 Dest") == b"m1 BAD MOVE not allowed in the authenticated state\r\n"
    harness.deliver(MESSAGE)
    c.line("e1 EXAMINE INBOX")
    assert c.line("m2 MOVE 1 Dest") == b"m2 NO [READ-ONLY] Mailbox is read-only\r\n"
    assert len(harness.mailbox().uids()) == 1
    alive(c)


def test_move_over_quota_is_refused_and_keeps_the_message():
    store = QuotaStore(MemoryStore(), QuotaPolicy(QuotaLimits(limit=len(MESSAGE) * 2 + 2)))
    harness, c = connect(store=store)
    harness.deliver(MESSAGE + b"1\r\n")
    c.line("c1 CREATE Dest")
    c.line("s1 SELECT INBOX")
    out = c.line("m1 MOVE 1 Dest")
    assert out.startswith(b"m1 NO [OVERQUOTA] "), out
    assert len(harness.mailbox().uids()) == 1
    alive(c)


def test_move_seen_by_another_session_as_expunge():
    harness, c = selected_with(2)
    other = harness.imap()
    other.login()
    other.line("o1 SELECT INBOX")
    c.line("m1 MOVE 1 Dest")
    assert b"* 1 EXPUNGE" in other.line("o2 NOOP")


@pytest.mark.parametrize("profile", ["exchange2010", "exchange2007", "rfc3501"])
def test_move_unsupported_where_off(profile):
    harness, c = selected_with(1, profile)
    assert c.line("m1 MOVE 1 Dest") == b"m1 BAD Unsupported command\r\n"
    assert c.line("m2 UID MOVE 1 Dest").startswith(b"m2 BAD UID must be followed by COPY, ")
    assert b"MOVE" not in c.line("c1 CAPABILITY")
    alive(c)


def test_move_turned_on_in_exchange2010():
    harness, c = selected_with(1, "exchange2010", **{"imap.move": True})
    assert b" MOVE" in c.line("c1 CAPABILITY")
    assert c.line("m1 MOVE 1 Dest").endswith(b"m1 OK MOVE completed.\r\n")


# -- UNSELECT (RFC 3691) ---------------------------------------------------------------------------
def test_unselect_does_not_expunge():
    harness, c = selected_with(1)
    c.line("f1 STORE 1 +FLAGS (\\Deleted)")
    assert c.line("u1 UNSELECT") == b"u1 OK UNSELECT completed.\r\n"
    assert c.session.state == "auth" and c.session.view is None
    assert len(harness.mailbox().uids()) == 1
    assert c.line("u2 UNSELECT") == b"u2 BAD UNSELECT not allowed in the authenticated state\r\n"
    c.line("s1 SELECT INBOX")
    assert c.line("u3 UNSELECT now").startswith(b"u3 BAD too many arguments")
    alive(c)


def test_unselect_only_where_on():
    harness, c = selected_with(1, "exchange2010")
    assert c.line("u1 UNSELECT") == b"u1 BAD Unsupported command\r\n"
    harness, c = selected_with(1, "exchange2016")
    assert c.line("u1 UNSELECT") == b"u1 OK UNSELECT completed.\r\n"


# -- ID (RFC 2971) ---------------------------------------------------------------------------------
def test_id_before_login_and_configurable():
    c = Harness("modern", {"imap.id_fields": ["name=Test", "version=1.0", "os"]}).imap()
    out = c.line('i1 ID ("name" "client" "version" NIL)')
    assert out == b'* ID ("name" "Test" "version" "1.0" "os" NIL)\r\ni1 OK ID completed.\r\n'
    assert c.line("i2 ID NIL").startswith(b"* ID (")


def test_id_nil_when_no_fields():
    c = Harness("modern", {"imap.id_fields": []}).imap()
    assert c.line("i1 ID NIL") == b"* ID NIL\r\ni1 OK ID completed.\r\n"


def test_id_exchange2016_name():
    harness, c = connect("exchange2016")
    assert c.line("i1 ID NIL").startswith(b'* ID ("name" "Microsoft.Exchange.Imap4.Imap4Server")')


@pytest.mark.parametrize(
    "arguments, reason",
    [
        (b"", b"missing argument"),
        (b'("name")', b"ID fields and values must come in pairs"),
        (b"name", b"ID takes a parenthesised list"),
        (b'(name "x")', b"ID fields must be strings"),
        (b'("' + b"k" * 31 + b'" "x")', b"ID field names are at most 30 octets"),
        (b'("k" "' + b"v" * 1025 + b'")', b"ID values are at most 1024 octets"),
        (b"(" + b'"k" "v" ' * 31 + b")", b"ID takes at most 30 field-value pairs"),
    ],
)
def test_id_bad_input(arguments, reason):
    c = Harness("modern").imap()
    out = c.line(b"i1 ID " + arguments if arguments else b"i1 ID")
    assert out.startswith(b"i1 BAD " + reason), out
    assert c.line("n1 NOOP") == b"n1 OK NOOP completed.\r\n"


def test_id_of_30_kb_is_answered():
    """imaptest's id script: 30 pairs of 30-octet fields and 1024-octet values."""
    c = Harness("modern").imap()
    pairs = b" ".join(b'"%s" "%s"' % (b"f%029d" % i, b"v" * 1024) for i in range(30))
    out = c.line(b"i1 ID (" + pairs + b")")
    assert out.endswith(b"i1 OK ID completed.\r\n")


def test_id_line_over_the_limit_is_bad_in_exchange2016():
    c = Harness("exchange2016").imap()
    out = c.line(b'i1 ID ("name" "' + b"x" * 20000 + b'")')
    assert out.startswith(b"i1 BAD [TOOBIG]")
    assert c.line("n1 NOOP") == b"n1 OK NOOP completed.\r\n"


# -- QUOTA (RFC 9208) ------------------------------------------------------------------------------
def quota_store(limit: int) -> QuotaStore:
    return QuotaStore(MemoryStore(), QuotaPolicy(QuotaLimits(limit=limit)))


def test_getquotaroot_and_getquota():
    harness, c = connect(store=quota_store(10 * 1024))
    harness.deliver(b"x" * 1500)
    out = c.line("q1 GETQUOTAROOT INBOX")
    assert out == (
        b'* QUOTAROOT "INBOX" ""\r\n* QUOTA "" (STORAGE 2 10)\r\nq1 OK GETQUOTAROOT completed.\r\n'
    )
    assert c.line('q2 GETQUOTA ""') == b'* QUOTA "" (STORAGE 2 10)\r\nq2 OK GETQUOTA completed.\r\n'
    assert c.line("q3 GETQUOTA other") == b"q3 NO [NONEXISTENT] No such quota root\r\n"
    assert c.line("q4 GETQUOTAROOT Nowhere").startswith(b"q4 NO [NONEXISTENT]")
    assert c.line('q5 SETQUOTA "" (STORAGE 512)') == (
        b"q5 NO [NOPERM] Quota limits are set by the administrator\r\n"
    )
    assert c.line('q6 SETQUOTA "" (STORAGE)').startswith(b"q6 BAD ")
    alive(c)


def test_quota_without_a_limit_has_no_root():
    harness, c = connect()
    assert c.line("q1 GETQUOTAROOT INBOX") == b'* QUOTAROOT "INBOX"\r\nq1 OK GETQUOTAROOT completed.\r\n'
    assert c.line('q2 GETQUOTA ""') == b"q2 NO [NONEXISTENT] No such quota root\r\n"


def test_append_over_quota_says_overquota():
    harness, c = connect(store=quota_store(100))
    out = c.send(b"a1 APPEND INBOX {200+}\r\n" + b"x" * 200 + b"\r\n")
    assert out.startswith(b"a1 NO [OVERQUOTA] ")
    alive(c)


def test_quota_commands_only_where_on():
    harness, c = connect("exchange2010")
    assert c.line("q1 GETQUOTAROOT INBOX") == b"q1 BAD Unsupported command\r\n"
    assert c.line("q2 STATUS INBOX (MESSAGES DELETED-STORAGE)") == (
        b'* STATUS "INBOX" (MESSAGES 0)\r\nq2 OK STATUS completed.\r\n'
    )  # 2.3: ignored


# -- STATUS items: SIZE (RFC 8438), APPENDLIMIT (RFC 7889), DELETED-STORAGE (RFC 9208) -------------
def test_status_size_appendlimit_deleted_storage():
    harness, c = connect(**{"imap.max_literal_size": 4096})
    harness.deliver(b"a" * 1000)
    harness.deliver(b"b\r\n" * 700, flags=frozenset({"\\Deleted"}))
    out = c.line("s1 STATUS INBOX (SIZE APPENDLIMIT DELETED-STORAGE MESSAGES)")
    assert out == (
        b'* STATUS "INBOX" (SIZE 3100 APPENDLIMIT 4096 DELETED-STORAGE 3 MESSAGES 2)\r\n'
        b"s1 OK STATUS completed.\r\n"
    )


def test_status_extension_items_are_bad_where_off_in_strict_profiles():
    harness, c = connect("rfc3501")
    assert c.line("s1 STATUS INBOX (SIZE)") == b"s1 BAD invalid STATUS item\r\n"
    alive(c)


# -- APPENDLIMIT and LITERAL- (RFC 7889, RFC 7888) -------------------------------------------------
def test_appendlimit_advertised_and_enforced():
    harness, c = connect(**{"imap.max_literal_size": 1000})
    assert b" APPENDLIMIT=1000" in c.line("c1 CAPABILITY")
    assert c.line("a1 APPEND INBOX {1001}") == b"a1 NO [TOOBIG] Literal larger than 1000 octets\r\n"
    alive(c)


def test_literal_minus_replaces_literal_plus_and_limits_nonsync():
    harness, c = connect(**{"imap.literal_minus": True})
    caps = c.line("c1 CAPABILITY")
    assert b" LITERAL-" in caps and b"LITERAL+" not in caps
    big = b"x" * 4097
    out = c.send(b"a1 APPEND INBOX {4097+}\r\n" + big + b"\r\n")
    assert out == b"a1 BAD [TOOBIG] Non-synchronizing literals are at most 4096 octets (LITERAL-)\r\n"
    assert list(harness.mailbox().uids()) == []
    ok = c.send(b"a2 APPEND INBOX {4096+}\r\n" + big[:4096] + b"\r\n")
    assert ok.startswith(b"a2 OK [APPENDUID ")
    assert c.send(b"a3 APPEND INBOX {4097}\r\n") == b"+ Ready for literal data\r\n"
    assert c.send(big + b"\r\n").startswith(b"a3 OK [APPENDUID ")
    alive(c)


def test_literal_plus_has_no_small_limit():
    harness, c = connect()
    out = c.send(b"a1 APPEND INBOX {5000+}\r\n" + b"x" * 5000 + b"\r\n")
    assert out.startswith(b"a1 OK [APPENDUID ")


# -- SASL-IR (RFC 4959) --------------------------------------------------------------------------
def test_sasl_ir_advertised_only_where_on_and_accepted_everywhere():
    import base64

    response = base64.b64encode(b"\0alice\0pw")
    for profile, overrides, advertised in [
        ("exchange2010", {}, False),
        ("exchange2010", {"imap.sasl_ir": True}, True),
        ("exchange2016", {}, True),
    ]:
        c = Harness(profile, overrides).imap()
        assert (b" SASL-IR" in c.line("c1 CAPABILITY")) is advertised
        assert c.line(b"a1 AUTHENTICATE PLAIN " + response) == b"a1 OK AUTHENTICATE completed.\r\n"
    c = Harness("modern").imap()
    assert c.line(b"a2 AUTHENTICATE PLAIN not-base64!").startswith(b"a2 BAD Invalid SASL response")
    assert c.line("n1 NOOP") == b"n1 OK NOOP completed.\r\n"
