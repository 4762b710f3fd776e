"""STARTTLS (RFC 3501 §6.2.1, RFC 2595 §3.1).  Mixed into :class:`exchmail.imap.server.IMAPServer`.

The tagged OK is written in the clear; then every octet the client sent
after the STARTTLS line (and before the handshake) is thrown away, so
that no command can be injected into the TLS session from outside it,
and the TLS handshake starts.  Capabilities are re-evaluated after it:
STARTTLS and LOGINDISABLED go, AUTH=PLAIN comes (``login_type``).
"""

from __future__ import annotations

from typing import Any

from exchmail.imap.common import SessionBase
from exchmail.imap.parsing import ParseError, Token, expect_count


class TLSCommands(SessionBase):
    """STARTTLS and the switch to TLS after its OK."""

    #: An :class:`exchmail.tls.ServerTLS` (set by the factory) when TLS is configured.
    tls: Any = None
    _tls_pending = False

    def cmd_STARTTLS(self, tag: bytes, args: list[Token], uid: bool) -> bytes:
        expect_count(args, 0)
        if self.tls is None:
            raise ParseError("Unsupported command")
        if self.startedTLS:
            raise ParseError("STARTTLS not allowed: TLS is already active")
        self._tls_pending = True
        return b"Begin TLS negotiation now."

    def begin_pending_tls(self) -> None:
        """After STARTTLS's OK was flushed: drop pipelined input and start the handshake."""
        if not self._tls_pending:
            return
        self._tls_pending = False
        self._buffer = b""  # RFC 2595 §3.1 / CVE-2011-0411 class: no plaintext injection
        self.startedTLS = True
        self.transport.startTLS(self.tls)
