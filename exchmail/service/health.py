"""``[metrics] listen``: ``/metrics`` (Prometheus) and ``/healthz`` over twisted.web.

``/healthz`` answers ``200`` with ``{"status": "ok", "checks": {...}}`` when

- ``store``: the Maildir folder takes a new file (written, fsynced and
  removed again, off the reactor thread); other stores: ``"not checked"``;
- ``directory``: the account directory answers a lookup (the accounts file
  is readable; LDAP answers a search); without ``IDirectory``: ``"not checked"``;

and ``503`` with ``"status": "fail"`` and the failing check's reason
otherwise.  Each check gives up after ``[metrics] health_timeout`` seconds.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from twisted.application import service
from twisted.internet import defer, endpoints
from twisted.logger import Logger, globalLogPublisher
from twisted.python.failure import Failure
from twisted.web import resource, server

from exchmail.interfaces import IDirectory
from exchmail.service.listen import ListeningService
from exchmail.service.metrics import Metrics

log = Logger(namespace="exchmail.service.health")

#: The user name the directory check looks up (any answer, yes or no, is healthy).
PROBE_USER = "exchmail-health-probe"


def probe_folder(folder: Path) -> None:
    """Write, fsync and remove a small file in ``folder`` (blocking)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".healthz-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with open(path, "xb") as f:
            f.write(b"ok\n")
            f.flush()
            os.fsync(f.fileno())
    finally:
        path.unlink(missing_ok=True)


class MetricsResource(resource.Resource):
    """``GET /metrics``: the registry in the Prometheus text format."""

    isLeaf = True

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self.metrics = metrics

    def render_GET(self, request: Any) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self.metrics.registry)


class HealthResource(resource.Resource):
    """``GET /healthz`` (see the module docstring).

    :param store_folder: the Maildir root to probe, or None (not checked).
    :param directory: the credentials checker, probed if it provides ``IDirectory``.
    :param run_blocking: runs the folder probe off the reactor thread.
    """

    isLeaf = True

    def __init__(
        self, reactor: Any, store_folder: Path | None, directory: Any, run_blocking: Any, timeout: float
    ) -> None:
        super().__init__()
        self.reactor = reactor
        self.store_folder = store_folder
        self.directory = directory if IDirectory.providedBy(directory) else None
        self.run_blocking = run_blocking
        self.timeout = timeout

    def _store(self) -> defer.Deferred[str]:
        if self.store_folder is None:
            return defer.succeed("not checked")
        d = self.run_blocking(probe_folder, self.store_folder)
        return d.addCallback(lambda _: "ok")

    def _directory(self) -> defer.Deferred[str]:
        if self.directory is None:
            return defer.succeed("not checked")
        d = defer.maybeDeferred(self.directory.user_exists, PROBE_USER)
        return d.addCallback(lambda _: "ok")

    def _bounded(self, d: defer.Deferred[str]) -> defer.Deferred[str]:
        d.addTimeout(self.timeout, self.reactor)
        return d.addErrback(_reason)

    def checks(self) -> defer.Deferred[dict[str, str]]:
        """Every check's outcome: ``"ok"``, ``"not checked"`` or ``"fail: reason"``."""
        names = ("store", "directory")
        d = defer.gatherResults([self._bounded(self._store()), self._bounded(self._directory())])
        return d.addCallback(lambda results: dict(zip(names, results, strict=True)))

    def render_GET(self, request: Any) -> Any:
        def answer(checks: dict[str, str]) -> None:
            healthy = all(not value.startswith("fail") for value in checks.values())
            request.setResponseCode(200 if healthy else 503)
            request.setHeader(b"content-type", b"application/json")
            body = {"status": "ok" if healthy else "fail", "checks": checks}
            request.write(json.dumps(body).encode("utf-8") + b"\n")
            request.finish()

        self.checks().addCallback(answer).addErrback(lambda failure: log.failure("/healthz failed", failure))
        return server.NOT_DONE_YET


def _reason(failure: Failure) -> str:
    if failure.check(defer.TimeoutError):
        return "fail: no answer in time"
    value = failure.value
    text = getattr(value, "strerror", None) or str(value) or type(value).__name__
    return f"fail: {text}"


class QuietSite(server.Site):
    """A Site that does not write every scrape into the main log."""

    def log(self, request: Any) -> None:
        """Requests are not logged."""


class MetricsService(service.MultiService):
    """Serves :class:`Metrics` on the ``[metrics] listen`` endpoints, and counts
    errors from the main log while running.

    :param health: the ``/healthz`` resource.
    """

    name = "metrics"

    def __init__(
        self, metrics: Metrics, listen: tuple[str, ...], reactor: Any, health: HealthResource
    ) -> None:
        super().__init__()
        self.metrics = metrics
        self._observer: Any = metrics.log_event  # an ILogObserver: called with each event
        root = resource.Resource()
        root.putChild(b"metrics", MetricsResource(metrics))
        root.putChild(b"healthz", health)
        site = QuietSite(root)
        site.displayTracebacks = False
        site.noisy = False
        for description in listen:
            listener = ListeningService(endpoints.serverFromString(reactor, description), site, description)
            listener.setName(f"metrics:{description}")
            listener.setServiceParent(self)

    def startService(self) -> None:
        globalLogPublisher.addObserver(self._observer)
        super().startService()

    def stopService(self) -> Any:
        globalLogPublisher.removeObserver(self._observer)
        return super().stopService()


__all__ = ["HealthResource", "MetricsResource", "MetricsService", "probe_folder"]
