"""MS-STANXIMAP on the wire, part 3: messages, flags, sizes, SEARCH, FETCH, updates.

See test_imap_conformance.py for the conventions (statement ID in every
test name; settings checked under both built-in profiles).
"""

from __future__ import annotations

import email
import email.policy
import re

import pytest
from conftest import in_reactor
from imap_conformance_support import (
    MULTIPART,
    PLAIN,
    PROFILES,
    SYSTEM_FLAGS,
    append,
    literal_of,
    raw,
    running,
    settings,
    store_mailbox,
)

pytestmark = pytest.mark.usefixtures("reactor_thread")

both = pytest.mark.parametrize("profile", PROFILES)

REVISED = b"From: Alice <alice@example.com>\r\nSubject: Hello world (revised)\r\n\r\nThe revised body\r\n"

EIGHT_BIT = (
    "From: Émile <emile@example.fr>\r\n"
    "To: Bob <bob@example.org>\r\n"
    "Subject: Grüße aus Köln\r\n"
    "X-Note: café crème\r\n"
    "Date: Wed, 03 Jan 2024 12:00:00 +0000\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Crème brûlée au café\r\n"
    "deuxième ligne\r\n"
).encode()

EMPTY_FIELDS = b"From: a@b.c\r\nDate: \r\nSubject: \r\nIn-Reply-To: \r\nMessage-ID: \r\n\r\nbody\r\n"


def flags_of(line: bytes) -> set[bytes]:
    m = re.search(rb"FLAGS \(([^)]*)\)", line)
    assert m, line
    return set(m.group(1).split()) - {b"\\Recent"}


def lf_size(msg: bytes) -> int:
    return len(msg.replace(b"\r\n", b"\n"))


# -- 2.1.2 / 2.1.3 / V0004 revised messages get new UIDs ------------------------------------------


def _replace_first(server, c) -> int:
    assert append(c, PLAIN, flags=b"(\\Seen)").startswith(b"OK")
    c.ok(b"SELECT INBOX")
    mailbox = store_mailbox(server)
    new_uid = in_reactor(mailbox.replace_message, 1, REVISED)
    assert new_uid > 1
    return new_uid


@both
def test_2_1_2_revised_message_gets_new_uid(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        new_uid = _replace_first(server, c)
        untagged = c.ok(b"NOOP")
        assert b"* 1 EXPUNGE" in untagged, untagged
        assert [x for x in untagged if x.endswith(b" EXISTS")][-1:] in ([b"* 1 EXISTS"], [b"* 2 EXISTS"])
        assert untagged.count(b"* 1 EXPUNGE") == 1, untagged
        (line,) = c.ok(b"UID FETCH 1:* (UID FLAGS)")
        assert line.startswith(b"* 1 FETCH (") and b"UID %d" % new_uid in line, line
        assert flags_of(line) == {b"\\Seen"}


@both
def test_2_1_3_uid_names_one_immutable_message(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        validity = re.search(rb"UIDVALIDITY (\d+)", b" ".join(c.ok(b"STATUS INBOX (UIDVALIDITY)")))
        new_uid = _replace_first(server, c)
        c.ok(b"NOOP")
        assert c.ok(b"UID FETCH 1 (BODY.PEEK[])") == []  # the old UID never names the new text
        (line,) = c.ok(b"UID FETCH %d (BODY.PEEK[])" % new_uid)
        assert literal_of(line) == REVISED
        c.ok(b"CLOSE")
        (status,) = c.ok(b"STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY)")
        assert b"MESSAGES 1" in status and b"UIDNEXT %d" % (new_uid + 1) in status, status
        assert validity and b"UIDVALIDITY " + validity.group(1) in status, status


@both
def test_V0004_new_uid_across_sessions(tmp_path, profile):
    with running(tmp_path, profile) as server:
        with raw(server) as first:
            new_uid = _replace_first(server, first)
        with raw(server) as later:
            later.ok(b"SELECT INBOX")
            (line,) = later.ok(b"FETCH 1:* (UID BODY.PEEK[])")
            assert b"UID %d " % new_uid in line and literal_of(line) == REVISED, line


# -- E0001 / V0052 server keywords, V0005 client keywords ---------------------------------------------


@both
def test_E0001_V0052_flags_list_server_keywords(tmp_path, profile):
    assert settings(profile).server_keywords == ("$MDNSent",)
    with running(tmp_path, profile) as server, raw(server) as c:
        untagged = c.ok(b"SELECT INBOX")
        (flags,) = [x for x in untagged if x.startswith(b"* FLAGS ")]
        assert set(flags[len(b"* FLAGS (") : -1].split()) == SYSTEM_FLAGS | {b"$MDNSent"}, flags
        (perm,) = [x for x in untagged if x.startswith(b"* OK [PERMANENTFLAGS ")]
        got = set(re.match(rb"\* OK \[PERMANENTFLAGS \(([^)]*)\)\]", perm).group(1).split())
        expected = SYSTEM_FLAGS | {b"$MDNSent"}
        if settings(profile).client_keywords:
            expected |= {b"\\*"}
        assert got == expected, perm


@both
def test_E0001_store_mdnsent(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        append(c, PLAIN)
        c.ok(b"SELECT INBOX")
        (line,) = c.ok(b"STORE 1 +FLAGS ($MDNSent)")
        assert flags_of(line) == {b"$MDNSent"}, line
        assert c.ok(b"SEARCH KEYWORD $MDNSent") == [b"* SEARCH 1"]


@both
def test_V0005_client_keywords(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        append(c, PLAIN)
        c.ok(b"SELECT INBOX")
        untagged, done = c.command(b"STORE 1 +FLAGS (foo)")
        (line,) = c.ok(b"FETCH 1 (FLAGS)")
        if settings(profile).client_keywords:
            assert profile == "rfc3501"
            assert done.startswith(b"OK"), done
            assert flags_of(line) == {b"foo"}, line
        else:
            assert profile == "exchange2010"
            assert done.startswith(b"NO [CANNOT]"), done
            assert untagged == []
            assert flags_of(line) == set(), line


@both
def test_V0037_V0040_search_keyword(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        append(c, PLAIN)
        append(c, PLAIN)
        c.ok(b"SELECT INBOX")
        c.command(b"STORE 1 +FLAGS.SILENT (foo)")
        c.ok(b"STORE 2 +FLAGS.SILENT ($MDNSent)")
        keyword = c.ok(b"SEARCH KEYWORD foo")
        unkeyword = c.ok(b"SEARCH UNKEYWORD foo")
        assert c.ok(b"SEARCH KEYWORD $MDNSent") == [b"* SEARCH 2"]
        assert c.ok(b"SEARCH UNKEYWORD $MDNSent") == [b"* SEARCH 1"]
        if settings(profile).client_keywords:
            assert keyword == [b"* SEARCH 1"] and unkeyword == [b"* SEARCH 2"], (keyword, unkeyword)
        else:
            assert keyword == [b"* SEARCH"] and unkeyword == [b"* SEARCH 1 2"], (keyword, unkeyword)


@both
def test_V0040_unkeyword_unknown_matches_all(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        append(c, PLAIN)
        c.ok(b"SELECT INBOX")
        assert c.ok(b"SEARCH UNKEYWORD never_used") == [b"* SEARCH 1"]
        assert c.ok(b"SEARCH KEYWORD never_used") == [b"* SEARCH"]


@both
def test_2_3_append_unknown_keyword(tmp_path, profile):
    """APPEND with a keyword the profile does not allow: the keyword is ignored, not an error."""
    with running(tmp_path, profile) as server, raw(server) as c:
        done = append(c, PLAIN, flags=b"(\\Flagged foo)")
        assert done.startswith(b"OK"), done
        c.ok(b"SELECT INBOX")
        # a new keyword is announced (FLAGS, PERMANENTFLAGS) before FETCH shows it
        (line,) = [r for r in c.ok(b"FETCH 1 (FLAGS)") if b" FETCH " in r]
        if settings(profile).client_keywords:
            assert flags_of(line) == {b"\\Flagged", b"foo"}, line
        else:
            assert settings(profile).ignore_invalid_parameters
            assert flags_of(line) == {b"\\Flagged"}, line


# -- V0006 / V0043 / V0038 / V0039 sizes ---------------------------------------------------------


@both
def test_V0006_V0043_rfc822_size(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        append(c, PLAIN)
        append(c, MULTIPART)
        c.ok(b"SELECT INBOX")
        exact = settings(profile).exact_rfc822_size
        assert exact == (profile == "rfc3501")
        for seq, msg in ((1, PLAIN), (2, MULTIPART)):
            size = len(msg) if exact else lf_size(msg)
            assert c.ok(b"FETCH %d (RFC822.SIZE)" % seq) == [b"* %d FETCH (RFC822.SIZE %d)" % (seq, size)]


@both
def test_V0038_search_larger(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        append(c, PLAIN)
        c.ok(b"SELECT INBOX")
        found = c.ok(b"SEARCH LARGER %d" % (len(PLAIN) - 1))
        below = c.ok(b"SEARCH LARGER %d" % (lf_size(PLAIN) - 1))
        assert below == [b"* SEARCH 1"]
        if settings(profile).exact_rfc822_size:
            assert found == [b"* SEARCH 1"], found
        else:
            assert found == [b"* SEARCH"], found


@both
def test_V0039_search_smaller(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        append(c, PLAIN)
        c.ok(b"SELECT INBOX")
        found = c.ok(b"SEARCH SMALLER %d" % (lf_size(PLAIN) + 1))
        above = c.ok(b"SEARCH SMALLER %d" % (len(PLAIN) + 1))
        assert above == [b"* SEARCH 1"]
        if settings(profile).exact_rfc822_size:
            assert found == [b"* SEARCH"], found
        else:
            assert found == [b"* SEARCH 1"], found


# -- V0007 8-bit output ------------------------------------------------------------------------


@both
def test_V0007_eight_bit_message(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        append(c, EIGHT_BIT)
        c.ok(b"SELECT INBOX")
        (body,) = c.ok(b"FETCH 1 (BODY.PEEK[])")
        (rfc822,) = c.ok(b"FETCH 1 (RFC822)")
        (text,) = c.ok(b"FETCH 1 (BODY.PEEK[TEXT])")
        (subject,) = c.ok(b"FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT X-NOTE)])")
        if settings(profile).seven_bit_output:
            assert profile == "exchange2010"
            for line in (body, rfc822, text, subject):
                assert max(line) < 0x80, line
            assert literal_of(rfc822) == literal_of(body)
            msg = email.message_from_bytes(literal_of(body), policy=email.policy.default)
            original = email.message_from_bytes(EIGHT_BIT, policy=email.policy.default)
            for header in ("From", "To", "Subject", "X-Note", "Date"):
                assert str(msg[header]) == str(original[header]), header
            assert msg["Content-Transfer-Encoding"].lower() in ("quoted-printable", "base64")
            assert msg.get_content().replace("\r\n", "\n") == "Crème brûlée au café\ndeuxième ligne\n"
        else:
            assert profile == "rfc3501"
            assert literal_of(body) == EIGHT_BIT
            assert literal_of(rfc822) == EIGHT_BIT
            assert literal_of(text) == EIGHT_BIT.split(b"\r\n\r\n", 1)[1]


@both
def test_V0007_seven_bit_messages_unchanged(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        append(c, PLAIN)
        append(c, MULTIPART)
        c.ok(b"SELECT INBOX")
        for seq, msg in ((1, PLAIN), (2, MULTIPART)):
            (line,) = c.ok(b"FETCH %d (BODY.PEEK[])" % seq)
            assert literal_of(line) == msg


# -- V0013 / V0042 / V0044 changes by other agents ----------------------------------------------


@both
def test_V0013_store_api_changes_seen_by_session(tmp_path, profile):
    """Other protocols add, flag and remove messages (here: the store API, origin None)."""
    with running(tmp_path, profile) as server, raw(server) as c:
        c.ok(b"SELECT INBOX")
        mailbox = store_mailbox(server)
        uid = in_reactor(mailbox.append, PLAIN)
        untagged = c.ok(b"NOOP")
        assert b"* 1 EXISTS" in untagged, untagged
        in_reactor(mailbox.set_flags, [uid], frozenset({"\\Deleted"}), "add")
        line = [x for x in c.ok(b"FETCH 1 (FLAGS)") if b"FETCH" in x][-1]
        assert b"\\Deleted" in flags_of(line)
        in_reactor(mailbox.expunge)
        untagged = c.ok(b"NOOP")
        assert b"* 1 EXPUNGE" in untagged, untagged
        assert c.ok(b"SEARCH ALL") == [b"* SEARCH"]


@both
def test_V0042_flags_change_by_store_and_externally(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c, raw(server) as other:
        append(c, PLAIN)
        c.ok(b"SELECT INBOX")
        other.ok(b"SELECT INBOX")
        (line,) = c.ok(b"STORE 1 +FLAGS (\\Answered)")
        assert flags_of(line) == {b"\\Answered"}
        other.ok(b"STORE 1 +FLAGS.SILENT (\\Flagged)")
        in_reactor(store_mailbox(server).set_flags, [1], frozenset({"\\Seen"}), "add")
        (line,) = [x for x in c.ok(b"FETCH 1 (FLAGS)") if x.startswith(b"* 1 FETCH")][-1:]
        assert flags_of(line) == {b"\\Answered", b"\\Flagged", b"\\Seen"}, line


@both
def test_V0044_flag_change_by_other_session(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as watcher, raw(server) as other:
        append(other, PLAIN)
        watcher.ok(b"SELECT INBOX")
        other.ok(b"SELECT INBOX")
        other.ok(b"STORE 1 +FLAGS.SILENT (\\Flagged)")
        untagged = watcher.ok(b"NOOP")
        if settings(profile).notify_external_flag_changes:
            assert profile == "rfc3501"
            (line,) = untagged
            assert re.fullmatch(rb"\* 1 FETCH \(FLAGS \([^)]*\)\)", line), line
            assert flags_of(line) == {b"\\Flagged"}, line
        else:
            assert profile == "exchange2010"
            assert untagged == [], untagged


@both
def test_V0044_flag_change_by_store_api(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as watcher:
        append(watcher, PLAIN)
        watcher.ok(b"SELECT INBOX")
        in_reactor(store_mailbox(server).set_flags, [1], frozenset({"\\Flagged"}), "add")
        untagged = watcher.ok(b"NOOP")
        if settings(profile).notify_external_flag_changes:
            assert [flags_of(x) for x in untagged] == [{b"\\Flagged"}], untagged
        else:
            assert untagged == [], untagged


# -- V0033 / V0034 APPEND and CHECK ------------------------------------------------------------


@both
def test_V0033_append_to_selected_exists_before_completion(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        c.ok(b"SELECT INBOX")
        tag = c.next_tag()
        c.send(tag + b" APPEND INBOX {%d}\r\n" % len(PLAIN))
        assert c.readline().startswith(b"+")
        c.send(PLAIN + b"\r\n")
        untagged, done = c.read_until_tag(tag)
        assert done.startswith(b"OK"), done
        assert untagged.count(b"* 1 EXISTS") == 1, untagged
        assert b"* 1 EXISTS" not in c.ok(b"NOOP")


@both
def test_V0034_check_like_noop(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as watcher, raw(server) as other:
        watcher.ok(b"SELECT INBOX")
        append(other, PLAIN)
        append(other, PLAIN)
        untagged = watcher.ok(b"CHECK")
        assert b"* 2 EXISTS" in untagged and b"* 2 RECENT" in untagged, untagged
        other.ok(b"SELECT INBOX")
        other.ok(b"STORE 1 +FLAGS.SILENT (\\Deleted)")
        other.ok(b"EXPUNGE")
        untagged = watcher.ok(b"CHECK")
        assert b"* 1 EXPUNGE" in untagged, untagged
        assert watcher.ok(b"CHECK") == []


# -- V0035 / V0036 charsets, V0041 key limit ----------------------------------------------------


@both
def test_V0035_V0036_search_charsets(tmp_path, profile):
    charsets = settings(profile).search_charsets
    with running(tmp_path, profile) as server, raw(server) as c:
        append(c, PLAIN)
        append(c, EIGHT_BIT)
        c.ok(b"SELECT INBOX")
        assert c.ok(b"SEARCH CHARSET US-ASCII SUBJECT Hello") == [b"* SEARCH 1"]
        word = "Grüße".encode()
        untagged, done = c.command(b"SEARCH CHARSET UTF-8 SUBJECT {%d+}\r\n" % len(word) + word)
        _, other = c.command(b"SEARCH CHARSET KOI8-R SUBJECT Hello")
        listed = b"[BADCHARSET (" + b" ".join(x.encode() for x in charsets) + b")]"
        assert other.startswith(b"NO " + listed), other
        if "UTF-8" in charsets:
            assert profile == "rfc3501"
            assert done.startswith(b"OK") and untagged == [b"* SEARCH 2"], (untagged, done)
        else:
            assert profile == "exchange2010"
            assert charsets == ("US-ASCII",)
            assert done.startswith(b"NO [BADCHARSET (US-ASCII)]"), done
            assert untagged == []


@both
def test_V0041_search_key_limit(tmp_path, profile):
    limit = settings(profile).max_search_keys
    assert limit == {"exchange2010": 10, "rfc3501": 0}[profile]
    with running(tmp_path, profile) as server, raw(server) as c:
        append(c, PLAIN)
        c.ok(b"SELECT INBOX")
        assert c.ok(b"SEARCH" + b" UNDELETED" * 10) == [b"* SEARCH 1"]
        assert c.ok(b"SEARCH ALL" + b" UNDRAFT" * 9) == [b"* SEARCH 1"]
        untagged, done = c.command(b"SEARCH" + b" UNDELETED" * 11)
        if limit:
            assert done.startswith(b"NO [LIMIT]"), done
            assert untagged == []
        else:
            assert done.startswith(b"OK") and untagged == [b"* SEARCH 1"], (untagged, done)


# -- V0053 EXISTS after EXPUNGE ------------------------------------------------------------


@both
def test_V0053_exists_after_expunge(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        for _ in range(3):
            append(c, PLAIN)
        c.ok(b"SELECT INBOX")
        c.ok(b"STORE 1,3 +FLAGS.SILENT (\\Deleted)")
        untagged = c.ok(b"EXPUNGE")
        assert untagged[:2] in ([b"* 3 EXPUNGE", b"* 1 EXPUNGE"], [b"* 1 EXPUNGE", b"* 2 EXPUNGE"]), untagged
        if settings(profile).exists_after_expunge:
            assert profile == "exchange2010"
            assert untagged[2:] == [b"* 1 EXISTS"], untagged
        else:
            assert profile == "rfc3501"
            assert untagged[2:] == [], untagged


# -- V0054 BODYSTRUCTURE extension data -------------------------------------------------------


@both
def test_V0054_bodystructure_extension_data(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        append(c, MULTIPART)
        append(c, PLAIN)
        c.ok(b"SELECT INBOX")
        (structure,) = c.ok(b"FETCH 1 (BODYSTRUCTURE)")
        (body,) = c.ok(b"FETCH 1 (BODY)")
        assert re.search(rb'"MIXED" \("BOUNDARY" "XYZ"\)', structure, re.I), structure
        assert b"BOUNDARY" not in body.upper(), body
        assert body.startswith(b"* 1 FETCH (BODY ((") and body.upper().endswith(b' "MIXED"))'), body
        (single,) = c.ok(b"FETCH 2 (BODYSTRUCTURE)")
        (single_body,) = c.ok(b"FETCH 2 (BODY)")
        # single part: BODYSTRUCTURE carries the MD5 (NIL) and more; BODY ends at the line count.
        assert len(single) > len(single_body.replace(b"(BODY ", b"(BODYSTRUCTURE ")), (single, single_body)


# -- V0055 empty envelope fields ------------------------------------------------------------


@both
def test_V0055_empty_envelope_fields(tmp_path, profile):
    with running(tmp_path, profile) as server, raw(server) as c:
        append(c, EMPTY_FIELDS)
        c.ok(b"SELECT INBOX")
        (line,) = c.ok(b"FETCH 1 (ENVELOPE)")
        addr = b'((NIL NIL "a" "b.c"))'
        if settings(profile).empty_envelope_fields_nil:
            assert profile == "exchange2010"
            expected = b"NIL NIL %s %s %s NIL NIL NIL NIL NIL" % (addr, addr, addr)
        else:
            assert profile == "rfc3501"
            expected = b'"" "" %s %s %s NIL NIL NIL "" ""' % (addr, addr, addr)
        assert line == b"* 1 FETCH (ENVELOPE (" + expected + b"))", line
