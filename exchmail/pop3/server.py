"""POP3Server: Twisted's POP3 protocol with exchmail's reader, dispatcher and handlers.

Twisted's :class:`~twisted.mail.pop3.POP3` gives the connection life
cycle, the portal/avatar hand-off (``portal``, ``mbox``, ``_onLogout``)
and the inactivity timer (``TimeoutMixin``).  Its input path
(``LineOnlyReceiver``: drops the connection on long lines, splits on
single spaces, runs commands while others are pending) and its ``do_*``
handlers (APOP, joke capabilities, exception text in ``-ERR`` lines,
byte-stuffing that misses a ``.`` at a chunk boundary) cannot express
MS-STANXPOP3, so both are replaced here: ``dataReceived`` feeds a bounded
line reader, commands run strictly one after the other, and handlers are
``cmd_NAME(args, rest)`` methods.  Twisted's ``do_*`` methods are never
dispatched to.

Profile settings are read at the start of each command.  Internal errors
are answered ``-ERR [SYS/TEMP]`` and logged with their traceback.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Callable
from typing import Any

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.logger import Logger
from twisted.mail import pop3
from twisted.python.failure import Failure

from exchmail import errors
from exchmail.auth import sasl
from exchmail.auth.throttle import guarded_login
from exchmail.pop3 import wire
from exchmail.pop3.avatar import Maildrop
from exchmail.profile import Profile
from exchmail.profile.settings import SortOrder
from exchmail.session.admission import Admission, ConnectionLimits
from exchmail.session.transport import enable_nodelay
from exchmail.tls.context import is_tls

AUTHORIZATION, TRANSACTION, UPDATE, CLOSED = "AUTHORIZATION", "TRANSACTION", "UPDATE", "CLOSED"
ANY = (AUTHORIZATION, TRANSACTION)

#: keyword -> (states, fewest arguments, most arguments; -1: the rest of the line)
COMMANDS: dict[bytes, tuple[tuple[str, ...], int, int]] = {
    b"USER": ((AUTHORIZATION,), 1, 1), b"PASS": ((AUTHORIZATION,), 0, -1),
    b"AUTH": ((AUTHORIZATION,), 0, 2), b"CAPA": (ANY, 0, 0), b"QUIT": (ANY, 0, 0),
    b"STLS": ((AUTHORIZATION,), 0, 0),
    b"STAT": ((TRANSACTION,), 0, 0), b"LIST": ((TRANSACTION,), 0, 1),
    b"RETR": ((TRANSACTION,), 1, 1), b"DELE": ((TRANSACTION,), 1, 1),
    b"NOOP": ((TRANSACTION,), 0, 0), b"RSET": ((TRANSACTION,), 0, 0),
    b"TOP": ((TRANSACTION,), 2, 2), b"UIDL": ((TRANSACTION,), 0, 1),
}

# Exchange's LoginType values under which USER/PASS is refused before TLS
# (the same rule as IMAP LOGIN), and the one that also refuses SASL PLAIN.
_PLAINTEXT_NEEDS_TLS = {"SecureLogin", "PlainTextAuthentication"}
_SASL_NEEDS_TLS = "SecureLogin"
INPUT_HIGH_WATER = 64 * 1024
LOGIN_FAILED = b"[AUTH] Logon failure: unknown user name or bad password."
SIGN_OFF = b"Microsoft Exchange Server 2010 POP3 server signing off."


class CommandError(Exception):
    """Answer the command ``-ERR`` with this text (bytes)."""


def _sasl_decode(response: bytes, initial: bool = False) -> bytes:
    """A SASL response decoded (RFC 5034): ``*`` cancels, ``=`` is an empty initial response."""
    response = response.strip(b" \t")
    if response == b"*" and not initial:
        raise CommandError(b"AUTH cancelled by the client.")
    if response == b"=" and initial:
        return b""
    try:
        return base64.b64decode(response, validate=True)
    except (binascii.Error, ValueError):
        raise CommandError(b"Invalid base64 in the AUTH response.") from None


class POP3Server(pop3.POP3):
    """The exchmail POP3 protocol; one instance per connection."""

    log = Logger(namespace="exchmail.pop3")
    transport: Any
    portal: Any
    factory: Any
    magic = b""  # no APOP timestamp in the greeting (MS-STANXPOP3 V0012)
    login_type = "PlainTextLogin"
    startedTLS = False
    #: A shared :class:`exchmail.auth.throttle.LoginThrottle` (the factory's), or None.
    throttle: Any = None
    tls: Any = None  # an exchmail.tls.ServerTLS when TLS is configured (STLS offered)

    def __init__(self, profile: Profile, portal: Any, reactor: Any,
                 challengers: dict[bytes, Callable[[], Any]] | None = None,
                 locks: set[str] | None = None) -> None:
        self.profile = profile
        self.portal = portal
        self.reactor = reactor
        self.challengers = (challengers if challengers is not None
                            else sasl.challengers(profile.pop3.sasl_mechanisms, portal))
        self.locks = locks if locks is not None else set()
        self.phase = AUTHORIZATION
        # TimeoutMixin overwrites ``timeOut`` on every setTimeout(); this is the limit.
        self.idle_limit: float = profile.pop3.preauthenticated_timeout
        self.mbox: Maildrop | None = None
        self._user: bytes | None = None
        self._failed_logins = 0
        self._locked: str | None = None
        self._buffer = b""
        self._discarding = False
        self._busy = False
        self._input_paused = False
        self._await_line: defer.Deferred[bytes] | None = None
        self._sender: wire.MessageSender | None = None
        self.admission = Admission(ConnectionLimits(0, 0, 0))  # the factory shares its limits

    def callLater(self, period: float, func: Callable[[], Any]) -> Any:
        """TimeoutMixin's scheduler: the injected reactor, not the global one."""
        return self.reactor.callLater(period, func)

    # -- connection ------------------------------------------------------------
    def connectionMade(self) -> None:
        enable_nodelay(self.transport)
        self.startedTLS = is_tls(self.transport)  # an implicit TLS listener (995)
        ip = str(getattr(self.transport.getPeer(), "host", ""))
        refused = self.admission.admit(ip)
        if refused is not None:  # MaxConnections / MaxConnectionFromSingleIP
            self.send_err(b"[SYS/TEMP] " + refused.encode("ascii") + b"; try again later.")
            self._close()
            return
        self.send_ok(self.profile.pop3.banner.encode("utf-8"))
        self.setTimeout(self.idle_limit)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.phase = CLOSED
        self.setTimeout(None)
        self._release_lock()
        self.admission.release()
        if self._onLogout is not None:
            self._onLogout()
            self._onLogout = None
        if self._await_line is not None:
            pending, self._await_line = self._await_line, None
            pending.errback(ConnectionError("connection lost"))

    def timeoutConnection(self) -> None:
        """V0002/V0003: close an idle session, without UPDATE; Exchange says why first."""
        if self.profile.pop3.autologout_notice:
            self.send_err(b"Autologout: the connection was idle for too long; closing it.")
        self.log.info("POP3 session idle too long; closing it")
        self._close()

    def _close(self) -> None:
        self.phase = CLOSED
        self._buffer = b""
        self.transport.loseConnection()

    # -- output ------------------------------------------------------------------
    def send_ok(self, text: bytes = b"") -> None:
        self.transport.write(wire.status_line(b"+OK", text))

    def send_err(self, text: bytes) -> None:
        """``-ERR`` with informational text (MS-STANXPOP3 V0001)."""
        self.transport.write(wire.status_line(b"-ERR", text))

    def send_lines(self, lines: list[bytes]) -> None:
        """The body of a multi-line response (short lines, no stuffing needed) and ``.``."""
        self.transport.writeSequence([line + b"\r\n" for line in lines] + [b".\r\n"])

    # -- input -------------------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        if self.phase in (UPDATE, CLOSED):
            return
        self._buffer += data
        self._process_input()

    def _process_input(self) -> None:
        while self._buffer and (not self._busy or self._await_line is not None):
            if self.phase in (UPDATE, CLOSED):
                self._buffer = b""
                return
            limit = self.profile.pop3.max_command_size
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) + 2 > limit:
                    self._discarding = True  # answered when the line ends
                    self._buffer = b""
                break
            line, self._buffer = self._buffer[:end], self._buffer[end + 1:]
            line = line[:-1] if line.endswith(b"\r") else line
            self.resetTimeout()
            if self._discarding or len(line) + 2 > limit:
                self._discarding = False
                if self._await_line is not None:  # a SASL response: AUTH answers
                    pending, self._await_line = self._await_line, None
                    pending.errback(CommandError(b"AUTH response line too long."))
                    continue
                self.send_err(b"Command line too long; the limit is %d octets." % limit)
                continue
            self._line_received(line)
        if self._busy and len(self._buffer) > INPUT_HIGH_WATER and not self._input_paused:
            self._input_paused = True
            self.transport.pauseProducing()

    def _line_received(self, line: bytes) -> None:
        if self._await_line is not None:
            pending, self._await_line = self._await_line, None
            pending.callback(line)
            return
        settings = self.profile.pop3
        try:
            keyword, args, rest = wire.split_command(line, settings.liberal_whitespace)
        except wire.SyntaxProblem as problem:
            self.send_err(b"Protocol error: " + str(problem).encode())
            return
        spec = COMMANDS.get(keyword)
        if not keyword or spec is None:
            self.send_err(b"Protocol error: unknown command.")
            return
        states, fewest, most = spec
        if self.phase not in states:
            self.send_err(b"Command is not valid in this state.")
            return
        if most >= 0 and not fewest <= len(args) <= most:
            self.send_err(b"Protocol error: wrong number of arguments for %s." % keyword)
            return
        if not settings.liberal_whitespace and most >= 0 and any(not a for a in args):
            self.send_err(b"Protocol error: arguments are separated by single spaces.")
            return
        longest = settings.max_argument_length
        checked = args if keyword != b"AUTH" else args[:1]  # RFC 5034: initial response
        if keyword == b"PASS":
            checked = [rest]
        if longest and any(len(a) > longest for a in checked):
            self.send_err(b"Protocol error: an argument is longer than %d characters." % longest)
            return
        handler = getattr(self, "cmd_" + keyword.decode("ascii"))
        self._run(handler, args, rest)

    # -- dispatch -------------------------------------------------------------------
    def _run(self, handler: Callable[..., Any], args: list[bytes], rest: bytes) -> None:
        self._busy = True
        self.setTimeout(None)
        d = defer.maybeDeferred(handler, args, rest)
        d.addErrback(self._failed)
        d.addErrback(self._internal_error)
        d.addBoth(self._done)

    def _failed(self, failure: Failure) -> None:
        if failure.check(ConnectionError):
            return
        if isinstance(failure.value, CommandError):
            self.send_err(failure.value.args[0])
        elif failure.check(errors.OverQuota):
            self.send_err(b"[SYS/PERM] " + str(failure.value).encode("utf-8", "replace"))
        elif failure.check(errors.StoreError):
            self.send_err(str(failure.value).encode("utf-8", "replace"))
        else:
            failure.raiseException()

    def _internal_error(self, failure: Failure) -> None:
        self.log.failure("internal error in a POP3 command", failure)
        if self.phase != CLOSED:
            self.send_err(b"[SYS/TEMP] Internal server error; the error was logged.")

    def _done(self, _: object) -> None:
        self._busy = False
        if self.phase in (UPDATE, CLOSED):
            return
        self.setTimeout(self.idle_limit)
        if self._input_paused:
            self._input_paused = False
            self.transport.resumeProducing()
        if self._buffer:
            self.reactor.callLater(0, self._process_input)

    def await_line(self) -> defer.Deferred[bytes]:
        """The client's next line (a SASL response) as a Deferred."""
        d: defer.Deferred[bytes] = defer.Deferred()
        self._await_line = d
        self.setTimeout(self.idle_limit)
        if self._buffer:
            self.reactor.callLater(0, self._process_input)
        return d

    # -- capabilities -------------------------------------------------------------------
    def can_start_tls(self) -> bool:
        """Whether STLS is offered now: TLS configured and not active yet."""
        return self.tls is not None and not self.startedTLS

    def cmd_STLS(self, args: list[bytes], rest: bytes) -> None:
        """RFC 2595 §4: +OK in the clear, drop pipelined input, then the TLS handshake."""
        if not self.can_start_tls():
            raise CommandError(b"TLS is already active." if self.startedTLS
                               else b"STLS is not available on this server.")
        self.send_ok(b"Begin TLS negotiation.")
        self._buffer = b""  # nothing sent before the handshake may count as a command
        self._user = None
        self.startedTLS = True
        self.transport.startTLS(self.tls)

    def plaintext_allowed(self) -> bool:
        """Whether USER/PASS may be used on this connection now (V0010)."""
        return self.login_type not in _PLAINTEXT_NEEDS_TLS or self.startedTLS

    def sasl_mechanisms(self) -> list[bytes]:
        """The usable mechanisms; plaintext ones not under SecureLogin before TLS."""
        allowed = self.login_type != _SASL_NEEDS_TLS or self.startedTLS
        return [name for name, factory in self.challengers.items()
                if allowed or not sasl.is_plaintext(factory)]

    def listCapabilities(self) -> list[bytes]:
        """CAPA, in Exchange's order: TOP UIDL SASL USER [STLS], then the profile's extras."""
        caps = [b"TOP", b"UIDL"]
        mechanisms = self.sasl_mechanisms()
        if mechanisms:
            caps.append(b"SASL " + b" ".join(mechanisms))
        caps.append(b"USER")
        if self.can_start_tls():
            caps.append(b"STLS")
        caps.extend(cap.encode("ascii") for cap in self.profile.pop3.extra_capabilities)
        return caps

    def cmd_CAPA(self, args: list[bytes], rest: bytes) -> None:
        self.send_ok(b"")
        self.send_lines(self.listCapabilities())

    # -- AUTHORIZATION ----------------------------------------------------------------
    def cmd_USER(self, args: list[bytes], rest: bytes) -> None:
        """V0008/V0009: always ``+OK``; the name is checked with the password."""
        self._user = args[0]
        self.send_ok(b"")

    def cmd_PASS(self, args: list[bytes], rest: bytes) -> Any:
        """V0011: the password is the whole rest of the line, spaces included."""
        user, self._user = self._user, None
        if user is None:
            raise CommandError(b"USER command required before PASS.")
        if not self.plaintext_allowed():
            raise CommandError(b"[AUTH] Plaintext authentication is not allowed on this "
                               b"connection; use TLS.")
        return self._login(UsernamePassword(user, rest))

    @defer.inlineCallbacks
    def cmd_AUTH(self, args: list[bytes], rest: bytes):
        mechanisms = self.sasl_mechanisms()
        if not args:
            self.send_ok(b"")
            self.send_lines(mechanisms)
            return None
        name = args[0].upper()
        if name not in mechanisms:
            raise CommandError(b"Unrecognized authentication type.")
        mechanism = sasl.as_mechanism(self.challengers[name]())
        initial = _sasl_decode(args[1], initial=True) if len(args) > 1 else None
        try:
            step = yield defer.maybeDeferred(mechanism.start, initial)
            while isinstance(step, sasl.Challenge):
                self.send_continuation(step.data)
                line = yield self.await_line()
                step = yield defer.maybeDeferred(mechanism.step, _sasl_decode(line))
        except sasl.MalformedResponse:
            self._count_failed_login()
            raise CommandError(LOGIN_FAILED) from None
        result = yield self._login(step.credentials, step.final)
        return result

    def send_continuation(self, data: bytes) -> None:
        """An AUTH challenge: ``+ base64``."""
        self.transport.write(b"+ " + base64.b64encode(data) + b"\r\n")

    def _sasl_final(self, result: Any, final: bytes) -> defer.Deferred[Any]:
        """RFC 5034: no data with +OK, so the last SASL data is a challenge; expect empty."""
        self.send_continuation(final)
        d = self.await_line()

        def answered(line: bytes) -> Any:
            if _sasl_decode(line) != b"":
                raise CommandError(b"Expected an empty response to the final AUTH challenge.")
            return result

        def abandoned(failure: Failure) -> Failure:
            result[2]()  # the avatar's logout
            return failure

        return d.addCallback(answered).addErrback(abandoned)

    def _login(self, credentials: Any, final: bytes | None = None) -> defer.Deferred[None]:
        ip = self.admission.ip or ""
        d = guarded_login(self.throttle, ip, credentials,
                          lambda: self.portal.login(credentials, None, pop3.IMailbox))
        if final is not None:
            d.addCallback(self._sasl_final, final)
        d.addCallbacks(self._logged_in, self._refused)
        return d

    def _logged_in(self, result: tuple[Any, Any, Any]) -> None:
        _, maildrop, logout = result
        if self.phase == CLOSED:
            logout()
            return
        user = maildrop.account_name.lower()
        if self.profile.pop3.exclusive_lock:
            key = user
            if key in self.locks:
                logout()
                raise CommandError(b"[IN-USE] The maildrop is in use by another POP3 session.")
            self.locks.add(key)
            self._locked = key
        if not self.admission.admit_user(user):  # MaxConnectionsPerUser
            self._release_lock()
            logout()
            raise CommandError(b"[IN-USE] Too many sessions for this user; try again later.")
        if self.profile.pop3.message_retrieval_sort_order is SortOrder.DESCENDING:
            maildrop.number_newest_first()
        self.mbox = maildrop
        self._onLogout = logout
        self.phase = TRANSACTION
        self._failed_logins = 0
        self.idle_limit = self.profile.pop3.authenticated_timeout
        self.send_ok(b"User successfully logged on.")

    def _refused(self, failure: Failure) -> None:
        if failure.check(errors.DirectoryUnavailable):
            raise CommandError(b"[SYS/TEMP] The account directory is unavailable; try later.")
        failure.trap(UnauthorizedLogin, errors.InvalidUserName)
        self._count_failed_login()
        raise CommandError(LOGIN_FAILED)

    def _count_failed_login(self) -> None:
        """C0005: after ``max_failed_logins`` failures the ``-ERR`` is the last word."""
        self._failed_logins += 1
        limit = self.profile.pop3.max_failed_logins
        if limit and self._failed_logins >= limit:
            self.send_err(LOGIN_FAILED)
            self._close()
            raise ConnectionError("too many failed logins")

    def _release_lock(self) -> None:
        if self._locked is not None:
            self.locks.discard(self._locked)
            self._locked = None

    def cmd_QUIT(self, args: list[bytes], rest: bytes) -> Any:
        if self.phase == AUTHORIZATION or self.mbox is None:
            self.send_ok(SIGN_OFF)
            self._close()
            return None
        self.phase = UPDATE
        d = self.mbox.sync()

        def synced(removed: list[int]) -> None:
            self.send_ok(SIGN_OFF)

        def failed(failure: Failure) -> None:
            if not failure.check(errors.StoreError):
                self.log.failure("error in the POP3 UPDATE state", failure)
            self.send_err(b"[SYS/TEMP] Some deleted messages were not removed.")

        d.addCallbacks(synced, failed)
        d.addBoth(lambda _: self._close())
        return d

    # -- TRANSACTION ----------------------------------------------------------------
    def _maildrop(self) -> Maildrop:
        assert self.mbox is not None
        return self.mbox

    def _index(self, arg: bytes) -> int:
        """The 0-based index of a message-number argument naming a live message."""
        if not arg.isdigit():
            raise CommandError(b"Protocol error: the message number must be a decimal number.")
        index = int(arg) - 1
        maildrop = self._maildrop()
        if not 0 <= index < len(maildrop):
            raise CommandError(b"The specified message is out of range.")
        if index in maildrop.deleted:
            raise CommandError(b"Message %d has been deleted." % (index + 1))
        return index

    def cmd_STAT(self, args: list[bytes], rest: bytes) -> None:
        """2.1.4 and V0004: count and size, nothing after the size."""
        maildrop, exact = self._maildrop(), self.profile.pop3.exact_rfc822_size
        self.send_ok(b"%d %d" % (len(maildrop.live()), maildrop.total_size(exact)))

    def cmd_LIST(self, args: list[bytes], rest: bytes) -> None:
        """2.1.5 and V0005: scan listings are the number and the size, nothing more."""
        maildrop, exact = self._maildrop(), self.profile.pop3.exact_rfc822_size
        if args:
            index = self._index(args[0])
            self.send_ok(b"%d %d" % (index + 1, maildrop.size(index, exact)))
            return
        live = maildrop.live()
        self.send_ok(b"%d messages (%d octets)" % (len(live), maildrop.total_size(exact)))
        self.send_lines([b"%d %d" % (i + 1, maildrop.size(i, exact)) for i in live])

    def cmd_UIDL(self, args: list[bytes], rest: bytes) -> None:
        """C0007-C0009: the unique-id is the IMAP UID, in decimal."""
        maildrop = self._maildrop()
        if args:
            index = self._index(args[0])
            self.send_ok(b"%d %d" % (index + 1, maildrop.uid(index)))
            return
        self.send_ok(b"")
        self.send_lines([b"%d %d" % (i + 1, maildrop.uid(i)) for i in maildrop.live()])

    def cmd_RETR(self, args: list[bytes], rest: bytes) -> defer.Deferred[None]:
        """C0011: the message in wire form, byte-stuffed, as IMAP's BODY[] has it."""
        index = self._index(args[0])
        maildrop = self._maildrop()
        source = maildrop.open(index)
        self.send_ok(b"%d octets" % maildrop.size(index, self.profile.pop3.exact_rfc822_size))
        return self._send(source)

    def cmd_TOP(self, args: list[bytes], rest: bytes) -> defer.Deferred[None]:
        """V0007: the header, the blank line and the first n body lines."""
        index = self._index(args[0])
        if not args[1].isdigit():
            raise CommandError(b"Protocol error: the line count must be a decimal number.")
        with self._maildrop().open(index) as source:
            data = wire.top_of(source, int(args[1]))
        self.send_ok(b"")
        return self._send(io.BytesIO(data))

    def _send(self, source: Any) -> defer.Deferred[None]:
        sender = self._sender = wire.MessageSender(source, self.transport)
        d = sender.start()

        def sent(result: object) -> object:
            self._sender = None
            return result

        return d.addBoth(sent)

    def cmd_DELE(self, args: list[bytes], rest: bytes) -> None:
        index = self._index(args[0])
        self._maildrop().deleteMessage(index)
        self.send_ok(b"Message %d marked for deletion." % (index + 1))

    def cmd_NOOP(self, args: list[bytes], rest: bytes) -> None:
        self.send_ok(b"")

    def cmd_RSET(self, args: list[bytes], rest: bytes) -> None:
        self._maildrop().undeleteMessages()
        self.send_ok(b"")
