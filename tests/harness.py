"""In-memory protocol sessions: the real protocol classes on a StringTransport,
with a task.Clock as their reactor and an in-memory store.

Protocol detail is tested here, fast and deterministic; the loopback tests
with real clients cover the sockets.  Users: alice/pw and bob/pw2.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from twisted.cred.portal import Portal
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from exchmail.auth.realm import MailRealm
from exchmail.auth.sasl import challengers
from exchmail.imap.server import IMAPServer
from exchmail.mailbox.cache import MessageCache
from exchmail.pop3.server import POP3Server
from exchmail.profile import load_profile
from exchmail.session.admission import ConnectionLimits
from exchmail.session.context import SessionContext
from exchmail.store.memory import MemoryStore

USERS = {"alice": "pw", "bob": "pw2"}


class Harness:
    """A server's worth of shared state: profile, store, portal, clock, contexts.

    :param overrides: profile overrides (as ``[profile]`` takes them).
    :param checker: a credentials checker (default: ``USERS`` in memory).
    :param clock: the reactor (default: a new ``task.Clock``), for objects made
        before the harness that need it too (a protocol log).
    :param context: extra :class:`SessionContext` fields for both protocols.
    """

    def __init__(
        self,
        profile: str = "exchange2010",
        overrides: Mapping[str, Any] | None = None,
        store: Any = None,
        checker: Any = None,
        clock: Clock | None = None,
        **context: Any,
    ) -> None:
        overrides = {"login_type": "PlainTextLogin", **(overrides or {})}
        self.profile = load_profile(profile, overrides)
        self.clock = clock if clock is not None else Clock()
        self.store = store if store is not None else MemoryStore()
        if checker is None:
            checker = InMemoryUsernamePasswordDatabaseDontUse()
            for user, password in USERS.items():
                checker.addUser(user.encode(), password.encode())
        self.portal = Portal(MailRealm(self.store), [checker])
        cache = MessageCache()
        self.contexts = {}
        for name in ("imap", "pop3"):
            settings = getattr(self.profile, name)
            fields = {
                "limits": ConnectionLimits(
                    settings.max_connections,
                    settings.max_connection_from_single_ip,
                    settings.max_connections_per_user,
                ),
                "mechanisms": challengers(settings.sasl_mechanisms, self.portal),
                "cache": cache,
                **context,
            }
            self.contexts[name] = SessionContext(name, self.profile, self.portal, self.clock, **fields)

    def imap(self, host: str = "192.0.2.1") -> Connection:
        """A new IMAP connection (the greeting is read already)."""
        return Connection(IMAPServer(self.contexts["imap"]), self.clock, host)

    def pop3(self, host: str = "192.0.2.1") -> Connection:
        """A new POP3 connection (the greeting is read already)."""
        return Connection(POP3Server(self.contexts["pop3"]), self.clock, host)

    def account(self, user: str = "alice") -> Any:
        return _fired(self.store.account(user))

    def mailbox(self, user: str = "alice", name: str = "INBOX") -> Any:
        return _fired(self.account(user).mailbox(name))

    def deliver(
        self,
        message: bytes,
        user: str = "alice",
        name: str = "INBOX",
        flags: frozenset[str] = frozenset(),
        date: float | None = None,
    ) -> int:
        return _fired(self.mailbox(user, name).append(message, flags, date))


class Connection:
    """One protocol instance on a StringTransport."""

    def __init__(self, server: Any, clock: Clock, host: str) -> None:
        self.server = server
        self.session = server.session
        self.clock = clock
        self.transport = StringTransport(peerAddress=_address(host))
        server.makeConnection(self.transport)
        self.greeting = self.take()

    def take(self) -> bytes:
        """Everything the server wrote since the last call."""
        value = self.transport.value()
        self.transport.clear()
        return value

    def send(self, *chunks: bytes) -> bytes:
        """Feed ``chunks`` one by one, run what is due now, return the output."""
        for chunk in chunks:
            self.server.dataReceived(chunk)
            self.clock.advance(0)
        for _ in range(100):  # callLater(0) chains: pipelined commands, batches
            if not self.clock.getDelayedCalls() or all(
                c.getTime() > self.clock.seconds() for c in self.clock.getDelayedCalls()
            ):
                break
            self.clock.advance(0)
        return self.take()

    def line(self, text: str | bytes) -> bytes:
        """Send one line (CRLF added); return the output."""
        data = text.encode() if isinstance(text, str) else text
        return self.send(data + b"\r\n")

    def login(self, user: str = "alice", password: str | None = None) -> bytes:
        """Log in with a password (IMAP: ``L1 LOGIN``; POP3: ``USER`` and ``PASS``);
        return the answer to the last command.  ``password`` defaults to ``USERS[user]``."""
        secret = USERS[user] if password is None else password
        if self.session.context.protocol == "pop3":
            self.line(f"USER {user}")
            return self.line(f"PASS {secret}")
        quoted = f'"{secret}"' if " " in secret else secret
        return self.line(f"L1 LOGIN {user} {quoted}")

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting)

    def close(self) -> None:
        if not self.transport.disconnecting:
            self.transport.loseConnection()
        self.server.connectionLost(None)


def _address(host: str) -> Any:
    from twisted.internet.address import IPv4Address

    return IPv4Address("TCP", host, 50000)


def _fired(value: Any) -> Any:
    from twisted.internet.defer import Deferred

    from exchmail.testing import result

    return result(value) if isinstance(value, Deferred) else value
