"""A hundred tests that each get a fresh server: the per-test start/stop cost.

Run ``pytest tests/test_overhead.py --exchmail-timings`` to see the median
time a server took to start and stop (exchmail's plugin reports it).
"""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("n", range(100))
def test_fresh_server(exchmail_server, n):
    exchmail_server.add_user(f"user{n}", "pw")
    assert exchmail_server.mailbox(f"user{n}") == []
