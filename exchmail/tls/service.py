"""TLSService: owns the server's TLS and reloads its certificates on SIGHUP."""

from __future__ import annotations

import signal
import threading
from typing import Any

from twisted.application.service import Service
from twisted.logger import Logger

from exchmail.errors import ConfigError
from exchmail.tls.context import ServerTLS


class TLSService(Service):
    """Owns the :class:`ServerTLS` of a service tree; reloads it on SIGHUP.

    The signal handler is installed by :meth:`startService` when that runs
    on the main thread (``twistd``); embedders and tests call
    :meth:`reload` themselves.  Sessions keep the certificate they started
    with; new connections get the reloaded one.
    """

    name = "tls"
    log = Logger(namespace="exchmail.tls")

    def __init__(self, tls: ServerTLS, reactor: Any) -> None:
        self.tls = tls
        self.reactor = reactor
        self._previous_handler: Any = None
        self._installed = False

    def reload(self) -> bool:
        """Read the certificate files again; True on success (a failure is logged and kept out)."""
        try:
            self.tls.reload()
        except ConfigError as error:
            self.log.error("TLS reload failed; keeping the current certificates: {error}", error=str(error))
            return False
        self.log.info("TLS certificates reloaded from {path}", path=str(self.tls.config.identity.certificate))
        return True

    def _on_sighup(self, signum: int, frame: Any) -> None:
        self.reactor.callFromThread(self.reload)

    def startService(self) -> None:
        super().startService()
        if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGHUP, self._on_sighup)
            self._installed = True

    def stopService(self) -> Any:
        if self._installed:
            signal.signal(signal.SIGHUP, self._previous_handler or signal.SIG_DFL)
            self._installed = False
        return super().stopService()
