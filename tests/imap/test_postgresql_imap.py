"""The imaplib and IMAPClient client tests, again on the PostgreSQL store.

A representative subset of tests/imap/test_clients_imaplib.py and
test_clients_imapclient.py (folders, APPEND/FETCH byte for byte, flags,
SEARCH, COPY, EXPUNGE, other sessions' changes, IDLE) runs unchanged against a
server whose store is a fresh database of the private cluster
(tests/conftest.py); the tests that check Maildir's own behaviour (stored
LF sizes, files dropped into new/, restarts over a data folder) stay there:
this store keeps messages in wire form, so its stored size *is* the exact
size, and the exchange2010 profile's RFC822.SIZE is exact on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FEATURES, RunningServer, postgresql_store_config, start_server
from test_clients_imapclient import (  # noqa: F401
    client,  # noqa: F401 - fixture
    test_folders_unicode,  # noqa: F401
    test_idle_check_sees_other_client_append,
    test_noop_sees_other_client_changes,
    test_uid_mode_operations,
)
from test_clients_imaplib import (  # noqa: F401
    imap,
    searchbox,
    test_append_and_fetch_byte_exact,
    test_append_literal_plus_and_binary_safe,
    test_appenduid_and_uidnext,
    test_body_sections,
    test_close_expunges_silently,
    test_create_nested_and_list,
    test_delete,
    test_envelope_and_bodystructure,
    test_examine_is_read_only,
    test_expunge_sequence_numbers,
    test_idle_pushes_exists,
    test_login_logout,
    test_no_expunge_during_fetch_store_search,
    test_other_connection_append_shows_exists,
    test_other_connection_expunge_shows_expunge,
    test_other_connection_flags_show_fetch,
    test_peek_does_not_set_seen_but_body_does,
    test_rename_inbox,
    test_rename_moves_children,
    test_search_basic,
    test_search_sets_and_uids,
    test_select_responses,
    test_status,
    test_store_flags,
    test_subscribe_lsub,
    test_uid_expunge_only_given_uids,
    test_uid_fetch_store_copy,
)


@pytest.fixture
def profile_overrides() -> dict[str, Any]:
    return FEATURES


@pytest.fixture
def server(
    reactor_thread: Any, tmp_path: Path, pg_dsn: str, profile_overrides: dict[str, Any]
) -> Iterator[RunningServer]:
    """A running server over the PostgreSQL store."""
    running = start_server(
        tmp_path, profile_overrides=profile_overrides, config_changes=postgresql_store_config(pg_dsn)
    )
    assert type(running.store).__name__ in ("PostgreSQLStore", "QuotaStore")
    yield running
    running.stop()
