"""IMAPSession: the IMAP4rev1 protocol on the shared session core.

:class:`~exchmail.session.core.Session` reads commands (lines and
literals, bounded), runs one at a time and applies the internal-error
policy; this class adds IMAP's states, the typed parser
(:func:`exchmail.imap.commands.parse_command`), the dispatch table of
handlers (:mod:`exchmail.imap.handlers`), tagged and untagged responses,
capabilities, and the selected mailbox's
:class:`~exchmail.mailbox.view.MailboxView` with the pending updates
RFC 3501 §7.4.1 allows at each point.

A handler is ``handler(command, session)``; it returns the text of its
tagged OK (bytes) or a Deferred of it, and raises
:class:`~exchmail.imap.responses.CommandFailed` (NO),
:class:`~exchmail.imap.responses.CommandBad` (BAD) or a store error.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from exchmail import errors
from exchmail.imap import commands as syntax
from exchmail.imap.extensions import (
    enabled_extensions,
    extra_capabilities,
    gated_capabilities,
    wire_form,
)
from exchmail.imap.handlers import HANDLERS, STATES, needs_details
from exchmail.imap.handlers.messages import compact_uid_set
from exchmail.imap.parsing import MAX_LITERALS
from exchmail.imap.responses import (
    SYSTEM_FLAGS,
    CommandBad,
    CommandFailed,
    format_flags,
    store_error_text,
)
from exchmail.interfaces import IModSeq
from exchmail.mailbox.view import MailboxView, Updates
from exchmail.session.context import SessionContext
from exchmail.session.core import ConnectionClosed, ResponseLineTooLong, Session
from exchmail.session.deflate import DeflateTransport, start_deflate
from exchmail.session.login import LoginFlow
from exchmail.session.reader import Command, InputReader, ReaderLimits, Refused

#: The most messages of full size one MULTIAPPEND may carry (they are spooled
#: to one temporary file: this bounds its size).
MULTIAPPEND_MESSAGES = 10
#: Literals before login: small, few, and never on disk (a client that has
#: not logged in must not be able to use the server's memory or files).
PREAUTH_LITERALS = ReaderLimits(
    max_line=0, max_literal_total=64 * 1024, max_literals=4, memory_budget=64 * 1024
)
#: RFC 7888 LITERAL-: the largest non-synchronizing literal.
LITERAL_MINUS_MAX = 4096
STATE_NAMES = {"unauth": "not authenticated", "auth": "authenticated", "select": "selected"}


class IMAPSession(Session):
    """One IMAP connection's protocol state."""

    __slots__ = (
        "login",
        "state",
        "account",
        "view",
        "idling",
        "announced",
        "enabled",
        "compression",
        "saved_result",
        "search_contexts",
        "contexts_refreshing",
        "notify",
    )

    def __init__(self, server: Any, context: SessionContext) -> None:
        settings = context.profile.imap
        reader = InputReader(self._limits(settings, authenticated=False))
        super().__init__(server, context, reader)
        self.login = LoginFlow(self, settings)
        self.state = "unauth"
        self.account: Any = None
        self.view: MailboxView | None = None
        self.idling = False
        self.announced: frozenset[str] = frozenset()  # keywords the client was told of
        self.enabled: set[bytes] = set()  # extensions switched on by ENABLE (RFC 5161)
        self.compression: DeflateTransport | None = None  # COMPRESS=DEFLATE (RFC 4978)
        self.saved_result: list[int] = []  # UIDs of SEARCH RETURN (SAVE) (RFC 5182)
        #: CONTEXT=SEARCH/SORT (RFC 5267): searches kept up to date, by tag
        self.search_contexts: dict[bytes, Any] = {}
        #: while they are refreshed during IDLE: whether a change came meanwhile
        self.contexts_refreshing: bool | None = None
        #: NOTIFY (RFC 5465): the session's notification state, or None
        self.notify: Any = None

    @property
    def utf8(self) -> bool:
        """Whether the client enabled UTF8=ACCEPT (RFC 6855)."""
        return b"UTF8=ACCEPT" in self.enabled

    @property
    def condstore(self) -> bool:
        """Whether CONDSTORE is on for this session (RFC 7162 §3.1: enabled by a
        CONDSTORE-enabling command or by QRESYNC)."""
        return b"CONDSTORE" in self.enabled or b"QRESYNC" in self.enabled

    @property
    def qresync(self) -> bool:
        """Whether the client enabled QRESYNC (RFC 7162 §3.2.3)."""
        return b"QRESYNC" in self.enabled

    @property
    def rev2(self) -> bool:
        """Whether the client enabled IMAP4rev2 (RFC 9051)."""
        return b"IMAP4REV2" in self.enabled

    @staticmethod
    def _limits(settings: Any, authenticated: bool) -> ReaderLimits:
        nonsync = LITERAL_MINUS_MAX if settings.literal_minus else 0
        if not authenticated:
            total = min(settings.max_literal_size, PREAUTH_LITERALS.max_literal_total)
            return ReaderLimits(
                settings.max_command_size,
                total,
                PREAUTH_LITERALS.max_literals,
                PREAUTH_LITERALS.memory_budget,
                nonsync,
            )
        # MULTIAPPEND: each message may be as large as one APPEND's, and
        # together (spooled to disk) at most MULTIAPPEND_MESSAGES of them.
        total = settings.max_literal_size * (MULTIAPPEND_MESSAGES if settings.multiappend else 1)
        return ReaderLimits(
            settings.max_command_size,
            total,
            MAX_LITERALS,
            max_nonsync_literal=nonsync,
            max_literal=settings.max_literal_size,
        )

    # -- responses ------------------------------------------------------------------------
    def untagged(self, text: bytes) -> None:
        self.write(b"* " + text + b"\r\n")

    def tagged(self, tag: bytes, status: bytes, text: bytes) -> None:
        self.write(tag + b" " + status + (b" " + text if text else b"") + b"\r\n")

    def continuation(self, text: bytes = b"") -> None:
        """``+ text``; RFC 3501 wants the space even when the text is empty."""
        self.write(b"+ " + text + b"\r\n")

    # -- the core's hooks -----------------------------------------------------------------
    def greeting(self) -> None:
        settings = self.context.profile.imap
        text = settings.banner.encode("utf-8")
        if settings.capability_in_greeting:
            text = b"[CAPABILITY " + b" ".join(self.capabilities()) + b"] " + text
        self.untagged(b"OK " + text)
        self.server.setTimeout(settings.preauthenticated_timeout)

    def refuse_connection(self, reason: str) -> None:
        self.untagged(b"BYE [UNAVAILABLE] " + reason.encode("ascii"))

    def answer_refused(self, refused: Refused) -> None:
        tag = syntax.split_tag(refused.first, self._options())[0]
        if refused.reason == "line":
            self.tagged(tag, b"BAD", b"[TOOBIG] Command line too long")
        elif refused.reason == "count":
            self.tagged(tag, b"BAD", b"[LIMIT] Too many literals in one command")
        elif refused.reason == "nonsync":
            self.tagged(
                tag,
                b"BAD",
                b"[TOOBIG] Non-synchronizing literals are at most %d octets (LITERAL-)" % refused.limit,
            )
        else:
            self.tagged(tag, b"NO", b"[TOOBIG] Literal larger than %d octets" % refused.limit)

    def continue_literal(self, size: int) -> None:
        self.continuation(b"Ready for literal data")

    def answer_internal_error(self, command: Command) -> None:
        tag = syntax.split_tag(_first_line(command), self._options())[0]
        self.tagged(tag, b"NO", b"[SERVERBUG] Internal server error; the error was logged")

    def farewell(self) -> None:
        self.untagged(b"BYE Autologout; connection idle too long")

    def left(self) -> None:
        self.state = "logout"
        self.close_mailbox()
        if self.notify is not None:
            self.notify.stop()

    def describe_command(self, command: Command) -> str:
        from exchmail.imap.transcript import describe_command

        return describe_command(command, self._options())

    def command_name(self, command: Command) -> str:
        try:
            head = syntax.parse_head(_first_line(command), self._options())
        except syntax.CommandSyntaxError:
            return ""
        return ("UID " if head.uid else "") + head.name.decode("ascii")

    def answer_fault(self, command: Command, status: str, text: str) -> None:
        """An injected answer: ``tag NO text``, ``tag BAD text``, or ``* BYE text``
        and the connection closes (no tagged answer, as when a server shuts down)."""
        data = text.encode("utf-8")
        if status.upper() == "BYE":
            self.untagged(b"BYE " + data)
            self.close_after_command()
            return
        tag = syntax.split_tag(_first_line(command), self._options())[0]
        self.tagged(tag, status.upper().encode("ascii"), data)

    def describe_output(self, data: bytes) -> str:
        from exchmail.imap.transcript import describe_output

        return describe_output(data, self.login.sasl_active)

    def describe_response_line(self, line: bytes) -> str:
        if self.login.sasl_active:
            return "*" if line.strip() == b"*" else "****"
        return super().describe_response_line(line)

    # -- dispatch -----------------------------------------------------------------------------
    def _options(self) -> syntax.ParseOptions:
        options = syntax.ParseOptions.from_settings(self.context.profile.imap)
        return dataclasses.replace(options, utf8=True) if self.utf8 else options

    def execute(self, raw: Command) -> defer.Deferred[Any] | None:
        options = self._options()
        try:
            # The state is checked before the arguments are parsed, so a
            # command in the wrong state says so whatever its arguments.
            head = syntax.parse_head(_first_line(raw), options)
            states = STATES[head.name]
            if self.state not in states:
                where = STATE_NAMES.get(self.state, self.state)
                raise syntax.CommandSyntaxError(
                    head.tag, f"{head.name.decode()} not allowed in the {where} state"
                )
            command = syntax.parse_command(raw.segments, options)
        except syntax.CommandSyntaxError as error:
            self.write(error.response() + b"\r\n")
            return None
        handler = HANDLERS[type(command)][0]
        started = self.context.reactor.seconds()
        learning = self.view.details_known() if self.view is not None and needs_details(command) else None
        if learning is not None:
            d = learning.addCallback(lambda _: handler(command, self))
        else:
            d = defer.maybeDeferred(handler, command, self)
        d.addCallback(self._keep_contexts)
        d.addCallbacks(self._succeeded, self._failed, callbackArgs=(command,), errbackArgs=(command,))
        d.addCallback(self._report, command, started)
        return d

    def _keep_contexts(self, text: bytes | None) -> Any:
        """CONTEXT=SEARCH: kept searches are brought up to date after each command."""
        if text is None or not self.search_contexts or self.state != "select":
            return text
        from exchmail.imap.handlers.context import after_command

        return after_command(self).addCallback(lambda _: text)

    def _succeeded(self, text: bytes | None, command: Any) -> bytes:
        # None: the handler answered itself (LOGOUT, STARTTLS).
        if text is not None and self.state != "logout":
            self.send_updates(allow_expunge=not holds_expunges(command))
            self.tagged(command.tag, b"OK", text)
        return b"OK"

    def _failed(self, failure: Failure, command: Any) -> bytes:
        tag = command.tag
        if failure.check(ConnectionClosed):
            return b""
        value = failure.value
        assert isinstance(value, Exception)
        if failure.check(CommandBad, syntax.CommandSyntaxError):
            if isinstance(value, syntax.CommandSyntaxError):
                self.write(value.response() + b"\r\n")
                return value.status.encode("ascii")
            self.tagged(tag, b"BAD", value.args[0])
            return b"BAD"
        if failure.check(ResponseLineTooLong):
            self.tagged(tag, b"BAD", b"Response line too long")
            return b"BAD"
        if failure.check(CommandFailed):
            self.send_updates(allow_expunge=False)
            self.tagged(tag, b"NO", value.args[0])
            return b"NO"
        if failure.check(errors.StoreError):
            self.tagged(tag, b"NO", store_error_text(value))
            return b"NO"
        failure.raiseException()
        return b""  # not reached

    def _report(self, status: bytes, command: Any, started: float) -> None:
        seconds = self.context.reactor.seconds() - started
        self.report_command(command.name.decode("ascii"), status.decode("ascii"), seconds)

    # -- login ------------------------------------------------------------------------------------
    def logged_in(self, account: Any, logout: Any) -> None:
        """Switch to the authenticated state with ``account``."""
        settings = self.context.profile.imap
        self.account = account
        self.set_logout(logout)
        self.state = "auth"
        self.reader.set_limits(self._limits(settings, authenticated=True))
        self.server.setTimeout(settings.authenticated_timeout)

    def capabilities(self) -> list[bytes]:
        """CAPABILITY in the profile's order, limited to what applies now.

        ``AUTH`` stands for the usable SASL mechanisms; LOGINDISABLED,
        STARTTLS and CHILDREN appear only when they apply, extensions only
        when their setting is on (:mod:`exchmail.imap.extensions`).
        """
        settings = self.context.profile.imap
        mechanisms = self.login.mechanisms()
        login_disabled = settings.advertise_logindisabled and not self.login.plaintext_allowed()
        present = {
            "AUTH": [b"AUTH=" + name for name in mechanisms],
            "SASL-IR": [b"SASL-IR"] if mechanisms else [],
            "LOGINDISABLED": [b"LOGINDISABLED"] if login_disabled else [],
            "STARTTLS": [b"STARTTLS"] if self.can_start_tls() else [],
            "CHILDREN": [b"CHILDREN"] if settings.list_children_attributes else [],
        }
        enabled = enabled_extensions(settings)
        for name in gated_capabilities():
            present[name] = [wire_form(name, settings)] if name in enabled else []
        if not mechanisms:
            present["SASL-IR"] = []
        if settings.literal_minus:
            present["LITERAL+"] = []  # LITERAL- comes with the extensions (RFC 7888: never both)
        caps: list[bytes] = []
        for name in settings.capabilities:
            caps.extend(present.get(name, [name.encode("ascii")]))
        extra = extra_capabilities(settings, settings.capabilities)
        return caps + [name for name in extra if name != b"SASL-IR" or mechanisms]

    # -- COMPRESS=DEFLATE -------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.compression is not None:
            self.compression.received(data)  # inflated, then handed to the core
        else:
            super().data_received(data)

    def start_compression(self) -> None:
        """After COMPRESS's OK (queued): flush it uncompressed, forget pipelined
        input (RFC 4978 §3 forbids any), then compress both directions."""
        self.flush()
        self.reader.clear()
        self.compression = start_deflate(
            self.server, super().data_received, self.context.reactor.callLater, self._corrupt_input
        )

    def _corrupt_input(self) -> None:
        self.untagged(b"BYE Corrupt compressed input")
        self.close()

    # -- the selected mailbox -------------------------------------------------------------------
    def select(self, mailbox: Any, readonly: bool, details_known: Any = None) -> MailboxView:
        """Make ``mailbox`` the selected one (the previous one is closed first);
        ``details_known`` as :meth:`~exchmail.interfaces.IEarlyOpen.mailbox_early` gives it."""
        self.close_mailbox()
        settings = self.context.profile.imap
        # RFC 7162 §3.1: with CONDSTORE, other sessions' flag changes are reported.
        self.view = MailboxView(
            mailbox,
            readonly,
            self.mailbox_changed,
            settings.notify_external_flag_changes or self.condstore,
            details_known,
        )
        self.saved_result = []
        self.search_contexts.clear()
        self.announced = frozenset(settings.server_keywords)
        self.state = "select"
        return self.view

    def close_mailbox(self) -> None:
        """Leave the selected state (without expunging)."""
        if self.view is not None:
            self.view.close()
            self.view = None
        if self.state == "select":
            self.state = "auth"

    def selected_view(self) -> MailboxView:
        assert self.view is not None
        return self.view

    def mailbox_flags(self) -> frozenset[str]:
        """The FLAGS list: system flags and the keywords announced so far (E0001)."""
        return SYSTEM_FLAGS | self.announced

    def send_flags(self) -> None:
        """``* FLAGS`` and ``* OK [PERMANENTFLAGS]`` for the selected mailbox."""
        view = self.selected_view()
        flags = self.mailbox_flags()
        self.untagged(b"FLAGS " + format_flags(flags))
        if view.readonly:
            permanent: frozenset[str] = frozenset()
        else:
            permanent = flags | {"\\*"} if self.context.profile.imap.client_keywords else flags
        self.untagged(b"OK [PERMANENTFLAGS " + format_flags(permanent) + b"] Permanent flags")

    def flags_for_client(self, flags: frozenset[str]) -> bytes:
        """``flags`` formatted for a response; keywords the client has not been
        told of are first announced with new FLAGS/PERMANENTFLAGS responses."""
        if self.rev2:  # RFC 9051 has no \\Recent
            flags = flags - {"\\Recent"}
        unknown = [f for f in flags if f not in self.announced and f[:1] != "\\"]
        if unknown:
            self.announced |= frozenset(unknown)
            self.send_flags()
        return format_flags(flags)

    def send_updates(self, allow_expunge: bool = True) -> None:
        """Queue untagged responses for changes the client has not heard of."""
        if self.view is not None:
            self.write_updates(self.view.updates(allow_expunge))
        if self.notify is not None and self.notify.pending:
            self.notify.flush()  # NOTIFY's STATUS lines held back during a command

    def write_updates(self, updates: Updates) -> None:
        if not updates:
            return
        if self.search_contexts and updates.expunged:
            from exchmail.imap.handlers.context import refresh_contexts

            refresh_contexts(self, updates)  # REMOVEFROM with the numbers still valid
        if updates.expunged and self.qresync:  # RFC 7162 §3.2.10: VANISHED, not EXPUNGE
            self.untagged(b"VANISHED " + compact_uid_set(updates.expunged_uids))
        else:
            for seq in updates.expunged:
                self.untagged(b"%d EXPUNGE" % seq)
        if updates.exists is not None:
            self.untagged(b"%d EXISTS" % updates.exists)
            if not self.rev2:  # RFC 9051: no \Recent, no RECENT response
                self.untagged(b"%d RECENT" % updates.recent)
        modseqs = modseq_map(self, [uid for _, uid, _ in updates.flags])
        for seq, uid, flags in updates.flags:
            extra = b""
            if self.qresync:
                extra += b" UID %d" % uid
            if uid in modseqs:  # RFC 7162 §3.1.4: flag changes carry MODSEQ
                extra += b" MODSEQ (%d)" % modseqs[uid]
            self.untagged(b"%d FETCH (FLAGS %s%s)" % (seq, self.flags_for_client(flags), extra))

    def mailbox_changed(self) -> None:
        """The store reported a change: push it now if the client idles, or,
        when the profile says so (V0002/V0014), if no command is in progress.

        Unilateral updates never carry EXPUNGE (RFC 3501 §7.4.1) and are
        skipped while the client is not reading (flow control).
        """
        if self.closing:
            return
        if self.idling:
            self.send_updates(allow_expunge=True)
            self.flush()
            if self.search_contexts:  # CONTEXT=SEARCH: kept searches, while idling too
                from exchmail.imap.handlers.context import refresh_while_idle

                refresh_while_idle(self)
        elif (
            self.context.profile.imap.unsolicited_exists
            and not self.busy
            and not self.reader.buffered
            and not self.write_gate.paused
            and self.state == "select"
        ):
            self.send_updates(allow_expunge=False)
            self.flush()


def modseq_map(session: IMAPSession, uids: list[int]) -> dict[int, int]:
    """MODSEQs of ``uids`` in the selected mailbox when CONDSTORE is on and the
    store keeps them; else empty."""
    view = session.view
    if not uids or view is None or not session.condstore or not IModSeq.providedBy(view.mailbox):
        return {}
    return dict(IModSeq(view.mailbox).modseqs(uids))


def holds_expunges(command: Any) -> bool:
    """RFC 3501 §7.4.1: no EXPUNGE responses while FETCH, STORE or SEARCH run
    (their UID forms may have them)."""
    return isinstance(command, (syntax.Fetch, syntax.Store, syntax.Search)) and not command.uid


def _first_line(command: Command) -> bytes:
    first = command.segments[0] if command.segments else b""
    return first if isinstance(first, bytes) else b""
