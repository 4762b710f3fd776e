"""Helpers for mailsync's tests; the servers come from exchmail's pytest plugin
(turned on by ``-p exchmail`` in pyproject.toml)."""

from __future__ import annotations

import pytest
from mailsync import Account

PASSWORD = "correct horse"


def message(subject: str, body: str = "Hello") -> bytes:
    return (
        f"From: sender@example.org\r\nTo: alice@example.org\r\nSubject: {subject}\r\n\r\n{body}\r\n"
    ).encode()


@pytest.fixture
def alice(exchmail_server) -> Account:
    """alice's IMAP account on this test's server (plain IMAP)."""
    exchmail_server.add_user("alice", PASSWORD)
    return Account("127.0.0.1", exchmail_server.imap_port, "alice", PASSWORD)
