"""LMTPServer: RFC 2033 local delivery on Twisted's ESMTP server.

Twisted has no LMTP server, but its :class:`twisted.mail.smtp.ESMTP` has
most of one.  Used as it is: the greeting and inactivity timeout
(``TimeoutMixin``), command dispatch (``lineReceived`` -> ``do_*``),
``MAIL FROM``/``RCPT TO`` parsing with its reply codes, the
``validateFrom``/``validateTo`` seams, ``do_DATA`` (which asks every
recipient's message factory for an ``IMessageSMTP`` and answers 354),
``IMessageSMTP.connectionLost`` when a client goes away in the middle of
DATA, ``do_RSET``, ``do_QUIT``, and the EHLO reply (behind ``LHLO``).

Replaced, because Twisted offers no seam for them:

- ``dataReceived``: Twisted splits the input into lines of at most 16 KB,
  drops the connection on a longer one and runs pipelined commands before
  earlier ones are answered.  Here commands run one at a time (the next
  starts when the previous one's reply is sent, see :meth:`sendCode`), the
  input waiting meanwhile is bounded (the transport is paused), and the
  DATA section goes chunk by chunk through a
  :class:`~exchmail.lmtp.body.DataReader` into a temporary file, so a
  large message is never held in memory and long lines are fine.
- the end of DATA: SMTP's one reply becomes one reply per accepted
  recipient, in ``RCPT`` order, each sent when that recipient's delivery
  is durable (:class:`~exchmail.lmtp.delivery.Deliverer`).
- ``HELO``/``EHLO`` are refused (RFC 2033 4.1: LMTP uses ``LHLO``), and
  ``AUTH``/``STARTTLS`` are not offered: LMTP is for the local MTA.

Replies carry enhanced status codes (RFC 2034), which RFC 2033 requires;
Twisted's own reply texts get a fitting one added in :meth:`sendCode`.
The session reports to the same :class:`~exchmail.interfaces.ISessionObserver`
objects as IMAP and POP3 (protocol ``"lmtp"``), so ``[logging]
protocol_log`` writes an ``lmtp`` protocol log.
"""

from __future__ import annotations

import email.utils
import re
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer, protocol
from twisted.logger import Logger
from twisted.mail import smtp
from twisted.python.failure import Failure
from zope.interface import implementer

from exchmail.errors import DirectoryUnavailable, InvalidUserName
from exchmail.lmtp.body import DataReader
from exchmail.lmtp.delivery import Deliverer, Reply
from exchmail.lmtp.params import ParameterError, mail_parameters, rcpt_parameters
from exchmail.lmtp.recipients import Recipient, RecipientResolver
from exchmail.lmtp.settings import LMTPSettings
from exchmail.session.observe import SessionInfo, endpoint

#: The longest command line accepted (RFC 5321 4.5.3.1.4 says 512 with room for extensions).
MAX_COMMAND_LINE = 4096
#: Pipelined input held while a command or a delivery runs; past it the transport pauses.
INPUT_HIGH_WATER = 256 * 1024
#: The message of a DATA section stays in memory up to this size, then goes to disk.
SPOOL_MEMORY = 256 * 1024
_VERBS = frozenset(
    {"LHLO", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT", "VRFY", "EXPN", "HELP"}
)
_ENHANCED = re.compile(rb"^[245]\.\d{1,3}\.\d{1,3}( |$)")
#: The enhanced code added to a Twisted reply that has none, by command and reply code.
_DEFAULT_STATUS = {
    ("MAIL", 250): "2.1.0",
    ("RCPT", 250): "2.1.5",
    (None, 500): "5.5.1",
    (None, 501): "5.5.4",
    (None, 503): "5.5.1",
    (None, 553): "5.1.3",
}


@dataclass(frozen=True, eq=False)
class LMTPContext:
    """What every LMTP session of one service shares.

    :ivar settings: the ``[lmtp]`` table.
    :ivar resolver: recipient addresses to accounts.
    :ivar deliverer: puts messages into the store.
    :ivar reactor: ``IReactorTime`` (timeouts, scheduling).
    :ivar observers: :class:`~exchmail.interfaces.ISessionObserver` providers.
    """

    settings: LMTPSettings
    resolver: RecipientResolver
    deliverer: Deliverer
    reactor: Any
    observers: tuple[Any, ...] = ()
    hostname: str = "localhost"


@dataclass
class _Transaction:
    """One mail transaction: the sender and the recipients accepted so far."""

    sender: str
    recipients: list[Recipient] = field(default_factory=list)


@implementer(smtp.IMessage)
class _RecipientMessage:
    """Twisted's per-recipient message object.  The content goes into the
    session's one spool file, not through here; Twisted calls
    :meth:`connectionLost` when the client goes away during DATA."""

    def __init__(self, server: LMTPServer) -> None:
        self.server = server

    def lineReceived(self, line: bytes) -> None:
        """Not used: the session writes the content once for every recipient."""

    def eomReceived(self) -> defer.Deferred[None]:
        """Not used: the session delivers at the end mark."""
        return defer.succeed(None)

    def connectionLost(self) -> None:
        self.server.abort_data()


class LMTPServer(smtp.ESMTP):
    """One LMTP connection."""

    noisy = False  # the session logs what it delivers
    log = Logger(namespace="exchmail.lmtp")

    def __init__(self, context: LMTPContext) -> None:
        super().__init__(chal={}, contextFactory=None)
        self.context = context
        self.host = context.hostname
        self.timeout = max(1, round(context.settings.timeout))
        self.lost = False
        self.info = SessionInfo("lmtp", "", "")
        self.greeted = False
        self._quiet = False
        self.client_name = ""
        self._input = b""
        self._busy = False  # a command or a delivery waits for its reply
        self._pumping = False
        self._paused = False
        self._discarding = False  # the rest of an overlong command line
        self._verb: str | None = None
        self._started = 0.0
        self._transaction: _Transaction | None = None
        self._data: DataReader | None = None
        self._spool: Any = None

    # -- Twisted's seams ---------------------------------------------------------------
    def callLater(self, period: float, func: Any) -> Any:
        """TimeoutMixin's scheduler: the context's reactor."""
        return self.context.reactor.callLater(period, func)

    def greeting(self) -> bytes:
        return self.host + b" LMTP exchmail ready"

    def extensions(self) -> dict[bytes, list[bytes] | None]:
        size = str(self.context.settings.max_message_size).encode("ascii")
        return {b"PIPELINING": None, b"ENHANCEDSTATUSCODES": None, b"8BITMIME": None, b"SIZE": [size]}

    def lookupMethod(self, command: bytes) -> Any:
        verb = command.decode("ascii", "replace").upper()
        return getattr(self, "do_" + verb) if verb in _VERBS else None

    def connectionMade(self) -> None:
        transport = self.transport
        assert transport is not None
        self.info.local = endpoint(transport.getHost())
        self.info.remote = endpoint(transport.getPeer())
        self.info.started = self.context.reactor.seconds()
        for observer in self.context.observers:
            observer.session_opened(self.info)
        super().connectionMade()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        self.lost = True
        self.abort_data()
        super().connectionLost(reason)
        for observer in self.context.observers:
            observer.session_closed(self.info)

    def timeoutConnection(self) -> None:
        self.log.info("LMTP client {address} idle too long; closing", address=self.info.remote)
        self._verb = None
        super().timeoutConnection()

    def sendCode(self, code: int, message: bytes = b"") -> None:
        """Send a reply; the one seam every reply passes.  Adds the enhanced
        status code Twisted's texts lack, tells the observers, and ends the
        running command (the next one may start)."""
        if self._quiet:
            return
        if self._verb not in (None, "LHLO") and code // 100 in (2, 4, 5):
            if not _ENHANCED.match(message):
                status = (
                    _DEFAULT_STATUS.get((self._verb, code))
                    or _DEFAULT_STATUS.get((None, code))
                    or f"{code // 100}.0.0"
                )
                message = status.encode("ascii") + b" " + message
        self._tell_sent(code, message)
        super().sendCode(code, message)
        if self._verb is not None:
            self._command_done(code)

    # -- commands --------------------------------------------------------------------------
    def do_LHLO(self, rest: bytes) -> None:
        # Twisted's do_EHLO reads the peer's ``host``, which Unix sockets lack,
        # so the reply is built here; the reset is Twisted's RSET, unanswered.
        self._forget_transaction()
        self.greeted = True
        self.client_name = rest.decode("ascii", "replace").strip()
        name = self.client_name.encode("ascii", "replace") or b"client"
        self.sendCode(250, self.host + b" greets " + name + b"\n" + self.listExtensions())

    def _forget_transaction(self) -> None:
        """Forget the sender and recipients, as RSET does, without its reply."""
        self._transaction = None
        self._quiet = True
        try:
            smtp.SMTP.do_RSET(self, b"")
        finally:
            self._quiet = False

    def do_HELO(self, rest: bytes) -> None:
        self.sendCode(500, b"5.5.1 This is LMTP (RFC 2033): say LHLO")

    do_EHLO = do_HELO

    def do_NOOP(self, rest: bytes) -> None:
        self.sendCode(250, b"2.0.0 OK")

    def do_RSET(self, rest: bytes) -> None:
        if self._refuse_argument(rest):
            return
        self._transaction = None
        super().do_RSET(rest)

    def do_QUIT(self, rest: bytes) -> None:
        if not self._refuse_argument(rest):
            super().do_QUIT(rest)

    def do_VRFY(self, rest: bytes) -> None:
        # RFC 5321 3.5.3: the usual answer of a server that does not verify.
        self.sendCode(252, b"2.5.0 Cannot VRFY user, but will accept message and attempt delivery")

    def do_EXPN(self, rest: bytes) -> None:
        self.sendCode(502, b"5.5.1 EXPN is not implemented")

    def do_HELP(self, rest: bytes) -> None:
        self.sendCode(214, b"2.0.0 LMTP (RFC 2033): LHLO MAIL RCPT DATA RSET NOOP QUIT VRFY")

    def _refuse_argument(self, rest: bytes) -> bool:
        """Answer 501 if a command that takes no argument got one (RFC 5321 4.1.1)."""
        if rest.strip():
            self.sendCode(501, b"5.5.4 This command takes no argument")
            return True
        return False

    def do_MAIL(self, rest: bytes) -> None:
        if not self.greeted:
            self.sendCode(503, b"5.5.1 Say LHLO first")
            return
        try:
            mail_parameters(rest, self.context.settings.max_message_size)
        except ParameterError as refused:
            self.sendCode(refused.code, refused.text.encode("ascii"))
            return
        super().do_MAIL(rest)  # validateFrom starts the transaction (or 503: one at a time)

    def do_RCPT(self, rest: bytes) -> None:
        try:
            rcpt_parameters(rest)
        except ParameterError as refused:
            self.sendCode(refused.code, refused.text.encode("ascii"))
            return
        super().do_RCPT(rest)

    def validateFrom(self, helo: Any, origin: smtp.Address) -> smtp.Address:
        """Any sender is accepted (the MTA has checked it); a transaction starts."""
        self._transaction = _Transaction(str(origin))
        return origin

    def validateTo(self, user: smtp.User) -> defer.Deferred[Any]:
        """Resolve the recipient; the result is Twisted's message factory."""
        transaction = self._transaction
        assert transaction is not None  # do_RCPT checks the sender first
        address = str(user.dest)
        if len(transaction.recipients) >= self.context.settings.max_recipients:
            return defer.fail(smtp.SMTPServerError(452, "4.5.3 Too many recipients"))
        d = self.context.resolver.resolve(address)

        def resolved(recipient: Recipient | None) -> Any:
            if recipient is None:
                raise smtp.SMTPServerError(550, f"5.1.1 <{address}> no such user here")
            transaction.recipients.append(recipient)
            return lambda: _RecipientMessage(self)

        def failed(failure: Failure) -> Any:
            if failure.check(smtp.SMTPServerError):
                return failure
            if failure.check(InvalidUserName):
                raise smtp.SMTPServerError(550, f"5.1.1 <{address}> no such user here")
            if failure.check(DirectoryUnavailable):
                raise smtp.SMTPServerError(451, "4.4.3 Directory unavailable, try again later")
            self.log.failure("cannot check recipient {address}", failure, address=address)
            raise smtp.SMTPServerError(451, "4.3.0 Internal error, try again later")

        return d.addCallbacks(resolved, failed)

    def receivedHeader(self, helo: Any, origin: Any, recipients: Any) -> None:
        """None: the session writes one trace header for all recipients."""
        return None

    def do_DATA(self, rest: bytes) -> None:
        if self._refuse_argument(rest):
            return
        transaction = self._transaction
        super().do_DATA(rest)  # 503 without recipients; else 354 and mode DATA
        if self.mode != smtp.DATA or transaction is None:
            return  # refused: the transaction (sender, recipients so far) stays open
        self._transaction = None
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)
        self._spool.write(self._trace_headers(transaction))
        self._data = DataReader(self._spool, self.context.settings.max_message_size)
        self._recipients = transaction.recipients

    def _trace_headers(self, transaction: _Transaction) -> bytes:
        helo = self.client_name
        peer = self.info.remote.rpartition(":")[0] or "local"
        recipients = self._recipients_for_trace(transaction)
        stamp = email.utils.formatdate(self.context.reactor.seconds(), localtime=True)
        return (
            f"Return-Path: <{transaction.sender}>\r\n"
            f"Received: from {helo or 'unknown'} ([{peer}])\r\n"
            f"\tby {self.host.decode('ascii', 'replace')} (exchmail) with LMTP"
            f" id {self.info.session_id}{recipients};\r\n\t{stamp}\r\n"
        ).encode("utf-8", "replace")

    @staticmethod
    def _recipients_for_trace(transaction: _Transaction) -> str:
        if len(transaction.recipients) == 1:
            return f"\r\n\tfor <{transaction.recipients[0].address}>"
        return ""

    # -- input ---------------------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        self.info.bytes_in += len(data)
        self.resetTimeout()
        self._input += data
        self._pump()

    def _pump(self) -> None:
        """Feed the DATA section, or run the next command, while nothing waits."""
        if self._pumping:
            return
        self._pumping = True
        try:
            while not self._busy and self._input and not self._closing():
                if self._data is not None:
                    rest = self._data.feed(self._input)
                    self._input = b""
                    if rest is None:
                        break
                    self._input = rest
                    self._end_of_data()
                elif not self._next_command():
                    break
        finally:
            self._pumping = False
        self._flow_control()

    def _closing(self) -> bool:
        return self.lost or self.transport is None or bool(getattr(self.transport, "disconnecting", False))

    def _next_command(self) -> bool:
        """Run the next complete command line; False if there is none yet."""
        end = self._input.find(b"\r\n")
        if end < 0:
            if len(self._input) <= MAX_COMMAND_LINE:
                return False
            # Drop the overlong line as it comes, answering once, at its end.
            self._input = self._input[-1:] if self._input.endswith(b"\r") else b""
            self._discarding = True
            return False
        line, self._input = self._input[:end], self._input[end + 2 :]
        if self._discarding or len(line) > MAX_COMMAND_LINE:
            self._discarding = False
            self._run(b"", lambda: self.sendCode(500, b"5.5.2 Line too long"))
        else:
            self._run(line, lambda: self.lineReceived(line))
        return True

    def _run(self, line: bytes, action: Any) -> None:
        verb = line.split(None, 1)[0].decode("ascii", "replace").upper() if line.strip() else ""
        self._verb = verb or "?"
        self._busy = True
        self._started = time.perf_counter()
        self._tell_received(line)
        action()

    def _command_done(self, code: int) -> None:
        verb, self._verb = self._verb, None
        self._busy = False
        if verb is not None:
            for observer in self.context.observers:
                observer.command_done(self.info, verb, str(code), time.perf_counter() - self._started)
        if not self._pumping:
            self._pump()

    def _flow_control(self) -> None:
        transport: Any = self.transport
        if transport is None or self.lost:
            return
        if self._busy and len(self._input) > INPUT_HIGH_WATER and not self._paused:
            self._paused = True
            transport.pauseProducing()
        elif self._paused and not self._busy:
            self._paused = False
            transport.resumeProducing()

    # -- the end of DATA ------------------------------------------------------------------
    def _end_of_data(self) -> None:
        reader, spool, recipients = self._data, self._spool, self._recipients
        assert reader is not None
        self._data, self._spool = None, None
        self.mode = smtp.COMMAND
        self._busy = True
        self.setTimeout(None)  # the client waits for us now
        self._tell_received_data(reader.size)
        d = self._deliver_all(reader, spool, recipients)
        d.addErrback(self._delivery_bug)
        d.addBoth(self._delivered, spool)

    @defer.inlineCallbacks
    def _deliver_all(self, reader: DataReader, spool: Any, recipients: list[Recipient]) -> Any:
        """Deliver to every recipient in turn, replying to each as soon as it is done."""
        for recipient in recipients:
            if reader.too_big:
                reply = Reply(552, "5.3.4", f"<{recipient.address}> message too big")
            else:
                reply = yield self.context.deliverer.deliver(recipient, spool)
            self._send_reply(reply)

    def _send_reply(self, reply: Reply) -> None:
        started = self._started
        self._verb = None
        self._tell_sent(reply.code, reply.message())
        smtp.ESMTP.sendCode(self, reply.code, reply.message())
        for observer in self.context.observers:
            observer.command_done(self.info, "DATA", str(reply.code), time.perf_counter() - started)

    def _delivery_bug(self, failure: Failure) -> None:
        self.log.failure("LMTP delivery failed", failure)
        transport: Any = self.transport
        if transport is not None:
            transport.loseConnection()  # the client retries the whole transaction

    def _delivered(self, _: object, spool: Any) -> None:
        spool.close()
        self._busy = False
        if not self._closing():
            self.setTimeout(self.timeout)
        self._pump()

    def abort_data(self) -> None:
        """The client went away during DATA: throw the partial message away."""
        if self._spool is not None:
            self._spool.close()
        self._data, self._spool = None, None

    # -- observers --------------------------------------------------------------------------
    def _tell_received(self, line: bytes) -> None:
        for observer in self.context.observers:
            if observer.transcript:
                observer.received(self.info, line.decode("utf-8", "backslashreplace"))

    def _tell_received_data(self, size: int) -> None:
        for observer in self.context.observers:
            if observer.transcript:
                observer.received(self.info, f"<message data: {size} octets>")

    def _tell_sent(self, code: int, message: bytes) -> None:
        self.info.bytes_out += len(message) + 6
        for observer in self.context.observers:
            if observer.transcript:
                text = message.decode("utf-8", "backslashreplace").replace("\n", " | ")
                observer.sent(self.info, f"{code} {text}")


class LMTPFactory(protocol.ServerFactory):
    """Builds an :class:`LMTPServer` per connection, all sharing one context."""

    def __init__(self, context: LMTPContext) -> None:
        self.context = context

    def buildProtocol(self, addr: Any) -> LMTPServer:
        server = LMTPServer(self.context)
        server.factory = self
        return server


def make_context(
    settings: LMTPSettings, store: Any, directory: Any, reactor: Any, observers: tuple[Any, ...] = ()
) -> LMTPContext:
    """The :class:`LMTPContext` of a service delivering into ``store`` for the
    users ``directory`` (the ``[auth]`` checker) knows.

    :raises ConfigError: if ``directory`` cannot tell which users exist.
    """
    resolver = RecipientResolver(directory, settings.recipient_delimiter, settings.domains)
    deliverer = Deliverer(store, settings.detail_folder, settings.over_quota)
    hostname = settings.hostname or smtp.DNSNAME.decode("ascii", "replace")
    return LMTPContext(settings, resolver, deliverer, reactor, observers, hostname)
