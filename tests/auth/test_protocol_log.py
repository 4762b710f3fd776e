"""Protocol logging ([logging] protocol_log): what is written, and what never is."""

from __future__ import annotations

import base64
import csv
import imaplib
import io
import poplib

import pytest
from conftest import PASSWORD, start_server
from twisted.internet.task import Clock

from exchmail.imap.parsing import LiteralSegment
from exchmail.service.config import LoggingConfig, load_config
from exchmail.session.protolog import ProtocolLog, imap_command, pop3_command, summarize_literals

BODY = b"From: a@example.com\r\nSubject: secret body\r\n\r\n" + b"TOPSECRETBODY line\r\n" * 500 + b"\r\n"


def test_redaction_rules():
    assert imap_command([b"a LOGIN alice hunter2"]) == "a LOGIN alice ****"
    assert imap_command([b"a login {5}", LiteralSegment(b"alice"), b" {7}",
                         LiteralSegment(b"hunter2"), b""]) == "a LOGIN alice ****"
    assert imap_command([b"a AUTHENTICATE PLAIN AGFsaWNlAGh1bnRlcjI="]) == \
        "a AUTHENTICATE PLAIN ****"
    assert imap_command([b"a AUTHENTICATE PLAIN"]) == "a AUTHENTICATE PLAIN"
    assert imap_command([b"a APPEND INBOX {5}", LiteralSegment(b"hello"), b""]) == \
        "a APPEND INBOX {5}<5 octets>"
    assert pop3_command(b"PASS hunter2 with spaces") == "PASS ****"
    assert pop3_command(b"pass\thunter2") == "pass ****"
    assert pop3_command(b"AUTH PLAIN AGFsaWNlAGh1bnRlcjI=") == "AUTH PLAIN ****"
    assert pop3_command(b"USER alice") == "USER alice"
    assert summarize_literals(b"* 1 FETCH (BODY[] {5}\r\nhello)\r\n") == \
        "* 1 FETCH (BODY[] {5}<5 octets>)"


def test_files_per_service_and_day(tmp_path):
    clock = Clock()
    clock.advance(86400 * 365)
    log = ProtocolLog(tmp_path, "imap", clock, flush_interval=1.0)
    session = log.session("127.0.0.1:143", "127.0.0.1:5000")
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


@pytest.fixture
def logged_server(reactor_thread, tmp_path):
    server = start_server(tmp_path, config_changes={
        "logging": LoggingConfig(protocol_log=True, protocol_log_dir=tmp_path / "plogs")},
        profile_overrides={"imap.sasl_mechanisms": ["PLAIN", "LOGIN"]})
    yield server, tmp_path / "plogs"
    if server.service.running:  # the tests stop it themselves, to flush the logs
        server.stop()


def test_imap_session_log_redacts_secrets_and_bodies(logged_server):
    server, directory = logged_server
    imap = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
    imap.login("alice", PASSWORD)
    imap.append("INBOX", None, None, BODY)
    imap.select("INBOX")
    imap.fetch("1", "(BODY[])")
    imap.logout()
    imap = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
    imap.authenticate("PLAIN", lambda _: f"\0bob\0{PASSWORD}".encode())
    imap.logout()
    imap = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
    imap._simple_command("AUTHENTICATE", "PLAIN",  # SASL-IR
                         base64.b64encode(f"\0bob\0{PASSWORD}".encode()).decode())
    imap.logout()
    server.stop()  # flushes the logs
    rows = read_rows(directory, "imap")
    text = "\n".join(",".join(row) for row in rows)
    assert PASSWORD not in text and "TOPSECRETBODY" not in text
    secret_b64 = base64.b64encode(f"\0bob\0{PASSWORD}".encode()).decode()
    assert secret_b64 not in text
    data = [row[6] for row in rows]
    assert any(d.endswith(" LOGIN alice ****") for d in data)
    assert any(d.endswith(" AUTHENTICATE PLAIN ****") for d in data)  # SASL-IR
    assert "****" in data  # the continuation response of AUTHENTICATE PLAIN
    size = len(BODY)
    assert any(f"APPEND INBOX {{{size}}}<{size} octets>" in d for d in data)
    assert any(f"BODY[] {{{size}}}<{size} octets>" in d for d in data)
    assert any(d.startswith("* OK The Microsoft Exchange IMAP4 service is ready.") for d in data)
    first = rows[0]
    assert first[5] == "+" and first[4].startswith("127.0.0.1:") and first[0].endswith("Z")
    assert {row[5] for row in rows} >= {"+", "-", "<", ">"}


def test_pop3_session_log_redacts_pass_auth_and_retr(logged_server):
    server, directory = logged_server
    imap = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
    imap.login("alice", PASSWORD)
    imap.append("INBOX", None, None, BODY)
    imap.logout()
    pop = poplib.POP3("127.0.0.1", server.pop3_port, timeout=10)
    pop.user("alice")
    pop.pass_(PASSWORD)
    pop.retr(1)
    pop.quit()
    pop = poplib.POP3("127.0.0.1", server.pop3_port, timeout=10)
    pop._shortcmd("AUTH PLAIN " + base64.b64encode(f"\0bob\0{PASSWORD}".encode()).decode())
    pop.quit()
    server.stop()
    rows = read_rows(directory, "pop3")
    text = "\n".join(",".join(row) for row in rows)
    assert PASSWORD not in text and "TOPSECRETBODY" not in text
    data = [row[6] for row in rows]
    assert "PASS ****" in data and "USER alice" in data and "AUTH PLAIN ****" in data
    assert any(d.startswith("<message data: ") and d.endswith(" octets>") for d in data)


def test_protocol_log_off_by_default_and_config(tmp_path, reactor_thread):
    path = tmp_path / "exchmail.toml"
    path.write_text("[server]\ndata_dir = 'data'\n")
    assert load_config(path).logging == LoggingConfig()
    path.write_text("[logging]\nprotocol_log = true\nprotocol_log_dir = 'logs'\n")
    config = load_config(path)
    assert config.logging.protocol_log and config.logging.protocol_log_dir == tmp_path / "logs"
    server = start_server(tmp_path / "plain")
    try:
        imap = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
        imap.logout()
    finally:
        server.stop()
    assert not (tmp_path / "plain" / "exchmail-data" / "protocol-logs").exists()
