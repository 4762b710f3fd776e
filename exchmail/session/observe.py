"""Session observers: what the protocol log, metrics and connection logs watch.

:class:`SessionInfo` describes one session to observers;
:class:`SessionObserver` is a do-nothing :class:`~exchmail.interfaces.ISessionObserver`
to subclass.  A session calls every observer of its context; the
``transcript`` texts are only built when some observer asks for them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from zope.interface import implementer

from exchmail.interfaces import ISessionObserver

_ids = itertools.count(1)


@dataclass(eq=False)
class SessionInfo:
    """One session as observers see it (mutable: ``user`` and ``secure`` change)."""

    protocol: str
    local: str
    remote: str
    session_id: str = field(default_factory=lambda: f"{next(_ids):016X}")
    user: str = ""
    secure: bool = False
    started: float = 0.0
    bytes_in: int = 0
    bytes_out: int = 0
    #: The negotiated TLS version (``"TLSv1.3"``), set when the connection ends.
    tls_version: str = ""
    #: Why the last login attempt failed (``"credentials"``, ``"blocked"``,
    #: ``"unavailable"``, ``"sessions"``), read by ``login_done`` observers.
    login_failure: str = ""


@implementer(ISessionObserver)
class SessionObserver:
    """An observer that ignores everything; override what you need."""

    transcript = False

    def session_opened(self, session: object) -> None:
        """Ignored."""

    def received(self, session: object, text: str) -> None:
        """Ignored."""

    def sent(self, session: object, text: str) -> None:
        """Ignored."""

    def command_done(self, session: object, name: str, status: str, seconds: float) -> None:
        """Ignored."""

    def login_done(self, session: object, user: str, mechanism: str, outcome: str) -> None:
        """Ignored."""

    def session_closed(self, session: object) -> None:
        """Ignored."""


def tls_version(transport: object) -> str:
    """The TLS version a finished handshake negotiated on ``transport`` (``""``:
    none, or not known).  Uses the public ``getHandle()``, which is the
    OpenSSL connection on TLS transports."""
    get_handle = getattr(transport, "getHandle", None)
    handle = get_handle() if get_handle is not None else None
    version = getattr(handle, "get_protocol_version_name", None)
    try:
        name = version() if version is not None else ""
    except Exception:  # noqa: BLE001 - a socket, or no handshake: no version
        return ""
    return name if isinstance(name, str) and name != "Unknown" else ""


def endpoint(address: object) -> str:
    """``host:port`` of a Twisted address (or ``""``)."""
    host, port = getattr(address, "host", ""), getattr(address, "port", "")
    return f"{host}:{port}" if host else ""
