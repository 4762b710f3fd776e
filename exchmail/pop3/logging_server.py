"""POP3Server with protocol logging (see :mod:`exchmail.session.protolog`).

The factory builds this class instead of :class:`POP3Server` when
``[logging] protocol_log`` is on.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from twisted.internet import defer

from exchmail.pop3.server import POP3Server
from exchmail.session import protolog

#: Multi-line responses longer than this are logged as their first lines and a count.
MAX_LOGGED_LINES = 20


class _CountingReader:
    """A file wrapper that counts the octets read through it."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.count += len(data)
        return data

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> _CountingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LoggingPOP3Server(protolog.SessionLogging, POP3Server):
    """A :class:`POP3Server` that writes a protocol log."""

    def _line_received(self, line: bytes) -> None:
        if self.session_log is not None:
            self.session_log.received(protolog.sasl_response(line) if self._await_line is not None
                                      else protolog.pop3_command(line))
        super()._line_received(line)

    def send_ok(self, text: bytes = b"") -> None:
        if self.session_log is not None:
            self.session_log.sent(protolog.summarize_literals(b"+OK " + text).rstrip())
        super().send_ok(text)

    def send_err(self, text: bytes) -> None:
        if self.session_log is not None:
            self.session_log.sent(protolog.summarize_literals(b"-ERR " + text).rstrip())
        super().send_err(text)

    def send_lines(self, lines: list[bytes]) -> None:
        if self.session_log is not None:
            for line in lines[:MAX_LOGGED_LINES]:
                self.session_log.sent(protolog.summarize_literals(line))
            if len(lines) > MAX_LOGGED_LINES:
                self.session_log.sent(f"<{len(lines) - MAX_LOGGED_LINES} more lines>")
            self.session_log.sent(".")
        super().send_lines(lines)

    def send_continuation(self, data: bytes) -> None:
        if self.session_log is not None:
            self.session_log.sent("+ " + protolog.REDACTED if data else "+ ")
        super().send_continuation(data)

    def _send(self, source: Any) -> defer.Deferred[None]:
        if self.session_log is None:
            return super()._send(source)
        counting = _CountingReader(source)
        d = super()._send(counting)

        def sent(result: object) -> object:
            if self.session_log is not None:
                self.session_log.sent(f"<message data: {counting.count} octets>")
            return result

        return d.addBoth(sent)
