"""IMAPServer: Twisted's IMAP4Server, routed through exchmail's session core.

Twisted's :class:`~twisted.mail.imap4.IMAP4Server` gives the connection
life cycle and the timeout machinery (``TimeoutMixin``).  Its input path
(line/literal handling, argument parsers) and its command handlers cannot
express what exchmail needs -- whitespace-liberal parsing, LITERAL+,
bounded lines and literals, strictly serial processing, UIDPLUS, a shared
mailbox index, content work off the reactor thread, internal errors
answered ``NO [SERVERBUG]`` -- so this subclass forwards the connection's
events to an :class:`~exchmail.imap.session.IMAPSession` and Twisted's own
parsing and handlers are never used.
"""

from __future__ import annotations

from typing import Any

from twisted.mail import imap4
from twisted.python.failure import Failure

from exchmail.imap.session import IMAPSession
from exchmail.session.context import SessionContext


class IMAPServer(imap4.IMAP4Server):
    """The exchmail IMAP protocol; one instance per connection."""

    def __init__(self, context: SessionContext) -> None:
        super().__init__()
        self.context = context
        self.session = IMAPSession(self, context)

    def callLater(self, period: float, func: Any) -> Any:
        """TimeoutMixin's scheduler: the context's reactor, not the global one."""
        return self.context.reactor.callLater(period, func)

    def connectionMade(self) -> None:
        self.session.connection_made()

    def dataReceived(self, data: bytes) -> None:
        self.session.data_received(data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.session.connection_lost(reason)
        super().connectionLost(reason)

    def timeoutConnection(self) -> None:
        self.session.timed_out()
