"""IMAPServer with protocol logging (see :mod:`exchmail.session.protolog`).

The factory builds this class instead of :class:`IMAPServer` when
``[logging] protocol_log`` is on; every hook calls the plain server's
method after logging what passes, redacted.
"""

from __future__ import annotations

from exchmail.imap.parsing import LiteralSegment
from exchmail.imap.server import IMAPServer
from exchmail.session import protolog


class LoggingIMAPServer(protolog.SessionLogging, IMAPServer):
    """An :class:`IMAPServer` that writes a protocol log."""

    def _line_received(self, line: bytes) -> None:
        if self._await_line is not None and self.session_log is not None:
            self.session_log.received(protolog.sasl_response(line) if self.sasl_in_progress
                                      else protolog.summarize_literals(line))
        super()._line_received(line)

    def _execute(self, segments: list[bytes | LiteralSegment]) -> None:
        if self.session_log is not None:
            self.session_log.received(protolog.imap_command(segments))
        super()._execute(segments)

    def sendLine(self, line: bytes) -> None:
        if self.session_log is not None:
            if self.sasl_in_progress and line.startswith(b"+ ") and line != b"+ ":
                self.session_log.sent("+ " + protolog.REDACTED)
            else:
                self.session_log.sent(protolog.summarize_literals(line))
        super().sendLine(line)

    def send_raw(self, data: bytes) -> None:
        if self.session_log is not None:
            self.session_log.sent(protolog.summarize_literals(data))
        super().send_raw(data)
