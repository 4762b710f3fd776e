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
import re
import time
from pathlib import Path
from typing import Any, TextIO

from twisted.application import service
from twisted.internet import task
from twisted.logger import Logger

from exchmail.imap.parsing import LiteralSegment, Spool

REDACTED = "****"
FIELDS = "date-time,session-id,sequence-number,local-endpoint,remote-endpoint,event,data"
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n")
_session_ids = itertools.count(1)


def _text(data: bytes) -> str:
    """Printable text for a log field: CR/LF and other controls escaped."""
    text = data.decode("utf-8", "backslashreplace")
    return "".join(c if c >= " " or c == "\t" else f"\\x{ord(c):02x}" for c in text) \
        .replace("\\x0d\\x0a", "\\r\\n")


def summarize_literals(data: bytes) -> str:
    """``data`` with the octets of every literal ``{n}CRLF...`` replaced by ``<n octets>``."""
    out, pos = [], 0
    for match in _LITERAL.finditer(data):
        if match.start() < pos:
            continue
        size = int(match.group(1))
        out.append(_text(data[pos:match.start()]) + f"{{{size}}}<{size} octets>")
        pos = match.end() + size
    out.append(_text(data[pos:]))
    text = "".join(out)
    return text[:-4] if text.endswith("\\r\\n") else text


def _literal_size(data: bytes | Spool) -> int:
    return data.size if isinstance(data, Spool) else len(data)


def imap_command(segments: list[bytes | LiteralSegment]) -> str:
    """An IMAP command as logged: literals by size, LOGIN's password and SASL-IR hidden."""
    first = segments[0] if segments and isinstance(segments[0], bytes) else b""
    words = first.split(None, 3)
    name = words[1].upper() if len(words) > 1 else b""
    if name == b"LOGIN":
        user = "" if len(words) < 3 else _text(words[2])
        if user.endswith("}") and len(segments) > 1 and isinstance(segments[1], LiteralSegment) \
                and isinstance(segments[1].data, bytes):
            user = _text(segments[1].data)  # the user name was a literal
        return f"{_text(words[0])} LOGIN {user} {REDACTED}"
    if name == b"AUTHENTICATE":
        head = _text(b" ".join(words[:3]))
        return head + (f" {REDACTED}" if len(words) > 3 or len(segments) > 1 else "")
    parts = []
    for segment in segments:
        if isinstance(segment, LiteralSegment):
            size = _literal_size(segment.data)
            parts.append(f"<{size} octets>")
        else:
            parts.append(_text(segment))
    return "".join(parts)


def pop3_command(line: bytes) -> str:
    """A POP3 command line as logged: PASS's argument and AUTH's initial response hidden."""
    words = line.split(None, 2)
    keyword = words[0].upper() if words else b""
    if keyword == b"PASS":
        return f"{_text(words[0])} {REDACTED}"
    if keyword == b"AUTH" and len(words) > 2:
        return f"{_text(words[0])} {_text(words[1])} {REDACTED}"
    return _text(line)


def sasl_response(line: bytes) -> str:
    """A client's SASL response line as logged: ``*`` (cancel) shown, the rest hidden."""
    return "*" if line.strip() == b"*" else REDACTED


class ProtocolLog:
    """The protocol log files of one service (``imap`` or ``pop3``).

    :param clock: an ``IReactorTime``; its ``seconds()`` stamps the lines and
        drives the periodic flush.
    """

    log = Logger(namespace="exchmail.session.protolog")

    def __init__(self, directory: Path | str, service_name: str, clock: Any,
                 flush_interval: float = 1.0, buffer_size: int = 256 * 1024) -> None:
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
            handle.write(f"#Software: exchmail\r\n#Log-type: {self.service_name.upper()} "
                         f"Protocol Log\r\n#Date: {day}\r\n#Fields: {FIELDS}\r\n")
        self._file, self._day = handle, day
        return handle

    def write(self, session_id: str, sequence: int, local: str, remote: str, event: str,
              data: str) -> None:
        now = self.clock.seconds()
        stamp = time.gmtime(now)
        handle = self._open(time.strftime("%Y%m%d", stamp))
        if handle is None:
            return
        line = io.StringIO()
        csv.writer(line, lineterminator="\r\n").writerow([
            time.strftime("%Y-%m-%dT%H:%M:%S", stamp) + f".{int(now * 1000) % 1000:03d}Z",
            session_id, sequence, local, remote, event, data])
        try:
            handle.write(line.getvalue())
        except OSError as e:
            self.log.error("cannot write protocol log: {error}", error=e)

    def session(self, local: str, remote: str) -> SessionLog:
        """A new session's log (writes its ``+`` line)."""
        return SessionLog(self, f"{next(_session_ids):016X}", local, remote)

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
        self.protocol_log.write(self.session_id, next(self._sequence), self.local, self.remote,
                                event, data)

    def received(self, text: str) -> None:
        self._write("<", text)

    def sent(self, text: str) -> None:
        self._write(">", text)

    def info(self, text: str) -> None:
        self._write("*", text)

    def closed(self) -> None:
        self._write("-", "")


def endpoint(address: Any) -> str:
    """``host:port`` of a Twisted address (or ``""``)."""
    host, port = getattr(address, "host", ""), getattr(address, "port", "")
    return f"{host}:{port}" if host else ""


class ProtocolLogService(service.Service):
    """Closes (flushes) the protocol logs when the server stops."""

    name = "protocol-log"

    def __init__(self, logs: list[ProtocolLog]) -> None:
        self.logs = logs

    def stopService(self) -> None:
        super().stopService()
        for log in self.logs:
            log.close()


class SessionLogging:
    """Mixin for a protocol class: opens a :class:`SessionLog` per connection
    from the factory-set ``protocol_log`` and closes it when the connection ends."""

    protocol_log: Any = None  # the factory's ProtocolLog
    session_log: SessionLog | None = None
    transport: Any

    def connectionMade(self) -> None:
        if self.protocol_log is not None:
            self.session_log = self.protocol_log.session(
                endpoint(self.transport.getHost()), endpoint(self.transport.getPeer()))
        super().connectionMade()  # type: ignore[misc]

    def connectionLost(self, reason: Any = None) -> None:
        super().connectionLost(reason)  # type: ignore[misc]
        if self.session_log is not None:
            self.session_log.closed()
            self.session_log = None
