"""Shared fixtures: a reactor in a background thread and a running exchmail.

Tests talk to the real server over real loopback sockets with real
clients (imaplib, IMAPClient, curl); the reactor runs in a daemon thread
for the whole test session and each test starts its own service tree on
port 0.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import reactor
from twisted.internet.threads import blockingCallFromThread

from exchmail.auth.accounts import AccountsFile
from exchmail.config import IMAPConfig, default_config
from exchmail.service import listening_ports, make_service

PASSWORD = "secret pw"


@pytest.fixture(scope="session")
def reactor_thread() -> Iterator[Any]:
    """The global reactor, running in a daemon thread."""
    thread = threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False},
                              daemon=True)
    thread.start()
    yield reactor
    reactor.callFromThread(reactor.stop)
    thread.join(timeout=10)


def in_reactor(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``f`` on the reactor thread and wait for its (Deferred) result."""
    return blockingCallFromThread(reactor, f, *args, **kwargs)


@dataclass
class RunningServer:
    """A started exchmail service tree and how to reach it."""

    data_dir: Path
    imap_port: int
    service: Any
    store: Any

    def stop(self) -> None:
        in_reactor(self.service.stopService)


def start_server(tmp_path: Path, store: Any = None, profile_overrides: dict | None = None,
                 users: tuple[str, ...] = ("alice", "bob")) -> RunningServer:
    """Start a server with a Maildir store (or ``store``) on a port-0 loopback listener."""
    config = default_config(tmp_path)
    config = replace(config, imap=IMAPConfig(listen=("tcp:0:interface=127.0.0.1",)))
    if profile_overrides:
        from exchmail.profile import load_profile
        config = replace(config, profile=load_profile(config.server.profile, profile_overrides))
    config.server.data_dir.mkdir(parents=True, exist_ok=True)
    accounts = AccountsFile(config.auth.users_file)
    for user in users:
        accounts.add(user, PASSWORD)

    def start() -> Any:
        top = make_service(config, reactor=reactor, store=store)
        top.privilegedStartService()
        top.startService()
        return listening_ports(top).addCallback(lambda ports: (top, ports))

    top, ports = in_reactor(start)
    used_store = top.getServiceNamed("store").store
    return RunningServer(config.server.data_dir, ports[0].getHost().port, top, used_store)


@pytest.fixture
def server(reactor_thread: Any, tmp_path: Path) -> Iterator[RunningServer]:
    """A running server over a Maildir store in ``tmp_path``."""
    running = start_server(tmp_path)
    yield running
    running.stop()
