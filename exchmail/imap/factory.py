"""IMAPFactory: builds one :class:`~exchmail.imap.server.IMAPServer` per connection."""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import ServerFactory

from exchmail.imap.server import IMAPServer
from exchmail.profile import Profile
from exchmail.session.admission import Admission, ConnectionLimits


class IMAPFactory(ServerFactory):
    """Holds what every IMAP session shares: portal, profile, policy, reactor."""

    protocol = IMAPServer
    #: An :class:`exchmail.tls.ServerTLS` when TLS is configured (STARTTLS/STLS offered).
    tls: Any = None

    def __init__(self, portal: Any, profile: Profile, reactor: Any,
                 login_type: str = "PlainTextLogin", idle_poll_interval: float = 5.0) -> None:
        self.portal = portal
        self.profile = profile
        self.reactor = reactor
        self.login_type = login_type
        self.idle_poll_interval = idle_poll_interval
        imap = profile.imap
        self.limits = ConnectionLimits(imap.max_connections, imap.max_connection_from_single_ip,
                                       imap.max_connections_per_user)

    #: A :class:`exchmail.auth.throttle.LoginThrottle` shared with POP3, or None.
    throttle: Any = None
    #: An :class:`exchmail.session.protolog.ProtocolLog` when protocol logging is on.
    protocol_log: Any = None

    def buildProtocol(self, addr: Any) -> IMAPServer:
        if self.protocol_log is not None:
            from exchmail.imap.logging_server import LoggingIMAPServer

            logging = LoggingIMAPServer(self.profile, self.portal, self.reactor)
            logging.protocol_log = self.protocol_log
            protocol: IMAPServer = logging
        else:
            protocol = IMAPServer(self.profile, self.portal, self.reactor)
        protocol.throttle = self.throttle
        protocol.factory = self
        protocol.login_type = self.login_type
        protocol.tls = self.tls
        protocol.idle_poll_interval = self.idle_poll_interval
        protocol.admission = Admission(self.limits)
        return protocol
