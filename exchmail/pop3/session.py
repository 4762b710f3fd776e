"""POP3Session: the POP3 protocol on the shared session core.

:class:`~exchmail.session.core.Session` reads lines (bounded), runs one
command at a time and applies the internal-error policy; this class adds
POP3's states (AUTHORIZATION, TRANSACTION, UPDATE), its command table,
its responses (``+OK``/``-ERR`` with informational text, MS-STANXPOP3
V0001) and the maildrop.  The handlers are the ``cmd_*`` functions of
:mod:`exchmail.pop3.commands`; profile settings are read at the start of
each command.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from exchmail import errors
from exchmail.pop3 import commands, wire
from exchmail.pop3.maildrop import Maildrop
from exchmail.session.context import SessionContext
from exchmail.session.core import ConnectionClosed, ResponseLineTooLong, Session
from exchmail.session.login import LoginFlow
from exchmail.session.reader import Command, InputReader, ReaderLimits, Refused

AUTHORIZATION, TRANSACTION, UPDATE = "AUTHORIZATION", "TRANSACTION", "UPDATE"
ANY = (AUTHORIZATION, TRANSACTION)

Handler = Callable[["POP3Session", list[bytes], bytes], Any]

#: keyword -> (handler, states, fewest arguments, most arguments; -1: the rest of the line)
COMMANDS: dict[bytes, tuple[Handler, tuple[str, ...], int, int]] = {
    b"USER": (commands.cmd_USER, (AUTHORIZATION,), 1, 1),
    b"PASS": (commands.cmd_PASS, (AUTHORIZATION,), 0, -1),
    b"AUTH": (commands.cmd_AUTH, (AUTHORIZATION,), 0, 2),
    b"STLS": (commands.cmd_STLS, (AUTHORIZATION,), 0, 0),
    b"CAPA": (commands.cmd_CAPA, ANY, 0, 0),
    b"QUIT": (commands.cmd_QUIT, ANY, 0, 0),
    b"STAT": (commands.cmd_STAT, (TRANSACTION,), 0, 0),
    b"LIST": (commands.cmd_LIST, (TRANSACTION,), 0, 1),
    b"UIDL": (commands.cmd_UIDL, (TRANSACTION,), 0, 1),
    b"RETR": (commands.cmd_RETR, (TRANSACTION,), 1, 1),
    b"TOP": (commands.cmd_TOP, (TRANSACTION,), 2, 2),
    b"DELE": (commands.cmd_DELE, (TRANSACTION,), 1, 1),
    b"NOOP": (commands.cmd_NOOP, (TRANSACTION,), 0, 0),
    b"RSET": (commands.cmd_RSET, (TRANSACTION,), 0, 0),
}


class POP3Session(Session):
    """One POP3 connection's protocol state."""

    __slots__ = ("login", "phase", "maildrop", "user", "locked", "status")

    def __init__(self, server: Any, context: SessionContext) -> None:
        settings = context.profile.pop3
        # max_command_size counts the CRLF (MS-STANXPOP3 2.1.2).
        reader = InputReader(ReaderLimits(max_line=max(settings.max_command_size - 2, 1)), literals=False)
        super().__init__(server, context, reader)
        self.login = LoginFlow(self, settings)
        self.phase = AUTHORIZATION
        self.maildrop: Maildrop | None = None
        self.user: bytes | None = None  # from USER, for PASS
        self.locked: str | None = None
        self.status = ""  # of the last response: +OK or -ERR (for the observers)

    # -- output ------------------------------------------------------------------------
    def ok(self, text: bytes = b"") -> None:
        self.status = "+OK"
        self.write(wire.status_line(b"+OK", text))

    def err(self, text: bytes) -> None:
        """``-ERR`` with informational text (MS-STANXPOP3 V0001)."""
        self.status = "-ERR"
        self.write(wire.status_line(b"-ERR", text))

    def multiline(self, lines: list[bytes]) -> None:
        """The body of a multi-line response (short lines, no stuffing needed) and ``.``."""
        self.write(b"".join([line + b"\r\n" for line in lines]) + b".\r\n")

    # -- the core's hooks -----------------------------------------------------------------
    def greeting(self) -> None:
        self.ok(self.context.profile.pop3.banner.encode("utf-8"))
        self.server.setTimeout(self.context.profile.pop3.preauthenticated_timeout)

    def refuse_connection(self, reason: str) -> None:
        # MaxConnections / MaxConnectionFromSingleIP
        self.err(b"[SYS/TEMP] " + reason.encode("ascii") + b"; try again later.")

    def answer_refused(self, refused: Refused) -> None:
        self.err(
            b"Command line too long; the limit is %d octets." % self.context.profile.pop3.max_command_size
        )

    def answer_internal_error(self, command: Command) -> None:
        self.err(b"[SYS/TEMP] Internal server error; the error was logged.")

    def farewell(self) -> None:
        """V0002/V0003: close an idle session without UPDATE; Exchange says why first."""
        if self.context.profile.pop3.autologout_notice:
            self.err(b"Autologout: the connection was idle for too long; closing it.")

    def left(self) -> None:
        self.phase = UPDATE
        self.release_lock()

    def describe_command(self, command: Command) -> str:
        line = command.segments[0]
        assert isinstance(line, bytes)
        words = line.split(None, 2)
        keyword = words[0].upper() if words else b""
        if keyword == b"PASS":
            return f"{_text(words[0])} ****"
        if keyword == b"AUTH" and len(words) > 2:
            return f"{_text(words[0])} {_text(words[1])} ****"
        return _text(line)

    def describe_output(self, data: bytes) -> str:
        if self.login.sasl_active and data.startswith(b"+ ") and data != b"+ \r\n":
            return "+ ****"
        lines = data.split(b"\r\n")
        if len(lines) > 22:  # a long listing: its start and a count
            lines = [*lines[:20], b"<%d more lines>" % (len(lines) - 21)]
        return "\r\n".join(_text(line) for line in lines).rstrip("\r\n")

    def describe_response_line(self, line: bytes) -> str:
        return "*" if line.strip() == b"*" else "****"

    def command_name(self, command: Command) -> str:
        line = command.segments[0]
        words = line.split(None, 1) if isinstance(line, bytes) else []
        return words[0].upper().decode("ascii", "replace") if words else ""

    def answer_fault(self, command: Command, status: str, text: str) -> None:
        """An injected answer: ``-ERR text`` (POP3 has no NO/BAD); after ``BYE``
        the connection closes."""
        self.err(text.encode("utf-8"))
        if status.upper() == "BYE":
            self.close_after_command()

    # -- dispatch ------------------------------------------------------------------------
    def execute(self, command: Command) -> defer.Deferred[Any] | None:
        line = command.segments[0]
        assert isinstance(line, bytes)
        problem, handler, args, rest = self._parse(line)
        if problem is not None:
            self.err(problem)
            return None
        name = line.split(None, 1)[0].upper().decode("ascii", "replace")
        started = self.context.reactor.seconds()
        d = defer.maybeDeferred(handler, self, args, rest)
        if not d.called:
            self.server.setTimeout(None)  # no idle timeout while a command waits
        d.addErrback(self._failed)
        d.addBoth(self._after, name, started)
        return d

    def _parse(self, line: bytes) -> tuple[bytes | None, Any, list[bytes], bytes]:
        settings = self.context.profile.pop3
        try:
            keyword, args, rest = wire.split_command(line, settings.liberal_whitespace)
        except wire.SyntaxProblem as problem:
            return b"Protocol error: " + str(problem).encode(), None, [], b""
        spec = COMMANDS.get(keyword)
        if not keyword or spec is None:
            return b"Protocol error: unknown command.", None, [], b""
        handler, states, fewest, most = spec
        if self.phase not in states:
            return b"Command is not valid in this state.", None, [], b""
        if most >= 0 and not fewest <= len(args) <= most:
            return b"Protocol error: wrong number of arguments for %s." % keyword, None, [], b""
        if not settings.liberal_whitespace and most >= 0 and any(not a for a in args):
            return b"Protocol error: arguments are separated by single spaces.", None, [], b""
        checked = [rest] if keyword == b"PASS" else args[:1] if keyword == b"AUTH" else args
        longest = settings.max_argument_length
        if longest and any(len(a) > longest for a in checked):
            return (b"Protocol error: an argument is longer than %d characters." % longest, None, [], b"")
        return None, handler, args, rest

    def _failed(self, failure: Failure) -> None:
        if failure.check(ConnectionClosed):
            return
        error = failure.value
        assert isinstance(error, Exception)
        if failure.check(commands.CommandError):
            self.err(error.args[0])
        elif failure.check(ResponseLineTooLong):
            self.err(b"AUTH response line too long.")
        elif failure.check(errors.StoreUnavailable):
            self.err(b"[SYS/TEMP] " + str(error).encode("utf-8", "replace"))
        elif failure.check(errors.OverQuota):
            self.err(b"[SYS/PERM] " + str(error).encode("utf-8", "replace"))
        elif failure.check(errors.StoreError):
            self.err(str(error).encode("utf-8", "replace"))
        else:
            failure.raiseException()

    def _after(self, result: object, name: str, started: float) -> object:
        self.report_command(name, self.status, self.context.reactor.seconds() - started)
        if not self.closing and self.phase != UPDATE:
            settings = self.context.profile.pop3
            authenticated = self.phase == TRANSACTION
            timeout = settings.authenticated_timeout if authenticated else settings.preauthenticated_timeout
            # A command that finished at once left the timer running (reset
            # when it arrived): set anew only what changed.
            if self.server.timeOut != timeout:
                self.server.setTimeout(timeout)
        return result

    # -- state ----------------------------------------------------------------------------
    def release_lock(self) -> None:
        """Give up the exclusive maildrop lock (RFC 1939 §4), if held."""
        if self.locked is not None:
            self.context.locks.discard(self.locked)
            self.locked = None


def _text(data: bytes) -> str:
    """Printable text for the protocol log: CR/LF and other controls escaped."""
    text = data.decode("utf-8", "backslashreplace")
    return "".join(c if c >= " " or c == "\t" else f"\\x{ord(c):02x}" for c in text)
