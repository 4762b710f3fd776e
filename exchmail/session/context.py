"""SessionContext: everything a session needs from its service, given at construction.

A factory builds one context per service (IMAP, POP3) when the service is
assembled and hands it to every protocol instance it builds; nothing is
set on a protocol after construction.  All fields are plain values or
shared service objects; the profile is read from it at the start of each
command.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from exchmail.session.admission import ConnectionLimits

if TYPE_CHECKING:
    from twisted.cred.portal import Portal
    from twisted.internet.defer import Deferred

    from exchmail.auth.throttle import LoginThrottle
    from exchmail.profile import Profile
    from exchmail.session.faults import SessionFaults
    from exchmail.session.observe import SessionObserver
    from exchmail.tls.context import ServerTLS

#: ``run_blocking(f, *args)``: ``f(*args)`` off the reactor thread, as a Deferred.
RunBlocking = Callable[..., "Deferred[Any]"]


def run_inline(f: Callable[..., Any], *args: Any) -> Deferred[Any]:
    """A ``run_blocking`` that runs ``f`` at once (tests, in-memory stores)."""
    from twisted.internet.defer import maybeDeferred

    return maybeDeferred(f, *args)


@dataclass(frozen=True, eq=False)  # one service's: compared by identity
class SessionContext:
    """What every session of one service shares.

    :ivar protocol: ``"imap"`` or ``"pop3"`` (the realm's and the logs' name for it).
    :ivar profile: the conformance profile (read once per command).
    :ivar portal: logs users in; sessions ask it for ``IStoreAccount`` avatars.
    :ivar reactor: provides ``IReactorTime`` (``callLater``, ``seconds``).
    :ivar limits: the service's connection limits, shared by its sessions.
    :ivar mechanisms: SASL mechanism factories by name, in the offered order.
    :ivar tls: server TLS when configured (STARTTLS/STLS offered), else None.
    :ivar throttle: the failed-login throttle shared by all services, or None.
    :ivar run_blocking: runs CPU-heavy work (parsing large messages) off the
        reactor thread.
    :ivar observers: told of connections, commands and logins (protocol
        log, metrics).
    :ivar faults: fault injection for client tests (:mod:`exchmail.testing`),
        asked before each command; None (production) costs nothing.
    """

    protocol: str
    profile: Profile
    portal: Portal
    reactor: Any
    limits: ConnectionLimits = field(default_factory=lambda: ConnectionLimits(0, 0, 0))
    mechanisms: Mapping[bytes, Callable[[], Any]] = field(default_factory=dict)
    tls: ServerTLS | None = None
    throttle: LoginThrottle | None = None
    run_blocking: RunBlocking = run_inline
    observers: tuple[SessionObserver, ...] = ()
    #: Names locked for exclusive access, shared by the service's sessions
    #: (POP3 maildrops under RFC 1939 §4 locking).
    locks: set[str] = field(default_factory=set)
    #: Per-message data computed from content (structure, headers), shared
    #: by the service's sessions (an :class:`exchmail.mailbox.cache.MessageCache`).
    cache: Any = None
    faults: SessionFaults | None = None
