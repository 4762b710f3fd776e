"""``[logging] format = "json"``: the main log as JSON lines.

:class:`JSONLinesObserver` is a ``twisted.logger`` observer that writes one
JSON object per event and line.  The keys, in this order:

``time``
    ISO 8601 in UTC with milliseconds, ``2026-03-01T12:00:00.123Z``;
``level``
    ``debug``, ``info``, ``warn``, ``error`` or ``critical``;
``namespace``
    the logger's namespace (``exchmail.access``, ``exchmail.auth.throttle``...);
``message``
    the formatted text, exactly as the text format shows it;

then, for exchmail's own events, their fields: for the access log
(:mod:`exchmail.session.access`) ``event``, ``proto``, ``session``,
``client``, ``port``, ... and ``user``; for other exchmail events their
plain (text, number, boolean) fields.  An event with a failure has a
``traceback``.  A key is never renamed or reused for something else.

``twistd exchmail`` installs it when the configuration says ``json``
(:mod:`exchmail.service.tap`); embedders can add it to their own log
beginner: ``globalLogBeginner.beginLoggingTo([JSONLinesObserver(sys.stdout)])``.
"""

from __future__ import annotations

import datetime
import json
from typing import IO, Any

from twisted.logger import ILogObserver, formatEvent
from zope.interface import implementer

_FIXED = ("time", "level", "namespace", "message", "traceback")


def _timestamp(seconds: float | None) -> str:
    if seconds is None:
        seconds = datetime.datetime.now(datetime.timezone.utc).timestamp()
    moment = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _fields(event: dict[str, Any]) -> dict[str, Any]:
    access = event.get("access")
    if isinstance(access, dict):
        return access
    if not str(event.get("log_namespace", "")).startswith("exchmail"):
        return {}
    return {
        key: value
        for key, value in event.items()
        if not key.startswith("log_") and isinstance(value, (str, int, float, bool)) and value is not None
    }


def json_line(event: dict[str, Any]) -> str:
    """One log event as a JSON object on one line (see the module docstring)."""
    level = event.get("log_level")
    out: dict[str, Any] = {
        "time": _timestamp(event.get("log_time")),
        "level": getattr(level, "name", "info"),
        "namespace": str(event.get("log_namespace", "-")),
        "message": formatEvent(event),
    }
    for key, value in _fields(event).items():
        if key not in _FIXED:
            out[key] = value
    failure = event.get("log_failure")
    if failure is not None:
        try:
            out["traceback"] = failure.getTraceback()
        except Exception:  # noqa: BLE001 - a broken failure must not stop the log
            out["traceback"] = repr(failure)
    return json.dumps(out, ensure_ascii=False, default=str)


@implementer(ILogObserver)
class JSONLinesObserver:
    """Writes each event as a JSON line to ``stream`` (flushed per event)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def __call__(self, event: dict[str, Any]) -> None:
        self.stream.write(json_line(event) + "\n")
        self.stream.flush()


__all__ = ["JSONLinesObserver", "json_line"]
