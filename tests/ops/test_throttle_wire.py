"""The failed-login throttle measured on the wire, with clients on many 127.0.0.x addresses.

The issue measured that 40 failures from one address refused every account
behind it and 15 failures for one account locked it out from anywhere.
Blocks are now keyed on (account, address), with a separate, higher
budget per address; a correct password from an address without failures
gets in.  Budgets are small here so that the test is quick; delays are off.
"""

from __future__ import annotations

import socket

import pytest

from exchmail.auth.throttle import ThrottleSettings

SETTINGS = ThrottleSettings(
    pair_delay_after=0,
    pair_block_after=5,
    ip_delay_after=0,
    ip_block_after=20,
    account_delay_after=0,
    base_delay=0.0,
    max_delay=0.01,
    known_duration=0,
)


def login(port: int, source: str, user: str, password: str) -> bytes:
    """One connection from ``source``: the tagged answer to LOGIN."""
    with socket.create_connection(("127.0.0.1", port), timeout=15, source_address=(source, 0)) as s:
        f = s.makefile("rb")
        f.readline()  # greeting
        s.sendall(f'a LOGIN {user} "{password}"\r\n'.encode())
        for _ in range(20):  # bounded: untagged lines may come first
            line = f.readline()
            if line.startswith(b"a "):
                return line.split()[1]
        raise AssertionError("no tagged answer")


@pytest.fixture
def server(reactor_thread, tmp_path):
    from conftest import start_server

    try:
        with socket.create_connection(("127.0.0.1", 9), timeout=1, source_address=("127.0.0.66", 0)):
            pass
    except ConnectionRefusedError:
        pass  # 127.0.0.66 is usable as a source address
    except OSError as error:
        pytest.skip(f"cannot use 127.0.0.x source addresses here: {error}")
    running = start_server(tmp_path, config_changes={"throttle": SETTINGS})
    yield running
    running.stop()


def test_a_guesser_locks_out_only_its_own_address(server):
    from conftest import PASSWORD

    port = server.imap_port
    answers = [login(port, "127.0.0.66", "alice", "guess") for _ in range(5)]
    assert answers == [b"NO"] * 5
    assert login(port, "127.0.0.66", "alice", PASSWORD) == b"NO"  # blocked: pair budget
    assert login(port, "127.0.0.10", "alice", PASSWORD) == b"OK"  # the victim is not
    assert login(port, "127.0.0.66", "bob", PASSWORD) == b"OK"  # nor other accounts there


@pytest.mark.slow
def test_spraying_blocks_the_address_for_every_account_but_not_its_neighbours(server):
    from conftest import PASSWORD

    port = server.imap_port
    sprayed = [login(port, "127.0.0.77", f"user{n}", "guess") for n in range(20)]
    assert sprayed == [b"NO"] * 20
    assert login(port, "127.0.0.77", "bob", PASSWORD) == b"NO"  # the address budget
    assert login(port, "127.0.0.78", "bob", PASSWORD) == b"OK"


@pytest.mark.slow
def test_guessing_from_many_addresses_never_locks_the_account(server):
    from conftest import PASSWORD

    port = server.imap_port
    for n in range(100, 140):  # one guess each from 40 addresses
        assert login(port, f"127.0.0.{n}", "alice", "guess") == b"NO"
    assert login(port, "127.0.0.200", "alice", PASSWORD) == b"OK"
