"""IMAPFactory: builds one :class:`~exchmail.imap.server.IMAPServer` per connection."""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import ServerFactory

from exchmail.imap.server import IMAPServer
from exchmail.session.context import SessionContext


class IMAPFactory(ServerFactory):
    """Hands every IMAP connection the service's :class:`SessionContext`.

    One factory serves every IMAP listener (STARTTLS and implicit TLS), so
    the connection limits of the context cover them all.
    """

    protocol = IMAPServer
    noisy = False

    def __init__(self, context: SessionContext) -> None:
        self.context = context

    def buildProtocol(self, addr: Any) -> IMAPServer:
        protocol = IMAPServer(self.context)
        protocol.factory = self
        return protocol
