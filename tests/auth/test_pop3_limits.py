"""POP3 connection limits: Set-PopSettings MaxConnections, MaxConnectionFromSingleIP,
MaxConnectionsPerUser (Exchange 2010: 2000/2000/16; 2007: 2000/20/10)."""

from __future__ import annotations

import poplib

import pytest
from conftest import PASSWORD, start_server

from exchmail.profile import load_profile


def test_pop3_limit_defaults():
    for name, expected in (("exchange2010", (2000, 2000, 16)), ("exchange2007", (2000, 20, 10))):
        pop3 = load_profile(name).pop3
        assert (
            pop3.max_connections,
            pop3.max_connection_from_single_ip,
            pop3.max_connections_per_user,
        ) == expected
    assert load_profile("exchange2010", {"pop3.MaxConnectionsPerUser": 3}).pop3.max_connections_per_user == 3


def connect(server) -> poplib.POP3:
    return poplib.POP3("127.0.0.1", server.pop3_port, timeout=10)


def test_pop3_per_user_limit_in_use(reactor_thread, tmp_path):
    server = start_server(tmp_path, profile_overrides={"pop3.max_connections_per_user": 1})
    try:
        first = connect(server)
        first.user("alice")
        first.pass_(PASSWORD)
        second = connect(server)
        second.user("alice")
        with pytest.raises(poplib.error_proto, match=r"-ERR \[IN-USE\]"):
            second.pass_(PASSWORD)
        third = connect(server)  # another user is unaffected
        third.user("bob")
        assert third.pass_(PASSWORD).startswith(b"+OK")
        assert first.stat() == (0, 0)  # the existing session goes on
        first.quit()
        second.user("alice")
        assert second.pass_(PASSWORD).startswith(b"+OK")  # freed by QUIT
        second.quit()
        third.quit()
    finally:
        server.stop()


@pytest.mark.parametrize("key", ["pop3.max_connections", "pop3.max_connection_from_single_ip"])
def test_pop3_total_and_per_ip_limits_sys_temp(reactor_thread, tmp_path, key):
    server = start_server(tmp_path, profile_overrides={key: 1})
    try:
        first = connect(server)
        with pytest.raises(poplib.error_proto, match=r"-ERR \[SYS/TEMP\] Too many connections"):
            connect(server)
        first.user("alice")
        assert first.pass_(PASSWORD).startswith(b"+OK")  # unaffected
        first.quit()
        again = connect(server)
        again.quit()
    finally:
        server.stop()
