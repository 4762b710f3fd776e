"""Protocol logging ([logging] protocol_log): what is written, and what never is.

In memory: sessions of tests/harness.py with a
:class:`~exchmail.session.protolog.ProtocolLogObserver` in their context,
and the service tree of :func:`~exchmail.service.make_service` on a
``task.Clock`` (never started: no sockets, no reactor thread).
"""

from __future__ import annotations

import base64
import csv
import io
from dataclasses import replace

from harness import Harness
from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from exchmail.imap.transcript import describe_command, summarize_literals
from exchmail.service import make_service
from exchmail.service.config import IMAPConfig, LoggingConfig, POP3Config, default_config, load_config
from exchmail.session.protolog import ProtocolLog, ProtocolLogObserver
from exchmail.session.reader import Command, LiteralSegment
from exchmail.store.memory import MemoryStore

PASSWORD = "hunter2-s3cret"
BODY = b"From: a@example.com\r\nSubject: secret body\r\n\r\n" + b"TOPSECRETBODY line\r\n" * 500 + b"\r\n"


def imap_command(*segments: bytes | LiteralSegment) -> str:
    return describe_command(Command(tuple(segments)))


def test_redaction_rules():
    assert imap_command(b"a LOGIN alice hunter2") == "a LOGIN alice ****"
    assert (
        imap_command(b"a login {5}", LiteralSegment(b"alice"), b" {7}", LiteralSegment(b"hunter2"), b"")
        == "a LOGIN alice ****"
    )
    assert imap_command(b"a AUTHENTICATE PLAIN AGFsaWNlAGh1bnRlcjI=") == "a AUTHENTICATE PLAIN ****"
    assert imap_command(b"a AUTHENTICATE PLAIN") == "a AUTHENTICATE PLAIN"
    assert (
        imap_command(b"a APPEND INBOX {5}", LiteralSegment(b"hello"), b"") == "a APPEND INBOX {5}<5 octets>"
    )
    pop3 = Harness().pop3().session

    def pop3_command(line: bytes) -> str:
        return pop3.describe_command(Command((line,)))

    assert pop3_command(b"PASS hunter2 with spaces") == "PASS ****"
    assert pop3_command(b"pass\thunter2") == "pass ****"
    assert pop3_command(b"AUTH PLAIN AGFsaWNlAGh1bnRlcjI=") == "AUTH PLAIN ****"
    assert pop3_command(b"USER alice") == "USER alice"
    assert summarize_literals(b"* 1 FETCH (BODY[] {5}\r\nhello)\r\n") == "* 1 FETCH (BODY[] {5}<5 octets>)"


def test_files_per_service_and_day(tmp_path):
    clock = Clock()
    clock.advance(86400 * 365)
    log = ProtocolLog(tmp_path, "imap", clock, flush_interval=1.0)
    session = log.session("0000000000000001", "127.0.0.1:143", "127.0.0.1:5000")
    session.received("a NOOP")
    clock.advance(1.0)  # the periodic flush
    first = log.path_for("19710101")
    assert first.exists() and "a NOOP" in first.read_text()
    clock.advance(86400)
    session.sent("a OK")
    log.close()
    assert "a OK" in log.path_for("19710102").read_text()


def read_rows(directory, service: str) -> list[list[str]]:
    rows = []
    for path in sorted(directory.glob(f"{service}-*.log")):
        lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
        rows.extend(csv.reader(io.StringIO("\n".join(lines))))
    return rows


def logged(tmp_path, service: str) -> tuple[Harness, ProtocolLog]:
    """A harness whose sessions write into a protocol log for ``service`` (one
    protocol per test: both protocols' contexts share the observer)."""
    users = InMemoryUsernamePasswordDatabaseDontUse()
    for user in ("alice", "bob"):
        users.addUser(user.encode(), PASSWORD.encode())
    clock = Clock()
    clock.advance(86400 * 365)
    log = ProtocolLog(tmp_path / "plogs", service, clock)
    harness = Harness(
        overrides={"imap.sasl_mechanisms": ["PLAIN", "LOGIN"]},
        checker=users,
        clock=clock,
        observers=(ProtocolLogObserver(log),),
    )
    return harness, log


def test_imap_session_log_redacts_secrets_and_bodies(tmp_path):
    harness, log = logged(tmp_path, "imap")
    imap = harness.imap()
    assert imap.login(password=PASSWORD).startswith(b"L1 OK")
    assert imap.line(b"a1 APPEND INBOX {%d}" % len(BODY)).startswith(b"+ ")
    assert imap.send(BODY + b"\r\n").startswith(b"a1 OK")
    assert b"a2 OK" in imap.line("a2 SELECT INBOX")
    assert b"TOPSECRETBODY" in imap.line("a3 FETCH 1 (BODY[])")
    imap.line("a4 LOGOUT")
    imap.close()
    secret = base64.b64encode(f"\0bob\0{PASSWORD}".encode())
    imap = harness.imap()
    assert imap.line("b1 AUTHENTICATE PLAIN") == b"+ \r\n"
    assert imap.line(secret) == b"b1 OK AUTHENTICATE completed.\r\n"
    imap.line("b2 LOGOUT")
    imap.close()
    imap = harness.imap()
    assert imap.line(b"c1 AUTHENTICATE PLAIN " + secret) == b"c1 OK AUTHENTICATE completed.\r\n"  # SASL-IR
    imap.line("c2 LOGOUT")
    imap.close()
    log.close()
    rows = read_rows(tmp_path / "plogs", "imap")
    text = "\n".join(",".join(row) for row in rows)
    assert PASSWORD not in text and "TOPSECRETBODY" not in text
    assert secret.decode() not in text
    data = [row[6] for row in rows]
    assert "L1 LOGIN alice ****" in data
    assert "c1 AUTHENTICATE PLAIN ****" in data  # SASL-IR
    assert "****" in data  # the client's response to AUTHENTICATE PLAIN's challenge
    size = len(BODY)
    assert f"a1 APPEND INBOX {{{size}}}<{size} octets>" in data
    assert any(f"BODY[] {{{size}}}<{size} octets>" in d for d in data)
    assert any(d.startswith("* OK The Microsoft Exchange IMAP4 service is ready.") for d in data)
    first = rows[0]
    assert first[5] == "+" and first[4] == "192.0.2.1:50000" and first[0].endswith("Z")
    assert {row[5] for row in rows} >= {"+", "-", "<", ">"}
    assert len({row[1] for row in rows}) == 3  # one session id per connection


def test_pop3_session_log_redacts_pass_auth_and_retr(tmp_path):
    harness, log = logged(tmp_path, "pop3")
    harness.deliver(BODY)
    pop = harness.pop3()
    assert pop.login(password=PASSWORD).startswith(b"+OK")
    assert b"TOPSECRETBODY" in pop.line("RETR 1")
    pop.line("QUIT")
    pop.close()
    pop = harness.pop3()
    secret = base64.b64encode(f"\0bob\0{PASSWORD}".encode())
    assert pop.line(b"AUTH PLAIN " + secret).startswith(b"+OK")
    pop.line("QUIT")
    pop.close()
    log.close()
    rows = read_rows(tmp_path / "plogs", "pop3")
    text = "\n".join(",".join(row) for row in rows)
    assert PASSWORD not in text and "TOPSECRETBODY" not in text
    assert secret.decode() not in text
    data = [row[6] for row in rows]
    assert "PASS ****" in data and "USER alice" in data and "AUTH PLAIN ****" in data
    assert any(d.startswith("<message data: ") and d.endswith(" octets>") for d in data)


def service_tree(tmp_path, logging: LoggingConfig | None = None):
    """The service tree for a config in ``tmp_path`` on a Clock, not started."""
    config = default_config(tmp_path)
    config = replace(
        config,
        imap=IMAPConfig(listen=("tcp:0:interface=127.0.0.1",)),
        pop3=POP3Config(listen=("tcp:0:interface=127.0.0.1",)),
        tls=None,
    )
    if logging is not None:
        config = replace(config, logging=logging)
    return make_service(config, reactor=Clock(), store=MemoryStore())


def imap_factory(top):
    (listener,) = [s for s in top if (s.name or "").startswith("imap:")]
    return listener.factory


def run_logout(factory) -> bytes:
    """One in-memory IMAP session of ``factory``: greeting, then LOGOUT."""
    transport = StringTransport()
    protocol = factory.buildProtocol(None)
    protocol.makeConnection(transport)
    protocol.dataReceived(b"z LOGOUT\r\n")
    protocol.connectionLost(None)
    return transport.value()


def test_protocol_log_off_by_default_and_config(tmp_path):
    path = tmp_path / "exchmail.toml"
    path.write_text("[server]\ndata_dir = 'data'\n")
    assert load_config(path).logging == LoggingConfig()
    path.write_text("[logging]\nprotocol_log = true\nprotocol_log_dir = 'logs'\n")
    config = load_config(path)
    assert config.logging.protocol_log and config.logging.protocol_log_dir == tmp_path / "logs"
    # Off by default: no observer in the sessions' context, and no file.
    top = service_tree(tmp_path / "plain")
    factory = imap_factory(top)
    assert not any(isinstance(o, ProtocolLogObserver) for o in factory.context.observers)
    assert b"z OK LOGOUT" in run_logout(factory)
    assert not (tmp_path / "plain" / "exchmail-data" / "protocol-logs").exists()
    # On: the service's sessions write the log, flushed when the service stops.
    top = service_tree(tmp_path / "on", LoggingConfig(protocol_log=True, protocol_log_dir=tmp_path / "logs"))
    assert b"z OK LOGOUT" in run_logout(imap_factory(top))
    top.getServiceNamed("protocol-log").stopService()
    data = [row[6] for row in read_rows(tmp_path / "logs", "imap")]
    assert "z LOGOUT" in data
