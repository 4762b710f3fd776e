"""Protocol logging (Exchange's ``ProtocolLogEnabled``): what each session said.

One file per service and day (UTC), ``<protocol_log_dir>/<service>-YYYYMMDD.log``,
in the CSV layout of Exchange's protocol logs::

    #Fields: date-time,session-id,sequence-number,local-endpoint,remote-endpoint,event,data
    2024-05-01T10:00:00.123Z,0000000000000001,0,127.0.0.1:1143,127.0.0.1:50312,+,
    2024-05-01T10:00:00.124Z,0000000000000001,1,127.0.0.1:1143,127.0.0.1:50312,>,* OK ...
    2024-05-01T10:00:00.130Z,0000000000000001,2,127.0.0.1:1143,127.0.0.1:50312,<,a LOGIN alice ****

Events: ``+`` connected, ``-`` disconnected, ``<`` from the client, ``>``
to the client, ``*`` information.  Secrets never reach the file: LOGIN's
password, PASS's argument, SASL initial responses, challenges and
responses are written as ``****``.  Message data (APPEND literals, FETCH
and RETR/TOP data) is written as its size, e.g. ``{1234}<1234 octets>``.

Writes go to a buffered file and are flushed every ``flush_interval``
seconds and when the service stops, so a session never waits for the disk.
"""

from __future__ import annotations

import csv
import io
import itertools
import time
from pathlib import Path
from typing import Any, TextIO

from twisted.application import service
from twisted.internet import task
from twisted.logger import Logger

from exchmail.session.observe import SessionInfo, SessionObserver

REDACTED = "****"
FIELDS = "date-time,session-id,sequence-number,local-endpoint,remote-endpoint,event,data"


class ProtocolLog:
    """The protocol log files of one service (``imap`` or ``pop3``).

    :param clock: an ``IReactorTime``; its ``seconds()`` stamps the lines and
        drives the periodic flush.
    """

    log = Logger(namespace="exchmail.session.protolog")

    def __init__(
        self,
        directory: Path | str,
        service_name: str,
        clock: Any,
        flush_interval: float = 1.0,
        buffer_size: int = 256 * 1024,
    ) -> None:
        self.directory = Path(directory)
        self.service_name = service_name
        self.clock = clock
        self.buffer_size = buffer_size
        self._file: TextIO | None = None
        self._day = ""
        self._failed = False
        self._flusher = task.LoopingCall(self.flush)
        self._flusher.clock = clock
        self._flusher.start(flush_interval, now=False)

    def path_for(self, day: str) -> Path:
        return self.directory / f"{self.service_name}-{day}.log"

    def _open(self, day: str) -> TextIO | None:
        if self._file is not None and day == self._day:
            return self._file
        self._close_file()
        path = self.path_for(day)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            new = not path.exists()
            handle = open(path, "a", encoding="utf-8", newline="", buffering=self.buffer_size)
        except OSError as e:
            if not self._failed:
                self.log.error("cannot open protocol log {path}: {error}", path=path, error=e)
            self._failed = True
            return None
        self._failed = False
        if new:
            handle.write(
                f"#Software: exchmail\r\n#Log-type: {self.service_name.upper()} "
                f"Protocol Log\r\n#Date: {day}\r\n#Fields: {FIELDS}\r\n"
            )
        self._file, self._day = handle, day
        return handle

    def write(self, session_id: str, sequence: int, local: str, remote: str, event: str, data: str) -> None:
        now = self.clock.seconds()
        stamp = time.gmtime(now)
        handle = self._open(time.strftime("%Y%m%d", stamp))
        if handle is None:
            return
        line = io.StringIO()
        csv.writer(line, lineterminator="\r\n").writerow(
            [
                time.strftime("%Y-%m-%dT%H:%M:%S", stamp) + f".{int(now * 1000) % 1000:03d}Z",
                session_id,
                sequence,
                local,
                remote,
                event,
                data,
            ]
        )
        try:
            handle.write(line.getvalue())
        except OSError as e:
            self.log.error("cannot write protocol log: {error}", error=e)

    def session(self, session_id: str, local: str, remote: str) -> SessionLog:
        """A new session's log (writes its ``+`` line)."""
        return SessionLog(self, session_id, local, remote)

    def flush(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as e:
                self.log.error("cannot write protocol log: {error}", error=e)

    def _close_file(self) -> None:
        if self._file is not None:
            self.flush()
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    def close(self) -> None:
        if self._flusher.running:
            self._flusher.stop()
        self._close_file()


class SessionLog:
    """One session's lines, numbered in order."""

    def __init__(self, log: ProtocolLog, session_id: str, local: str, remote: str) -> None:
        self.protocol_log = log
        self.session_id = session_id
        self.local, self.remote = local, remote
        self._sequence = itertools.count()
        self._write("+", "")

    def _write(self, event: str, data: str) -> None:
        self.protocol_log.write(self.session_id, next(self._sequence), self.local, self.remote, event, data)

    def received(self, text: str) -> None:
        self._write("<", text)

    def sent(self, text: str) -> None:
        self._write(">", text)

    def info(self, text: str) -> None:
        self._write("*", text)

    def closed(self) -> None:
        self._write("-", "")


class ProtocolLogObserver(SessionObserver):
    """Writes every session of one service into a :class:`ProtocolLog`."""

    transcript = True

    def __init__(self, log: ProtocolLog) -> None:
        self.protocol_log = log
        self._sessions: dict[SessionInfo, SessionLog] = {}

    def session_opened(self, session: Any) -> None:
        self._sessions[session] = self.protocol_log.session(session.session_id, session.local, session.remote)

    def received(self, session: Any, text: str) -> None:
        log = self._sessions.get(session)
        if log is not None:
            log.received(text)

    def sent(self, session: Any, text: str) -> None:
        log = self._sessions.get(session)
        if log is not None:
            log.sent(text)

    def session_closed(self, session: Any) -> None:
        log = self._sessions.pop(session, None)
        if log is not None:
            log.closed()


class ProtocolLogService(service.Service):
    """Closes (flushes) the protocol logs when the server stops."""

    name = "protocol-log"

    def __init__(self, logs: list[ProtocolLog]) -> None:
        self.logs = logs

    def stopService(self) -> None:
        super().stopService()
        for log in self.logs:
            log.close()
