"""Malformed and hostile input over a real socket.

Every test talks raw bytes to a running server and, after each bad input,
checks that the same connection still answers ``NOOP`` with ``OK``.
"""

from __future__ import annotations

import base64
import os
import socket
from pathlib import Path

import pytest
from conftest import FEATURES, PASSWORD, start_server
from twisted.internet import defer

from exchmail.store import names
from exchmail.store.memory import MemoryAccount, MemoryStore

MESSAGE = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture
def profile_overrides() -> dict:
    """These tests exercise the RFC-style features (see conftest.FEATURES)."""
    return FEATURES


class Client:
    """A raw IMAP connection: send bytes, read lines up to a tagged response."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.greeting = self.readline()
        assert self.greeting.startswith(b"* OK"), self.greeting
        self.counter = 0

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def readline(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"connection closed; pending {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_until(self, prefix: bytes) -> list[bytes]:
        """Lines up to and including the first one starting with ``prefix``."""
        lines = []
        while True:
            line = self.readline()
            lines.append(line)
            if line.startswith(prefix):
                return lines

    def tagged(self, tag: bytes) -> list[bytes]:
        return self.read_until(tag + b" ")

    def command(self, tag: bytes, data: bytes) -> list[bytes]:
        """Send ``data`` (a complete command, CRLF added) and read to ``tag``'s response."""
        self.send(data + b"\r\n")
        return self.tagged(tag)

    def run(self, text: bytes) -> list[bytes]:
        """Send ``<fresh tag> text`` and return the lines including the tagged one."""
        self.counter += 1
        tag = b"t%d" % self.counter
        return self.command(tag, tag + b" " + text)

    def assert_alive(self) -> None:
        lines = self.run(b"NOOP")
        assert lines[-1].split(b" ", 2)[1] == b"OK", lines

    def login(self, user: bytes = b"alice") -> None:
        lines = self.run(b'LOGIN %s "%s"' % (user, PASSWORD.encode()))
        assert lines[-1].split(b" ", 2)[1] == b"OK", lines


def status(line: bytes) -> bytes:
    """``OK``/``NO``/``BAD`` of a tagged or untagged status line."""
    return line.split(b" ", 2)[1]


@pytest.fixture
def client(server):
    c = Client(server.imap_port)
    yield c
    c.close()


@pytest.fixture
def alice(client):
    client.login()
    return client


@pytest.fixture
def selected(alice):
    lines = alice.command(b"ap", b"ap APPEND INBOX {%d+}\r\n" % len(MESSAGE) + MESSAGE)
    assert status(lines[-1]) == b"OK", lines
    lines = alice.run(b"SELECT INBOX")
    assert b"* 1 EXISTS" in lines and status(lines[-1]) == b"OK", lines
    return alice


@pytest.fixture
def started(reactor_thread, tmp_path):
    """Start a server with custom settings; stopped at the end of the test."""
    running = []

    def start(**kwargs):
        srv = start_server(tmp_path, **kwargs)
        running.append(srv)
        return srv

    yield start
    for srv in running:
        srv.stop()


# -- garbage -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "line,expected_tag",
    [
        (b"a1", b"a1"),
        (b"a1 FOO", b"a1"),
        (b"a1 FOO bar baz", b"a1"),
        (b"*", b"*"),
        (b"", b"*"),
        (b"   ", b"*"),
        (b"a1 (NOOP)", b"a1"),
        (b'a1 "NOOP"', b"a1"),
        (b"a1 noop extra", b"a1"),
        (b"a1 UID", b"a1"),
        (b"a1 UID NOOP", b"a1"),
    ],
)
def test_garbage_line_answers_bad(client, line, expected_tag):
    lines = client.command(expected_tag, line)
    assert lines[-1].startswith(expected_tag + b" BAD"), lines
    client.assert_alive()


def test_control_character_garbage_answers_untagged_bad(client):
    client.send(b"\x00\x01\r\n")
    line = client.readline()
    assert line.startswith(b"* BAD"), line
    client.assert_alive()


def test_control_character_garbage_keeps_connection(client):
    client.send(b"\x00\x01\r\n")
    line = client.readline()
    assert b" BAD " in line, line
    client.assert_alive()


def test_plus_tag_is_rejected(client):
    client.send(b"+ NOOP\r\n")
    line = client.readline()
    assert line.startswith(b"* BAD"), line
    client.assert_alive()


def test_bare_lf_line_ending_is_accepted(client):
    client.send(b"a1 NOOP\n")
    assert status(client.tagged(b"a1")[-1]) == b"OK"
    client.assert_alive()


@pytest.mark.parametrize(
    "text",
    [
        b'LOGIN alice "secret pw',
        b"LOGIN (alice secret",
        b"LOGIN alice secret)",
        b'LOGIN "a\\x" "pw"',
        b"LOGIN ((alice)) pw",
        b"LOGIN alice",
        b"LOGIN a b c",
    ],
)
def test_unbalanced_or_malformed_login(client, text):
    lines = client.run(text)
    assert status(lines[-1]) == b"BAD", lines
    client.assert_alive()


@pytest.mark.parametrize(
    "text",
    [
        b'LIST ("" *',
        b'LIST "" "*',
        b'LIST "" *)',
        b"SELECT (INBOX",
        b"STATUS INBOX (MESSAGES",
        b"STATUS INBOX (FOO)",
        b"CREATE",
        b"APPEND INBOX",
        b"APPEND INBOX notaliteral",
    ],
)
def test_unbalanced_in_authenticated_state(alice, text):
    lines = alice.run(text)
    assert status(lines[-1]) == b"BAD", lines
    alice.assert_alive()


# -- selected state: sequence sets, fetch, store, search -------------------------
@pytest.mark.parametrize(
    "text",
    [
        b"FETCH 0 FLAGS",
        b"FETCH 1:x FLAGS",
        b"FETCH x FLAGS",
        b"FETCH 1,,2 FLAGS",
        b"FETCH 4294967296 FLAGS",
        b"FETCH (1) FLAGS",
        b"FETCH 1 (FOO)",
        b"FETCH 1 FOO",
        b"FETCH 1 BODY[FOO]",
        b"FETCH 1 BODY[]<0.0>",
        b"FETCH 1 (FLAGS",
        b"FETCH 1",
        b"FETCH 1 (ALL)",
        b"UID FETCH 0 FLAGS",
        b"UID FETCH 1:x FLAGS",
        b"STORE 1 +FLAGS (\\Bogus)",
        b'STORE 1 +FLAGS ("quoted")',
        b"STORE 1 +FLAGS (\\Recent)",
        b"STORE 1 +FLAGS (a(b)",
        b"STORE 1 FOO (\\Seen)",
        b"STORE 0 +FLAGS (\\Seen)",
        b"STORE 1 +FLAGS",
        b"SEARCH FOO",
        b"SEARCH BEFORE 32-Jan-2020",
        b"SEARCH SINCE notadate",
        b"SEARCH ON 1-Xyz-2020",
        b"SEARCH (SEEN",
        b"SEARCH",
        b"SEARCH 0",
        b"SEARCH LARGER x",
        b"COPY 0 INBOX",
        b"UID EXPUNGE x",
    ],
)
def test_bad_selected_state_commands(selected, text):
    lines = selected.run(text)
    assert status(lines[-1]) == b"BAD", lines
    selected.assert_alive()


def test_fetch_beyond_last_message(selected):
    lines = selected.run(b"FETCH 99 FLAGS")
    assert status(lines[-1]) in (b"BAD", b"NO"), lines
    assert not any(b" FETCH " in line for line in lines[:-1]), lines
    selected.assert_alive()


def test_uid_fetch_beyond_last_uid_is_ok_and_empty(selected):
    lines = selected.run(b"UID FETCH 99 FLAGS")
    assert status(lines[-1]) == b"OK" and len(lines) == 1, lines


def test_search_badcharset(selected):
    lines = selected.run(b"SEARCH CHARSET KOI8-R ALL")
    assert lines[-1].split(b" ", 1)[1].startswith(b"NO [BADCHARSET"), lines
    assert status(lines[-1]) == b"NO"
    selected.assert_alive()
    lines = selected.run(b"SEARCH CHARSET UTF-8 ALL")
    assert lines[0] == b"* SEARCH 1" and status(lines[-1]) == b"OK", lines


# -- wrong state ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        b"SELECT INBOX",
        b'LIST "" *',
        b"FETCH 1 FLAGS",
        b"APPEND INBOX {1+}\r\nx",
        b"UID FETCH 1 FLAGS",
        b"IDLE",
    ],
)
def test_commands_before_login(client, text):
    lines = client.run(text)
    assert status(lines[-1]) == b"BAD", lines
    client.assert_alive()


@pytest.mark.parametrize(
    "text",
    [
        b"FETCH 1 FLAGS",
        b"STORE 1 +FLAGS (\\Seen)",
        b"SEARCH ALL",
        b"UID FETCH 1 FLAGS",
        b"EXPUNGE",
        b"CLOSE",
        b"CHECK",
        b"COPY 1 INBOX",
    ],
)
def test_selected_commands_before_select(alice, text):
    lines = alice.run(text)
    assert status(lines[-1]) == b"BAD", lines
    alice.assert_alive()


def test_login_after_login(alice):
    lines = alice.run(b'LOGIN alice "%s"' % PASSWORD.encode())
    assert status(lines[-1]) == b"BAD", lines
    lines = alice.run(b"AUTHENTICATE PLAIN")
    assert status(lines[-1]) == b"BAD", lines
    alice.assert_alive()


# -- size limits ----------------------------------------------------------------------
def test_line_longer_than_max_command_size(started):
    srv = started(profile_overrides={"max_command_size": 1024})
    c = Client(srv.imap_port)
    try:
        lines = c.command(b"a1", b"a1 NOOP " + b"x" * 5000)
        assert lines[-1].startswith(b"a1 BAD [TOOBIG]"), lines
        c.assert_alive()
        # the long line arriving in pieces, its end later
        c.send(b"a2 LOGIN " + b"y" * 3000)
        c.send(b"z" * 3000)
        c.send(b" more\r\n")
        lines = c.tagged(b"a2")
        assert lines[-1].startswith(b"a2 BAD [TOOBIG]"), lines
        c.assert_alive()
        c.login()  # the discarded LOGIN did not log in; a normal one works
        # a line just under the limit is fine
        lines = c.run(b'LIST "" "' + b"q" * 900 + b'"')
        assert status(lines[-1]) == b"OK", lines
    finally:
        c.close()


def test_synchronizing_literal_over_max_literal_size(started):
    srv = started(profile_overrides={"max_literal_size": 1000})
    c = Client(srv.imap_port)
    try:
        c.login()
        c.send(b"a1 APPEND INBOX {5000}\r\n")
        line = c.readline()
        assert line.startswith(b"a1 NO [TOOBIG]"), line  # and no "+" before it
        c.assert_alive()
        lines = c.run(b"STATUS INBOX (MESSAGES)")
        assert b"(MESSAGES 0)" in lines[0], lines
        # a literal exactly at the limit is accepted
        c.send(b"a2 APPEND INBOX {1000}\r\n")
        assert c.readline().startswith(b"+"), "continuation expected"
        c.send(b"Subject: x\r\n\r\n" + b"b" * (1000 - 15) + b"\r\n")
        lines = c.tagged(b"a2")
        assert status(lines[-1]) == b"OK", lines
    finally:
        c.close()


def test_non_synchronizing_literal_over_max_literal_size(started):
    srv = started(profile_overrides={"max_literal_size": 1000})
    c = Client(srv.imap_port)
    try:
        c.login()
        c.send(b"a1 APPEND INBOX {5000+}\r\n" + b"From: x\r\n" + b"y" * (5000 - 9) + b"\r\n")
        lines = c.tagged(b"a1")
        assert lines == [lines[-1]] and lines[-1].startswith(b"a1 NO [TOOBIG]"), lines
        c.assert_alive()
        lines = c.run(b"STATUS INBOX (MESSAGES)")
        assert b"(MESSAGES 0)" in lines[0], lines
        # the discarded data arriving slowly
        c.send(b"a2 APPEND INBOX {3000+}\r\n")
        for _ in range(3):
            c.send(b"a3 NOOP\r\n" + b"z" * 991)
        c.send(b"\r\n")
        lines = c.tagged(b"a2")
        assert lines == [lines[-1]] and lines[-1].startswith(b"a2 NO [TOOBIG]"), lines
        c.assert_alive()
    finally:
        c.close()


def test_oversized_literal_plus_second_literal_is_not_executed(started):
    srv = started(profile_overrides={"max_literal_size": 1000})
    c = Client(srv.imap_port)
    try:
        c.send(b"a1 LOGIN {5000+}\r\n" + b"x" * 5000 + b" {7+}\r\nx1 NOOP\r\n")
        lines = c.tagged(b"a1")
        assert lines[-1].startswith(b"a1 NO [TOOBIG]"), lines
        lines = c.command(b"a2", b"a2 NOOP")
        assert lines == [b"a2 OK NOOP completed."], lines
    finally:
        c.close()


def test_literal_plus_append_within_limits(alice, server):
    alice.send(b"a1 APPEND INBOX (\\Flagged) {%d+}\r\n" % len(MESSAGE) + MESSAGE + b"\r\n")
    lines = alice.tagged(b"a1")
    assert not any(line.startswith(b"+") for line in lines), lines
    assert lines[-1].startswith(b"a1 OK [APPENDUID "), lines
    lines = alice.run(b"SELECT INBOX")
    assert b"* 1 EXISTS" in lines
    lines = alice.run(b"FETCH 1 (FLAGS BODY.PEEK[])")
    assert b"\\Flagged" in lines[0] and b"{%d}" % len(MESSAGE) in lines[0], lines
    assert b"\r\n".join(lines[1:-2]) + b"\r\n" + lines[-2] == MESSAGE + b")", lines


def test_synchronizing_literal_append_gets_continuation(alice):
    alice.send(b"a1 APPEND INBOX {%d}\r\n" % len(MESSAGE))
    assert alice.readline().startswith(b"+ ")
    alice.send(MESSAGE + b"\r\n")
    assert alice.tagged(b"a1")[-1].startswith(b"a1 OK [APPENDUID "), "append failed"


# -- pipelining, tags, whitespace -------------------------------------------------------
def test_pipelined_commands_answered_in_order(client):
    client.send(b"a1 NOOP\r\na2 NOOP\r\na3 CAPABILITY\r\n")
    lines = client.tagged(b"a3")
    assert [line.split(b" ")[0] for line in lines] == [b"a1", b"a2", b"*", b"a3"], lines
    assert lines[2].startswith(b"* CAPABILITY IMAP4 IMAP4rev1")
    assert all(status(line) == b"OK" for line in (lines[0], lines[1], lines[3]))


def test_pipelined_login_select_fetch(client):
    client.send(
        b'p1 LOGIN alice "%s"\r\np2 APPEND INBOX {%d+}\r\n%s\r\np3 SELECT INBOX\r\n'
        b"p4 FETCH 1 FLAGS\r\np5 LOGOUT\r\n" % (PASSWORD.encode(), len(MESSAGE), MESSAGE)
    )
    lines = client.tagged(b"p5")
    tagged = [line for line in lines if not line.startswith(b"*")]
    assert [line.split(b" ")[:2] for line in tagged] == [
        [b"p1", b"OK"],
        [b"p2", b"OK"],
        [b"p3", b"OK"],
        [b"p4", b"OK"],
        [b"p5", b"OK"],
    ], lines
    assert any(line.startswith(b"* 1 FETCH (FLAGS") for line in lines)


def test_repeated_tags_both_answered(client):
    client.send(b"a1 NOOP\r\na1 CAPABILITY\r\n")
    first = client.tagged(b"a1")
    second = client.tagged(b"a1")
    assert first == [b"a1 OK NOOP completed."]
    assert second[0].startswith(b"* CAPABILITY") and second[-1].startswith(b"a1 OK")
    client.assert_alive()


def test_tab_separated_login(client):
    lines = client.command(b"a1", b'a1\tLOGIN\talice\t"%s"' % PASSWORD.encode())
    assert status(lines[-1]) == b"OK", lines
    lines = client.command(b"a2", b"a2  \tSELECT\t \tINBOX \t")
    assert status(lines[-1]) == b"OK", lines


# -- AUTHENTICATE ----------------------------------------------------------------------------
def plain(user: str, password: str) -> bytes:
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())


def test_authenticate_plain_valid(client):
    client.send(b"a1 AUTHENTICATE PLAIN\r\n")
    assert client.readline().startswith(b"+"), "continuation expected"
    client.send(plain("alice", PASSWORD) + b"\r\n")
    lines = client.tagged(b"a1")
    assert status(lines[-1]) == b"OK", lines
    assert status(client.run(b"SELECT INBOX")[-1]) == b"OK"


def test_authenticate_plain_initial_response(client):
    lines = client.command(b"a1", b"a1 AUTHENTICATE PLAIN " + plain("bob", PASSWORD))
    assert status(lines[-1]) == b"OK", lines
    client.assert_alive()


def test_authenticate_cancel(client):
    client.send(b"a1 AUTHENTICATE PLAIN\r\n")
    assert client.readline().startswith(b"+")
    client.send(b"*\r\n")
    lines = client.tagged(b"a1")
    assert status(lines[-1]) == b"NO", lines
    client.assert_alive()
    client.login()


def test_authenticate_invalid_base64(client):
    client.send(b"a1 AUTHENTICATE PLAIN\r\n")
    assert client.readline().startswith(b"+")
    client.send(b"!!!not base64***\r\n")
    lines = client.tagged(b"a1")
    assert status(lines[-1]) == b"BAD", lines
    client.assert_alive()
    assert status(client.run(b"SELECT INBOX")[-1]) == b"BAD"  # still not logged in


def test_authenticate_malformed_plain_message(client):
    client.send(b"a1 AUTHENTICATE PLAIN\r\n")
    assert client.readline().startswith(b"+")
    client.send(base64.b64encode(b"no nul separators") + b"\r\n")
    lines = client.tagged(b"a1")
    assert status(lines[-1]) in (b"BAD", b"NO"), lines
    client.assert_alive()


def test_authenticate_wrong_password(client):
    client.send(b"a1 AUTHENTICATE PLAIN\r\n")
    assert client.readline().startswith(b"+")
    client.send(plain("alice", "wrong") + b"\r\n")
    lines = client.tagged(b"a1")
    assert status(lines[-1]) == b"NO", lines
    client.assert_alive()
    assert status(client.run(b"SELECT INBOX")[-1]) == b"BAD"


def test_authenticate_unknown_mechanism(client):
    lines = client.run(b"AUTHENTICATE X-UNKNOWN")
    assert status(lines[-1]) == b"NO", lines
    client.assert_alive()


def test_login_wrong_password(client):
    lines = client.run(b'LOGIN alice "nope"')
    assert status(lines[-1]) == b"NO", lines
    client.assert_alive()


# -- mailbox and user names that try to escape --------------------------------------------
def snapshot(root: Path) -> set[Path]:
    return {Path(dirpath) / name for dirpath, dirs, files in os.walk(root) for name in dirs + files}


ESCAPES = [
    b'"../../etc"',
    b'"a/../../b"',
    b'"/abs"',
    b'"INBOX/../../x"',
    b'".."',
    b'"a//b"',
    b'"a/./b"',
    b'"&AC4ALg-/&AC4ALg-/etc"',
    b"{3}\r\na\x01b",
]


@pytest.mark.parametrize("name", ESCAPES)
def test_mailbox_names_cannot_escape(server, alice, tmp_path, name):
    before = snapshot(tmp_path)
    user_dir = server.data_dir / "mail" / "alice"
    for verb in (
        b"CREATE %s",
        b"SELECT %s",
        b"STATUS %s (MESSAGES)",
        b"DELETE %s",
        b"RENAME INBOX %s",
        b"SUBSCRIBE %s",
        b"APPEND %s {5+}\r\nhello",
        b"COPY 1 %s",
    ):
        text = verb % name
        if b"{3}\r\n" in text:  # synchronizing literal: wait for the continuation
            head, rest = text.split(b"\r\n", 1)
            alice.counter += 1
            tag = b"t%d" % alice.counter
            alice.send(tag + b" " + head + b"\r\n")
            assert alice.readline().startswith(b"+")
            alice.send(rest + b"\r\n")
            lines = alice.tagged(tag)
        else:
            lines = alice.run(text)
        if verb.startswith(b"SUBSCRIBE") and status(lines[-1]) == b"OK":
            continue  # subscriptions are names only, they create nothing
        if verb.startswith(b"COPY"):
            assert status(lines[-1]) == b"BAD", lines  # nothing selected
        else:
            assert status(lines[-1]) in (b"NO", b"BAD"), (text, lines)
        alice.assert_alive()
    created = snapshot(tmp_path) - before
    outside = [p for p in created if user_dir not in p.parents and p != user_dir]
    assert outside == [], outside
    assert not (tmp_path / "etc").exists() and not (server.data_dir / "etc").exists()
    lines = alice.run(b'LIST "" *')
    assert lines[:-1] == [b'* LIST (\\HasNoChildren) "/" "INBOX"'], lines


@pytest.mark.parametrize(
    "name", [b'"a\\\\..\\\\b"', b'"..x"', b'"a.b"', b'"x../y.."', b'"~"', b'"%2E%2E"', b'"a:b*c?"']
)
def test_odd_but_legal_names_stay_inside_the_user_folder(server, alice, tmp_path, name):
    before = snapshot(tmp_path)
    user_dir = server.data_dir / "mail" / "alice"
    lines = alice.run(b"CREATE " + name)
    assert status(lines[-1]) == b"OK", lines
    lines = alice.run(b"APPEND %s {5+}\r\nhello" % name)
    assert status(lines[-1]) == b"OK", lines
    created = snapshot(tmp_path) - before
    assert created, "nothing was created"
    outside = [p for p in created if user_dir not in p.parents and p != user_dir]
    assert outside == [], outside
    for path in created:
        assert ".." not in path.relative_to(user_dir).parts
    lines = alice.run(b'LIST "" *')
    assert any(line.endswith(b" " + name) for line in lines), lines


@pytest.mark.parametrize("user", [b'"../x"', b'"../../etc"', b'"alice/../bob"', b'"/tmp/x"', b'".."', b'""'])
def test_user_names_cannot_escape(server, client, tmp_path, user):
    before = snapshot(tmp_path)
    lines = client.run(b'LOGIN %s "%s"' % (user, PASSWORD.encode()))
    assert status(lines[-1]) == b"NO", lines
    client.send(b"a1 AUTHENTICATE PLAIN\r\n")
    assert client.readline().startswith(b"+")
    client.send(base64.b64encode(b"\0" + user.strip(b'"') + b"\0" + PASSWORD.encode()) + b"\r\n")
    lines = client.tagged(b"a1")
    assert status(lines[-1]) in (b"NO", b"BAD"), lines
    client.assert_alive()
    assert snapshot(tmp_path) - before == set()


# -- internal errors ------------------------------------------------------------------------
class BrokenAccount(MemoryAccount):
    def list_mailboxes(self):
        raise RuntimeError("simulated store failure")


class BrokenStore(MemoryStore):
    def account(self, name):
        name = names.check_user_name(name)
        if name not in self._accounts:
            self._accounts[name] = BrokenAccount(name)
        return defer.succeed(self._accounts[name])


def test_internal_error_answers_serverbug(started):
    # Case-insensitive name resolution (V0008) lists mailboxes too: off, so
    # that SELECT shows other commands still work.
    srv = started(store=BrokenStore(), profile_overrides={"case_insensitive_names": False})
    c = Client(srv.imap_port)
    try:
        c.login()
        lines = c.run(b'LIST "" *')
        assert lines[-1].split(b" ", 1)[1].startswith(b"NO [SERVERBUG]"), lines
        assert len(lines) == 1, lines
        c.assert_alive()
        lines = c.run(b"SELECT INBOX")  # other commands still work
        assert status(lines[-1]) == b"OK", lines
        lines = c.run(b'LSUB "" *')
        assert lines[-1].split(b" ", 1)[1].startswith(b"NO [SERVERBUG]"), lines
        c.assert_alive()
    finally:
        c.close()


def test_internal_error_in_pipelined_commands(started):
    # Case-insensitive name resolution (V0008) lists mailboxes too: off, so
    # that SELECT shows other commands still work.
    srv = started(store=BrokenStore(), profile_overrides={"case_insensitive_names": False})
    c = Client(srv.imap_port)
    try:
        c.login()
        c.send(b'b1 LIST "" *\r\nb2 NOOP\r\nb3 LIST "" *\r\nb4 CAPABILITY\r\n')
        lines = c.tagged(b"b4")
        tagged = [line.split(b" ")[:3] for line in lines if not line.startswith(b"*")]
        assert tagged == [
            [b"b1", b"NO", b"[SERVERBUG]"],
            [b"b2", b"OK", b"NOOP"],
            [b"b3", b"NO", b"[SERVERBUG]"],
            [b"b4", b"OK", b"CAPABILITY"],
        ], lines
    finally:
        c.close()


def test_literals_of_one_command_share_the_size_limit(reactor_thread, tmp_path):
    """Many literals cannot add up past max_literal_size: the limit is per command."""
    running = start_server(tmp_path, profile_overrides={"max_literal_size": 1000})
    try:
        sock = socket.create_connection(("127.0.0.1", running.imap_port), timeout=10)
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(b"a1 LOGIN {600+}\r\n" + b"x" * 600 + b" {600}\r\n")
        assert reader.readline().startswith(b"a1 NO [TOOBIG]")
        sock.sendall(b"a2 NOOP\r\n")
        assert reader.readline().startswith(b"a2 OK")
        sock.close()
    finally:
        running.stop()
