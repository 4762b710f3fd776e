"""IMAPServer: Twisted's IMAP4Server with exchmail's reader, dispatcher and handlers.

Twisted's :class:`~twisted.mail.imap4.IMAP4Server` gives the connection
life cycle, the response helpers and the timeout machinery.  Its input
path (line/literal handling, argument parsers) and its command handlers
are replaced here, because they cannot express what exchmail needs:
whitespace-liberal parsing, LITERAL+, bounded lines and literals that
stream to disk, strictly serial processing, UIDPLUS, a shared mailbox
index and internal errors answered ``NO [SERVERBUG]``.

The handlers live in the mixins of :mod:`exchmail.imap.cmd_nonauth`,
:mod:`~exchmail.imap.cmd_auth` and :mod:`~exchmail.imap.cmd_select`.  A
handler ``cmd_NAME(tag, args, uid)`` returns the text of its tagged OK
(bytes), or a Deferred of it, and raises :class:`CommandFailed` (NO),
:class:`~exchmail.imap.parsing.ParseError` (BAD) or a store error.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.mail import imap4
from twisted.python.failure import Failure

from exchmail import errors
from exchmail.auth import sasl
from exchmail.imap import parsing
from exchmail.imap.cmd_auth import AuthenticatedCommands
from exchmail.imap.cmd_fetch import WriteGate
from exchmail.imap.cmd_nonauth import AnyStateCommands
from exchmail.imap.cmd_select import SelectedCommands
from exchmail.imap.cmd_tls import TLSCommands
from exchmail.imap.common import CommandFailed, store_error_text
from exchmail.imap.parsing import LiteralSegment, ParseError, Spool
from exchmail.imap.selected import SelectedMailbox
from exchmail.profile import Profile
from exchmail.profile.settings import TagSyntax
from exchmail.session.admission import Admission, ConnectionLimits
from exchmail.session.transport import enable_nodelay
from exchmail.tls.context import is_tls

# Literals up to this size stay in memory; larger ones go to a temporary file.
IN_MEMORY_LITERAL = 256 * 1024
# Tags by profile (C0001): RFC 3501's ASTRING-CHARs but "+", or (Exchange
# enforces no format) any printable ASCII not starting with "+" or "*",
# which a client would take for a continuation request or untagged data.
TAG_PATTERNS = {
    TagSyntax.RFC3501: re.compile(rb"^[\x21\x23\x24\x26\x27\x2c-\x5b\x5d-\x7a\x7c\x7e]{1,64}$"),
    TagSyntax.ANY_PRINTABLE: re.compile(rb"^[^+*\x00-\x20\x7f-\xff][\x21-\x7e]{0,63}$"),
}
# A client that keeps sending while a command runs is paused past this.
INPUT_HIGH_WATER = 1024 * 1024

ANY, NONAUTH, AUTH, SELECTED = ("unauth", "auth", "select"), ("unauth",), ("auth", "select"), ("select",)

# name -> states in which the command is valid
COMMANDS: dict[bytes, tuple[str, ...]] = {
    b"CAPABILITY": ANY, b"NOOP": ANY, b"LOGOUT": ANY,
    b"LOGIN": NONAUTH, b"AUTHENTICATE": NONAUTH, b"STARTTLS": NONAUTH,
    b"SELECT": AUTH, b"EXAMINE": AUTH, b"CREATE": AUTH, b"DELETE": AUTH, b"RENAME": AUTH,
    b"SUBSCRIBE": AUTH, b"UNSUBSCRIBE": AUTH, b"LIST": AUTH, b"LSUB": AUTH,
    b"STATUS": AUTH, b"APPEND": AUTH, b"NAMESPACE": AUTH, b"IDLE": AUTH,
    b"CHECK": SELECTED, b"CLOSE": SELECTED, b"EXPUNGE": SELECTED, b"SEARCH": SELECTED,
    b"FETCH": SELECTED, b"STORE": SELECTED, b"COPY": SELECTED, b"UID": SELECTED,
}
UID_COMMANDS = {b"FETCH", b"STORE", b"SEARCH", b"COPY", b"EXPUNGE"}
# RFC 3501 7.4.1: no EXPUNGE responses while these run (their non-UID forms).
NO_EXPUNGE_DURING = {b"FETCH", b"STORE", b"SEARCH"}


class ConnectionClosed(Exception):
    """The client went away while a command waited for its input."""


class _Reader:
    """Incremental command assembly: lines plus the literals between them."""

    def __init__(self) -> None:
        self.segments: list[bytes | LiteralSegment] = []
        self.command_bytes = 0
        self.literal_left = 0
        self.literal_sink: Any = None
        self.literal_size = 0
        self.literal_total = 0  # octets of all literals of this command so far
        self.discard_left = 0
        self.discard_line = False
        self.error: tuple[bytes, bytes] | None = None

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


class IMAPServer(AnyStateCommands, TLSCommands, AuthenticatedCommands, SelectedCommands,
                 imap4.IMAP4Server):
    """The exchmail IMAP4rev1 protocol; one instance per connection."""

    log = Logger(namespace="exchmail.imap")
    profile: Profile
    portal: Any = None
    reactor: Any = None
    idle_poll_interval = 5.0

    def __init__(self, profile: Profile, portal: Any, reactor: Any,
                 challengers: dict[bytes, Callable[[], Any]] | None = None) -> None:
        if challengers is None:  # the profile's mechanisms that work with this portal
            challengers = sasl.challengers(profile.imap.sasl_mechanisms, portal)
        super().__init__(chal=challengers)
        self.profile = profile
        self.portal = portal
        self.reactor = reactor
        self.timeOut = profile.imap.preauthenticated_timeout
        self.POSTAUTH_TIMEOUT = profile.imap.authenticated_timeout
        self.account: Any = None
        self.selected: SelectedMailbox | None = None
        self._buffer = b""
        self._reader = _Reader()
        self._busy = False
        self._input_paused = False
        self._await_line: defer.Deferred[bytes] | None = None
        self._output: list[bytes] = []
        self._logout_hook: Callable[[], None] | None = None
        self._drop_reason: bytes | None = None  # set to close after this command
        self.admission = Admission(ConnectionLimits(0, 0, 0))  # the factory shares its limits

    def callLater(self, period: float, func: Callable[[], Any]) -> Any:
        """TimeoutMixin's scheduler: the injected reactor, not the global one."""
        return self.reactor.callLater(period, func)

    # -- connection ------------------------------------------------------
    def connectionMade(self) -> None:
        enable_nodelay(self.transport)
        self.startedTLS = is_tls(self.transport)  # an implicit TLS listener (993)
        self.write_gate = WriteGate()
        self.transport.registerProducer(self.write_gate, True)
        ip = str(getattr(self.transport.getPeer(), "host", ""))
        refused = self.admission.admit(ip)
        if refused is not None:
            self.sendLine(b"* BYE [UNAVAILABLE] " + refused.encode("ascii"))
            self.flush()
            self.state = "logout"
            self.transport.loseConnection()
            return
        self.setTimeout(self.timeOut)
        self.sendServerGreeting()
        self.flush()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.setTimeout(None)
        self.close_selected()
        self.admission.release()
        if self._logout_hook is not None:
            self._logout_hook()
            self._logout_hook = None
        if self._await_line is not None:
            pending, self._await_line = self._await_line, None
            pending.errback(ConnectionClosed())

    def timeoutConnection(self) -> None:
        self.sendLine(b"* BYE Autologout; connection idle too long")
        self.flush()
        self.state = "logout"
        self.transport.loseConnection()

    def sendServerGreeting(self) -> None:
        text = self.profile.imap.banner.encode("utf-8")
        if self.profile.imap.capability_in_greeting:
            text = b"[CAPABILITY " + b" ".join(self.listCapabilities()) + b"] " + text
        self.sendPositiveResponse(message=text)

    # -- output ----------------------------------------------------------
    def sendLine(self, line: bytes) -> None:
        """Queue a response line; :meth:`flush` writes queued output at once."""
        self._output.append(line + b"\r\n")

    def sendContinuationRequest(self, msg: bytes = b"Ready for additional command text") -> None:
        """``+ text``; RFC 3501 wants the space even when the text is empty."""
        self.sendLine(b"+ " + msg)

    def send_raw(self, data: bytes) -> None:
        """Queue response bytes that are not a complete line (literals)."""
        self._output.append(data)

    def flush(self) -> None:
        """Write everything queued in one transport call."""
        if self._output and self.transport is not None:
            self.transport.writeSequence(self._output)
        self._output = []

    # -- input -----------------------------------------------------------
    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        self._process_input()

    def _process_input(self) -> None:
        while self._buffer and (not self._busy or self._await_line is not None):
            if self.state == "logout":
                self._buffer = b""
                return
            if not self._consume_literal_or_line():
                break
        if self._busy and len(self._buffer) > INPUT_HIGH_WATER and not self._input_paused:
            self._input_paused = True
            self.transport.pauseProducing()

    def _consume_literal_or_line(self) -> bool:
        """Take one piece of input; False when more data is needed."""
        reader = self._reader
        if reader.discard_left:
            taken = min(reader.discard_left, len(self._buffer))
            reader.discard_left -= taken
            self._buffer = self._buffer[taken:]
            return True
        if reader.literal_left:
            return self._consume_literal()
        end = self._buffer.find(b"\n")
        limit = self.profile.imap.max_command_size
        if end < 0:
            if reader.discard_line:
                self._buffer = b""  # never hold on to what is thrown away
            elif len(self._buffer) > limit:
                self._line_too_long(self._buffer)
                self._buffer = b""
            return False
        line, self._buffer = self._buffer[:end], self._buffer[end + 1:]
        if line.endswith(b"\r"):
            line = line[:-1]
        self.resetTimeout()
        if reader.discard_line:
            self._discard_rest(line)
        elif len(line) + reader.command_bytes > limit:
            self._line_too_long(line)
            self._finish_discard()
        else:
            self._line_received(line)
        return True

    def _discard_rest(self, line: bytes) -> None:
        """End of a line of a refused command: its literals are thrown away too."""
        request = parsing.literal_request(line)
        if request is not None and not request[1]:
            self._reader.discard_left = request[0]  # LITERAL+: the data follows unasked
        else:
            self._finish_discard()

    def _line_too_long(self, start: bytes) -> None:
        if self._await_line is not None:  # a SASL response or DONE: the command answers
            pending, self._await_line = self._await_line, None
            self._reader.discard_line = True
            pending.errback(ParseError("Response line too long"))
            return
        first = self._reader.segments[0] if self._reader.segments else start
        tag = self._tag_of(first if isinstance(first, bytes) else start)
        self._reader.segments = []
        self._reader.discard_line = True
        self._reader.error = (tag, b"BAD [TOOBIG] Command line too long")

    def _finish_discard(self) -> None:
        error = self._reader.error
        self._reader.reset()
        if error is not None:
            tag, text = error
            self.sendLine(tag + b" " + text)
            self.flush()

    def _split_tag(self, line: bytes) -> tuple[bytes, bytes]:
        """``(tag, rest of the line)``; the tag is ``*`` if the profile rejects it."""
        separators = b" \t" if self.profile.imap.liberal_whitespace else b" "
        end = next((i for i, c in enumerate(line) if c in separators), len(line))
        tag, rest = line[:end], line[end:]
        if rest:
            rest = rest[1:]
        valid = TAG_PATTERNS[self.profile.imap.tag_syntax].match(tag)
        return (tag if valid else b"*"), rest

    def _tag_of(self, line: bytes) -> bytes:
        """The command's tag if the profile accepts it, else ``*``."""
        return self._split_tag(line)[0]

    def _line_received(self, line: bytes) -> None:
        if self._await_line is not None:
            pending, self._await_line = self._await_line, None
            pending.callback(line)
            return
        reader = self._reader
        reader.segments.append(line)
        reader.command_bytes += len(line)
        request = parsing.literal_request(line)
        if request is None:
            self._execute(reader.segments)
            reader.reset()
            return
        size, synchronizing = request
        first = reader.segments[0]
        tag = self._tag_of(first if isinstance(first, bytes) else b"")
        # The limit covers all literals of one command together, so that many
        # literals cannot add up to more memory or disk than one may use.
        if size + reader.literal_total > self.profile.imap.max_literal_size:
            if synchronizing:
                reader.reset()
                self.sendLine(tag + b" NO [TOOBIG] Literal larger than %d octets"
                              % self.profile.imap.max_literal_size)
                self.flush()
            else:
                reader.segments = []
                reader.discard_left = size
                reader.discard_line = True
                reader.error = (tag, b"NO [TOOBIG] Literal too large")
            return
        self._start_literal(size)
        if synchronizing:
            self.sendContinuationRequest(b"Ready for literal data")
            self.flush()

    def _start_literal(self, size: int) -> None:
        reader = self._reader
        reader.literal_left = reader.literal_size = size
        reader.literal_total += size
        in_memory = reader.literal_total <= IN_MEMORY_LITERAL
        reader.literal_sink = (bytearray() if in_memory
                               else tempfile.TemporaryFile(prefix="exchmail-literal-"))
        if size == 0:
            self._end_literal()

    def _consume_literal(self) -> bool:
        reader = self._reader
        chunk = self._buffer[:reader.literal_left]
        self._buffer = self._buffer[len(chunk):]
        reader.literal_left -= len(chunk)
        if isinstance(reader.literal_sink, bytearray):
            reader.literal_sink += chunk
        else:
            reader.literal_sink.write(chunk)
        if reader.literal_left == 0:
            self._end_literal()
        return bool(chunk)

    def _end_literal(self) -> None:
        reader = self._reader
        sink = reader.literal_sink
        if isinstance(sink, bytearray):
            data: bytes | Spool = bytes(sink)
        else:
            sink.seek(0)
            data = Spool(sink, reader.literal_size)
        reader.segments.append(LiteralSegment(data))
        reader.literal_sink = None

    # -- dispatch --------------------------------------------------------
    def _execute(self, segments: list[bytes | LiteralSegment]) -> None:
        first = segments[0]
        assert isinstance(first, bytes)
        if not first.strip(b" \t"):
            self.sendBadResponse(None, b"Null command")
            self.flush()
            return
        tag, rest = self._split_tag(first)
        try:
            if tag == b"*":
                raise ParseError("invalid or missing tag")
            tokens = parsing.tokenize([rest, *segments[1:]], self.profile.imap.liberal_whitespace)
            if not tokens or not isinstance(tokens[0], parsing.Atom):
                raise ParseError("missing command")
            name, args = parsing.as_atom(tokens[0]), tokens[1:]
            handler, uid = self._lookup(name, args)
        except ParseError as error:
            self.sendBadResponse(tag, str(error).encode("utf-8", "replace"))
            self.flush()
            return
        self._run(tag, name, handler, args, uid)

    def _lookup(self, name: bytes, args: list[Any]) -> tuple[Callable[..., Any], bool]:
        uid = False
        if name == b"UID" and self.state in COMMANDS[b"UID"]:
            if not args or parsing.as_atom(args[0]) not in UID_COMMANDS:
                raise ParseError("UID must be followed by COPY, FETCH, STORE, SEARCH or EXPUNGE")
            name, uid = parsing.as_atom(args.pop(0)), True
        states = COMMANDS.get(name)
        if states is None:
            raise ParseError("Unsupported command")
        if self.state not in states:
            raise ParseError(f"{name.decode()} not allowed in the {self._state_name()} state")
        handler = getattr(self, "cmd_" + name.decode("ascii"))
        self._command_name = name
        self._command_uid = uid
        return handler, uid

    def _state_name(self) -> str:
        return {"unauth": "not authenticated", "auth": "authenticated",
                "select": "selected"}.get(self.state, self.state)

    def _run(self, tag: bytes, name: bytes, handler: Callable[..., Any],
             args: list[Any], uid: bool) -> None:
        self._busy = True
        d = defer.maybeDeferred(handler, tag, args, uid)
        d.addCallbacks(self._succeeded, self._failed, callbackArgs=(tag, name, uid),
                       errbackArgs=(tag,))
        d.addErrback(self._internal_error, tag)
        d.addBoth(self._done)

    def _succeeded(self, text: bytes, tag: bytes, name: bytes, uid: bool) -> None:
        if self.state == "logout":
            return
        self.send_updates(allow_expunge=uid or name not in NO_EXPUNGE_DURING)
        self.sendPositiveResponse(tag, text)

    def _failed(self, failure: Failure, tag: bytes) -> None:
        if failure.check(ConnectionClosed):
            return  # nobody to answer
        if failure.check(ParseError):
            self.sendBadResponse(tag, str(failure.value).encode("utf-8", "replace"))
        elif isinstance(failure.value, CommandFailed):
            self.send_updates(allow_expunge=False)
            self.sendNegativeResponse(tag, failure.value.args[0])
        elif isinstance(failure.value, errors.StoreError):
            self.sendNegativeResponse(tag, store_error_text(failure.value))
        else:
            failure.raiseException()

    def _internal_error(self, failure: Failure, tag: bytes) -> None:
        self.log.failure("internal error in IMAP command {tag}", failure, tag=tag)
        self.sendNegativeResponse(tag, b"[SERVERBUG] Internal server error; the error was logged")

    def _done(self, _: object) -> None:
        if self._drop_reason is not None and self.state != "logout":
            self.sendLine(b"* BYE " + self._drop_reason)
            self.state = "logout"
        self.flush()
        self.begin_pending_tls()  # STARTTLS: after its OK, before any further input
        self._busy = False
        if self.state == "logout":
            self.transport.loseConnection()
            return
        if self._input_paused:
            self._input_paused = False
            self.transport.resumeProducing()
        if self._buffer:
            self.reactor.callLater(0, self._process_input)

    # -- selected mailbox ---------------------------------------------------
    def send_updates(self, allow_expunge: bool = True) -> None:
        """Queue untagged responses for changes the client has not heard of."""
        if self.selected is not None:
            for line in self.selected.updates(allow_expunge):
                self.sendLine(line)

    def close_selected(self) -> None:
        """Leave the selected state's mailbox (without expunging)."""
        if self.selected is not None:
            self.selected.close()
            self.selected = None
        if self.state == "select":
            self.state = "auth"
