"""Session: one connection's plumbing, the same for IMAP and POP3.

The Twisted protocol objects (:class:`exchmail.imap.server.IMAPServer`, a
``twisted.mail.imap4.IMAP4Server``, and :class:`exchmail.pop3.server.POP3Server`,
a ``twisted.mail.pop3.POP3``) stay thin: they forward the connection's
events to a :class:`Session` subclass, which does the rest:

- admission (connection limits) and the greeting;
- a bounded :class:`~exchmail.session.reader.InputReader` with
  back-pressure: while a command runs, further input waits in the buffer,
  and past ``INPUT_HIGH_WATER`` octets the transport stops reading;
- strictly serial dispatch: one command at a time, in order;
- :meth:`await_line` for the lines a running command waits for (SASL
  responses, IDLE's ``DONE``);
- output queued and written in one transport call per command;
- timeouts (through the protocol's ``TimeoutMixin``);
- STARTTLS/STLS (:meth:`start_tls`: pipelined plaintext is dropped);
- the internal-error policy: any unexpected exception from a command is
  logged with its traceback and answered by :meth:`answer_internal_error`
  (``NO [SERVERBUG]`` / ``-ERR [SYS/TEMP]``); the session goes on;
- observers (protocol log, metrics) told of what passes;
- fault injection for client tests, only when the context has ``faults``
  (see :mod:`exchmail.session.faults`).

Subclasses implement the protocol: :meth:`greeting`, :meth:`execute`,
:meth:`answer_refused`, :meth:`answer_internal_error`,
:meth:`continue_literal` and :meth:`farewell`.
"""

from __future__ import annotations

import time
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from exchmail.session.admission import Admission
from exchmail.session.context import SessionContext
from exchmail.session.faults import apply_fault
from exchmail.session.observe import SessionInfo, endpoint, tls_version
from exchmail.session.reader import (
    Command,
    ContinueLiteral,
    InputReader,
    Line,
    LineTooLong,
    Refused,
)
from exchmail.session.transport import enable_nodelay
from exchmail.tls.context import is_tls

#: A client that keeps sending while a command runs is paused past this.
INPUT_HIGH_WATER = 1024 * 1024


class ConnectionClosed(Exception):
    """The client went away while a command waited for its input."""


class ResponseLineTooLong(Exception):
    """A line a command waited for (a SASL response, DONE) was too long."""


@implementer(IPushProducer)
class WriteGate:
    """Tells a long response when the transport's send buffer is full."""

    def __init__(self) -> None:
        self.paused = False
        self._waiters: list[defer.Deferred[None]] = []

    def wait(self) -> defer.Deferred[None]:
        """A Deferred that fires once writing may go on."""
        if not self.paused:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._waiters.append(d)
        return d

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)

    def stopProducing(self) -> None:
        self.resumeProducing()


class Session:
    """The protocol-independent half of one connection.

    :param server: the Twisted protocol object (owns ``transport`` and the
        ``TimeoutMixin`` methods ``setTimeout``/``resetTimeout``).
    :param context: the service's :class:`SessionContext`.
    :param reader: the input reader, with the protocol's limits.
    """

    log = Logger(namespace="exchmail.session")
    # Slots: 10,000 idle sessions each save the dictionary of their ~30 attributes.
    # (__weakref__: observers may still hold sessions weakly, as before.)
    __slots__ = (
        "server",
        "context",
        "reader",
        "admission",
        "info",
        "secure",
        "closing",
        "write_gate",
        "_busy",
        "_paused",
        "_waiter",
        "_waiter_limit",
        "_output",
        "_output_size",
        "_logout",
        "_last_words",
        "_cut",
        "_transcripts",
        "__weakref__",
    )

    def __init__(self, server: Any, context: SessionContext, reader: InputReader) -> None:
        self.server = server
        self.context = context
        self.reader = reader
        self.admission = Admission(context.limits)
        self.info = SessionInfo(context.protocol, "", "")
        self.secure = False
        self.closing = False
        self.write_gate = WriteGate()
        self._busy = False
        self._paused = False
        self._waiter: defer.Deferred[bytes] | None = None
        self._waiter_limit: int | None = None  # the awaited line's own length limit
        self._output: list[bytes] = []
        self._output_size = 0
        self._logout: Any = None
        self._last_words: bytes | None = None
        self._cut: int | None = None  # fault injection: octets left before the connection drops
        self._transcripts = tuple(o for o in context.observers if o.transcript)

    # -- the protocol's hooks ---------------------------------------------------------
    def greeting(self) -> None:
        """Queue the greeting."""
        raise NotImplementedError

    def refuse_connection(self, reason: str) -> None:
        """Queue the answer to a connection over the connection limits."""
        raise NotImplementedError

    def execute(self, command: Command) -> defer.Deferred[Any] | None:
        """Parse and run one command; answer it (errors included) and return
        a Deferred (or None) that fires when it is done.  Raise or fail only
        for internal errors."""
        raise NotImplementedError

    def answer_refused(self, refused: Refused) -> None:
        """Queue the answer to a command the reader refused (too long)."""
        raise NotImplementedError

    def answer_internal_error(self, command: Command) -> None:
        """Queue the answer to a command that failed with an internal error."""
        raise NotImplementedError

    def continue_literal(self, size: int) -> None:
        """Queue the continuation request for a synchronizing literal."""

    def farewell(self) -> None:
        """Queue the last words of a session closed for idling."""

    def describe_command(self, command: Command) -> str:
        """The command as the protocol log shows it (secrets hidden)."""
        return ""

    def command_name(self, command: Command) -> str:
        """The command's name for fault rules (``"UID FETCH"``, ``"RETR"``; ``""``
        if it has none); asked only when the context has ``faults``."""
        return ""

    def answer_fault(self, command: Command, status: str, text: str) -> None:
        """Answer ``command`` with an injected ``status`` (``NO``, ``BAD`` or
        ``BYE``, which also closes the connection) and ``text``."""
        raise NotImplementedError

    def describe_output(self, data: bytes) -> str:
        """Output as the protocol log shows it (message data as its size)."""
        return data.decode("utf-8", "backslashreplace").rstrip("\r\n")

    # -- connection life cycle -------------------------------------------------------------
    def connection_made(self) -> None:
        transport = self.server.transport
        enable_nodelay(transport)
        self.info.local = endpoint(transport.getHost())
        self.info.remote = endpoint(transport.getPeer())
        self.info.started = self.context.reactor.seconds()
        self.secure = self.info.secure = is_tls(transport)
        transport.registerProducer(self.write_gate, True)
        for observer in self.context.observers:
            observer.session_opened(self.info)
        refused = self.admission.admit(self.client_address)
        if refused is not None:
            self.refuse_connection(refused)
            self.close()
            return
        self.greeting()
        self.flush()

    @property
    def busy(self) -> bool:
        """Whether a command is running."""
        return self._busy

    @property
    def client_address(self) -> str:
        """The client's IP address ('' if unknown)."""
        return str(getattr(self.server.transport.getPeer(), "host", ""))

    def connection_lost(self, reason: Failure | None) -> None:
        self.closing = True
        self.server.setTimeout(None)
        self.reader.close()
        self.admission.release()
        self.left()
        if self._logout is not None:
            logout, self._logout = self._logout, None
            logout()
        if self._waiter is not None:
            waiter, self._waiter = self._waiter, None
            waiter.errback(ConnectionClosed())
        if self.secure and self.context.observers:
            self.info.tls_version = tls_version(self.server.transport)
        for observer in self.context.observers:
            observer.session_closed(self.info)

    def left(self) -> None:
        """The connection ended: release protocol state (a selected mailbox, locks)."""

    def timed_out(self) -> None:
        """The protocol's ``timeoutConnection``: say goodbye and close."""
        self.log.info(
            "{protocol} session from {address} idle too long; closing it",
            protocol=self.context.protocol,
            address=self.client_address,
        )
        self.farewell()
        self.close()

    def set_logout(self, logout: Any) -> None:
        """The avatar's logout callable, called when the connection ends."""
        self._logout = logout

    def close_after_command(self, last_words: bytes = b"") -> None:
        """Close the connection once the running command is answered, after
        writing ``last_words`` (e.g. a BYE line)."""
        self._last_words = last_words

    def close(self) -> None:
        """Flush what is queued and close the connection; no further input is read."""
        self.closing = True
        self.reader.clear()
        self.flush()
        self.server.transport.loseConnection()

    # -- output ---------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Queue response octets; they go out at :meth:`flush` (at the latest
        when the command ends)."""
        self._output.append(data)
        self._output_size += len(data)
        if self._transcripts:
            text = self.describe_output(data)
            for observer in self._transcripts:
                observer.sent(self.info, text)

    def write_data(self, data: bytes) -> None:
        """Queue message data: the protocol log shows only its size."""
        self._output.append(data)
        self._output_size += len(data)
        self.note_data_sent(len(data))

    def write_line(self, line: bytes) -> None:
        """Queue one response line (CRLF added)."""
        self.write(line + b"\r\n")

    def flush(self) -> None:
        """Write everything queued in one transport call."""
        if self._output:
            output, self._output = self._output, []
            self.info.bytes_out += self._output_size
            self._output_size = 0
            transport = self.server.transport
            if self._cut is not None:
                self._write_cut(b"".join(output))
            elif transport is not None:
                transport.writeSequence(output)

    @property
    def buffered_output(self) -> int:
        """Octets queued and not flushed yet."""
        return self._output_size

    def flush_and_wait(self) -> defer.Deferred[None]:
        """Flush; the Deferred fires when the client is reading again (back-pressure)."""
        self.flush()
        return self.write_gate.wait()

    def write_now(self, data: bytes) -> defer.Deferred[None]:
        """Write ``data`` at once (streamed message data, not logged as text);
        the Deferred fires when the client is reading again."""
        self.flush()
        self.info.bytes_out += len(data)
        if self._cut is not None:
            self._write_cut(data)
        else:
            self.server.transport.write(data)
        return self.write_gate.wait()

    def cut_output_after(self, octets: int) -> None:
        """Fault injection: let ``octets`` more octets of output through, then
        drop the connection (also when the running command ends first)."""
        self._cut = max(octets, 0)
        self.close_after_command()

    def _write_cut(self, data: bytes) -> None:
        transport = self.server.transport
        allowed = self._cut or 0
        if allowed and transport is not None:
            transport.write(data[:allowed])
        self._cut = max(allowed - len(data), 0)
        if len(data) >= allowed and not self.closing:
            # What is written later is discarded: _cut stays at 0.
            self.closing = True
            self.reader.clear()
            if transport is not None:
                transport.loseConnection()

    def note_data_sent(self, size: int) -> None:
        """Tell the protocol log that ``size`` octets of message data went out."""
        for observer in self._transcripts:
            observer.sent(self.info, f"<message data: {size} octets>")

    # -- input ------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.info.bytes_in += len(data)
        self.reader.feed(data)
        self._pump()

    def _pump(self) -> None:
        """Hand complete input to the waiting command, or run the next command."""
        while not self.closing:
            if self._waiter is not None:
                line = self.reader.next_line(self._waiter_limit)
                if line is None:
                    break
                self._deliver_line(line)
                continue
            if self._busy:
                break
            event = self.reader.next_event()
            if event is None:
                break
            self.server.resetTimeout()
            self._handle(event)
        if self._busy and self.reader.buffered > INPUT_HIGH_WATER and not self._paused:
            self._paused = True
            self.server.transport.pauseProducing()

    def _handle(self, event: Any) -> None:
        if isinstance(event, Command):
            self._run(event)
        elif isinstance(event, ContinueLiteral):
            self.continue_literal(event.size)
            self.flush()
        elif isinstance(event, Refused):
            self.answer_refused(event)
            self.flush()

    def _deliver_line(self, event: Line | LineTooLong) -> None:
        self.server.resetTimeout()
        waiter, self._waiter = self._waiter, None
        assert waiter is not None
        if isinstance(event, LineTooLong):
            waiter.errback(ResponseLineTooLong())
        else:
            if self._transcripts:
                text = self.describe_response_line(event.data)
                for observer in self._transcripts:
                    observer.received(self.info, text)
            waiter.callback(event.data)

    def describe_response_line(self, line: bytes) -> str:
        """A line a command waited for, as the protocol log shows it."""
        return line.decode("utf-8", "backslashreplace")

    def await_line(self, max_line: int | None = None) -> defer.Deferred[bytes]:
        """Flush output, then hand the client's next line to the returned Deferred
        (it fails with :class:`ResponseLineTooLong` or :class:`ConnectionClosed`).

        ``max_line`` replaces the command-line limit for this line (SASL
        responses may be longer than any command: RFC 5034 §4).
        """
        self.flush()
        d: defer.Deferred[bytes] = defer.Deferred()
        self._waiter = d
        self._waiter_limit = max_line
        if self.reader.buffered:
            self.context.reactor.callLater(0, self._pump)
        return d

    # -- running commands ------------------------------------------------------------------
    def _run(self, command: Command) -> None:
        self._busy = True
        started = time.perf_counter()
        if self._transcripts:
            text = self.describe_command(command)
            for observer in self._transcripts:
                observer.received(self.info, text)
        faults = self.context.faults
        action = None if faults is None else faults.command_starting(self.info, self.command_name(command))
        if action is None:
            d = defer.maybeDeferred(self.execute, command)
        else:
            d = defer.maybeDeferred(apply_fault, self, command, action)
        d.addErrback(self._internal_error, command)
        d.addBoth(self._finished, command, started)

    def _internal_error(self, failure: Failure, command: Command) -> None:
        if failure.check(ConnectionClosed):
            return
        self.log.failure("internal error in a {protocol} command", failure, protocol=self.context.protocol)
        if not self.closing:
            self.answer_internal_error(command)

    def _finished(self, _: object, command: Command, started: float) -> None:
        command.close()
        self._busy = False
        self.command_finished(time.perf_counter() - started)
        if self._last_words is not None and not self.closing:
            self.write(self._last_words)
            self.close()
        self.flush()
        if self.closing:
            return
        if self._paused:
            self._paused = False
            self.server.transport.resumeProducing()
        if self.reader.buffered:
            # Later, not now: a client pipelining many commands must not
            # make this call stack grow, nor starve other connections.
            self.context.reactor.callLater(0, self._pump)

    def command_finished(self, seconds: float) -> None:
        """After each command (before the output is flushed): a hook for subclasses."""

    def report_command(self, name: str, status: str, seconds: float) -> None:
        """Tell the observers how a command ended."""
        for observer in self.context.observers:
            observer.command_done(self.info, name, status, seconds)

    # -- TLS --------------------------------------------------------------------------------
    def can_start_tls(self) -> bool:
        """Whether STARTTLS/STLS is offered now: TLS configured and not active yet."""
        return self.context.tls is not None and not self.secure

    def start_tls(self) -> None:
        """After the OK is flushed: forget pipelined plaintext (RFC 2595 §3.1,
        CVE-2011-0411 class) and start the TLS handshake."""
        self.flush()
        self.reader.clear()
        self.secure = self.info.secure = True
        self.server.transport.startTLS(self.context.tls)
