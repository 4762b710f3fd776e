"""POP3Factory: builds one :class:`~exchmail.pop3.server.POP3Server` per connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.protocol import ServerFactory

from exchmail.auth import sasl
from exchmail.pop3.server import POP3Server
from exchmail.profile import Profile
from exchmail.session.admission import Admission, ConnectionLimits


class POP3Factory(ServerFactory):
    """Holds what every POP3 session shares: portal, profile, policy, reactor, locks.

    ``locks`` holds the (lower-case) names of the maildrops locked by a
    session when the profile asks for RFC 1939 exclusive access
    (``pop3.exclusive_lock``); one factory serves every POP3 listener, so
    the lock covers all of them.
    """

    protocol = POP3Server
    #: An :class:`exchmail.tls.ServerTLS` when TLS is configured (STARTTLS/STLS offered).
    tls: Any = None

    def __init__(self, portal: Any, profile: Profile, reactor: Any,
                 login_type: str = "PlainTextLogin",
                 challengers: dict[bytes, Callable[[], Any]] | None = None) -> None:
        self.portal = portal
        self.profile = profile
        self.reactor = reactor
        self.login_type = login_type
        self.challengers: dict[bytes, Callable[[], Any]] = (
            challengers if challengers is not None
            else sasl.challengers(profile.pop3.sasl_mechanisms, portal))
        pop = profile.pop3
        self.limits = ConnectionLimits(pop.max_connections, pop.max_connection_from_single_ip,
                                       pop.max_connections_per_user)
        self.locks: set[str] = set()

    #: A :class:`exchmail.auth.throttle.LoginThrottle` shared with IMAP, or None.
    throttle: Any = None
    #: An :class:`exchmail.session.protolog.ProtocolLog` when protocol logging is on.
    protocol_log: Any = None

    def buildProtocol(self, addr: Any) -> POP3Server:
        cls = POP3Server
        if self.protocol_log is not None:
            from exchmail.pop3.logging_server import LoggingPOP3Server

            cls = LoggingPOP3Server
        protocol = cls(self.profile, self.portal, self.reactor,
                       challengers=self.challengers, locks=self.locks)
        if self.protocol_log is not None:
            protocol.protocol_log = self.protocol_log  # type: ignore[attr-defined]
        protocol.admission = Admission(self.limits)
        protocol.throttle = self.throttle
        protocol.factory = self
        protocol.login_type = self.login_type
        protocol.tls = self.tls
        return protocol
