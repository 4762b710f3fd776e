"""The standalone ephemeral server (``exchmail serve --ephemeral``) for non-Python tests.

It runs one :class:`~exchmail.testing.server.ServerCore` on the reactor in
the main thread until SIGTERM, SIGINT or a ``stop`` request on its control
socket (:mod:`exchmail.testing.control`).  Once every port is bound it
prints one line of JSON on standard output (and writes it to the port file,
atomically, if asked)::

    {"host": "127.0.0.1", "imap_port": 40113, "pop3_port": 39551,
     "imaps_port": null, "pop3s_port": null, "ca_file": null,
     "control_socket": "/tmp/exchmail-serve-x1y2/control.sock", "pid": 4242,
     "profile": "exchange2010", "login_type": "PlainTextLogin", "store": "memory",
     "users": ["alice", "bob"]}

Everything it keeps is in memory or in its temporary folder (the control
socket, a Maildir with ``--store maildir``), removed on exit with the port
file.
"""

from __future__ import annotations

import json
import mailbox
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from twisted.internet import defer, endpoints
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    textFileLogObserver,
)

from exchmail.testing.control import ControlFactory, Controller
from exchmail.testing.server import ServerCore, to_wire


@dataclass(frozen=True)
class Options:
    """What ``exchmail serve --ephemeral`` was asked for."""

    users: Mapping[str, str] = field(default_factory=dict)
    profile: str = "exchange2010"
    login_type: str = "PlainTextLogin"
    tls: bool = False
    store: str = "memory"
    host: str = "127.0.0.1"
    seeds: Sequence[Path] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    port_file: Path | None = None
    verbose: bool = False


def read_mbox(path: Path) -> list[bytes]:
    """The messages of an mbox file, in wire form (CRLF), in file order.

    :raises OSError: if the file cannot be read.
    """
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    box = mailbox.mbox(path, create=False)
    try:
        return [to_wire(box.get_bytes(key)) for key in box.keys()]
    finally:
        box.close()


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see all of it or nothing."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


@defer.inlineCallbacks
def _seed(core: ServerCore, users: Iterable[str], messages: list[bytes]) -> Any:
    for user in users:
        for message in messages:
            yield core.deliver(user, message)


class Standalone:
    """One run of the standalone server (see the module docstring)."""

    def __init__(self, options: Options, reactor: Any, out: Any = None) -> None:
        self.options = options
        self.reactor = reactor
        self.out = out if out is not None else sys.stdout
        self.directory = Path(tempfile.mkdtemp(prefix="exchmail-serve-"))
        self.directory.chmod(0o700)
        self.core = ServerCore(
            profile=options.profile,
            tls=options.tls,
            login_type=options.login_type,
            settings=options.settings,
            store=options.store,
            host=options.host,
            users=options.users,
            reactor=reactor,
            temp_parent=self.directory,
        )
        self.control_path = self.directory / "control.sock"
        self.control_port: Any = None
        self.described: dict[str, Any] = {}
        self.failed = False

    @defer.inlineCallbacks
    def start(self) -> Any:
        """Start the server, seed it, open the control socket, announce the ports."""
        messages = [m for path in self.options.seeds for m in read_mbox(path)]
        yield self.core.start()
        yield _seed(self.core, self.core.users.names(), messages)
        controller = Controller(self.core, self.reactor.stop, self.reactor)
        endpoint = endpoints.UNIXServerEndpoint(self.reactor, str(self.control_path), mode=0o600)
        self.control_port = yield endpoint.listen(ControlFactory(controller))
        self.described = {
            **self.core.describe(),
            "control_socket": str(self.control_path),
            "pid": os.getpid(),
        }
        text = json.dumps(self.described)
        if self.options.port_file is not None:
            write_atomically(self.options.port_file, text + "\n")
        self.out.write(text + "\n")
        self.out.flush()

    @defer.inlineCallbacks
    def stop(self) -> Any:
        """Close the control socket and the server (a reactor shutdown trigger)."""
        if self.control_port is not None:
            yield defer.maybeDeferred(self.control_port.stopListening)
        yield self.core.stop()

    def clean_up(self) -> None:
        """Remove the temporary folder and the port file (after the reactor stopped)."""
        shutil.rmtree(self.directory, ignore_errors=True)
        port_file = self.options.port_file
        if port_file is not None and self.described:
            try:
                port_file.unlink()
            except OSError:
                pass


def _begin_logging(verbose: bool) -> None:
    level = LogLevel.info if verbose else LogLevel.warn
    observer = FilteringLogObserver(
        textFileLogObserver(sys.stderr), [LogLevelFilterPredicate(defaultLogLevel=level)]
    )
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


def run(options: Options) -> int:
    """Run the standalone server until SIGTERM/SIGINT or a ``stop`` request;
    the exit status is 0, or 1 if it could not start."""
    from twisted.internet import reactor as global_reactor

    reactor: Any = global_reactor
    _begin_logging(options.verbose)
    server = Standalone(options, reactor)

    def failed(failure: Any) -> None:
        server.failed = True
        print(f"exchmail: error: cannot start the server: {failure.getErrorMessage()}", file=sys.stderr)
        reactor.stop()

    def started() -> None:
        server.start().addErrback(failed)

    reactor.callWhenRunning(started)
    reactor.addSystemEventTrigger("before", "shutdown", server.stop)
    # A shell starts background jobs with SIGINT ignored, and the reactor
    # only handles SIGINT if Python's handler is in place: put it back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        reactor.run()  # SIGTERM and SIGINT stop it
    finally:
        server.clean_up()
    return 1 if server.failed else 0
