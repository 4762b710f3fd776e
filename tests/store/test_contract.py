"""The IStore* contract of exchmail.interfaces, checked on the built-in backends.

The contract itself is the compliance kit :mod:`exchmail.testing.store_contract`;
the example SQLite store runs it in tests/examples/test_custom_realm.py, and
tests/store/test_threaded.py runs it on a Maildir store with a real thread pool.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.task import Clock

from exchmail.store.maildir import MaildirStore
from exchmail.store.memory import MemoryStore
from exchmail.testing.store_contract import StoreContract

RELEASE_AFTER = 300.0


def drop_into_maildir(folder: Path, name: str, message: bytes) -> None:
    """Deliver like an outside MDA: write in tmp/, rename into new/ (bare LF)."""
    tmp = folder / "tmp" / name
    tmp.write_bytes(message.replace(b"\r\n", b"\n"))
    tmp.rename(folder / "new" / name)


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Any:
        return MemoryStore()


class TestMaildirStore(StoreContract):
    """Synchronous disk work; a Clock drives polling and idle release."""

    release_after = RELEASE_AFTER

    @pytest.fixture
    def store(self, tmp_path: Path) -> Any:
        self.clock = Clock()
        store = MaildirStore(tmp_path / "mail", reactor=self.clock, watch="poll", release_after=RELEASE_AFTER)
        yield store
        store.close()

    def reopen(self, store: Any) -> Any:
        return MaildirStore(store.root)

    def outside_append(self, store: Any, user: str, mailbox: str, message: bytes) -> bool:
        folder = store.root / user  # INBOX: the user's maildir itself
        assert mailbox == "INBOX"
        drop_into_maildir(folder, f"1700000000.M1P{os.getpid()}Q1.outside", message)
        return True

    def advance(self, store: Any, seconds: float) -> None:
        self.clock.advance(seconds)
