"""POP3Server: Twisted's POP3 protocol, routed through exchmail's session core.

Twisted's :class:`~twisted.mail.pop3.POP3` gives the connection life cycle
and the inactivity timer (``TimeoutMixin``).  Its input path
(``LineOnlyReceiver``: drops the connection on long lines, runs commands
while others are pending) and its ``do_*`` handlers (APOP, exception text
in ``-ERR`` lines) cannot express MS-STANXPOP3, so this subclass forwards
the connection's events to a :class:`~exchmail.pop3.session.POP3Session`
and Twisted's handlers are never dispatched to.
"""

from __future__ import annotations

from typing import Any

from twisted.mail import pop3
from twisted.python.failure import Failure

from exchmail.pop3.session import POP3Session
from exchmail.session.context import SessionContext


class POP3Server(pop3.POP3):
    """The exchmail POP3 protocol; one instance per connection."""

    magic = b""  # no APOP timestamp in the greeting (MS-STANXPOP3 V0012)

    def __init__(self, context: SessionContext) -> None:
        super().__init__()
        self.context = context
        self.session = POP3Session(self, context)

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
