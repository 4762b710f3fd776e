"""The access log: one line per session start and end and per login, in the main log.

:class:`AccessLogObserver` is a session observer that writes these events
to ``twisted.logger`` under the namespace ``exchmail.access``, in a stable
``key=value`` format that fail2ban and grep can read
(``examples/fail2ban/``; the format is documented in
``docs/operations.md``)::

    session-start proto=imap session=00000000000000A1 client=192.0.2.7 port=50312
        local=127.0.0.1:143 tls=no
    login-ok proto=imap session=00000000000000A1 client=192.0.2.7 port=50312
        mechanism=LOGIN tls=yes user="alice"
    login-failed proto=pop3 session=00000000000000A2 client=192.0.2.9 port=40022
        reason=credentials mechanism=USER tls=yes user="mallory"
    session-end proto=imap session=00000000000000A1 client=192.0.2.7 port=50312
        tls=TLSv1.3 duration=12.503 in=412 out=88213 user="alice"

Each event is one line (wrapped here).  Fields come in this order and
never contain spaces, except ``user``, which is always last and
JSON-quoted (``"``, ``\\`` and control characters escaped): a client
cannot forge fields by choosing its user name.
``reason`` is ``credentials`` (wrong user or password), ``blocked`` (the
failed-login throttle refused it), ``unavailable`` (the directory did not
answer) or ``sessions`` (too many sessions of that user).

Each event also carries its fields as a dict, ``access``, which the JSON
log format (:mod:`exchmail.service.logs`) writes as keys of its own.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.logger import Logger

from exchmail.session.observe import SessionInfo, SessionObserver

#: The namespace of access events in the main log.
NAMESPACE = "exchmail.access"
# Module level: a Logger class attribute would name its events after the class.
log = Logger(namespace=NAMESPACE)


def quote(text: str) -> str:
    """``text`` as a JSON string: quoted, with quotes, backslashes and controls escaped."""
    return json.dumps(text, ensure_ascii=True)


def split_address(remote: str) -> tuple[str, str]:
    """``host:port`` (IPv4, IPv6 or a name) into its host and port."""
    host, sep, port = remote.rpartition(":")
    return (host, port) if sep and port.isdigit() else (remote, "")


class AccessLogObserver(SessionObserver):
    """Writes session and login events to the main log (see the module docstring).

    :param clock: an ``IReactorTime`` (for session durations).
    """

    def __init__(self, clock: Any) -> None:
        self.clock = clock

    def _emit(self, event: str, info: SessionInfo, fields: dict[str, Any], user: str | None = None) -> None:
        host, port = split_address(info.remote)
        values: dict[str, Any] = {
            "proto": info.protocol,
            "session": info.session_id,
            "client": host or "-",
            "port": port or "-",
            **fields,
        }
        text = " ".join([event, *(f"{key}={value}" for key, value in values.items())])
        if user is not None:
            values["user"] = user
            text += f" user={quote(user)}"
        values = {"event": event, **values}
        if event == "login-failed":
            log.warn("{line}", line=text, access=values)
        else:
            log.info("{line}", line=text, access=values)

    def session_opened(self, session: Any) -> None:
        self._emit(
            "session-start",
            session,
            {"local": session.local or "-", "tls": "yes" if session.secure else "no"},
        )

    def login_done(self, session: Any, user: str, mechanism: str, outcome: str) -> None:
        tls = "yes" if session.secure else "no"
        mechanism = mechanism or "-"
        if outcome == "success":
            self._emit("login-ok", session, {"mechanism": mechanism, "tls": tls}, user)
        else:
            reason = session.login_failure or outcome
            self._emit("login-failed", session, {"reason": reason, "mechanism": mechanism, "tls": tls}, user)

    def session_closed(self, session: Any) -> None:
        duration = max(0.0, self.clock.seconds() - session.started)
        tls = session.tls_version or ("yes" if session.secure else "no")
        self._emit(
            "session-end",
            session,
            {"tls": tls, "duration": f"{duration:.3f}", "in": session.bytes_in, "out": session.bytes_out},
            session.user,
        )
