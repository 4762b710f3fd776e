"""Full IMAP sessions against a real exchmail over loopback, driven by imaplib.

Some checks need the exact wire bytes (untagged responses in order, IDLE);
those use :class:`Raw`, a tiny line-oriented client on a plain socket.
Every wait is bounded by a socket timeout of at most 10 seconds.
"""

from __future__ import annotations

import imaplib
import os
import re
import socket
import time
from datetime import datetime, timezone

import pytest
from conftest import FEATURES, PASSWORD, start_server

from exchmail.mutf7 import encode as mutf7

TIMEOUT = 10

PLAIN = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"Subject: Hello world\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    b"Message-ID: <1@example.com>\r\n"
    b"X-Tracking: zebra-42\r\n"
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
    b"preamble\r\n"
    b"--XYZ\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 7bit\r\n"
    b"\r\n"
    b"See attachment.\r\n"
    b"--XYZ\r\n"
    b'Content-Type: application/octet-stream; name="data.bin"\r\n'
    b'Content-Disposition: attachment; filename="data.bin"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQFBgcICQ==\r\n"
    b"--XYZ--\r\n"
)

UTF8 = (
    "From: Émile <emile@example.fr>\r\n"
    "To: Bob <bob@example.org>\r\n"
    "Subject: =?utf-8?q?Caf=C3=A9?=\r\n"
    "Date: Wed, 03 Jan 2024 12:00:00 +0000\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Crème brûlée au café\r\n"
).encode()

DATES = ('"01-Jan-2024 12:00:00 +0000"', '"15-Feb-2024 12:00:00 +0000"', '"20-Mar-2024 12:00:00 +0000"')


@pytest.fixture
def profile_overrides() -> dict:
    """These tests exercise the RFC-style features (see conftest.FEATURES)."""
    return FEATURES


# -- helpers ------------------------------------------------------------------------


def connect(server) -> imaplib.IMAP4:
    return imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=TIMEOUT)


def login(server, user: str = "alice") -> imaplib.IMAP4:
    client = connect(server)
    typ, _ = client.login(user, PASSWORD)
    assert typ == "OK"
    return client


def q(name: str) -> str:
    """A mailbox name as an imaplib argument: modified UTF-7, quoted."""
    return '"' + mutf7(name) + '"'


@pytest.fixture
def imap(server):
    client = login(server)
    yield client
    try:
        client.logout()
    except (imaplib.IMAP4.abort, OSError):
        pass


def list_lines(client, ref: str = '""', pattern: str = '"*"', cmd: str = "list") -> set[bytes]:
    typ, data = getattr(client, cmd)(ref, pattern)
    assert typ == "OK"
    return {d for d in data if d is not None}


def fill_inbox(client) -> None:
    for msg, date in zip((PLAIN, MULTIPART, UTF8), DATES, strict=False):
        typ, _ = client.append("INBOX", None, date, msg)
        assert typ == "OK"


def fetch_one(client, seq: str, items: str, uid: bool = False) -> dict[bytes, bytes]:
    """FETCH one message; return {item name: value} for literal items, plus b'_line'."""
    if uid:
        typ, data = client.uid("FETCH", seq, items)
    else:
        typ, data = client.fetch(seq, items)
    assert typ == "OK", data
    out: dict[bytes, bytes] = {}
    line = b""
    for part in data:
        if isinstance(part, tuple):
            head, literal = part
            line += head
            name = re.search(rb"(BODY\[[^\]]*\](?:<\d+>)?|RFC822(?:\.HEADER|\.TEXT)?) \{\d+\}$", head)
            if name:
                out[name.group(1)] = literal
            else:  # a literal inside e.g. ENVELOPE: keep it inline
                line += literal
        elif part is not None:
            line += part
    out[b"_line"] = line
    return out


class Raw:
    """A minimal IMAP client on a socket, for exact wire checks."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.file = self.sock.makefile("rb")
        self.greeting = self.readline()
        self.tags = 0

    def readline(self) -> bytes:
        line = self.file.readline()
        if not line:
            raise EOFError("connection closed")
        assert line.endswith(b"\r\n"), line
        line = line[:-2]
        m = re.search(rb"\{(\d+)\}$", line)
        if m:
            line += b"\r\n" + self.file.read(int(m.group(1))) + self.readline()
        return line

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, text: bytes) -> tuple[list[bytes], bytes]:
        """Send a command; return (untagged lines, tagged completion line)."""
        self.tags += 1
        tag = b"r%d" % self.tags
        self.send(tag + b" " + text + b"\r\n")
        untagged = []
        while True:
            line = self.readline()
            if line.startswith(tag + b" "):
                return untagged, line[len(tag) + 1 :]
            untagged.append(line)

    def ok(self, text: bytes) -> list[bytes]:
        untagged, done = self.command(text)
        assert done.startswith(b"OK"), (text, done)
        return untagged

    def close(self) -> None:
        try:
            self.command(b"LOGOUT")
        except (OSError, EOFError):
            pass
        self.file.close()
        self.sock.close()


def raw_login(server, user: str = "alice") -> Raw:
    raw = Raw(server.imap_port)
    raw.ok(b'LOGIN %s "%s"' % (user.encode(), PASSWORD.encode()))
    return raw


def lf_size(msg: bytes) -> int:
    return len(msg.replace(b"\r\n", b"\n"))


# -- authentication and capabilities --------------------------------------------------


def test_login_logout(server):
    client = connect(server)
    assert client.welcome.startswith(b"* OK")
    assert client.state == "NONAUTH"
    typ, data = client.login("alice", PASSWORD)
    assert (typ, data) == ("OK", [b"LOGIN completed."])
    assert client.state == "AUTH"
    typ, data = client.logout()
    assert typ == "BYE"


def test_capability(server):
    client = connect(server)
    try:
        typ, data = client.capability()
        assert typ == "OK"
        caps = data[0].split()
        # Exchange's order (IMAP4 first); CHILDREN with list_children_attributes.
        assert caps == [
            b"IMAP4",
            b"IMAP4rev1",
            b"AUTH=PLAIN",
            b"UIDPLUS",
            b"CHILDREN",
            b"IDLE",
            b"NAMESPACE",
            b"LITERAL+",
        ]
    finally:
        client.logout()


def test_login_wrong_password_is_no(server):
    client = connect(server)
    try:
        typ, data = client._simple_command("LOGIN", "alice", client._quote("wrong"))
        assert typ == "NO"
        assert client.state == "NONAUTH"
        with pytest.raises(imaplib.IMAP4.error):
            client.login("alice", "nope")
        with pytest.raises(imaplib.IMAP4.error):
            client.login("nosuchuser", PASSWORD)
        # The correct password still works on the same connection.
        assert client.login("alice", PASSWORD)[0] == "OK"
    finally:
        client.logout()


def test_authenticate_plain(server):
    client = connect(server)
    try:
        typ, _ = client.authenticate("PLAIN", lambda _: b"\0alice\0" + PASSWORD.encode())
        assert typ == "OK"
        assert client.state == "AUTH"
    finally:
        client.logout()


# -- mailboxes ---------------------------------------------------------------------


def test_create_nested_and_list(imap):
    assert imap.create('"A/B/C"')[0] == "OK"
    assert imap.create('"Leaf"')[0] == "OK"
    assert list_lines(imap) == {
        b'(\\HasNoChildren) "/" "INBOX"',
        b'(\\HasChildren) "/" "A"',
        b'(\\HasChildren) "/" "A/B"',
        b'(\\HasNoChildren) "/" "A/B/C"',
        b'(\\HasNoChildren) "/" "Leaf"',
    }
    assert list_lines(imap, '""', '"%"') == {
        b'(\\HasNoChildren) "/" "INBOX"',
        b'(\\HasChildren) "/" "A"',
        b'(\\HasNoChildren) "/" "Leaf"',
    }
    assert list_lines(imap, '"A/"', '"%"') == {b'(\\HasChildren) "/" "A/B"'}
    assert list_lines(imap, '""', '"A/%"') == {b'(\\HasChildren) "/" "A/B"'}
    assert list_lines(imap, '""', '"A/*"') == {b'(\\HasChildren) "/" "A/B"', b'(\\HasNoChildren) "/" "A/B/C"'}
    # LIST "" "" returns the hierarchy delimiter and root.
    typ, data = imap.list('""', '""')
    assert typ == "OK"
    assert data == [b'(\\Noselect) "/" ""']
    # Creating an existing mailbox fails; INBOX is case-insensitive.
    assert imap.create('"A/B"')[0] == "NO"
    assert imap.create('"inbox"')[0] == "NO"
    # Each created level is selectable.
    for name in ("A", "A/B", "A/B/C", "Leaf", "inbox"):
        typ, data = imap.select(q(name))
        assert typ == "OK", (name, data)
        assert data == [b"0"]


def test_subscribe_lsub(imap):
    imap.create('"Sub1"')
    imap.create('"Sub2/Child"')
    assert imap.subscribe('"Sub1"')[0] == "OK"
    assert imap.subscribe('"Sub2/Child"')[0] == "OK"
    names = {line.rsplit(b'"/" ', 1)[1] for line in list_lines(imap, cmd="lsub")}
    assert b'"Sub1"' in names and b'"Sub2/Child"' in names
    assert b'"Sub2"' not in names
    assert imap.unsubscribe('"Sub1"')[0] == "OK"
    names = {line.rsplit(b'"/" ', 1)[1] for line in list_lines(imap, cmd="lsub")}
    assert b'"Sub1"' not in names and b'"Sub2/Child"' in names
    # LSUB may carry CHILDREN attributes or none (RFC 3348).
    lines = list_lines(imap, '""', '"Sub2/*"', cmd="lsub")
    assert len(lines) == 1 and next(iter(lines)).endswith(b' "/" "Sub2/Child"')
    # Unsubscribing does not delete.
    assert imap.select('"Sub1"')[0] == "OK"


def test_2_1_4_lsub_percent_omits_unsubscribed_parent(imap):
    """Exchange (MS-STANXIMAP 2.1.4): LSUB % does not synthesise the parent."""
    imap.create('"Sub2/Child"')
    imap.subscribe('"Sub2/Child"')
    assert list_lines(imap, '""', '"Sub%"', cmd="lsub") == set()


def test_2_1_4_lsub_percent_noselect_parent_rfc3501(reactor_thread, tmp_path):
    """RFC 3501 6.3.9: LSUB % returns the unsubscribed parent, flagged \\Noselect."""
    running = start_server(tmp_path, profile_overrides={**FEATURES, "lsub_percent_noselect_parent": True})
    client = login(running)
    try:
        client.create('"Sub2/Child"')
        client.subscribe('"Sub2/Child"')
        (line,) = list_lines(client, '""', '"Sub%"', cmd="lsub")
        assert line == b'(\\Noselect) "/" "Sub2"'
    finally:
        client.logout()
        running.stop()


def test_rename_moves_children(imap):
    imap.create('"Old/Kid/Grandkid"')
    imap.append('"Old/Kid"', None, None, PLAIN)
    assert imap.rename('"Old"', '"New"')[0] == "OK"
    assert list_lines(imap) == {
        b'(\\HasNoChildren) "/" "INBOX"',
        b'(\\HasChildren) "/" "New"',
        b'(\\Marked \\HasChildren) "/" "New/Kid"',  # its message is new to every session
        b'(\\HasNoChildren) "/" "New/Kid/Grandkid"',
    }
    typ, data = imap.select('"New/Kid"')
    assert (typ, data) == ("OK", [b"1"])
    assert fetch_one(imap, "1", "(BODY.PEEK[])")[b"BODY[]"] == PLAIN
    assert imap.select('"Old/Kid"')[0] == "NO"
    # Renaming to an existing name or from a missing one fails.
    imap.create('"Other"')
    assert imap.rename('"Other"', '"New"')[0] == "NO"
    assert imap.rename('"Missing"', '"X"')[0] == "NO"


def test_rename_inbox(imap):
    fill_inbox(imap)
    assert imap.rename('"INBOX"', '"Archive"')[0] == "OK"
    typ, data = imap.select("INBOX")
    assert (typ, data) == ("OK", [b"0"])
    typ, data = imap.select('"Archive"')
    assert (typ, data) == ("OK", [b"3"])
    for seq, msg in zip(("1", "2", "3"), (PLAIN, MULTIPART, UTF8), strict=False):
        assert fetch_one(imap, seq, "(BODY.PEEK[])")[b"BODY[]"] == msg
    lines = list_lines(imap)
    assert b'(\\HasNoChildren) "/" "INBOX"' in lines
    assert b'(\\HasNoChildren) "/" "Archive"' in lines


def test_delete(imap):
    imap.create('"Trash1"')
    imap.create('"Keep/Inner"')
    imap.append('"Trash1"', None, None, PLAIN)
    assert imap.delete('"Trash1"')[0] == "OK"
    assert imap.delete('"Keep/Inner"')[0] == "OK"
    assert list_lines(imap) == {
        b'(\\HasNoChildren) "/" "INBOX"',
        b'(\\HasNoChildren) "/" "Keep"',
    }
    assert imap.delete('"Trash1"')[0] == "NO"
    assert imap.delete("INBOX")[0] == "NO"
    assert imap.select('"Trash1"')[0] == "NO"
    # Re-creating a deleted mailbox gives an empty one.
    imap.create('"Trash1"')
    assert imap.select('"Trash1"') == ("OK", [b"0"])


def test_unicode_folder_names(imap):
    names = ["Données/Été", "日本語", "Tom & Jerry"]
    for name in names:
        assert imap.create(q(name))[0] == "OK"
    wire = {mutf7(n) for n in names} | {mutf7("Données")}
    assert wire == {"Donn&AOk-es/&AMk-t&AOk-", "&ZeVnLIqe-", "Tom &- Jerry", "Donn&AOk-es"}
    lines = list_lines(imap)
    assert {
        b'(\\HasChildren) "/" "Donn&AOk-es"',
        b'(\\HasNoChildren) "/" "Donn&AOk-es/&AMk-t&AOk-"',
        b'(\\HasNoChildren) "/" "&ZeVnLIqe-"',
        b'(\\HasNoChildren) "/" "Tom &- Jerry"',
    } <= lines
    for name in names:
        typ, _ = imap.append(q(name), None, None, PLAIN)
        assert typ == "OK"
        assert imap.select(q(name)) == ("OK", [b"1"])
        assert fetch_one(imap, "1", "(BODY.PEEK[])")[b"BODY[]"] == PLAIN
    # The pattern itself is mUTF-7 too.
    assert list_lines(imap, '""', q("Données/%")) == {b'(\\HasNoChildren) "/" "Donn&AOk-es/&AMk-t&AOk-"'}


def test_invalid_mutf7_name_rejected(imap):
    # "&Jjo" is not terminated with "-": not valid modified UTF-7.
    typ, _ = imap._simple_command("CREATE", '"Bad&Jjo"')
    assert typ in ("NO", "BAD")
    assert b"Bad" not in b"".join(list_lines(imap))


def test_status(imap):
    imap.create('"Stat"')
    typ, data = imap.status('"Stat"', "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)")
    assert typ == "OK"
    m = re.fullmatch(rb'"Stat" \(MESSAGES 0 RECENT 0 UIDNEXT 1 UIDVALIDITY (\d+) UNSEEN 0\)', data[0])
    assert m, data
    validity = m.group(1)
    imap.append('"Stat"', None, None, PLAIN)
    imap.append('"Stat"', "(\\Seen)", None, MULTIPART)
    imap.append('"Stat"', None, None, UTF8)
    typ, data = imap.status('"Stat"', "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)")
    assert data == [b'"Stat" (MESSAGES 3 RECENT 3 UIDNEXT 4 UIDVALIDITY ' + validity + b" UNSEEN 2)"]
    typ, data = imap.status("INBOX", "(MESSAGES)")
    assert data == [b'"INBOX" (MESSAGES 0)'] or data == [b"INBOX (MESSAGES 0)"]
    assert imap.status('"Nope"', "(MESSAGES)")[0] == "NO"


# -- APPEND and FETCH -------------------------------------------------------------


def test_append_and_fetch_byte_exact(imap):
    assert imap.append("INBOX", None, None, PLAIN)[0] == "OK"
    assert imap.append("INBOX", "(\\Flagged $Work)", '"05-Feb-2023 14:15:16 +0100"', MULTIPART)[0] == "OK"
    assert imap.append("INBOX", None, None, UTF8)[0] == "OK"
    assert imap.select("INBOX") == ("OK", [b"3"])
    got = fetch_one(imap, "2", "(FLAGS INTERNALDATE)")
    flags = re.search(rb"FLAGS \(([^)]*)\)", got[b"_line"]).group(1).split()
    assert set(flags) == {b"\\Flagged", b"$Work", b"\\Recent"}
    date = re.search(rb'INTERNALDATE "([^"]+)"', got[b"_line"]).group(1).decode()
    when = datetime.strptime(date, "%d-%b-%Y %H:%M:%S %z")
    assert when == datetime(2023, 2, 5, 13, 15, 16, tzinfo=timezone.utc)
    for seq, msg in zip("123", (PLAIN, MULTIPART, UTF8), strict=False):
        got = fetch_one(imap, seq, "(BODY.PEEK[])")
        assert got[b"BODY[]"] == msg
        got = fetch_one(imap, seq, "(RFC822)")
        assert got[b"RFC822"] == msg
    # Without a date the internal date is "now".
    got = fetch_one(imap, "1", "(INTERNALDATE)")
    date = re.search(rb'INTERNALDATE "([^"]+)"', got[b"_line"]).group(1).decode()
    when = datetime.strptime(date, "%d-%b-%Y %H:%M:%S %z")
    assert abs(when.timestamp() - time.time()) < 120


def test_append_literal_plus_and_binary_safe(server):
    raw = raw_login(server)
    try:
        msg = b"Subject: lp\r\n\r\nbody with NUL-free 8bit \xc3\xa9\r\n"
        raw.send(b"a1 APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
        line = raw.readline()
        assert line.startswith(b"a1 OK [APPENDUID "), line
        raw.ok(b"SELECT INBOX")
        untagged = raw.ok(b"FETCH 1 BODY.PEEK[]")
        assert untagged == [b"* 1 FETCH (BODY[] {%d}\r\n" % len(msg) + msg + b")"]
    finally:
        raw.close()


def test_append_to_missing_mailbox_trycreate(imap):
    typ, data = imap.append('"NoSuch"', None, None, PLAIN)
    assert typ == "NO"
    assert data[0].startswith(b"[TRYCREATE]")


def test_peek_does_not_set_seen_but_body_does(imap):
    fill_inbox(imap)
    imap.select("INBOX")
    got = fetch_one(imap, "1", "(BODY.PEEK[] FLAGS)")
    assert b"\\Seen" not in got[b"_line"]
    got = fetch_one(imap, "1", "(FLAGS)")
    assert b"\\Seen" not in got[b"_line"]
    got = fetch_one(imap, "1", "(BODY[])")
    assert got[b"BODY[]"] == PLAIN
    # The FETCH that sets \Seen must report the flag change in the same response.
    assert b"\\Seen" in got[b"_line"]
    got = fetch_one(imap, "1", "(FLAGS)")
    assert b"\\Seen" in got[b"_line"]
    # RFC822.HEADER is a peek; RFC822.TEXT is not.
    fetch_one(imap, "2", "(RFC822.HEADER)")
    assert b"\\Seen" not in fetch_one(imap, "2", "(FLAGS)")[b"_line"]
    fetch_one(imap, "2", "(RFC822.TEXT)")
    assert b"\\Seen" in fetch_one(imap, "2", "(FLAGS)")[b"_line"]
    # EXAMINE: BODY[] does not set \Seen.
    imap.select("INBOX", readonly=True)
    fetch_one(imap, "3", "(BODY[])")
    assert b"\\Seen" not in fetch_one(imap, "3", "(FLAGS)")[b"_line"]


def test_body_sections(imap):
    fill_inbox(imap)
    imap.select("INBOX")
    got = fetch_one(imap, "2", "(BODY.PEEK[HEADER.FIELDS (Subject From)])")
    assert got[b"BODY[HEADER.FIELDS (SUBJECT FROM)]"] == (
        b"From: Carol <carol@example.com>\r\nSubject: Report attached\r\n\r\n"
    )
    got = fetch_one(imap, "2", "(BODY.PEEK[HEADER.FIELDS.NOT (Subject From To Date Message-ID)])")
    assert got[b"BODY[HEADER.FIELDS.NOT (SUBJECT FROM TO DATE MESSAGE-ID)]"] == (
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="XYZ"\r\n\r\n'
    )
    head_end = MULTIPART.index(b"\r\n\r\n") + 4
    got = fetch_one(imap, "2", "(BODY.PEEK[HEADER])")
    assert got[b"BODY[HEADER]"] == MULTIPART[:head_end]
    got = fetch_one(imap, "2", "(BODY.PEEK[TEXT])")
    assert got[b"BODY[TEXT]"] == MULTIPART[head_end:]
    got = fetch_one(imap, "2", "(BODY.PEEK[1])")
    assert got[b"BODY[1]"] == b"See attachment."
    got = fetch_one(imap, "2", "(BODY.PEEK[2])")
    assert got[b"BODY[2]"] == b"AAECAwQFBgcICQ=="
    got = fetch_one(imap, "2", "(BODY.PEEK[2.MIME])")
    assert got[b"BODY[2.MIME]"] == (
        b'Content-Type: application/octet-stream; name="data.bin"\r\n'
        b'Content-Disposition: attachment; filename="data.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
    )
    got = fetch_one(imap, "2", "(BODY.PEEK[1.MIME])")
    assert got[b"BODY[1.MIME]"] == (
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
    )
    got = fetch_one(imap, "2", "(BODY.PEEK[]<5.10>)")
    assert got[b"BODY[]<5>"] == MULTIPART[5:15]
    # A partial range past the end is truncated; starting past the end gives "".
    start = len(PLAIN) - 4
    got = fetch_one(imap, "1", f"(BODY.PEEK[]<{start}.100>)")
    assert got[b"BODY[]<%d>" % start] == PLAIN[-4:]
    # A single-part message: BODY[1] is its body; BODY[TEXT] likewise.
    plain_body = PLAIN[PLAIN.index(b"\r\n\r\n") + 4 :]
    assert fetch_one(imap, "1", "(BODY.PEEK[1])")[b"BODY[1]"] == plain_body
    assert fetch_one(imap, "1", "(BODY.PEEK[TEXT])")[b"BODY[TEXT]"] == plain_body
    # UTF-8 body is byte exact.
    utf8_body = UTF8[UTF8.index(b"\r\n\r\n") + 4 :]
    assert fetch_one(imap, "3", "(BODY.PEEK[TEXT])")[b"BODY[TEXT]"] == utf8_body
    # Nothing above was a non-peek fetch.
    typ, data = imap.search(None, "SEEN")
    assert data == [b""]


def test_body_nonexistent_part_is_empty(imap):
    imap.append("INBOX", None, None, MULTIPART)
    imap.select("INBOX")
    typ, data = imap.fetch("1", "(BODY.PEEK[5])")
    assert typ == "OK"
    assert (
        data[0] == (b"1 (BODY[5] {0}", b"") or data[0] == b'1 (BODY[5] "")' or data[0] == b"1 (BODY[5] NIL)"
    )


def test_rfc822_size_exchange_is_stored_lf_size(imap):
    fill_inbox(imap)
    imap.select("INBOX")
    for seq, msg in zip("123", (PLAIN, MULTIPART, UTF8), strict=False):
        got = fetch_one(imap, seq, "(RFC822.SIZE)")
        assert got[b"_line"] == b"%s (RFC822.SIZE %d)" % (seq.encode(), lf_size(msg))


def test_rfc822_size_exact(reactor_thread, tmp_path):
    running = start_server(tmp_path, profile_overrides={**FEATURES, "exact_rfc822_size": True})
    try:
        client = login(running)
        try:
            fill_inbox(client)
            client.select("INBOX")
            for seq, msg in zip("123", (PLAIN, MULTIPART, UTF8), strict=False):
                got = fetch_one(client, seq, "(RFC822.SIZE)")
                assert got[b"_line"] == b"%s (RFC822.SIZE %d)" % (seq.encode(), len(msg))
            # LARGER/SMALLER use the same size.
            typ, data = client.search(None, "LARGER", str(len(PLAIN) - 1))
            assert b"1" in data[0].split()
            typ, data = client.search(None, "SMALLER", str(len(PLAIN) + 1))
            assert b"1" in data[0].split()
        finally:
            client.logout()
    finally:
        running.stop()


def test_envelope_and_bodystructure(imap):
    fill_inbox(imap)
    imap.select("INBOX")
    line = fetch_one(imap, "2", "(ENVELOPE)")[b"_line"]
    assert line == (
        b'2 (ENVELOPE ("Tue, 02 Jan 2024 11:00:00 +0000" "Report attached" '
        b'(("Carol" NIL "carol" "example.com")) (("Carol" NIL "carol" "example.com")) '
        b'(("Carol" NIL "carol" "example.com")) (("Dave" NIL "dave" "example.net")) '
        b'NIL NIL NIL "<2@example.com>"))'
    )
    line = fetch_one(imap, "2", "(BODYSTRUCTURE)")[b"_line"]
    upper = line.upper()
    # 15 octets, 0 lines: the body before the boundary has no line end (as Dovecot counts)
    assert upper.startswith(b'2 (BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "UTF-8") NIL NIL "7BIT" 15 0')
    assert (
        b'("APPLICATION" "OCTET-STREAM" ("NAME" "DATA.BIN") NIL NIL "BASE64" 16 NIL '
        b'("ATTACHMENT" ("FILENAME" "DATA.BIN"))' in upper
    )
    assert b' "MIXED" ("BOUNDARY" "XYZ")' in upper
    assert b'"data.bin"' in line and b'"XYZ"' in line
    line = fetch_one(imap, "2", "(BODY)")[b"_line"]
    assert line.upper() == (
        b'2 (BODY (("TEXT" "PLAIN" ("CHARSET" "UTF-8") NIL NIL "7BIT" 15 0)'
        b'("APPLICATION" "OCTET-STREAM" ("NAME" "DATA.BIN") NIL NIL "BASE64" 16) "MIXED"))'
    )
    # The 8-bit message: encoded-word subject is passed through as-is.
    line = fetch_one(imap, "3", "(ENVELOPE)")[b"_line"]
    assert b'"=?utf-8?q?Caf=C3=A9?="' in line
    line = fetch_one(imap, "3", "(BODYSTRUCTURE)")[b"_line"]
    body_len = len(UTF8) - UTF8.index(b"\r\n\r\n") - 4
    assert line.upper() == (
        b'3 (BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "UTF-8") NIL NIL '
        b'"8BIT" %d 1 NIL NIL NIL NIL))' % body_len
    )


def test_appenduid_and_uidnext(imap):
    imap.create('"U"')
    typ, data = imap.status('"U"', "(UIDNEXT UIDVALIDITY)")
    validity = re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1)
    assert re.search(rb"UIDNEXT (\d+)", data[0]).group(1) == b"1"
    for expected in (1, 2, 3):
        typ, data = imap.append('"U"', None, None, PLAIN)
        assert typ == "OK"
        assert data[0] == b"[APPENDUID %s %d] APPEND completed." % (validity, expected)
        typ, data = imap.status('"U"', "(UIDNEXT)")
        assert re.search(rb"UIDNEXT (\d+)", data[0]).group(1) == b"%d" % (expected + 1)
    typ, data = imap.select('"U"')
    assert imap.response("UIDVALIDITY") == ("UIDVALIDITY", [validity])
    assert imap.response("UIDNEXT") == ("UIDNEXT", [b"4"])


def test_select_responses(server):
    raw = raw_login(server)
    try:
        raw.ok(b"APPEND INBOX (\\Seen) {%d+}\r\n" % len(PLAIN) + PLAIN)
        raw.ok(b"APPEND INBOX {%d+}\r\n" % len(PLAIN) + PLAIN)
        untagged, done = raw.command(b"SELECT INBOX")
        assert done.startswith(b"OK [READ-WRITE]")
        assert b"* 2 EXISTS" in untagged
        assert b"* 2 RECENT" in untagged
        assert any(u.startswith(b"* FLAGS (") and b"\\Seen" in u for u in untagged)
        assert any(u.startswith(b"* OK [PERMANENTFLAGS (") for u in untagged)
        assert any(re.fullmatch(rb"\* OK \[UIDVALIDITY \d+\].*", u) for u in untagged)
        assert any(re.fullmatch(rb"\* OK \[UIDNEXT 3\].*", u) for u in untagged)
        assert any(re.fullmatch(rb"\* OK \[UNSEEN 2\].*", u) for u in untagged)
        # A second session sees \Recent for neither.
        other = raw_login(server)
        try:
            untagged = other.ok(b"SELECT INBOX")
            assert b"* 0 RECENT" in untagged
        finally:
            other.close()
    finally:
        raw.close()


# -- STORE ----------------------------------------------------------------------------


def test_store_flags(imap):
    fill_inbox(imap)
    imap.select("INBOX")
    typ, data = imap.store("1", "+FLAGS", "(\\Flagged \\Seen)")
    assert typ == "OK"
    assert len(data) == 1
    flags = set(re.search(rb"FLAGS \(([^)]*)\)", data[0]).group(1).split())
    assert flags == {b"\\Flagged", b"\\Seen", b"\\Recent"}
    typ, data = imap.store("1", "-FLAGS", "(\\Seen)")
    flags = set(re.search(rb"FLAGS \(([^)]*)\)", data[0]).group(1).split())
    assert flags == {b"\\Flagged", b"\\Recent"}
    typ, data = imap.store("1:2", "FLAGS", "(\\Answered $Label1)")
    assert typ == "OK"
    assert len(data) == 2
    for item in data:
        flags = set(re.search(rb"FLAGS \(([^)]*)\)", item).group(1).split())
        assert flags == {b"\\Answered", b"$Label1", b"\\Recent"}
    # .SILENT: no untagged FETCH.
    typ, data = imap.store("3", "+FLAGS.SILENT", "(\\Deleted)")
    assert (typ, data) == ("OK", [None])
    typ, data = imap.store("1:3", "-FLAGS.SILENT", "(\\Answered)")
    assert (typ, data) == ("OK", [None])
    typ, data = imap.fetch("1:3", "(FLAGS)")
    assert [set(re.search(rb"FLAGS \(([^)]*)\)", d).group(1).split()) for d in data] == [
        {b"$Label1", b"\\Recent"},
        {b"$Label1", b"\\Recent"},
        {b"\\Deleted", b"\\Recent"},
    ]
    # \Recent cannot be stored.
    with pytest.raises(imaplib.IMAP4.error):
        imap.store("1", "+FLAGS", "(\\Recent)")


def test_store_untagged_fetch_has_uid_for_uid_store(imap):
    fill_inbox(imap)
    imap.select("INBOX")
    typ, data = imap.uid("STORE", "2", "+FLAGS", "(\\Flagged)")
    assert typ == "OK"
    assert len(data) == 1
    assert data[0].startswith(b"2 (")
    assert b"UID 2" in data[0]
    assert b"\\Flagged" in data[0]


# -- SEARCH -------------------------------------------------------------------------------


@pytest.fixture
def searchbox(imap):
    fill_inbox(imap)
    imap.select("INBOX")
    imap.store("1", "+FLAGS", "(\\Seen)")
    return imap


def search(client, *criteria, charset=None) -> list[int]:
    typ, data = client.search(charset, *criteria)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


def test_search_basic(searchbox):
    c = searchbox
    assert search(c, "ALL") == [1, 2, 3]
    assert search(c, "UNSEEN") == [2, 3]
    assert search(c, "SEEN") == [1]
    assert search(c, "FROM", '"carol"') == [2]
    assert search(c, "FROM", "example.com") == [1, 2]
    assert search(c, "TO", "bob") == [1, 3]
    assert search(c, "SUBJECT", '"hello WORLD"') == [1]
    assert search(c, "BODY", "pineapples") == [1]
    assert search(c, "BODY", "Hello") == [1]
    assert search(c, "BODY", "Carol") == []
    assert search(c, "TEXT", "Carol") == [2]
    assert search(c, "TEXT", "pineapples") == [1]
    assert search(c, "HEADER", "X-Tracking", "zebra") == [1]
    assert search(c, "HEADER", "Message-ID", '"<2@example.com>"') == [2]
    assert search(c, "HEADER", "X-Tracking", '""') == [1]
    assert search(c, "NOT", "FROM", "carol") == [1, 3]
    assert search(c, "OR", "FROM", "carol", "SUBJECT", "hello") == [1, 2]
    assert search(c, "NOT", "OR", "SEEN", "FROM", "carol") == [3]
    assert search(c, "(", "FROM", "carol", ")") in ([2],)
    assert search(c, "FLAGGED") == []
    assert search(c, "NEW") == [2, 3]
    assert search(c, "OLD") == []
    assert search(c, "RECENT") == [1, 2, 3]


def test_search_dates(searchbox):
    c = searchbox
    assert search(c, "SINCE", "15-Feb-2024") == [2, 3]
    assert search(c, "BEFORE", "15-Feb-2024") == [1]
    assert search(c, "ON", "15-Feb-2024") == [2]
    assert search(c, "ON", "16-Feb-2024") == []
    assert search(c, "SENTSINCE", "02-Jan-2024") == [2, 3]
    assert search(c, "SENTBEFORE", "02-Jan-2024") == [1]
    assert search(c, "SENTON", "03-Jan-2024") == [3]


def test_search_sizes(searchbox):
    c = searchbox
    sizes = [lf_size(m) for m in (PLAIN, MULTIPART, UTF8)]
    assert search(c, "LARGER", str(sizes[0])) == [i + 1 for i, s in enumerate(sizes) if s > sizes[0]]
    assert search(c, "SMALLER", str(sizes[0])) == [i + 1 for i, s in enumerate(sizes) if s < sizes[0]]
    assert search(c, "LARGER", "100000") == []
    assert search(c, "SMALLER", "100000") == [1, 2, 3]


def test_search_sets_and_uids(searchbox):
    c = searchbox
    assert search(c, "2:*") == [2, 3]
    assert search(c, "1,3") == [1, 3]
    assert search(c, "*") == [3]
    assert search(c, "UID", "2:3") == [2, 3]
    assert search(c, "UID", "3:*") == [3]
    assert search(c, "UID", "10:*") == [3]
    assert search(c, "UID", "10:20") == []
    typ, data = c.uid("SEARCH", "ALL")
    assert data == [b"1 2 3"]
    c.store("1", "+FLAGS.SILENT", "(\\Deleted)")
    c.expunge()
    assert search(c, "ALL") == [1, 2]
    typ, data = c.uid("SEARCH", "ALL")
    assert data == [b"2 3"]
    typ, data = c.uid("SEARCH", "UID", "1:2")
    assert data == [b"2"]
    assert search(c, "UNSEEN") == [1, 2]


def test_search_charset_utf8_literal(searchbox):
    c = searchbox
    c.literal = "brûlée".encode()
    assert search(c, "BODY", charset="UTF-8") == [3]
    c.literal = "Émile".encode()
    assert search(c, "FROM", charset="UTF-8") == [3]
    # Unknown charset: NO [BADCHARSET].
    typ, data = c._simple_command("SEARCH", "CHARSET", "X-NOPE", "ALL")
    assert typ == "NO"
    assert data[-1].startswith(b"[BADCHARSET")


def test_search_encoded_word_subject(searchbox):
    # "Café" in an RFC 2047 subject; SEARCH SUBJECT should match the decoded text.
    c = searchbox
    c.literal = "Café".encode()
    assert search(c, "SUBJECT", charset="UTF-8") == [3]


# -- UID commands, COPY ------------------------------------------------------------


def test_uid_fetch_store_copy(imap):
    fill_inbox(imap)
    imap.create('"Dest"')
    imap.select("INBOX")
    typ, data = imap.uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK"
    assert [re.search(rb"UID (\d+)", d).group(1) for d in data] == [b"1", b"2", b"3"]
    got = fetch_one(imap, "2", "(BODY.PEEK[])", uid=True)
    assert got[b"BODY[]"] == MULTIPART
    assert b"UID 2" in got[b"_line"]
    typ, data = imap.uid("STORE", "3", "+FLAGS", "(\\Flagged)")
    assert typ == "OK"
    typ, data = imap.uid("SEARCH", "FLAGGED")
    assert data == [b"3"]
    typ, data = imap.status('"Dest"', "(UIDVALIDITY)")
    dest_validity = re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1)
    typ, data = imap._simple_command("UID", "COPY", "2:3", '"Dest"')
    assert typ == "OK"
    m = re.match(rb"\[COPYUID (\d+) (\S+) (\S+)\]", data[0])
    assert m, data
    assert m.group(1) == dest_validity
    assert m.group(2) in (b"2:3", b"2,3")
    assert m.group(3) in (b"1:2", b"1,2")
    typ, data = imap.copy("1", '"Dest"')
    assert typ == "OK"
    assert re.match(rb"\[COPYUID %s 1 3\]" % dest_validity, data[0]), data
    # Nonexistent UIDs: OK with no effect.
    typ, data = imap.uid("FETCH", "99", "(FLAGS)")
    assert typ == "OK" and data == [None]
    imap.select('"Dest"')
    for seq, msg in zip("123", (MULTIPART, UTF8, PLAIN), strict=False):
        assert fetch_one(imap, seq, "(BODY.PEEK[])")[b"BODY[]"] == msg
    got = fetch_one(imap, "2", "(FLAGS)")
    assert b"\\Flagged" in got[b"_line"]
    # Copied messages are \Recent in the destination.
    assert search(imap, "RECENT") == [1, 2, 3]


def test_copy_to_missing_mailbox_trycreate(imap):
    fill_inbox(imap)
    imap.select("INBOX")
    typ, data = imap.copy("1", '"Nowhere"')
    assert typ == "NO"
    assert data[0].startswith(b"[TRYCREATE]")
    typ, data = imap._simple_command("UID", "COPY", "1", '"Nowhere"')
    assert typ == "NO"
    assert data[0].startswith(b"[TRYCREATE]")


# -- EXPUNGE, CLOSE, EXAMINE -------------------------------------------------------------


def test_expunge_sequence_numbers(server):
    raw = raw_login(server)
    try:
        for i in range(5):
            body = b"Subject: m%d\r\n\r\nbody %d\r\n" % (i + 1, i + 1)
            raw.ok(b"APPEND INBOX {%d+}\r\n" % len(body) + body)
        raw.ok(b"SELECT INBOX")
        raw.ok(b"STORE 2,4,5 +FLAGS.SILENT (\\Deleted)")
        untagged = raw.ok(b"EXPUNGE")
        uids = [1, 2, 3, 4, 5]
        for line in untagged:
            m = re.fullmatch(rb"\* (\d+) EXPUNGE", line)
            assert m, line
            del uids[int(m.group(1)) - 1]
        assert uids == [1, 3]
        assert len(untagged) == 3
        untagged = raw.ok(b"FETCH 1:* (UID)")
        assert untagged == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 3)"]
        # Nothing left to expunge.
        assert raw.ok(b"EXPUNGE") == []
    finally:
        raw.close()


def test_uid_expunge_only_given_uids(server):
    raw = raw_login(server)
    try:
        for i in range(4):
            body = b"Subject: m%d\r\n\r\nbody\r\n" % (i + 1)
            raw.ok(b"APPEND INBOX {%d+}\r\n" % len(body) + body)
        raw.ok(b"SELECT INBOX")
        raw.ok(b"STORE 1:3 +FLAGS.SILENT (\\Deleted)")
        untagged = raw.ok(b"UID EXPUNGE 2:4")
        # UID 2 and 3 are \Deleted; 4 is not; UID 1 is \Deleted but not in the set.
        uids = [1, 2, 3, 4]
        for line in untagged:
            m = re.fullmatch(rb"\* (\d+) EXPUNGE", line)
            assert m, line
            del uids[int(m.group(1)) - 1]
        assert uids == [1, 4]
        assert raw.ok(b"UID SEARCH DELETED") == [b"* SEARCH 1"]
    finally:
        raw.close()


def test_close_expunges_silently(server):
    raw = raw_login(server)
    try:
        for i in range(3):
            body = b"Subject: m%d\r\n\r\nbody\r\n" % (i + 1)
            raw.ok(b"APPEND INBOX {%d+}\r\n" % len(body) + body)
        raw.ok(b"SELECT INBOX")
        raw.ok(b"STORE 1,3 +FLAGS.SILENT (\\Deleted)")
        untagged = raw.ok(b"CLOSE")
        assert untagged == []
        # Back in authenticated state: FETCH is not allowed.
        untagged, done = raw.command(b"FETCH 1 (UID)")
        assert done.startswith(b"BAD") or done.startswith(b"NO")
        assert raw.ok(b"STATUS INBOX (MESSAGES)") in (
            [b"* STATUS INBOX (MESSAGES 1)"],
            [b'* STATUS "INBOX" (MESSAGES 1)'],
        )
    finally:
        raw.close()


def test_close_after_examine_does_not_expunge(imap):
    fill_inbox(imap)
    imap.select("INBOX")
    imap.store("1", "+FLAGS.SILENT", "(\\Deleted)")
    imap.select("INBOX", readonly=True)
    assert imap.close()[0] == "OK"
    typ, data = imap.status("INBOX", "(MESSAGES)")
    assert b"MESSAGES 3" in data[0]


def test_examine_is_read_only(imap):
    fill_inbox(imap)
    typ, data = imap.select("INBOX", readonly=True)
    assert (typ, data) == ("OK", [b"3"])
    assert imap.response("READ-ONLY") == ("READ-ONLY", [b""])
    typ, data = imap._simple_command("STORE", "1", "+FLAGS", "(\\Seen)")
    assert typ == "NO"
    typ, data = imap._simple_command("UID", "STORE", "1", "+FLAGS", "(\\Seen)")
    assert typ == "NO"
    typ, _ = imap._simple_command("EXPUNGE")
    assert typ == "NO"
    assert search(imap, "SEEN") == []
    # COPY from a read-only mailbox is allowed.
    imap.create('"Copies"')
    assert imap.copy("1", '"Copies"')[0] == "OK"
    # \Recent is not cleared by EXAMINE: SELECT afterwards still sees it.
    typ, data = imap.select("INBOX")
    assert imap.response("RECENT") == ("RECENT", [b"3"])


def test_namespace(imap):
    typ, data = imap.namespace()
    assert (typ, data) == ("OK", [b'(("" "/")) NIL NIL'])


def test_check_and_noop(imap):
    imap.select("INBOX")
    assert imap.check()[0] == "OK"
    assert imap.noop()[0] == "OK"


def test_commands_in_wrong_state(server):
    raw = Raw(server.imap_port)
    try:
        untagged, done = raw.command(b"SELECT INBOX")
        assert done.startswith(b"BAD") or done.startswith(b"NO")
        raw.ok(b'LOGIN alice "%s"' % PASSWORD.encode())
        untagged, done = raw.command(b"LOGIN alice x")
        assert done.startswith(b"BAD") or done.startswith(b"NO")
        untagged, done = raw.command(b"FOO")
        assert done.startswith(b"BAD")
        untagged, done = raw.command(b"EXPUNGE")
        assert done.startswith(b"BAD") or done.startswith(b"NO")
    finally:
        raw.close()


# -- several connections ------------------------------------------------------------


def test_other_connection_append_shows_exists(server, imap):
    fill_inbox(imap)
    watcher = raw_login(server)
    try:
        watcher.ok(b"SELECT INBOX")
        imap.append("INBOX", None, None, PLAIN)
        untagged = watcher.ok(b"NOOP")
        assert b"* 4 EXISTS" in untagged
        # The watcher selected first, so all four are \Recent in its session.
        assert b"* 4 RECENT" in untagged
        untagged = watcher.ok(b"NOOP")
        assert untagged == []
        assert watcher.ok(b"FETCH 4 (UID)") == [b"* 4 FETCH (UID 4)"]
    finally:
        watcher.close()


def test_other_connection_expunge_shows_expunge(server, imap):
    fill_inbox(imap)
    watcher = raw_login(server)
    try:
        watcher.ok(b"SELECT INBOX")
        imap.select("INBOX")
        imap.store("2", "+FLAGS.SILENT", "(\\Deleted)")
        imap.expunge()
        untagged = watcher.ok(b"NOOP")
        assert b"* 2 EXPUNGE" in untagged
        assert watcher.ok(b"FETCH 1:* (UID)") == [b"* 1 FETCH (UID 1)", b"* 2 FETCH (UID 3)"]
    finally:
        watcher.close()


def test_other_connection_flags_show_fetch(server, imap):
    fill_inbox(imap)
    watcher = raw_login(server)
    try:
        watcher.ok(b"SELECT INBOX")
        imap.select("INBOX")
        typ, data = imap.store("3", "+FLAGS", "(\\Flagged)")
        # imap selected second: \Recent belongs to the watcher's session only.
        assert set(re.search(rb"FLAGS \(([^)]*)\)", data[0]).group(1).split()) == {b"\\Flagged"}
        untagged = watcher.ok(b"NOOP")
        assert len(untagged) == 1
        m = re.fullmatch(rb"\* 3 FETCH \((.*)\)", untagged[0])
        assert m, untagged
        flags = re.search(rb"FLAGS \(([^)]*)\)", m.group(1)).group(1).split()
        assert b"\\Flagged" in flags
        assert set(flags) == {b"\\Flagged", b"\\Recent"}
    finally:
        watcher.close()


def test_idle_pushes_exists(server, imap):
    fill_inbox(imap)
    watcher = raw_login(server)
    try:
        watcher.ok(b"SELECT INBOX")
        watcher.send(b"i1 IDLE\r\n")
        assert watcher.readline() == b"+ idling"
        watcher.sock.settimeout(3)
        start = time.monotonic()
        imap.append("INBOX", None, None, PLAIN)
        lines = []
        while b"* 4 EXISTS" not in lines:
            lines.append(watcher.readline())
        assert time.monotonic() - start < 3
        assert all(re.fullmatch(rb"\* \d+ (EXISTS|RECENT)", x) for x in lines), lines
        # An expunge elsewhere is also pushed during IDLE.
        imap.select("INBOX")
        imap.store("1", "+FLAGS.SILENT", "(\\Deleted)")
        imap.expunge()
        lines = []
        while b"* 1 EXPUNGE" not in lines:
            lines.append(watcher.readline())
        watcher.sock.settimeout(TIMEOUT)
        watcher.send(b"DONE\r\n")
        line = watcher.readline()
        while line.startswith(b"*"):
            line = watcher.readline()
        assert line.startswith(b"i1 OK")
        assert watcher.ok(b"FETCH 3 (UID)") == [b"* 3 FETCH (UID 4)"]
    finally:
        watcher.close()


def test_idle_via_imaplib(server, imap, monkeypatch):
    monkeypatch.setitem(imaplib.Commands, "IDLE", ("AUTH", "SELECTED"))
    other = login(server)
    try:
        other.select("INBOX")
        other.untagged_responses.clear()
        tag = other._command("IDLE")
        resp = other._get_response()
        assert resp is None  # continuation
        assert other.continuation_response == b"idling"
        imap.append("INBOX", None, None, PLAIN)
        other.sock.settimeout(5)
        other._get_response()
        assert other.untagged_responses.get("EXISTS") == [b"1"]
        other.sock.settimeout(TIMEOUT)
        other.send(b"DONE\r\n")
        typ, data = other._command_complete("IDLE", tag)
        assert typ == "OK"
    finally:
        other.logout()


# -- persistence and outside deliveries ------------------------------------------------------


def test_restart_persistence(reactor_thread, tmp_path):
    first = start_server(tmp_path, profile_overrides=FEATURES)
    try:
        client = login(first)
        for msg in (PLAIN, MULTIPART, UTF8):
            client.append("INBOX", None, None, msg)
        client.select("INBOX")
        client.store("1", "+FLAGS", "(\\Seen $Custom)")
        client.store("2", "+FLAGS", "(\\Flagged)")
        client.store("3", "+FLAGS", "(\\Deleted)")
        client.expunge()  # removes UID 3, the highest
        validity = client.response("UIDVALIDITY")
        typ, data = client.status("INBOX", "(UIDVALIDITY UIDNEXT)")
        before = data[0]
        client.logout()
    finally:
        first.stop()
    second = start_server(tmp_path, profile_overrides=FEATURES, users=())
    try:
        client = login(second)
        try:
            typ, data = client.status("INBOX", "(UIDVALIDITY UIDNEXT)")
            assert data[0] == before
            assert b"UIDNEXT 4" in before
            client.select("INBOX")
            typ, data = client.fetch("1:*", "(UID FLAGS)")
            got = [
                (
                    re.search(rb"UID (\d+)", d).group(1),
                    set(re.search(rb"FLAGS \(([^)]*)\)", d).group(1).split()) - {b"\\Recent"},
                )
                for d in data
            ]
            assert got == [(b"1", {b"\\Seen", b"$Custom"}), (b"2", {b"\\Flagged"})]
            assert fetch_one(client, "2", "(BODY.PEEK[])")[b"BODY[]"] == MULTIPART
            typ, data = client.append("INBOX", None, None, PLAIN)
            assert re.match(rb"\[APPENDUID \d+ 4\]", data[0]), data
            del validity
        finally:
            client.logout()
    finally:
        second.stop()


def test_outside_delivery_appears_on_noop(server):
    raw = raw_login(server)
    try:
        raw.ok(b"SELECT INBOX")
        maildir = server.data_dir / "mail" / "alice"
        msg = b"From: outside@example.com\nSubject: dropped\n\nfrom outside\n"
        name = f"{int(time.time())}.M1P{os.getpid()}.testhost"
        (maildir / "tmp").mkdir(parents=True, exist_ok=True)
        (maildir / "new").mkdir(parents=True, exist_ok=True)
        tmp = maildir / "tmp" / name
        tmp.write_bytes(msg)
        os.rename(tmp, maildir / "new" / name)
        untagged = raw.ok(b"NOOP")
        assert b"* 1 EXISTS" in untagged
        assert b"* 1 RECENT" in untagged
        untagged = raw.ok(b"FETCH 1 (UID BODY.PEEK[])")
        crlf = msg.replace(b"\n", b"\r\n")
        assert untagged == [b"* 1 FETCH (UID 1 BODY[] {%d}\r\n" % len(crlf) + crlf + b")"]
    finally:
        raw.close()


# -- more structure and concurrency checks ------------------------------------------------

NESTED = (
    b"From: a@b.c\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n"
    b"--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
    b"--b1\r\nContent-Type: message/rfc822\r\n\r\n" + PLAIN + b"\r\n--b1--\r\n"
)

GROUPS = (
    b'From: "Doe, John" <j@x.org>, bob@y.org\r\n'
    b"Subject: a folded\r\n subject line\r\n"
    b"Cc: group: a@b.c, d@e.f;\r\n"
    b"In-Reply-To: <x@y>\r\nReply-To: r@x.org\r\n\r\nbody\r\n"
)


def test_nested_message_rfc822(imap):
    imap.append("INBOX", None, None, NESTED)
    imap.select("INBOX")
    line = fetch_one(imap, "1", "(BODYSTRUCTURE)")[b"_line"]
    plain_body = PLAIN[PLAIN.index(b"\r\n\r\n") + 4 :]
    assert line == (
        b'1 (BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 2 0 '
        b'NIL NIL NIL NIL)("MESSAGE" "RFC822" NIL NIL NIL "7BIT" %d '
        b'("Mon, 01 Jan 2024 10:00:00 +0000" "Hello world" (("Alice" NIL "alice" "example.com")) '
        b'(("Alice" NIL "alice" "example.com")) (("Alice" NIL "alice" "example.com")) '
        b'(("Bob" NIL "bob" "example.org")) NIL NIL NIL "<1@example.com>") '
        b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" %d 2 NIL NIL NIL NIL) '
        b'%d NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "b1") NIL NIL NIL))'
        % (len(PLAIN), len(plain_body), PLAIN.count(b"\r\n"))
    )
    got = fetch_one(imap, "1", "(BODY.PEEK[2])")
    assert got[b"BODY[2]"] == PLAIN
    got = fetch_one(imap, "1", "(BODY.PEEK[2.HEADER.FIELDS (Subject)])")
    assert got[b"BODY[2.HEADER.FIELDS (SUBJECT)]"] == b"Subject: Hello world\r\n\r\n"
    assert fetch_one(imap, "1", "(BODY.PEEK[2.TEXT])")[b"BODY[2.TEXT]"] == plain_body
    assert fetch_one(imap, "1", "(BODY.PEEK[2.1])")[b"BODY[2.1]"] == plain_body
    assert (
        fetch_one(imap, "1", "(BODY.PEEK[2.MIME])")[b"BODY[2.MIME]"]
        == b"Content-Type: message/rfc822\r\n\r\n"
    )


def test_envelope_groups_folding_and_defaults(imap):
    imap.append("INBOX", None, None, GROUPS)
    imap.select("INBOX")
    line = fetch_one(imap, "1", "(ENVELOPE)")[b"_line"]
    assert line == (
        b'1 (ENVELOPE (NIL "a folded subject line" '
        b'(("Doe, John" NIL "j" "x.org")(NIL NIL "bob" "y.org")) '
        b'(("Doe, John" NIL "j" "x.org")(NIL NIL "bob" "y.org")) '
        b'((NIL NIL "r" "x.org")) NIL '
        b'((NIL NIL "group" NIL)(NIL NIL "a" "b.c")(NIL NIL "d" "e.f")(NIL NIL NIL NIL)) '
        b'NIL "<x@y>" NIL))'
    )
    # HEADER.FIELDS returns the folded header unchanged; SEARCH unfolds it.
    got = fetch_one(imap, "1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert got[b"BODY[HEADER.FIELDS (SUBJECT)]"] == b"Subject: a folded\r\n subject line\r\n\r\n"
    assert search(imap, "SUBJECT", '"folded subject"') == [1]
    assert search(imap, "FROM", '"Doe, John"') == [1]
    assert search(imap, "CC", "d@e.f") == [1]


def test_no_expunge_during_fetch_store_search(server):
    """RFC 3501 7.4.1: no EXPUNGE response while answering FETCH, STORE or SEARCH."""
    a = raw_login(server)
    b = raw_login(server)
    try:
        for _ in range(3):
            a.ok(b"APPEND INBOX {%d+}\r\n" % len(PLAIN) + PLAIN)
        a.ok(b"SELECT INBOX")
        b.ok(b"SELECT INBOX")
        b.ok(b"STORE 1 +FLAGS.SILENT (\\Deleted)")
        assert b.ok(b"EXPUNGE") == [b"* 1 EXPUNGE"]
        for cmd in (b"FETCH 2:3 (UID)", b"STORE 3 +FLAGS.SILENT (\\Seen)", b"SEARCH ALL"):
            untagged = a.ok(cmd)
            assert not any(line.endswith(b" EXPUNGE") for line in untagged), (cmd, untagged)
        # Sequence numbers are still the old ones: message 3 is UID 3.
        assert a.ok(b"FETCH 3 (UID)") == [b"* 3 FETCH (UID 3)"]
        assert a.ok(b"NOOP") == [b"* 1 EXPUNGE"]
        (line,) = a.ok(b"FETCH 2 (UID FLAGS)")
        m = re.fullmatch(rb"\* 2 FETCH \(UID 3 FLAGS \(([^)]*)\)\)", line)
        assert m and set(m.group(1).split()) == {b"\\Seen", b"\\Recent"}, line
    finally:
        a.close()
        b.close()


def test_partial_zero_length_is_bad(imap):
    imap.append("INBOX", None, None, PLAIN)
    imap.select("INBOX")
    # partial = "<" number "." nz-number ">": a zero length is a syntax error.
    with pytest.raises(imaplib.IMAP4.error, match="BAD"):
        imap.fetch("1", "(BODY.PEEK[]<0.0>)")


def test_large_synchronizing_literal_append(server):
    raw = raw_login(server)
    try:
        big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 2000
        raw.send(b"b1 APPEND INBOX {%d}\r\n" % len(big))
        assert raw.readline().startswith(b"+")
        raw.send(big + b"\r\n")
        line = raw.readline()
        assert re.fullmatch(rb"b1 OK \[APPENDUID \d+ 1\] APPEND completed\.", line)
        raw.ok(b"SELECT INBOX")
        untagged = raw.ok(b"FETCH 1 (RFC822.SIZE BODY.PEEK[])")
        assert untagged == [
            b"* 1 FETCH (RFC822.SIZE %d BODY[] {%d}\r\n" % (lf_size(big), len(big)) + big + b")"
        ]
    finally:
        raw.close()
