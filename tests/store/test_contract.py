"""The IStore* contract of exchmail.interfaces, checked on the built-in backends.

The contract itself is the compliance kit :mod:`exchmail.testing.store_contract`;
the example SQLite store runs it in tests/examples/test_custom_realm.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exchmail.store.maildir import MaildirStore
from exchmail.store.memory import MemoryStore
from exchmail.testing.store_contract import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> Any:
        return MemoryStore()


class TestMaildirStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Any:
        return MaildirStore(tmp_path / "mail")
