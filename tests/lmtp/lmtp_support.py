"""A running exchmail with LMTP listeners, for the tests with real peers."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import RunningServer, in_reactor, start_server
from twisted.internet import defer

from exchmail.lmtp.settings import LMTPSettings


@dataclass
class LMTPServerUnderTest:
    """The running server, its LMTP port and socket."""

    running: RunningServer
    port: int
    socket: Path

    def messages(self, user: str, folder: str = "INBOX") -> list[bytes]:
        """The messages of ``user``'s ``folder``, in UID order (read on the reactor thread)."""

        @defer.inlineCallbacks
        def read() -> Any:
            account = yield self.running.store.account(user)
            box = yield account.mailbox(folder)
            yield box.refresh()
            found = []
            for uid in box.uids():
                found.append((yield box.read_message(uid)))
            return found

        return in_reactor(read)

    def sizes(self, user: str, folder: str = "INBOX") -> list[int]:
        """The exact sizes of ``user``'s messages (no content read)."""

        @defer.inlineCallbacks
        def read() -> Any:
            account = yield self.running.store.account(user)
            box = yield account.mailbox(folder)
            yield box.refresh()
            return [box.message(uid).exact_size for uid in box.uids()]

        return in_reactor(read)


def shared_folder() -> Path:
    """A temporary folder other users may enter (Postfix delivers as user postfix)."""
    path = Path(tempfile.mkdtemp(prefix="exchmail-lmtp-"))
    os.chmod(path, 0o755)
    return path


def start_lmtp(tmp_path: Path, socket_dir: Path, **settings: Any) -> LMTPServerUnderTest:
    """A server with LMTP on a loopback port and on ``socket_dir/lmtp``."""
    socket = socket_dir / "lmtp"
    listen = ("tcp:0:interface=127.0.0.1", f"unix:{socket}:mode=666")
    running = start_server(
        tmp_path,
        users=("alice", "bob", "carol"),
        config_changes={"lmtp": LMTPSettings(listen=listen, **settings)},
    )
    (tcp,) = [s for s in running.service if (s.name or "").startswith("lmtp:tcp")]
    port = in_reactor(lambda: tcp.listening).getHost().port
    return LMTPServerUnderTest(running, port, socket)


def lmtp_server(tmp_path: Path, **settings: Any) -> Iterator[LMTPServerUnderTest]:
    """Fixture body: start, yield, stop, remove the socket folder."""
    import shutil

    folder = shared_folder()
    server = start_lmtp(tmp_path, folder, **settings)
    try:
        yield server
    finally:
        server.running.stop()
        shutil.rmtree(folder, ignore_errors=True)
