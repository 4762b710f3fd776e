"""IMAPFactory: builds one :class:`~exchmail.imap.server.IMAPServer` per connection."""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import ServerFactory

from exchmail.imap.server import IMAPServer
from exchmail.limits import ConnectionLimits
from exchmail.profile import Profile


class IMAPFactory(ServerFactory):
    """Holds what every IMAP session shares: portal, profile, policy, reactor."""

    protocol = IMAPServer

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

    def buildProtocol(self, addr: Any) -> IMAPServer:
        protocol = IMAPServer(self.profile, self.portal, self.reactor)
        protocol.factory = self
        protocol.login_type = self.login_type
        protocol.idle_poll_interval = self.idle_poll_interval
        protocol.limits = self.limits
        return protocol
