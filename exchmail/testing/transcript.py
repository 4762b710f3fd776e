"""TranscriptObserver: what each session of a test server said, in memory.

It is a :class:`~exchmail.session.observe.SessionObserver` that asks for
the transcript texts (the same the protocol log writes: passwords and SASL
exchanges as ``****``, message data as its size) and keeps them per
session, so a test can read the conversation its client had::

    >>> server.transcript("alice")
    ['S: * OK [CAPABILITY IMAP4rev1 ...] exchmail IMAP4rev1 server ready',
     'C: a1 LOGIN alice ****', 'S: a1 OK LOGIN completed', ...]

Lines the client sent start with ``C: ``, lines the server sent with
``S: ``.  A session belongs to the user it logged in as (its lines from
before the login included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from exchmail.session.observe import SessionInfo, SessionObserver

#: How a multi-line text from a session is split: the IMAP log escapes CRLF.
_SEPARATORS = ("\\r\\n", "\r\n")


@dataclass(eq=False)
class SessionTranscript:
    """One session's lines (``C: ...``/``S: ...``) and who it is."""

    info: SessionInfo
    lines: list[str] = field(default_factory=list)
    closed: bool = False

    @property
    def user(self) -> str:
        return self.info.user


class TranscriptObserver(SessionObserver):
    """Keeps every session's transcript; :meth:`lines` reads them.

    :param limit: sessions kept at most (the oldest are forgotten first), so
        a long-running standalone server does not grow without bound.
    """

    transcript = True

    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self.sessions: list[SessionTranscript] = []
        self._by_info: dict[SessionInfo, SessionTranscript] = {}

    def session_opened(self, session: Any) -> None:
        record = SessionTranscript(session)
        self._by_info[session] = record
        self.sessions.append(record)
        if len(self.sessions) > self.limit:
            old = self.sessions.pop(0)
            self._by_info.pop(old.info, None)

    def received(self, session: Any, text: str) -> None:
        self._add(session, "C: ", text)

    def sent(self, session: Any, text: str) -> None:
        self._add(session, "S: ", text)

    def _add(self, session: Any, prefix: str, text: str) -> None:
        record = self._by_info.get(session)
        if record is None or not text:
            return
        for separator in _SEPARATORS:
            if separator in text:
                record.lines.extend(prefix + line for line in text.split(separator) if line)
                return
        record.lines.append(prefix + text)

    def session_closed(self, session: Any) -> None:
        record = self._by_info.pop(session, None)
        if record is not None:
            record.closed = True

    def lines(self, user: str | None = None, protocol: str | None = None) -> list[str]:
        """Every line of the sessions of ``user`` (any case; None: every session),
        session after session in the order they were opened."""
        out: list[str] = []
        for record in self.sessions:
            if user is not None and record.user.lower() != user.lower():
                continue
            if protocol is not None and record.info.protocol != protocol:
                continue
            out.extend(record.lines)
        return out

    def clear(self) -> None:
        """Forget every session (those still open keep being recorded)."""
        self.sessions = [record for record in self.sessions if not record.closed]
        for record in self.sessions:
            record.lines.clear()
