"""Small helpers for the transports the protocols run on."""

from __future__ import annotations

from typing import Any


def enable_nodelay(transport: Any) -> None:
    """Set TCP_NODELAY where the transport has it (TCP, TLS over TCP).

    Twisted leaves Nagle's algorithm on; with delayed ACKs on the client a
    multi-line reply written in pieces then waits ~40 ms per exchange.
    """
    set_nodelay = getattr(transport, "setTcpNoDelay", None)
    if set_nodelay is not None:
        try:
            set_nodelay(True)
        except OSError:
            pass  # e.g. the connection is already gone
