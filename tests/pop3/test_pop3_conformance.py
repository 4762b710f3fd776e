"""POP3 and IMAP side by side over real sockets (stdlib poplib and imaplib).

One Maildir store serves both: the POP3 maildrop is the account's INBOX.
Test names carry the MS-STANXPOP3 statement IDs they cover.
"""

from __future__ import annotations

import imaplib
import poplib
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSWORD, RunningServer, in_reactor, start_server

from exchmail.profile import load_profile
from exchmail.service.config import POP3Config, QuotaConfig

TIMEOUT = 10
# Bare-LF-free wire form with a dot line; Maildir stores it with bare LFs,
# so the stored size is smaller than the exact RFC 822 size by one per line.
MESSAGE = (
    b"From: a@example.com\r\nTo: alice@example.com\r\nSubject: hi\r\n\r\n"
    b"line 1\r\n.starts with a dot\r\n..two dots\r\n.\r\nlast\r\n"
)
STORED = len(MESSAGE.replace(b"\r\n", b"\n"))


@pytest.fixture
def running(reactor_thread: Any, tmp_path: Path):
    servers: list[RunningServer] = []

    def start(**kwargs: Any) -> RunningServer:
        server = start_server(tmp_path / str(len(servers)), **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def pop(server: RunningServer, user: str = "alice") -> poplib.POP3:
    client = poplib.POP3("127.0.0.1", server.pop3_port, timeout=TIMEOUT)
    client.user(user)
    client.pass_(PASSWORD)
    return client


def imap(server: RunningServer, user: str = "alice") -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=TIMEOUT)
    client.login(user, PASSWORD)
    return client


def append(client: imaplib.IMAP4, data: bytes = MESSAGE, flags: str | None = None) -> int:
    typ, answer = client.append("INBOX", flags, None, data)
    assert typ == "OK"
    match = re.search(rb"APPENDUID \d+ (\d+)", answer[0])
    assert match
    return int(match.group(1))


def unstuffed(lines: list[bytes]) -> bytes:
    """poplib's lines (already un-stuffed) back as wire bytes."""
    return b"".join(line + b"\r\n" for line in lines)


def test_E0001_pop3_listens_where_configured(running):
    server = running()
    assert server.pop3_port
    with socket.create_connection(("127.0.0.1", server.pop3_port), timeout=TIMEOUT) as s:
        assert s.recv(100) == b"+OK The Microsoft Exchange POP3 service is ready.\r\n"


def test_E0001_no_listener_without_listen(running):
    server = running(config_changes={"pop3": POP3Config(listen=())})
    assert server.pop3_port == 0


def test_C0011_retr_is_byte_exact_with_imap_body(running):
    server = running()
    client = imap(server)
    uid = append(client)
    client.select("INBOX")
    typ, data = client.uid("FETCH", str(uid), "(BODY.PEEK[])")
    body = data[0][1]
    assert body == MESSAGE
    p = pop(server)
    response, lines, octets = p.retr(1)
    assert unstuffed(lines) == body
    _, top_lines, _ = p.top(1, 2)
    assert unstuffed(top_lines) == body[: body.index(b"\r\n\r\n") + 4] + b"line 1\r\n.starts with a dot\r\n"
    p.quit()
    client.logout()


def test_C0011_raw_wire_is_stuffed_with_crlf(running):
    server = running()
    append(imap(server))
    with socket.create_connection(("127.0.0.1", server.pop3_port), timeout=TIMEOUT) as s:
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"USER alice\r\nPASS " + PASSWORD.encode() + b"\r\nRETR 1\r\nQUIT\r\n")
        f.readline()
        f.readline()
        assert f.readline().startswith(b"+OK")
        wire = b"".join(iter(f.readline, b""))
    expected = MESSAGE.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    assert wire.startswith(expected)
    assert wire[len(expected) :].startswith(b"+OK")


def test_2_1_4_2_1_5_stored_size_by_default(running):
    server = running()
    append(imap(server))
    append(imap(server), b"Subject: x\r\n\r\ny\r\n")
    p = pop(server)
    second = len(b"Subject: x\n\ny\n")
    assert p.stat() == (2, STORED + second)
    assert p.list()[1] == [b"1 %d" % STORED, b"2 %d" % second]
    assert p.list(1) == b"+OK 1 %d" % STORED
    assert STORED != len(MESSAGE)
    p.quit()


def test_2_1_4_2_1_5_exact_size_when_enabled(running):
    server = running(profile_overrides={"EnableExactRFC822Size": True})
    append(imap(server))
    p = pop(server)
    assert p.stat() == (1, len(MESSAGE))
    assert p.list()[1] == [b"1 %d" % len(MESSAGE)]
    assert p.list(1) == b"+OK 1 %d" % len(MESSAGE)
    p.quit()


def test_2_1_4_2_1_5_rfc_profile_reports_exact_sizes(running):
    rfc = running(config_changes={"profile": load_profile("rfc3501")})
    append(imap(rfc))
    p = pop(rfc)
    assert p.stat() == (1, len(MESSAGE))
    assert p.list()[1] == [b"1 %d" % len(MESSAGE)]
    p.quit()


def test_C0007_C0008_C0009_uidl_is_the_imap_uid_and_never_reused(running):
    server = running()
    client = imap(server)
    uids = [append(client) for _ in range(3)]  # identical copies: different unique-ids
    p = pop(server)
    listing = p.uidl()[1]
    assert listing == [b"%d %d" % (n, uid) for n, uid in enumerate(uids, 1)]
    assert p.uidl(2) == b"+OK 2 %d" % uids[1]
    p.dele(3)  # the highest
    p.quit()
    new_uid = append(client)
    assert new_uid > uids[2]  # not reused even after deleting the highest
    p = pop(server)
    ids = [int(line.split()[1]) for line in p.uidl()[1]]
    assert ids == [uids[0], uids[1], new_uid] and ids == sorted(ids)
    assert all(re.fullmatch(rb"\d+", line.split()[1]) for line in p.uidl()[1])
    p.quit()
    client.logout()


def test_dele_quit_expunges_and_imap_learns_on_noop(running):
    server = running()
    client = imap(server)
    uids = [append(client) for _ in range(3)]
    client.select("INBOX")
    p = pop(server)
    p.dele(2)
    # Before QUIT nothing changes for IMAP.
    client.noop()
    assert client.uid("SEARCH", "ALL")[1] == [b" ".join(b"%d" % u for u in uids)]
    p.quit()
    typ, data = client.noop()
    assert typ == "OK"
    untagged = client.untagged_responses
    assert untagged.get("EXPUNGE") == [b"2"]
    assert client.uid("SEARCH", "ALL")[1] == [b"%d %d" % (uids[0], uids[2])]
    client.logout()


def test_imap_flags_do_not_disturb_pop3(running):
    server = running()
    client = imap(server)
    uids = [append(client) for _ in range(2)]
    client.select("INBOX")
    client.uid("STORE", str(uids[0]), "+FLAGS", r"(\Seen \Deleted \Flagged)")
    p = pop(server)
    assert p.stat()[0] == 2
    assert unstuffed(p.retr(1)[1]) == MESSAGE
    p.dele(2)
    p.quit()
    # POP3 removed only what it marked; IMAP's \Deleted on the first stays IMAP's business.
    assert client.uid("SEARCH", "ALL")[1] == [b"%d" % uids[0]]
    assert b"\\Deleted" in client.uid("FETCH", str(uids[0]), "(FLAGS)")[1][0]
    client.logout()


def test_2_1_3_exchange_second_session_logs_in(running):
    server = running()
    append(imap(server))
    first, second = pop(server), pop(server)  # no exclusive lock
    assert first.stat()[0] == second.stat()[0] == 1
    first.dele(1)
    first.quit()
    with pytest.raises(poplib.error_proto, match="removed by another session"):
        second.retr(1)
    second.quit()


def test_C0004_rfc_exclusive_lock_second_session_refused(running):
    server = running(profile_overrides={"pop3.exclusive_lock": True})
    first = pop(server)
    second = poplib.POP3("127.0.0.1", server.pop3_port, timeout=TIMEOUT)
    second.user("alice")
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        second.pass_(PASSWORD)
    first.quit()
    second.user("alice")
    assert second.pass_(PASSWORD).startswith(b"+OK")
    second.quit()


def test_C0010_same_login_failed_error_for_unknown_user_and_bad_password(running):
    server = running()
    answers = []
    for user, password in (("nobody", PASSWORD), ("alice", "wrong")):
        p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=TIMEOUT)
        assert p.user(user) == b"+OK"  # V0008/V0009
        with pytest.raises(poplib.error_proto) as info:
            p.pass_(password)
        answers.append(info.value.args[0])
        p.quit()
    assert answers[0] == answers[1] == (b"-ERR [AUTH] Logon failure: unknown user name or bad password.")


def test_V0010_secure_login_refuses_plaintext(running):
    server = running(login_type="SecureLogin")
    p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=TIMEOUT)
    assert p.user("alice") == b"+OK"
    with pytest.raises(poplib.error_proto, match="Plaintext authentication"):
        p.pass_(PASSWORD)
    p.quit()


def test_E0003_quota_refuses_imap_append_and_copy(running):
    server = running(config_changes={"quota": QuotaConfig(limit=3 * len(MESSAGE))})
    client = imap(server)
    append(client)
    append(client)
    typ, data = client.append("INBOX", None, None, MESSAGE + b"x" * len(MESSAGE))
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")
    client.create("Archive")
    client.select("INBOX")
    typ, data = client.copy("1:2", "Archive")
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")
    client.select("Archive")
    assert client.search(None, "ALL")[1] == [b""]
    client.logout()


def test_E0004_quota_warning_message_in_the_maildrop(running):
    server = running(config_changes={"quota": QuotaConfig(warning=2 * STORED, users={"bob": (0, 0)})})
    client = imap(server)
    append(client)
    p = pop(server)
    assert p.stat()[0] == 1
    p.quit()
    append(client)  # reaches the warning threshold
    append(client)  # warned once only
    p = pop(server)
    count = p.stat()[0]
    assert count == 4
    subjects = [b"\r\n".join(p.top(n, 0)[1]) for n in range(1, count + 1)]
    assert sum(b"Subject: Your mailbox is almost full" in s for s in subjects) == 1
    p.quit()
    bob = imap(server, "bob")  # per-user exception: no warning for bob
    for _ in range(3):
        append(bob)
    p = pop(server, "bob")
    assert p.stat()[0] == 3
    p.quit()


def test_V0002_V0003_short_timeouts_notice_before_close(running):
    server = running(profile_overrides={"pop3.preauthenticated_timeout": 1})
    with socket.create_connection(("127.0.0.1", server.pop3_port), timeout=TIMEOUT) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        assert f.readline().startswith(b"-ERR Autologout")
        assert f.readline() == b""  # closed


def test_V0003_rfc_closes_without_response(running):
    server = running(profile_overrides={"pop3.preauthenticated_timeout": 1, "pop3.autologout_notice": False})
    with socket.create_connection(("127.0.0.1", server.pop3_port), timeout=TIMEOUT) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        assert f.readline() == b""


def test_large_message_streams_byte_exact(running):
    server = running()
    big = b"Subject: big\r\n\r\n" + b"".join(b".%06d line of text\r\n" % i for i in range(60000))
    append(imap(server), big)
    p = pop(server)
    assert unstuffed(p.retr(1)[1]) == big
    p.quit()
    in_reactor(lambda: None)


@pytest.mark.parametrize("order", ["Ascending", "Descending"])
def test_message_retrieval_sort_order(running, order):
    """Set-PopSettings MessageRetrievalSortOrder: Descending numbers the newest message 1."""
    server = running(profile_overrides={"MessageRetrievalSortOrder": order})
    client = imap(server)
    uids = [append(client, MESSAGE.replace(b"Subject: hi", b"Subject: m%d" % n)) for n in range(3)]
    client.logout()
    pop3 = pop(server)
    try:
        listed = [int(line.split()[1]) for line in pop3.uidl()[1]]
        expected = uids if order == "Ascending" else uids[::-1]
        assert listed == expected
        first = b"\r\n".join(pop3.retr(1)[1])
        assert (b"Subject: m0" if order == "Ascending" else b"Subject: m2") in first
        pop3.dele(1)
    finally:
        pop3.quit()
    survivors = imap(server)
    survivors.select("INBOX")
    typ, data = survivors.uid("SEARCH", "ALL")
    remaining = [int(n) for n in data[0].split()]
    assert remaining == (uids[1:] if order == "Ascending" else uids[:2])
    survivors.logout()
