"""The test servers of exchmail.testing run on the reactor thread of tests/conftest.py.

exchmail.testing starts the global reactor in a thread on first use unless
it runs already; starting tests/conftest.py's ``reactor_thread`` first keeps
one owner of the reactor for the whole test session.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _shared_reactor(reactor_thread: Any) -> None:
    """Every test here runs with the suite's reactor thread started."""
