"""Full IMAP sessions against a real exchmail over loopback, driven by IMAPClient."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from conftest import FEATURES, PASSWORD
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

TIMEOUT = 10

PLAIN = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"Subject: Hello world\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    b"Message-ID: <1@example.com>\r\n"
    b"\r\n"
    b"Hello body text\r\n"
    b"second line about pineapples\r\n"
)

MULTIPART = (
    b"From: Carol <carol@example.com>\r\n"
    b"To: Dave <dave@example.net>\r\n"
    b"Subject: Report attached\r\n"
    b"Date: Tue, 02 Jan 2024 11:00:00 +0000\r\n"
    b"Message-ID: <2@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XYZ"\r\n'
    b"\r\n"
    b"--XYZ\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"See attachment.\r\n"
    b"--XYZ\r\n"
    b'Content-Type: application/octet-stream; name="data.bin"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQFBgcICQ==\r\n"
    b"--XYZ--\r\n"
)

UTF8 = (
    "From: Émile <emile@example.fr>\r\n"
    "Subject: =?utf-8?q?Caf=C3=A9?=\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Crème brûlée au café\r\n"
).encode()


@pytest.fixture
def profile_overrides() -> dict:
    """These tests exercise the RFC-style features (see conftest.FEATURES)."""
    return FEATURES


def connect(server, user: str = "alice") -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=server.imap_port, ssl=False, timeout=TIMEOUT)
    client.login(user, PASSWORD)
    return client


@pytest.fixture
def client(server):
    c = connect(server)
    yield c
    try:
        c.logout()
    except Exception:
        pass


def test_capabilities_and_login(server):
    c = IMAPClient("127.0.0.1", port=server.imap_port, ssl=False, timeout=TIMEOUT)
    try:
        with pytest.raises(IMAPClientError):
            c.login("alice", "wrong")
        assert c.login("alice", PASSWORD) == b"LOGIN completed."
        caps = set(c.capabilities())
        assert {b"IMAP4REV1", b"UIDPLUS", b"IDLE", b"NAMESPACE", b"CHILDREN", b"LITERAL+"} <= caps
        assert c.has_capability("IDLE")
        ns = c.namespace()
        assert ns.personal == (("", "/"),)
        assert ns.other is None and ns.shared is None
    finally:
        assert c.logout() == b"Microsoft Exchange Server 2010 IMAP4 server signing off."


def test_folders_unicode(client):
    for name in ("Données/Été", "日本語", "Work/Projects"):
        client.create_folder(name)
    folders = {name: flags for flags, delim, name in client.list_folders()}
    assert set(folders) == {"INBOX", "Données", "Données/Été", "日本語", "Work", "Work/Projects"}
    assert b"\\HasChildren" in folders["Données"]
    assert b"\\HasNoChildren" in folders["Données/Été"]
    assert all(delim == b"/" for _, delim, _ in client.list_folders())
    assert [n for _, _, n in client.list_folders("Données")] in (["Données/Été"], ["Données", "Données/Été"])
    assert client.folder_exists("日本語")
    assert not client.folder_exists("Nope")
    client.rename_folder("日本語", "Ελληνικά")
    assert client.folder_exists("Ελληνικά") and not client.folder_exists("日本語")
    client.subscribe_folder("Ελληνικά")
    assert "Ελληνικά" in [n for _, _, n in client.list_sub_folders()]
    client.unsubscribe_folder("Ελληνικά")
    assert "Ελληνικά" not in [n for _, _, n in client.list_sub_folders()]
    client.delete_folder("Ελληνικά")
    assert not client.folder_exists("Ελληνικά")
    info = client.select_folder("Données/Été")
    assert info[b"EXISTS"] == 0
    assert info[b"READ-WRITE"] is True


def test_core_session(client):
    client.create_folder("Archive")
    when = datetime(2023, 2, 5, 14, 15, 16, tzinfo=timezone(timedelta(hours=1)))
    r1 = client.append("INBOX", PLAIN, flags=(b"\\Flagged",), msg_time=when)
    r2 = client.append("INBOX", MULTIPART)
    r3 = client.append("INBOX", UTF8)
    assert re.fullmatch(rb"\[APPENDUID \d+ 1\] APPEND completed\.", r1)
    assert re.fullmatch(rb"\[APPENDUID \d+ 2\] APPEND completed\.", r2)
    assert re.fullmatch(rb"\[APPENDUID \d+ 3\] APPEND completed\.", r3)

    status = client.folder_status("INBOX", [b"MESSAGES", b"RECENT", b"UIDNEXT", b"UNSEEN", b"UIDVALIDITY"])
    assert status[b"MESSAGES"] == 3
    assert status[b"RECENT"] == 3
    assert status[b"UIDNEXT"] == 4
    assert status[b"UNSEEN"] == 3
    validity = status[b"UIDVALIDITY"]

    info = client.select_folder("INBOX")
    assert info[b"EXISTS"] == 3
    assert info[b"UIDVALIDITY"] == validity
    assert info[b"UIDNEXT"] == 4

    data = client.fetch([1, 2, 3], ["BODY.PEEK[]", "FLAGS", "RFC822.SIZE", "INTERNALDATE"])
    assert data[1][b"BODY[]"] == PLAIN
    assert data[2][b"BODY[]"] == MULTIPART
    assert data[3][b"BODY[]"] == UTF8
    assert set(data[1][b"FLAGS"]) == {b"\\Flagged", b"\\Recent"}
    assert data[1][b"RFC822.SIZE"] == len(PLAIN.replace(b"\r\n", b"\n"))
    internal = data[1][b"INTERNALDATE"]
    if internal.tzinfo is None:  # IMAPClient normalises to local naive time by default
        internal = internal.astimezone(timezone.utc)
    assert internal.astimezone(timezone.utc) == when.astimezone(timezone.utc)

    env = client.fetch([2], ["ENVELOPE"])[2][b"ENVELOPE"]
    assert env.subject == b"Report attached"
    assert env.from_[0].mailbox == b"carol" and env.from_[0].host == b"example.com"
    assert env.message_id == b"<2@example.com>"

    assert client.search() == [1, 2, 3]
    assert client.search(["FROM", "carol"]) == [2]
    assert client.search(["BODY", "brûlée"], charset="UTF-8") == [3]
    assert client.search(["FLAGGED"]) == [1]
    assert client.search(["UNSEEN"]) == [1, 2, 3]

    assert set(client.add_flags([2], [b"\\Seen"])[2]) == {b"\\Seen", b"\\Recent"}
    assert set(client.get_flags([2])[2]) == {b"\\Seen", b"\\Recent"}
    client.remove_flags([1], [b"\\Flagged"])
    assert set(client.get_flags([1])[1]) == {b"\\Recent"}
    client.set_flags([3], [b"$Label", b"\\Answered"])
    assert set(client.get_flags([3])[3]) == {b"$Label", b"\\Answered", b"\\Recent"}
    assert client.search(["UNSEEN"]) == [1, 3]

    # (In UID mode imaplib drops the tagged text, so COPYUID is checked in the imaplib tests.)
    client.copy([2, 3], "Archive")
    assert client.folder_status("Archive", [b"MESSAGES", b"UIDNEXT"]) == {b"MESSAGES": 2, b"UIDNEXT": 3}
    client.use_uid = False
    archive_validity = client.folder_status("Archive", [b"UIDVALIDITY"])[b"UIDVALIDITY"]
    copied = client.copy([1], "Archive")
    assert copied == b"[COPYUID %d 1 3] COPY completed." % archive_validity
    client.use_uid = True

    client.delete_messages([1, 3])
    expunged = client.expunge()
    assert expunged[0] == b"EXPUNGE completed."
    # Messages 1 and 3 go: "* 3 EXPUNGE" + "* 1 EXPUNGE" or "* 1 EXPUNGE" + "* 2 EXPUNGE".
    seqs = [seq for seq, what in expunged[1] if what == b"EXPUNGE"]
    remaining = [1, 2, 3]
    for seq in seqs:
        del remaining[seq - 1]
    assert remaining == [2]
    assert client.search() == [2]  # UIDs
    assert client.fetch([2], ["UID"])[2][b"SEQ"] == 1

    client.select_folder("Archive")
    data = client.fetch([1, 2, 3], ["BODY.PEEK[]", "FLAGS"])
    assert data[1][b"BODY[]"] == MULTIPART
    assert data[2][b"BODY[]"] == UTF8
    assert data[3][b"BODY[]"] == PLAIN
    assert set(data[2][b"FLAGS"]) == {b"$Label", b"\\Answered", b"\\Recent"}


def test_uid_mode_operations(client):
    for msg in (PLAIN, MULTIPART, UTF8):
        client.append("INBOX", msg)
    client.select_folder("INBOX")
    client.delete_messages([1])
    client.expunge()
    # IMAPClient uses UIDs by default.
    assert client.use_uid is True
    assert client.search() == [2, 3]
    data = client.fetch([3], ["BODY.PEEK[]", "UID"])
    assert list(data) == [3]
    assert data[3][b"BODY[]"] == UTF8
    assert data[3][b"SEQ"] == 2
    client.add_flags([3], [b"\\Flagged"])
    assert client.search(["FLAGGED"]) == [3]
    client.create_folder("Dest")
    client.copy([2, 3], "Dest")
    assert client.folder_status("Dest", [b"MESSAGES"])[b"MESSAGES"] == 2
    client.delete_messages([2, 3])
    client.uid_expunge([3])
    assert client.search() == [2]
    assert client.search(["DELETED"]) == [2]
    client.use_uid = False
    assert client.search() == [1]
    assert client.fetch([1], ["UID"])[1][b"UID"] == 2


def test_readonly_select(client):
    client.append("INBOX", PLAIN)
    info = client.select_folder("INBOX", readonly=True)
    assert b"READ-ONLY" in info and b"READ-WRITE" not in info
    with pytest.raises(IMAPClientError):
        client.add_flags([1], [b"\\Seen"])
    data = client.fetch([1], ["BODY[]"])
    assert data[1][b"BODY[]"] == PLAIN
    assert b"\\Seen" not in client.get_flags([1])[1]


def test_idle_check_sees_other_client_append(server, client):
    client.select_folder("INBOX")
    client.idle()
    other = connect(server, "alice")
    try:
        start = time.monotonic()
        other.append("INBOX", PLAIN)
        responses = []
        while time.monotonic() - start < 8 and (1, b"EXISTS") not in responses:
            responses += client.idle_check(timeout=2)
        assert (1, b"EXISTS") in responses
        assert time.monotonic() - start < 5
        text, extra = client.idle_done()
        assert text == b"IDLE completed."
        assert client.search() == [1]
    finally:
        other.logout()


def test_noop_sees_other_client_changes(server, client):
    client.append("INBOX", PLAIN)
    client.append("INBOX", PLAIN)
    client.select_folder("INBOX")
    other = connect(server, "alice")
    try:
        other.select_folder("INBOX")
        other.append("INBOX", MULTIPART)
        text, responses = client.noop()
        assert (3, b"EXISTS") in responses
        other.add_flags([1], [b"\\Flagged"])
        text, responses = client.noop()
        fetches = [r for r in responses if r[1] == b"FETCH"]
        assert len(fetches) == 1 and fetches[0][0] == 1
        other.delete_messages([2])
        other.expunge()
        text, responses = client.noop()
        assert (2, b"EXPUNGE") in responses
    finally:
        other.logout()
