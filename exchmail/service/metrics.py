"""Prometheus metrics: what the sessions, the throttle, the store and the directory do.

Made only with ``[metrics] listen`` set (``pip install 'exchmail[metrics]'``
brings ``prometheus_client``); without it no observer is added and nothing
here is imported.  Every metric lives in the :class:`Metrics` object's own
registry, served by :mod:`exchmail.service.health` at ``/metrics``:

``exchmail_sessions_open{protocol}``
    connections open now (IMAP, POP3, LMTP); ``exchmail_sessions_total`` counts them.
``exchmail_logins_total{protocol,mechanism,result}``
    login attempts; ``result`` is ``success``, ``failure`` (wrong user or
    password), ``blocked`` (refused by the failed-login throttle),
    ``unavailable`` (the directory did not answer) or ``refused`` (too many
    sessions of the user).
``exchmail_commands_total{protocol,command,status}`` and ``exchmail_command_seconds{protocol,command}``
    commands by name and result (``OK``/``NO``/``BAD``, ``+OK``/``-ERR``,
    LMTP reply codes), with a latency histogram.
``exchmail_received_bytes_total{protocol}``, ``exchmail_sent_bytes_total{protocol}``
    octets in and out, counted as each command ends and at disconnection.
``exchmail_deliveries_total{path,result}``
    messages added: ``path`` is ``imap_append`` or ``lmtp`` (one per
    recipient), ``result`` ``ok``, ``temporary`` (4xx/NO) or ``permanent``
    (5xx); other paths call :meth:`Metrics.count_delivery`.
``exchmail_throttle_blocks_total``
    blocks the throttle started (one per logged block); the logins a block
    refused are ``exchmail_logins_total{result="blocked"}``.
``exchmail_errors_total{component}``
    errors logged (internal errors with a traceback included) by component,
    ``store`` for the store and for I/O errors anywhere.
``exchmail_directory_seconds{backend,result}``
    how long the account directory (accounts file, LDAP, custom) took to
    check a password: for LDAP, the directory's latency as logins see it.
"""

from __future__ import annotations

import re
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.logger import LogLevel
from twisted.python.failure import Failure
from zope.interface import directlyProvides, providedBy

from exchmail.session.observe import SessionObserver

#: Command latency buckets in seconds (a LOGIN waits for a password hash; a
#: FETCH of a large mailbox takes longer).
COMMAND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
DIRECTORY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: Distinct command names kept per protocol; more are counted as ``OTHER``.
MAX_COMMAND_NAMES = 64
_NAME = re.compile(r"^[A-Z][A-Z0-9 ]{0,23}$")


class Metrics:
    """The metric objects, in a registry of their own (several servers per process
    each have theirs)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.sessions_open = Gauge("exchmail_sessions_open", "Connections open now", ["protocol"], registry=r)
        self.sessions = Counter("exchmail_sessions", "Connections accepted", ["protocol"], registry=r)
        self.logins = Counter(
            "exchmail_logins", "Login attempts", ["protocol", "mechanism", "result"], registry=r
        )
        self.commands = Counter(
            "exchmail_commands", "Commands by name and result", ["protocol", "command", "status"], registry=r
        )
        self.command_seconds = Histogram(
            "exchmail_command_seconds",
            "Command latency",
            ["protocol", "command"],
            buckets=COMMAND_BUCKETS,
            registry=r,
        )
        self.received = Counter("exchmail_received_bytes", "Octets received", ["protocol"], registry=r)
        self.sent = Counter("exchmail_sent_bytes", "Octets sent", ["protocol"], registry=r)
        self.deliveries = Counter(
            "exchmail_deliveries", "Messages added to mailboxes", ["path", "result"], registry=r
        )
        self.throttle_blocks = Counter(
            "exchmail_throttle_blocks", "Blocks started by the failed-login throttle", registry=r
        )
        self.errors = Counter("exchmail_errors", "Errors logged", ["component"], registry=r)
        self.directory_seconds = Histogram(
            "exchmail_directory_seconds",
            "Password checks by the account directory",
            ["backend", "result"],
            buckets=DIRECTORY_BUCKETS,
            registry=r,
        )
        self._names: dict[str, set[str]] = {}

    def count_delivery(self, path: str, result: str) -> None:
        """Count one message added through ``path`` (``ok``, ``temporary``, ``permanent``)."""
        self.deliveries.labels(path, result).inc()

    def command_name(self, protocol: str, name: str) -> str:
        """``name`` as a label: known shapes, and at most :data:`MAX_COMMAND_NAMES`."""
        name = name.upper()
        seen = self._names.setdefault(protocol, set())
        if name in seen:
            return name
        if not _NAME.match(name) or len(seen) >= MAX_COMMAND_NAMES:
            return "OTHER"
        seen.add(name)
        return name

    # -- the main log ------------------------------------------------------------------
    def log_event(self, event: dict[str, Any]) -> None:
        """A ``twisted.logger`` observer: count errors and throttle blocks."""
        namespace = str(event.get("log_namespace", ""))
        level = event.get("log_level")
        if namespace.startswith("exchmail.auth.throttle") and level == LogLevel.warn:
            self.throttle_blocks.inc()  # the throttle warns once per block started
            return
        if level not in (LogLevel.error, LogLevel.critical) and "log_failure" not in event:
            return
        if not namespace.startswith("exchmail"):
            return
        failure = event.get("log_failure")
        parts = namespace.split(".")
        component = parts[1] if len(parts) > 1 else "exchmail"
        if failure is not None and failure.check(OSError):
            component = "store"  # disk trouble, wherever it surfaced
        self.errors.labels(component).inc()


def _delivery_result(status: str) -> str:
    if status in ("OK", "+OK") or status.startswith("2"):
        return "ok"
    if status.startswith("5"):
        return "permanent"
    return "temporary"


class MetricsObserver(SessionObserver):
    """Feeds :class:`Metrics` from the sessions of every protocol."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._counted: dict[int, tuple[int, int]] = {}  # per session: octets counted so far

    def _count_bytes(self, session: Any) -> None:
        before_in, before_out = self._counted.get(id(session), (0, 0))
        protocol = session.protocol
        if session.bytes_in > before_in:
            self.metrics.received.labels(protocol).inc(session.bytes_in - before_in)
        if session.bytes_out > before_out:
            self.metrics.sent.labels(protocol).inc(session.bytes_out - before_out)
        self._counted[id(session)] = (session.bytes_in, session.bytes_out)

    def session_opened(self, session: Any) -> None:
        self.metrics.sessions.labels(session.protocol).inc()
        self.metrics.sessions_open.labels(session.protocol).inc()
        self._counted[id(session)] = (0, 0)

    def command_done(self, session: Any, name: str, status: str, seconds: float) -> None:
        m, protocol = self.metrics, session.protocol
        command = m.command_name(protocol, name)
        status = status if len(status) <= 8 else "OTHER"
        m.commands.labels(protocol, command, status).inc()
        m.command_seconds.labels(protocol, command).observe(max(0.0, seconds))
        if protocol == "imap" and command == "APPEND":
            m.count_delivery("imap_append", _delivery_result(status))
        elif protocol == "lmtp" and command == "DATA":
            m.count_delivery("lmtp", _delivery_result(status))
        self._count_bytes(session)

    def login_done(self, session: Any, user: str, mechanism: str, outcome: str) -> None:
        result = outcome
        if outcome == "failure" and session.login_failure == "blocked":
            result = "blocked"
        mechanism = self.metrics.command_name(session.protocol + "-sasl", mechanism or "NONE")
        self.metrics.logins.labels(session.protocol, mechanism, result).inc()

    def session_closed(self, session: Any) -> None:
        self._count_bytes(session)
        self._counted.pop(id(session), None)
        self.metrics.sessions_open.labels(session.protocol).dec()


class TimedChecker:
    """A credentials checker that times its wrapped checker's answers.

    Everything else (``credentialInterfaces``, ``IDirectory``, SCRAM keys)
    is the wrapped checker's: it provides the same interfaces.
    """

    def __init__(self, checker: Any, histogram: Any, backend: str, clock: Any = time.monotonic) -> None:
        self._checker = checker
        self._histogram = histogram
        self._backend = backend
        self._clock = clock
        directlyProvides(self, providedBy(checker))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._checker, name)

    def requestAvatarId(self, credentials: Any) -> defer.Deferred[Any]:
        started = self._clock()
        d = defer.maybeDeferred(self._checker.requestAvatarId, credentials)

        def timed(result: Any) -> Any:
            if isinstance(result, Failure):
                outcome = "refused" if result.check(UnauthorizedLogin) else "error"
            else:
                outcome = "ok"
            self._histogram.labels(self._backend, outcome).observe(max(0.0, self._clock() - started))
            return result

        return d.addBoth(timed)


__all__ = ["Metrics", "MetricsObserver", "TimedChecker"]
