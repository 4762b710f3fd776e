"""``[logging] format = "json"`` (exchmail.service.logs): one JSON object per
event and line, for exchmail's events, foreign ones, failures and the observer."""

from __future__ import annotations

import io
import json
import re
from typing import Any

from twisted.logger import LogLevel
from twisted.python.failure import Failure

from exchmail.service.logs import JSONLinesObserver, json_line


def event(**fields: Any) -> dict[str, Any]:
    return {"log_level": LogLevel.info, "log_time": 1_772_366_400.1234, **fields}


def test_exchmail_events_keep_their_plain_fields() -> None:
    record = json.loads(
        json_line(
            event(
                log_namespace="exchmail.auth.throttle",
                log_format="blocked {client} after {count} failures",
                client="192.0.2.1",
                count=5,
                ratio=0.5,
                held=True,
                skipped=None,
                complex={"not": "plain"},
                message="a field may not replace the message",
            )
        )
    )
    assert record == {
        "time": "2026-03-01T12:00:00.123Z",
        "level": "info",
        "namespace": "exchmail.auth.throttle",
        "message": "blocked 192.0.2.1 after 5 failures",
        "client": "192.0.2.1",
        "count": 5,
        "ratio": 0.5,
        "held": True,
    }


def test_foreign_events_get_only_the_fixed_keys() -> None:
    record = json.loads(
        json_line({"log_namespace": "twisted.web", "log_format": "GET {path}", "path": "/", "log_time": None})
    )
    assert list(record) == ["time", "level", "namespace", "message"]
    assert record["message"] == "GET /" and record["level"] == "info"  # no level given: info
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"])  # now


def test_a_failure_becomes_a_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failure = Failure()
    record = json.loads(
        json_line(event(log_namespace="exchmail.session", log_format="crash", log_failure=failure))
    )
    assert "Traceback" in record["traceback"] and "ValueError: boom" in record["traceback"]


def test_a_broken_failure_does_not_stop_the_log() -> None:
    class Broken:
        def getTraceback(self) -> str:
            raise RuntimeError("cannot format")

        def __repr__(self) -> str:
            return "<broken failure>"

    record = json.loads(json_line(event(log_namespace="exchmail", log_format="x", log_failure=Broken())))
    assert record["traceback"] == "<broken failure>"


def test_observer_writes_and_flushes_one_line_per_event() -> None:
    class Stream(io.StringIO):
        flushes = 0

        def flush(self) -> None:
            self.flushes += 1
            super().flush()

    stream = Stream()
    observer = JSONLinesObserver(stream)
    observer(event(log_namespace="exchmail", log_format="first"))
    observer(event(log_namespace="exchmail", log_format="second\nline"))
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["first", "second\nline"]
    assert stream.flushes == 2
