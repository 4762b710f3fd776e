"""Connection limits: MaxConnections, MaxConnectionFromSingleIP, MaxConnectionsPerUser."""

import imaplib
import socket

import pytest
from conftest import PASSWORD, start_server

from exchmail.session.admission import ConnectionLimits


def test_limits_count_and_release():
    limits = ConnectionLimits(total=3, per_ip=2, per_user=1)
    assert limits.admit("a") is None and limits.admit("a") is None
    assert limits.admit("a") == "Too many connections from your address"
    assert limits.admit("b") is None
    assert limits.admit("c") == "Too many connections to the server"
    limits.release("a")
    assert limits.admit("c") is None
    assert limits.admit_user("u") and not limits.admit_user("u")
    limits.release_user("u")
    assert limits.admit_user("u")


def test_zero_means_no_limit():
    limits = ConnectionLimits(0, 0, 0)
    assert all(limits.admit("a") is None for _ in range(100))
    assert all(limits.admit_user("u") for _ in range(100))


@pytest.fixture
def limited(reactor_thread, tmp_path):
    running = start_server(
        tmp_path, profile_overrides={"max_connection_from_single_ip": 2, "max_connections_per_user": 1}
    )
    yield running
    running.stop()


def test_imap_connection_limits_per_ip_and_per_user(limited):
    first = imaplib.IMAP4("127.0.0.1", limited.imap_port, timeout=10)
    second = imaplib.IMAP4("127.0.0.1", limited.imap_port, timeout=10)
    with socket.create_connection(("127.0.0.1", limited.imap_port), timeout=10) as third:
        line = third.makefile("rb").readline()
        assert line.startswith(b"* BYE [UNAVAILABLE] Too many connections from your address")
    # Existing sessions are unaffected; one session per user is allowed.
    assert first.login("alice", PASSWORD)[0] == "OK"
    with pytest.raises(imaplib.IMAP4.error, match="Too many sessions"):
        second.login("alice", PASSWORD)
    assert second.login("bob", PASSWORD)[0] == "OK"
    first.logout()
    # The closed session's slots are free again.
    again = imaplib.IMAP4("127.0.0.1", limited.imap_port, timeout=10)
    assert again.login("alice", PASSWORD)[0] == "OK"
    again.logout()
    second.logout()
