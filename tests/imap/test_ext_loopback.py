"""The extensions over real sockets and the Maildir store: every extension at
least once on the wire, bad input answered with the session intact, and
what must survive a restart (CREATE-SPECIAL-USE, default folders)."""

from __future__ import annotations

import pytest
from conftest import start_server
from test_bad_input import Client, status

from exchmail.profile import load_profile

MESSAGE = b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


def serve(tmp_path, profile: str = "modern", again: bool = False, **overrides):
    """A Maildir server of ``profile``; ``again``: on the data of an earlier one."""
    return start_server(
        tmp_path,
        users=() if again else ("alice", "bob"),
        config_changes={"profile": load_profile(profile, overrides)},
    )


@pytest.fixture
def modern(reactor_thread, tmp_path):
    server = serve(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def alice(modern):
    c = Client(modern.imap_port)
    c.login()
    yield c
    c.close()


def test_capabilities_of_each_profile(reactor_thread, tmp_path):
    expected = {
        "exchange2010": b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS IDLE NAMESPACE LITERAL+",
        "exchange2007": b"* CAPABILITY IMAP4 IMAP4rev1 UIDPLUS IDLE NAMESPACE LITERAL+",
        "exchange2016": b"* CAPABILITY IMAP4 IMAP4rev1 SASL-IR UIDPLUS MOVE ID UNSELECT "
        b"CHILDREN IDLE NAMESPACE LITERAL+",
        "modern": b"* CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR UIDPLUS CHILDREN IDLE NAMESPACE "
        b"LITERAL+ ENABLE ID UNSELECT MOVE MULTIAPPEND BINARY CATENATE UTF8=ACCEPT SPECIAL-USE "
        b"CREATE-SPECIAL-USE LIST-EXTENDED LIST-STATUS APPENDLIMIT=52428800 STATUS=SIZE QUOTA "
        b"QUOTA=RES-STORAGE COMPRESS=DEFLATE CONDSTORE QRESYNC ESEARCH SEARCHRES WITHIN SORT "
        b"SORT=DISPLAY ESORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES CONTEXT=SEARCH "
        b"CONTEXT=SORT NOTIFY PREVIEW",
    }
    for profile, line in expected.items():
        server = serve(tmp_path / profile, profile)
        try:
            c = Client(server.imap_port)
            words = c.run(b"CAPABILITY")[0].split()
            assert b" ".join(w for w in words if not w.startswith(b"AUTH=")) == line
            c.close()
        finally:
            server.stop()


def test_move_unselect_id_enable_on_the_wire(alice):
    assert status(alice.command(b"a", b"a APPEND INBOX {%d+}\r\n" % len(MESSAGE) + MESSAGE)[-1]) == b"OK"
    assert alice.run(b'ID ("name" "raw")')[0] == b'* ID ("name" "exchmail")'
    assert alice.run(b"ENABLE CONDSTORE")[0] == b"* ENABLED CONDSTORE"
    alice.run(b"SELECT INBOX")
    lines = alice.run(b"UID MOVE 1 Trash")
    assert lines[0].startswith(b"* OK [COPYUID ") and lines[1] == b"* 1 EXPUNGE", lines
    assert status(lines[-1]) == b"OK"
    assert status(alice.run(b"UNSELECT")[-1]) == b"OK"
    assert status(alice.run(b"UNSELECT")[-1]) == b"BAD"
    assert status(alice.run(b"MOVE 1 Trash")[-1]) == b"BAD"  # nothing selected
    alice.assert_alive()


def test_list_extended_status_and_special_use_on_the_wire(alice):
    lines = alice.run(b'LIST (SPECIAL-USE) "" "*" RETURN (STATUS (MESSAGES SIZE))')
    assert lines[:2] == [b'* LIST (\\Archive) "/" "Archive"', b'* STATUS "Archive" (MESSAGES 0 SIZE 0)'], (
        lines
    )
    assert len(lines) == 11 and status(lines[-1]) == b"OK"
    assert status(alice.run(b'LIST (BOGUS) "" "*"')[-1]) == b"BAD"
    assert status(alice.run(b'LIST "" "*" RETURN (STATUS (BOGUS))')[-1]) == b"BAD"
    alice.assert_alive()


def test_status_quota_appendlimit_literal_on_the_wire(alice):
    assert alice.run(b"STATUS INBOX (SIZE APPENDLIMIT)")[0] == (
        b'* STATUS "INBOX" (SIZE 0 APPENDLIMIT 52428800)'
    )
    assert alice.run(b"GETQUOTAROOT INBOX")[0] == b'* QUOTAROOT "INBOX"'  # no [quota] limit
    lines = alice.command(b"a1", b"a1 APPEND INBOX {52428801}")
    assert lines == [b"a1 NO [TOOBIG] Literal larger than 52428800 octets"]
    alice.assert_alive()


def test_literal_minus_on_the_wire(reactor_thread, tmp_path):
    server = serve(tmp_path, literal_minus=True)
    try:
        c = Client(server.imap_port)
        c.login()
        lines = c.command(b"a1", b"a1 APPEND INBOX {5000+}\r\n" + b"x" * 5000)
        assert lines == [b"a1 BAD [TOOBIG] Non-synchronizing literals are at most 4096 octets (LITERAL-)"], (
            lines
        )
        c.assert_alive()
        c.close()
    finally:
        server.stop()


def test_create_special_use_survives_a_restart(reactor_thread, tmp_path):
    server = serve(tmp_path)
    try:
        c = Client(server.imap_port)
        c.login()
        assert status(c.run(b"CREATE Old (USE (\\Flagged))")[-1]) == b"OK"
        assert status(c.run(b"RENAME Old Flagged")[-1]) == b"OK"
        assert status(c.run(b"CREATE Box (USE (\\Nonsense))")[-1]) == b"NO"
        c.close()
    finally:
        server.stop()
    server = serve(tmp_path, again=True)
    try:
        c = Client(server.imap_port)
        c.login()
        assert c.run(b'LIST "" Flagged')[0] == b'* LIST (\\HasNoChildren \\Flagged) "/" "Flagged"'
        lines = c.run(b'LIST "" Box')  # refused: never created
        assert len(lines) == 1 and status(lines[0]) == b"OK", lines
        c.close()
    finally:
        server.stop()


def test_existing_maildir_account_gets_default_folders(reactor_thread, tmp_path):
    """An account made before (here: under rfc3501, which has none) gets the
    modern folders at its next login; its folders and messages stay as they are."""
    server = serve(tmp_path, "rfc3501")
    try:
        c = Client(server.imap_port)
        c.login()
        c.run(b"CREATE Sent")
        c.command(b"a", b"a APPEND Sent {%d+}\r\n" % len(MESSAGE) + MESSAGE)
        assert [line.rsplit(b" ", 1)[1] for line in c.run(b'LIST "" "*"')[:-1]] == [b'"INBOX"', b'"Sent"']
        c.close()
    finally:
        server.stop()
    server = serve(tmp_path, "modern", again=True)
    try:
        c = Client(server.imap_port)
        c.login()
        listed = [line for line in c.run(b'LIST "" "*"') if line.startswith(b"* ")]
        assert [line.rsplit(b" ", 1)[1] for line in listed] == [
            b'"INBOX"',
            b'"Archive"',
            b'"Drafts"',
            b'"Junk"',
            b'"Sent"',
            b'"Trash"',
        ]
        assert c.run(b"STATUS Sent (MESSAGES)")[0] == b'* STATUS "Sent" (MESSAGES 1)'
        c.close()
    finally:
        server.stop()
