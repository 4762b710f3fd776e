"""POP3 conformance tests again, on the PostgreSQL store.

A representative subset of tests/pop3/test_pop3_conformance.py (RETR byte
for byte, UIDL = IMAP UID never reused, DELE+QUIT expunging with IMAP
learning it, IMAP flags beside POP3, large messages streamed) runs
unchanged against servers whose store is a fresh database of the private
cluster.  The stored-size tests stay Maildir's: this store's stored size
is the exact size.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer, postgresql_store_config, start_server
from test_pop3_conformance import (  # noqa: F401
    test_2_1_3_exchange_second_session_logs_in,
    test_2_1_4_2_1_5_exact_size_when_enabled,
    test_C0007_C0008_C0009_uidl_is_the_imap_uid_and_never_reused,
    test_C0010_same_login_failed_error_for_unknown_user_and_bad_password,
    test_C0011_raw_wire_is_stuffed_with_crlf,
    test_C0011_retr_is_byte_exact_with_imap_body,
    test_dele_quit_expunges_and_imap_learns_on_noop,
    test_imap_flags_do_not_disturb_pop3,
    test_large_message_streams_byte_exact,
)


@pytest.fixture
def running(reactor_thread: Any, tmp_path: Path, pg_dsn: str) -> Iterator[Any]:
    """Start servers over the PostgreSQL store (one database, as frontends would)."""
    servers: list[RunningServer] = []

    def start(**kwargs: Any) -> RunningServer:
        changes = {**postgresql_store_config(pg_dsn), **kwargs.pop("config_changes", {})}
        server = start_server(tmp_path / str(len(servers)), config_changes=changes, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
