"""LMTP in memory: the real LMTPServer on a StringTransport with a Clock,
a real accounts file as the directory and a real (memory or Maildir) store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import add_accounts
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from exchmail.auth.checker import AccountsChecker
from exchmail.lmtp.server import LMTPServer, make_context
from exchmail.lmtp.settings import LMTPSettings
from exchmail.session.observe import SessionObserver
from exchmail.store.memory import MemoryStore
from exchmail.store.quota import QuotaLimits, QuotaPolicy, QuotaStore
from exchmail.testing import result

MESSAGE = b"From: a@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lmtp") / "users"
    add_accounts(path, ("alice", "bob", "carol@example.org"), "pw")
    return path


class Recorder(SessionObserver):
    transcript = True

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def session_opened(self, session: Any) -> None:
        self.events.append(("opened", session.protocol))

    def received(self, session: Any, text: str) -> None:
        self.events.append(("<", text))

    def sent(self, session: Any, text: str) -> None:
        self.events.append((">", text))

    def command_done(self, session: Any, name: str, status: str, seconds: float) -> None:
        self.events.append(("done", (name, status)))

    def session_closed(self, session: Any) -> None:
        self.events.append(("closed", None))


class Client:
    """One LMTP connection in memory."""

    def __init__(
        self, users: Path, store: Any = None, observers: tuple[Any, ...] = (), **settings: Any
    ) -> None:
        self.store = store if store is not None else MemoryStore()
        self.clock = Clock()
        context = make_context(
            LMTPSettings(**settings), self.store, AccountsChecker(users), self.clock, observers
        )
        self.server = LMTPServer(context)
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.7", 4000))
        self.server.makeConnection(self.transport)
        self.greeting = self.take()

    def take(self) -> bytes:
        value = self.transport.value()
        self.transport.clear()
        return value

    def send(self, *chunks: bytes) -> bytes:
        for chunk in chunks:
            self.server.dataReceived(chunk)
        return self.take()

    def lines(self, *commands: str) -> list[bytes]:
        return self.send("".join(c + "\r\n" for c in commands).encode()).splitlines()

    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        box = result(result(self.store.account(user)).mailbox(folder))
        return [result(box.read_message(uid)) for uid in box.uids()]


def transaction(client: Client, *recipients: str, body: bytes = MESSAGE) -> list[bytes]:
    client.lines("LHLO mta.example.org")
    commands = ["MAIL FROM:<sender@example.com>"] + [f"RCPT TO:<{r}>" for r in recipients]
    replies = client.lines(*commands)
    replies += client.send(b"DATA\r\n").splitlines()
    replies += client.send(body + b".\r\n").splitlines()
    return replies


def test_greeting_and_lhlo_advertise_what_rfc_2033_requires(users_file: Path) -> None:
    client = Client(users_file, hostname="mx.example.org")
    assert client.greeting.startswith(b"220 mx.example.org LMTP")
    reply = client.lines("LHLO mta.example.org")
    assert reply[0].startswith(b"250-mx.example.org")
    assert {b"250-PIPELINING", b"250-ENHANCEDSTATUSCODES", b"250-8BITMIME"} <= set(reply)
    assert reply[-1].startswith(b"250 ") or reply[-1].startswith(b"250-")
    assert any(line.endswith(b"SIZE 104857600") for line in reply)


def test_helo_and_ehlo_are_refused_and_mail_needs_lhlo(users_file: Path) -> None:
    client = Client(users_file)
    assert client.lines("HELO x")[0].startswith(b"500 5.5.1")
    assert client.lines("EHLO x")[0].startswith(b"500 5.5.1")
    assert client.lines("MAIL FROM:<a@b>")[0].startswith(b"503 5.5.1")
    assert client.lines("STARTTLS")[0].startswith(b"500 ")
    assert client.lines("NOOP") == [b"250 2.0.0 OK"]


def test_one_reply_per_accepted_recipient_and_unknown_users_refused(users_file: Path) -> None:
    client = Client(users_file)
    replies = transaction(client, "alice@example.org", "nobody@example.org", "bob@example.org")
    assert replies[0].startswith(b"250 2.1.0")
    assert replies[1].startswith(b"250 2.1.5")
    assert replies[2].startswith(b"550 5.1.1")
    assert replies[3].startswith(b"250 2.1.5")
    assert replies[4].startswith(b"354")
    assert [r[:9] for r in replies[5:]] == [b"250 2.0.0", b"250 2.0.0"]
    assert b"<alice@example.org>" in replies[5] and b"<bob@example.org>" in replies[6]
    for user in ("alice", "bob"):
        (stored,) = client.messages(user)
        assert stored.endswith(MESSAGE)
        assert stored.startswith(
            b"Return-Path: <sender@example.com>\r\nReceived: from mta.example.org ([192.0.2.7])\r\n"
        )


def test_account_named_by_full_address_and_any_case(users_file: Path) -> None:
    client = Client(users_file)
    replies = transaction(client, "carol@example.org", "ALICE@example.org")
    assert [r[:3] for r in replies[-2:]] == [b"250", b"250"]
    assert len(client.messages("carol@example.org")) == 1
    assert len(client.messages("alice")) == 1


def test_domains_restrict_recipients(users_file: Path) -> None:
    client = Client(users_file, domains=("example.org",))
    replies = transaction(client, "alice@example.org", "alice@elsewhere.net")
    assert replies[2].startswith(b"550 5.1.1")
    assert replies[-1].startswith(b"250 2.0.0")


def test_pipelined_session_answers_in_order(users_file: Path) -> None:
    client = Client(users_file)
    everything = b"LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<alice>\r\nRCPT TO:<zed>\r\nRCPT TO:<bob>\r\nDATA\r\n"
    replies = client.send(everything).splitlines()
    replies += client.send(MESSAGE + b".\r\nRSET\r\nQUIT\r\n").splitlines()
    codes = [r[:4] for r in replies if not r.startswith(b"250-")]
    assert codes == [b"250 ", b"250 ", b"250 ", b"550 ", b"250 ", b"354 ", b"250 ", b"250 ", b"250 ", b"221 "]
    assert client.transport.disconnecting


def test_data_without_recipients_is_503(users_file: Path) -> None:
    client = Client(users_file)
    replies = transaction(client, "nobody@example.org")
    assert replies[2].startswith(b"503 5.5.1")
    assert client.lines("NOOP") == [b"250 2.0.0 OK"]


def test_dot_stuffing_and_8bit_body_arrive_byte_exact(users_file: Path) -> None:
    client = Client(users_file)
    body = (
        "Subject: Grüße\r\n\r\n.leading dot\r\n..two dots\r\nÄ 8-bit line\r\n"
        "bare\n.\nLF dot LF is content\r\n"
    ).encode()
    stuffed = body.replace(b"\r\n.", b"\r\n..")
    client.lines("LHLO x", "MAIL FROM:<a@b> BODY=8BITMIME", "RCPT TO:<alice>", "DATA")
    # Byte by byte: every split of the end mark and of the stuffed dots.
    for i in range(len(stuffed)):
        assert client.send(stuffed[i : i + 1]) == b""
    assert client.send(b".\r\n").startswith(b"250 2.0.0")
    (stored,) = client.messages("alice")
    assert stored.endswith(b"\r\n\r\n" + body.split(b"\r\n\r\n", 1)[1])


def test_detail_addressing_into_an_existing_folder(users_file: Path) -> None:
    client = Client(users_file)
    result(result(client.store.account("alice")).create("Lists"))
    transaction(client, "alice+lists@example.org", "alice+nothere@example.org")
    assert len(client.messages("alice", "Lists")) == 1
    assert len(client.messages("alice")) == 1  # no such folder: INBOX


def test_detail_folder_create_and_off(users_file: Path) -> None:
    client = Client(users_file, detail_folder="create")
    transaction(client, "alice+news@example.org")
    assert len(client.messages("alice", "news")) == 1
    client = Client(users_file, detail_folder="off")
    result(result(client.store.account("alice")).create("Lists"))
    transaction(client, "alice+Lists@example.org")
    assert len(client.messages("alice")) == 1


def test_detail_delimiter_configurable(users_file: Path) -> None:
    client = Client(users_file, recipient_delimiter="-", detail_folder="create")
    replies = transaction(client, "alice-x@example.org", "alice+x@example.org")
    assert replies[1].startswith(b"250") and replies[2].startswith(b"550")
    assert len(client.messages("alice", "x")) == 1


@pytest.mark.parametrize(("over_quota", "expected"), [(552, b"552 5.2.2"), (452, b"452 4.2.2")])
def test_over_quota_per_recipient(users_file: Path, over_quota: int, expected: bytes) -> None:
    policy = QuotaPolicy(QuotaLimits(0, 0), {"alice": QuotaLimits(100, 0)})
    client = Client(users_file, store=QuotaStore(MemoryStore(), policy), over_quota=over_quota)
    replies = transaction(client, "alice", "bob", body=MESSAGE + b"x" * 200 + b"\r\n")
    assert replies[-2].startswith(expected) and b"<alice@" in replies[-2]
    assert replies[-1].startswith(b"250 2.0.0")
    assert client.messages("alice") == [] and len(client.messages("bob")) == 1


def test_store_failure_is_451_and_the_session_goes_on(users_file: Path, tmp_path: Path) -> None:
    from exchmail.store.maildir import MaildirStore

    store = MaildirStore(tmp_path / "mail")
    result(store.account("alice"))
    tmp = tmp_path / "mail" / "alice" / "tmp"
    tmp.rmdir()
    tmp.write_bytes(b"")  # a file where the Maildir's tmp/ should be: delivery fails
    client = Client(users_file, store=store)
    replies = transaction(client, "alice", "bob")
    assert replies[-2].startswith(b"451 4.3.0") and replies[-1].startswith(b"250 2.0.0")
    assert client.lines("NOOP") == [b"250 2.0.0 OK"]


def test_disconnect_in_the_middle_of_data_delivers_nothing(users_file: Path) -> None:
    client = Client(users_file)
    client.lines("LHLO x", "MAIL FROM:<a@b>", "RCPT TO:<alice>", "DATA")
    client.send(b"Subject: half\r\n\r\nsome of the body\r\n")
    client.server.connectionLost(None)
    assert client.messages("alice") == []


def test_message_size_limits(users_file: Path) -> None:
    client = Client(users_file, max_message_size=2048)
    client.lines("LHLO x")
    assert client.lines("MAIL FROM:<a@b> SIZE=4096")[0].startswith(b"552 5.3.4")
    replies = transaction(client, "alice", body=b"Subject: big\r\n\r\n" + b"y" * 4000 + b"\r\n")
    assert replies[-1].startswith(b"552 5.3.4")
    assert client.messages("alice") == []
    assert transaction(client, "alice")[-1].startswith(b"250 2.0.0")


def test_too_many_recipients(users_file: Path) -> None:
    client = Client(users_file, max_recipients=2)
    replies = transaction(client, "alice", "bob", "alice")
    assert replies[3].startswith(b"452 4.5.3")
    assert [r[:3] for r in replies[-2:]] == [b"250", b"250"]


def test_overlong_command_line_is_refused_and_the_session_goes_on(users_file: Path) -> None:
    client = Client(users_file)
    client.lines("LHLO x")
    assert client.send(b"MAIL FROM:<" + b"a" * 5000) == b""
    assert client.send(b"a" * 5000 + b">\r\n").startswith(b"500 5.5.2")
    assert client.lines("NOOP") == [b"250 2.0.0 OK"]
    assert transaction(client, "alice")[-1].startswith(b"250 2.0.0")


def test_idle_timeout_says_421(users_file: Path) -> None:
    client = Client(users_file, timeout=30)
    client.clock.advance(31)
    assert client.take().startswith(b"421")
    assert client.transport.disconnecting


def test_directory_unavailable_is_451(users_file: Path) -> None:
    pytest.importorskip("ldap3")
    from exchmail.auth.ldap import LDAPChecker
    from exchmail.auth.ldapconfig import LDAPConfig

    checker = LDAPChecker(LDAPConfig(servers=("ldap://127.0.0.1:9",), base_dn="dc=x", connect_timeout=0.5))
    clock = Clock()
    context = make_context(LMTPSettings(), MemoryStore(), checker, clock)
    server = LMTPServer(context)
    transport = StringTransport()
    server.makeConnection(transport)
    server.dataReceived(b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\n")
    assert transport.value().splitlines()[-1].startswith(b"451 4.4.3")


def test_observers_see_an_lmtp_session(users_file: Path) -> None:
    recorder = Recorder()
    client = Client(users_file, observers=(recorder,))
    transaction(client, "alice")
    client.server.connectionLost(None)
    events = recorder.events
    assert events[0] == ("opened", "lmtp") and events[-1] == ("closed", None)
    assert ("<", "RCPT TO:<alice>") in events
    assert ("<", f"<message data: {len(MESSAGE)} octets>") in events
    assert ("done", ("RCPT", "250")) in events and ("done", ("DATA", "250")) in events
    assert any(
        kind == ">" and str(text).startswith("250 2.0.0 <alice@localhost> delivered") for kind, text in events
    )


def test_idle_sessions_hear_about_lmtp_deliveries(users_file: Path) -> None:
    from harness import Harness

    harness = Harness()
    imap = harness.imap()
    imap.line("a LOGIN alice pw")
    imap.line("b SELECT INBOX")
    assert imap.line("c IDLE").startswith(b"+ ")
    client = Client(users_file, store=harness.store)
    assert transaction(client, "alice")[-1].startswith(b"250 2.0.0")
    assert b"* 1 EXISTS" in imap.send()


def test_a_refused_data_keeps_the_transaction_open(users_file: Path) -> None:
    """DATA before any RCPT is refused (503), and the transaction goes on:
    the RCPT after it was answered 451 with an AssertionError logged, and
    every later one too, until RSET (found by fuzzing)."""
    client = Client(users_file)
    client.lines("LHLO x")
    replies = client.lines(
        "MAIL FROM:<a@example.com>", "DATA", "RCPT TO:<alice>", "MAIL FROM:<b@example.com>"
    )
    assert [r[:9] for r in replies] == [b"250 2.1.0", b"503 5.5.1", b"250 2.1.5", b"503 5.5.1"]
    assert client.send(b"DATA\r\n").startswith(b"354 ")
    assert client.send(MESSAGE + b".\r\n").startswith(b"250 2.0.0")
    (stored,) = client.messages("alice")
    assert stored.endswith(MESSAGE) and b"Return-Path: <a@example.com>" in stored


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("MAIL FROM:<a@b> FOO=bar", b"555 5.5.4 Unsupported parameter FOO"),
        ("MAIL FROM:<a@b> SMTPUTF8", b"555 5.5.4 Unsupported parameter SMTPUTF8"),
        ("MAIL FROM:<a@b> BODY=BINARYMIME", b"501 5.5.4"),
        ("MAIL FROM:<a@b> BODY=junk", b"501 5.5.4"),
        ("MAIL FROM:<a@b> SIZE=abc", b"501 5.5.4"),
        ("MAIL FROM:<a@b> SIZE", b"501 5.5.4"),
        ("MAIL FROM:<a@b> SIZE=999999999999", b"552 5.3.4"),
        ("MAIL FROM:<a@b> =x", b"501 5.5.4"),
    ],
)
def test_mail_parameters_not_announced_or_malformed_are_refused(
    users_file: Path, command: str, reply: bytes
) -> None:
    client = Client(users_file)
    client.lines("LHLO x")
    assert client.lines(command)[0].startswith(reply)
    # nothing started: a good MAIL is still the first of its transaction
    assert client.lines("MAIL FROM:<a@b> SIZE=100 BODY=8bitmime")[0].startswith(b"250 2.1.0")


def test_rcpt_takes_no_parameters_and_one_path(users_file: Path) -> None:
    client = Client(users_file)
    client.lines("LHLO x", "MAIL FROM:<a@b>")
    assert client.lines("RCPT TO:<alice> NOTIFY=NEVER")[0].startswith(b"555 5.5.4")
    assert client.lines("RCPT TO:<alice> <bob>")[0].startswith(b"501 5.5.4")
    assert client.lines("RCPT TO:<bob>")[0].startswith(b"250 2.1.5")
    assert client.send(b"DATA\r\n").startswith(b"354 ")
    assert client.send(MESSAGE + b".\r\n").startswith(b"250 2.0.0")
    assert len(client.messages("bob")) == 1 and client.messages("alice") == []


def test_vrfy_expn_help_and_arguments_where_none_belong(users_file: Path) -> None:
    """RFC 5321: VRFY is in the minimum set (252 when not verifying), EXPN is
    not implemented (502), and DATA, RSET and QUIT take no argument (501)."""
    client = Client(users_file)
    client.lines("LHLO x")
    assert client.lines("VRFY alice")[0].startswith(b"252 2.5.0")
    assert client.lines("EXPN list")[0].startswith(b"502 5.5.1")
    assert client.lines("HELP")[0].startswith(b"214 2.0.0")
    client.lines("MAIL FROM:<a@b>", "RCPT TO:<alice>")
    assert client.lines("DATA junk")[0].startswith(b"501 5.5.4")
    assert client.lines("RSET x")[0].startswith(b"501 5.5.4")
    assert client.lines("QUIT now")[0].startswith(b"501 5.5.4")
    assert not client.transport.disconnecting
    assert client.send(b"DATA\r\n").startswith(b"354 ")  # the transaction survived them
