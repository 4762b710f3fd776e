"""What :func:`~exchmail.service.build.make_service` adds for operators.

One :class:`Operations` per service tree:

- start-up checks (:mod:`exchmail.service.preflight`): a malformed accounts
  file or a service nobody can log in to is refused under ``strict`` (the
  twistd plugin) and logged as an error otherwise; unsafe file modes are
  warned about;
- the access log observer (``[logging] access``, on by default);
- with ``[metrics] listen``: the metrics observer, the timed checker and
  the :class:`~exchmail.service.health.MetricsService`.  Without it none of
  these exist, and ``prometheus_client`` is not imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from twisted.application import service
from twisted.logger import Logger

from exchmail.errors import ConfigError
from exchmail.service import preflight
from exchmail.session.access import AccessLogObserver
from exchmail.session.observe import SessionObserver

log = Logger(namespace="exchmail.service")


class Operations:
    """Checks and observers for one service tree (see the module docstring)."""

    def __init__(self, config: Any, reactor: Any, strict: bool = False) -> None:
        self.config = config
        self.reactor = reactor
        self.strict = strict
        self.metrics: Any = None
        self._observers: tuple[SessionObserver, ...] = ()
        self._problem(preflight.accounts_file_problem(config))
        for warning in preflight.unsafe_mode_warnings(config):
            log.warn("{warning}", warning=warning)
        if config.logging.access:
            self._observers += (AccessLogObserver(reactor),)
        if config.metrics.listen:
            try:
                from exchmail.service.metrics import Metrics, MetricsObserver
            except ImportError:
                raise ConfigError(
                    "metrics.listen: needs the prometheus_client package (pip install 'exchmail[metrics]')"
                ) from None
            self.metrics = Metrics()
            self._observers += (MetricsObserver(self.metrics),)

    def _problem(self, problem: str | None) -> None:
        if problem is None:
            return
        if self.strict:
            raise ConfigError(problem)
        log.error("{problem}", problem=problem)

    def observers(self, protocol: str) -> tuple[SessionObserver, ...]:
        """The session observers for the ``protocol`` service (may be empty)."""
        return self._observers

    def timed_checker(self, checker: Any) -> Any:
        """``checker``, timed for ``exchmail_directory_seconds`` when metrics are on."""
        if self.metrics is None:
            return checker
        from exchmail.service.metrics import TimedChecker

        backend = self.config.auth.backend
        label = backend if backend in ("accounts", "ldap") else "custom"
        return TimedChecker(checker, self.metrics.directory_seconds, label)

    def check_login_paths(self, contexts: Mapping[str, Any]) -> None:
        """Refuse (strict) or log each service that listens but nobody can log in to."""
        from exchmail.auth.sasl import is_plaintext

        offered = {
            name: {
                mechanism.decode("ascii", "replace"): is_plaintext(factory)
                for mechanism, factory in context.mechanisms.items()
            }
            for name, context in contexts.items()
        }
        for problem in preflight.login_path_problems(self.config, offered):
            self._problem(problem)

    def add_services(self, top: service.MultiService, store_service: Any, checker: Any) -> None:
        """Add the metrics listener (with ``/healthz``) to ``top`` when configured."""
        if self.metrics is None:
            return
        from exchmail.service.health import HealthResource, MetricsService

        config = self.config
        # A Maildir store (also behind the quota wrapper) has a root folder to probe.
        root = getattr(store_service.store, "root", None)
        folder = Path(root) if isinstance(root, (str, Path)) else None
        health = HealthResource(
            self.reactor, folder, checker, store_service.run_blocking, config.metrics.health_timeout
        )
        MetricsService(self.metrics, config.metrics.listen, self.reactor, health).setServiceParent(top)


__all__ = ["Operations"]
