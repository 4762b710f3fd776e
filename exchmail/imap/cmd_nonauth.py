"""Commands valid in any state and in the not-authenticated state.

CAPABILITY, NOOP, LOGOUT (any state); LOGIN and AUTHENTICATE (not
authenticated).  Mixed into :class:`exchmail.imap.server.IMAPServer`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer

from exchmail.auth import sasl
from exchmail.auth.throttle import guarded_login
from exchmail.errors import DirectoryUnavailable
from exchmail.imap.common import CommandFailed, SessionBase
from exchmail.imap.parsing import ParseError, Token, as_atom, as_bytes, expect_count
from exchmail.interfaces import IStoreAccount

# Exchange's LoginType values under which plaintext LOGIN is refused before TLS.
_LOGIN_NEEDS_TLS = {"SecureLogin", "PlainTextAuthentication"}
MAX_SASL_LINE = 64 * 1024


class AnyStateCommands(SessionBase):
    """CAPABILITY, NOOP, LOGOUT, LOGIN, AUTHENTICATE."""

    login_type = "PlainTextLogin"
    startedTLS = False
    failed_logins = 0
    #: A shared :class:`exchmail.auth.throttle.LoginThrottle` (the factory's), or None.
    throttle: Any = None
    sasl_in_progress = False

    # -- capabilities --------------------------------------------------------
    def login_disabled(self) -> bool:
        """Whether plaintext LOGIN is refused on this connection now."""
        return self.login_type in _LOGIN_NEEDS_TLS and not self.startedTLS

    def listCapabilities(self) -> list[bytes]:
        """The CAPABILITY list in the profile's order, limited to what applies now.

        ``AUTH`` stands for the usable SASL mechanisms; LOGINDISABLED,
        STARTTLS and CHILDREN appear only when they apply.
        """
        imap = self.profile.imap
        mechanisms = self.sasl_mechanisms()
        present = {
            "AUTH": [b"AUTH=" + name for name in mechanisms],
            "SASL-IR": [b"SASL-IR"] if mechanisms else [],
            "LOGINDISABLED": [b"LOGINDISABLED"]
            if imap.advertise_logindisabled and self.login_disabled() else [],
            "STARTTLS": [b"STARTTLS"] if self.can_start_tls() else [],
            "CHILDREN": [b"CHILDREN"] if imap.list_children_attributes else [],
        }
        caps: list[bytes] = []
        for name in imap.capabilities:
            caps.extend(present.get(name, [name.encode("ascii")]))
        return caps

    tls: Any = None  # an exchmail.tls.ServerTLS when TLS is configured

    def can_start_tls(self) -> bool:
        """Whether STARTTLS is offered now: TLS configured and not active yet."""
        return self.tls is not None and not self.startedTLS

    def sasl_allowed(self) -> bool:
        """Whether plaintext SASL mechanisms may be used on this connection now."""
        return self.login_type != "SecureLogin" or self.startedTLS

    def sasl_mechanisms(self) -> list[bytes]:
        """The SASL mechanisms usable now: plaintext ones only when :meth:`sasl_allowed`."""
        allowed = self.sasl_allowed()
        return [name for name, factory in self.challengers.items()
                if allowed or not sasl.is_plaintext(factory)]

    def cmd_CAPABILITY(self, tag: bytes, args: list[Token], uid: bool) -> bytes:
        expect_count(args, 0)
        self.sendUntaggedResponse(b"CAPABILITY " + b" ".join(self.listCapabilities()))
        return b"CAPABILITY completed."

    def cmd_NOOP(self, tag: bytes, args: list[Token], uid: bool) -> Any:
        expect_count(args, 0)
        return self.refresh_selected().addCallback(lambda _: b"NOOP completed.")

    def refresh_selected(self) -> defer.Deferred[None]:
        """Let the store pick up outside changes to the selected mailbox."""
        selected = self.selected
        if selected is None:
            return defer.succeed(None)
        return defer.maybeDeferred(selected.mailbox.refresh)

    def cmd_LOGOUT(self, tag: bytes, args: list[Token], uid: bool) -> None:
        expect_count(args, 0)
        self.sendUntaggedResponse(b"BYE exchmail IMAP4rev1 server signing off")
        self.sendPositiveResponse(tag, b"LOGOUT completed.")
        self.close_selected()
        self.state = "logout"

    # -- authentication ----------------------------------------------------
    def cmd_LOGIN(self, tag: bytes, args: list[Token], uid: bool) -> Any:
        expect_count(args, 2)
        user, password = as_bytes(args[0]), as_bytes(args[1])
        if self.login_disabled():
            raise self._no(b"[PRIVACYREQUIRED] LOGIN is disabled before STARTTLS")
        return self._login(UsernamePassword(user, password), b"LOGIN completed.")

    def cmd_AUTHENTICATE(self, tag: bytes, args: list[Token], uid: bool) -> Any:
        expect_count(args, 1, 2)
        mechanism = as_atom(args[0]).upper()
        factory = self.challengers.get(mechanism)
        if factory is None or mechanism not in self.sasl_mechanisms():
            raise self._no(b"Unsupported authentication mechanism")
        # RFC 4959 SASL-IR: accepted in every profile, advertised where the profile lists it.
        initial = self._sasl_decode(as_bytes(args[1])) if len(args) == 2 else None
        return self._sasl_exchange(sasl.as_mechanism(factory()), initial)

    def _sasl_decode(self, response: bytes) -> bytes:
        """A client's SASL response line decoded; ``*`` cancels the exchange (NO)."""
        response = response.strip(b" \t")
        if response == b"*":
            raise self._no(b"AUTHENTICATE cancelled by the client")
        if len(response) > MAX_SASL_LINE:
            raise ParseError("SASL response too long")
        if response == b"=":
            return b""
        try:
            return base64.b64decode(response, validate=True)
        except (binascii.Error, ValueError):
            raise ParseError("Invalid base64 in AUTHENTICATE response") from None

    @defer.inlineCallbacks
    def _sasl_exchange(self, mechanism: sasl.ServerMechanism, initial: bytes | None):
        self.sasl_in_progress = True  # the protocol log hides what crosses the wire now
        try:
            try:
                step = yield defer.maybeDeferred(mechanism.start, initial)
                while isinstance(step, sasl.Challenge):
                    self.sendContinuationRequest(base64.b64encode(step.data))
                    line = yield self.await_line()
                    step = yield defer.maybeDeferred(mechanism.step, self._sasl_decode(line))
            except sasl.MalformedResponse as error:
                raise ParseError(f"Invalid SASL response: {error}") from None
            result = yield self._login(step.credentials, b"AUTHENTICATE completed.", step.final)
        finally:
            self.sasl_in_progress = False
        return result

    def _sasl_final(self, result: Any, final: bytes) -> defer.Deferred[Any]:
        """Send the mechanism's last data (IMAP has no success data); wait for an empty reply."""
        self.sendContinuationRequest(base64.b64encode(final))
        d = self.await_line()

        def answered(line: bytes) -> Any:
            if self._sasl_decode(line) != b"":
                raise ParseError("Expected an empty response to the final SASL challenge")
            return result

        def abandoned(failure: Any) -> Any:
            result[2]()  # the avatar's logout
            return failure

        return d.addCallback(answered).addErrback(abandoned)

    def _login(self, credentials: Any, text: bytes,
               final: bytes | None = None) -> defer.Deferred[bytes]:
        d: Any = guarded_login(self.throttle, self.admission.ip or "", credentials,
                               lambda: self.portal.login(credentials, None, IStoreAccount))
        if final is not None:
            d.addCallback(self._sasl_final, final)

        def logged_in(result: tuple[Any, Any, Any]) -> bytes:
            _, account, logout = result
            if not self.admission.admit_user(account.name):
                logout()
                raise self._no(b"[UNAVAILABLE] Too many sessions for this user")
            self.account = account
            self._logout_hook = logout
            self.state = "auth"
            self.setTimeout(self.POSTAUTH_TIMEOUT)
            if self.profile.imap.capability_in_login_response:
                return b"[CAPABILITY " + b" ".join(self.listCapabilities()) + b"] " + text
            return text

        def refused(failure: Any) -> None:
            if failure.check(DirectoryUnavailable):  # temporary; not a wrong password
                raise self._no(b"[UNAVAILABLE] The account directory is unavailable; "
                               b"try again later.")
            failure.trap(UnauthorizedLogin)
            self.failed_logins += 1
            limit = self.profile.imap.max_failed_logins
            if limit and self.failed_logins >= limit:
                self._drop_reason = b"Too many failed login attempts"  # V0058
            raise self._no(b"[AUTHENTICATIONFAILED] Authentication failed.")

        return d.addCallbacks(logged_in, refused)

    @staticmethod
    def _no(text: bytes) -> Exception:
        return CommandFailed(text)

    def await_line(self) -> defer.Deferred[bytes]:
        """Flush output and hand the client's next line to the returned Deferred."""
        self.flush()
        d: defer.Deferred[bytes] = defer.Deferred()
        self._await_line = d
        if self._buffer:
            self.reactor.callLater(0, self._process_input)
        return d
