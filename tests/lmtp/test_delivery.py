"""The store side of LMTP and ``exchmail deliver`` (exchmail.lmtp.delivery),
called directly: the reply for each failure, and the folder a detail picks."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from helpers import call
from twisted.logger import globalLogPublisher

from exchmail.errors import DirectoryUnavailable, MailboxExists
from exchmail.lmtp.delivery import Deliverer, Reply
from exchmail.lmtp.recipients import Recipient
from exchmail.store.maildir import MaildirStore
from exchmail.store.memory import MemoryStore

MESSAGE = b"Subject: lmtp\r\n\r\nhello\r\n"


class _Failing:
    """A store whose accounts cannot be opened, for the reason given."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def account(self, user: str) -> Any:
        raise self.error


def deliver(store: Any, user: str = "alice", detail: str = "", mode: str = "existing") -> Reply:
    recipient = Recipient(f"{user}+{detail}@example.org" if detail else f"{user}@example.org", user, detail)
    return call(Deliverer(store, mode).deliver, recipient, io.BytesIO(MESSAGE))


def test_failures_are_answered_never_raised() -> None:
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        bad_name = deliver(MemoryStore(), "../alice")
        down = deliver(_Failing(DirectoryUnavailable("ldap down")))
        bug = deliver(_Failing(KeyError("oops")))
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert bad_name == Reply(550, "5.1.1", "<../alice@example.org> no such mailbox")
    assert down == Reply(451, "4.4.3", "<alice@example.org> directory unavailable, try again later")
    assert bug == Reply(451, "4.3.0", "<alice@example.org> internal error, try again later")
    assert down.temporary and bug.temporary and not bad_name.temporary
    (logged,) = [e for e in events if "log_failure" in e]  # the internal error, with its traceback
    assert logged["address"] == "alice@example.org" and logged["log_failure"].check(KeyError)


def test_detail_folder_choice() -> None:
    store = MemoryStore()
    account = call(store.account, "alice")
    call(account.create, "Lists")
    assert deliver(store, detail="Lists").text == "<alice+Lists@example.org> delivered to Lists"
    assert deliver(store, detail="lists").text.endswith("delivered to Lists")  # any case
    assert deliver(store, detail="a//b", mode="create").text.endswith("delivered to INBOX")  # invalid name
    assert deliver(store, detail="Other").text.endswith("delivered to INBOX")  # "existing" only
    assert deliver(store, detail="Other", mode="create").text.endswith("delivered to Other")
    assert deliver(store, detail="Lists", mode="off").text.endswith("delivered to INBOX")


def test_folder_created_meanwhile_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore()
    account = call(store.account, "alice")
    create = account.create

    def other_session_first(name: str) -> Any:
        call(create, name)  # another delivery won the race
        raise MailboxExists(name)

    monkeypatch.setattr(account, "create", other_session_first)
    assert deliver(store, detail="News", mode="create").text.endswith("delivered to News")
    assert len(call(account.mailbox, "News").uids()) == 1


def test_folder_the_store_cannot_name_goes_to_inbox(tmp_path: Path) -> None:
    """A valid IMAP name the Maildir layout refuses (too long once encoded)."""
    store = MaildirStore(tmp_path / "mail")
    reply = deliver(store, detail="\u00e9" * 100, mode="create")
    assert reply.text.endswith("delivered to INBOX")
    assert call(call(store.account, "alice").list_mailboxes) == ["INBOX"]
