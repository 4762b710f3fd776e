"""Small helpers shared by the store tests (Deferreds that fire synchronously).

They live in :mod:`exchmail.testing` (with the store compliance kit) so that
backend authors can use them too; this module keeps the short import path.
"""

from __future__ import annotations

from exchmail.testing import Recorder, call, result

__all__ = ["Recorder", "call", "result"]


class IMAPSession:
    """One IMAPServer on a StringTransport with a Clock as its reactor, for
    protocol detail and timers without a real reactor.  Users: alice/pw, bob/pw2."""

    def __init__(self, profile_name: str = "exchange2010", overrides: dict | None = None) -> None:
        from twisted.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
        from twisted.cred.portal import Portal
        from twisted.internet.task import Clock
        from twisted.internet.testing import StringTransport

        from exchmail.auth.realm import MailRealm
        from exchmail.imap.server import IMAPServer
        from exchmail.profile import load_profile
        from exchmail.store.memory import MemoryStore

        self.profile = load_profile(profile_name, overrides)
        self.clock = Clock()
        checker = InMemoryUsernamePasswordDatabaseDontUse()
        checker.addUser(b"alice", b"pw")
        checker.addUser(b"bob", b"pw2")
        self.store = MemoryStore()
        self.proto = IMAPServer(self.profile, Portal(MailRealm(self.store), [checker]), self.clock)
        self.transport = StringTransport()
        self.proto.makeConnection(self.transport)

    def take(self) -> bytes:
        """Everything the server wrote since the last call."""
        value = self.transport.value()
        self.transport.clear()
        return value

    def send(self, *chunks: bytes) -> bytes:
        """Feed ``chunks`` one by one, let the clock run pending calls, return the output."""
        for chunk in chunks:
            self.proto.dataReceived(chunk)
        self.clock.advance(0)
        return self.take()

    def login(self) -> bytes:
        return self.send(b"L1 LOGIN alice pw\r\n")

    def close(self) -> None:
        if self.proto.state != "logout" and not self.transport.disconnecting:
            self.proto.connectionLost(None)
