"""Listening on endpoint strings, with failures told in one line.

A :class:`ListeningService` listens on one endpoint when the service tree
starts.  If the endpoint cannot listen (a port in use, an invalid port, a
port below 1024 without the privilege, an address this machine does not
have), :meth:`ListeningService.privilegedStartService` raises
:class:`ListenFailed`, whose message is one line such as
``cannot listen on 127.0.0.1:1143: address in use``; ``twistd exchmail``
prints it and exits with status 1 (:mod:`exchmail.service.tap`) instead of
running on without that listener.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from twisted.application import service
from twisted.internet import defer
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger(namespace="exchmail.service")

_REASONS = {
    errno.EADDRINUSE: "address in use",
    errno.EACCES: "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
    errno.EADDRNOTAVAIL: "this machine has no such address",
}


class ListenFailed(Exception):
    """An endpoint could not listen; the message is one line for the operator."""


def listen_error(description: str, error: BaseException) -> str:
    """``cannot listen on WHERE: REASON`` for ``error`` raised listening on ``description``."""
    where = description
    cause: BaseException | None = error
    if isinstance(error, CannotListenError):
        host = error.interface or "*"
        where = f"[{host}]:{error.port}" if ":" in host else f"{host}:{error.port}"
        cause = error.socketError
    number = getattr(cause, "errno", None)
    if number in _REASONS:
        reason = _REASONS[number]
    elif isinstance(number, int):
        reason = os.strerror(number).lower()
    elif isinstance(error, OverflowError):
        reason = "invalid port (must be 0-65535)"
    else:
        reason = str(cause or error) or type(error).__name__
    return f"cannot listen on {where}: {reason}"


class ListeningService(service.Service):
    """Listens on ``endpoint`` with ``factory`` while running.

    :param description: the endpoint string, for messages.
    :ivar port: the listening port once bound (else None).
    """

    def __init__(self, endpoint: Any, factory: Any, description: str = "") -> None:
        self.endpoint = endpoint
        self.factory = factory
        self.description = description
        self.port: Any = None
        self.error: ListenFailed | None = None
        self._pending: defer.Deferred[Any] | None = None
        self._starting = False
        self._waiters: list[defer.Deferred[Any]] = []

    @property
    def listening(self) -> defer.Deferred[Any]:
        """A new Deferred of the bound port (it fails with :class:`ListenFailed`)."""
        if self.port is not None:
            return defer.succeed(self.port)
        if self.error is not None:
            return defer.fail(self.error)
        d: defer.Deferred[Any] = defer.Deferred()
        self._waiters.append(d)
        return d

    def privilegedStartService(self) -> None:
        """Listen (as root under twistd); :raises ListenFailed: if the endpoint
        refused at once, as TCP and UNIX endpoints do."""
        super().privilegedStartService()
        if self._pending is not None or self.port is not None:
            return
        self._starting = True
        try:
            self._pending = defer.maybeDeferred(self.endpoint.listen, self.factory)
            self._pending.addCallbacks(self._bound, self._failed)
        finally:
            self._starting = False
        if self.error is not None:
            raise self.error

    def startService(self) -> None:
        super().startService()
        if self._pending is None:
            self.privilegedStartService()

    def _bound(self, port: Any) -> None:
        self._pending = None
        self.port = port
        self._tell(port)

    def _failed(self, failure: Failure) -> None:
        self._pending = None
        if failure.check(defer.CancelledError):
            return
        value = failure.value
        assert value is not None
        self.error = ListenFailed(listen_error(self.description, value))
        if not self._starting:  # later than privilegedStartService: nobody to raise to
            log.critical("exchmail: {error}", error=str(self.error))
        self._tell(Failure(self.error))

    def _tell(self, result: Any) -> None:
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(result)

    def stopService(self) -> defer.Deferred[None] | None:
        super().stopService()
        if self._pending is not None:
            self._pending.cancel()
        port, self.port = self.port, None
        return defer.maybeDeferred(port.stopListening) if port is not None else None
