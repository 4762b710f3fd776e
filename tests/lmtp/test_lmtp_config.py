"""The ``[lmtp]`` table, the service wiring, and the lmtp protocol log."""

from __future__ import annotations

import smtplib
from pathlib import Path
from typing import Any

import pytest
from conftest import in_reactor, start_server  # noqa: F401

from exchmail.errors import ConfigError
from exchmail.lmtp.settings import LMTPSettings
from exchmail.service.config import LoggingConfig, load_config


def config_with(tmp_path: Path, lmtp: str) -> Any:
    path = tmp_path / "exchmail.toml"
    path.write_text(f"[lmtp]\n{lmtp}\n")
    return load_config(path)


def test_lmtp_is_off_by_default(tmp_path: Path) -> None:
    assert config_with(tmp_path, "").lmtp == LMTPSettings()
    assert LMTPSettings().listen == ()


def test_lmtp_table(tmp_path: Path) -> None:
    lmtp = config_with(
        tmp_path,
        """
listen = ["unix:/run/exchmail/lmtp:mode=660", "tcp:24:interface=127.0.0.1"]
hostname = "mx.example.org"
domains = ["Example.org"]
recipient_delimiter = "-"
detail_folder = "create"
over_quota = 452
max_message_size = 2048
max_recipients = 10
timeout = 30""",
    ).lmtp
    assert lmtp == LMTPSettings(
        listen=("unix:/run/exchmail/lmtp:mode=660", "tcp:24:interface=127.0.0.1"),
        hostname="mx.example.org",
        domains=("example.org",),
        recipient_delimiter="-",
        detail_folder="create",
        over_quota=452,
        max_message_size=2048,
        max_recipients=10,
        timeout=30.0,
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("nope = 1", "lmtp.nope: unknown key"),
        ("over_quota = 451", "lmtp.over_quota: expected 552 or 452, got 451"),
        ('detail_folder = "folder"', "lmtp.detail_folder: unknown mode 'folder'"),
        ('recipient_delimiter = "@"', "lmtp.recipient_delimiter: expected one character"),
        ('listen = ["tcp:notaport"]', "lmtp.listen[0]: bad endpoint 'tcp:notaport'"),
        ("max_recipients = 0", "lmtp.max_recipients: expected an integer from 1"),
        ("timeout = -1", "lmtp.timeout: expected a positive number of seconds"),
    ],
)
def test_bad_lmtp_keys(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config_with(tmp_path, line)


def test_a_service_without_a_store_refuses_lmtp(tmp_path: Path) -> None:
    from dataclasses import replace

    from twisted.internet.task import Clock

    from exchmail.auth.realm import MailRealm
    from exchmail.service import make_service
    from exchmail.service.config import IMAPConfig, POP3Config, default_config
    from exchmail.store.memory import MemoryStore

    config = replace(
        default_config(tmp_path),
        tls=None,
        imap=IMAPConfig(listen=()),
        pop3=POP3Config(listen=()),
        lmtp=LMTPSettings(listen=("tcp:0:interface=127.0.0.1",)),
    )
    with pytest.raises(ConfigError, match="lmtp.listen: LMTP delivers into a store"):
        make_service(config, reactor=Clock(), realm=MailRealm(MemoryStore()))


def test_lmtp_protocol_log(reactor_thread: Any, tmp_path: Path) -> None:
    running = start_server(
        tmp_path,
        config_changes={
            "lmtp": LMTPSettings(listen=("tcp:0:interface=127.0.0.1",)),
            "logging": LoggingConfig(protocol_log=True),
        },
    )
    try:
        (tcp,) = [s for s in running.service if (s.name or "").startswith("lmtp:")]
        port = in_reactor(lambda: tcp.listening).getHost().port
        with smtplib.LMTP("127.0.0.1", port) as client:
            client.sendmail("a@example.com", ["alice@example.org"], b"Subject: x\r\n\r\nhi\r\n")
    finally:
        running.stop()
    (log,) = (running.data_dir / "protocol-logs").glob("lmtp-*.log")
    text = log.read_text()
    assert "#Log-type: LMTP Protocol Log" in text
    assert ",<,rcpt TO:<alice@example.org>" in text  # smtplib's spelling
    assert ",<,<message data: 18 octets>" in text
    assert ",>,250 2.0.0 <alice@example.org> delivered to INBOX" in text
