"""POP3Factory: builds one :class:`~exchmail.pop3.server.POP3Server` per connection."""

from __future__ import annotations

from typing import Any

from twisted.internet.protocol import ServerFactory

from exchmail.pop3.server import POP3Server
from exchmail.session.context import SessionContext


class POP3Factory(ServerFactory):
    """Hands every POP3 connection the service's :class:`SessionContext`.

    One factory serves every POP3 listener (plain and implicit TLS), so the
    connection limits and maildrop locks of the context cover them all.
    """

    protocol = POP3Server  # type: ignore[assignment]
    noisy = False

    def __init__(self, context: SessionContext) -> None:
        self.context = context

    def buildProtocol(self, addr: Any) -> POP3Server:  # type: ignore[override]
        protocol = POP3Server(self.context)
        protocol.factory = self  # type: ignore[assignment]
        return protocol
