"""POP3Factory: builds one :class:`~exchmail.pop3.server.POP3Server` per connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.protocol import ServerFactory
from twisted.mail import imap4

from exchmail.pop3.server import POP3Server
from exchmail.profile import Profile


class POP3Factory(ServerFactory):
    """Holds what every POP3 session shares: portal, profile, policy, reactor, locks.

    ``locks`` holds the (lower-case) names of the maildrops locked by a
    session when the profile asks for RFC 1939 exclusive access
    (``pop3.exclusive_lock``); one factory serves every POP3 listener, so
    the lock covers all of them.
    """

    protocol = POP3Server

    def __init__(self, portal: Any, profile: Profile, reactor: Any,
                 login_type: str = "PlainTextLogin",
                 challengers: dict[bytes, Callable[[], Any]] | None = None) -> None:
        self.portal = portal
        self.profile = profile
        self.reactor = reactor
        self.login_type = login_type
        self.challengers: dict[bytes, Callable[[], Any]] = (
            challengers if challengers is not None else {b"PLAIN": imap4.PLAINCredentials})
        self.locks: set[str] = set()

    def buildProtocol(self, addr: Any) -> POP3Server:
        protocol = POP3Server(self.profile, self.portal, self.reactor,
                              challengers=self.challengers, locks=self.locks)
        protocol.factory = self
        protocol.login_type = self.login_type
        return protocol
