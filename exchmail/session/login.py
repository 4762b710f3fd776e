"""LoginFlow: the login policy IMAP and POP3 share.

One object per session.  It decides what may be used now (plaintext
LOGIN/USER+PASS and which SASL mechanisms, by Exchange's ``LoginType`` and
whether TLS is active), runs SASL exchanges (RFC 4422: challenges as
``+ base64``, ``*`` cancels), logs users in through the portal under the
failed-login throttle, applies the per-user connection limit, counts
failures against the profile's per-session limit (MS-STANXIMAP V0058,
MS-STANXPOP3 C0005) and tells the observers.  The protocols only turn
its outcomes into their own responses.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer

from exchmail.auth import sasl
from exchmail.auth.realm import LoginMind
from exchmail.auth.throttle import LoginBlocked, guarded_login
from exchmail.errors import DirectoryUnavailable, InvalidUserName
from exchmail.interfaces import IStoreAccount
from exchmail.profile.settings import LoginType

#: The longest SASL response line (base64) accepted.
MAX_SASL_LINE = 64 * 1024


class LoginRefused(Exception):
    """The login did not succeed.

    :ivar reason: ``"credentials"`` (wrong user or password, or blocked),
        ``"unavailable"`` (the directory did not answer: try again later),
        ``"sessions"`` (too many sessions of this user) or
        ``"disabled"`` (plaintext login not allowed on this connection).
    :ivar last: True when this failure used up the session's attempts
        (the protocol closes the session after answering).
    """

    def __init__(self, reason: str, last: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.last = reason, last


class SASLCancelled(Exception):
    """The client answered a challenge with ``*``.

    :ivar last: True when this used up the session's attempts (set by
        :meth:`LoginFlow.authenticate`, which counts an abandoned exchange
        like a failed login).
    """

    last = False


class SASLMalformed(Exception):
    """A SASL response was not valid base64 (``encoding``) or not what the
    mechanism expects."""

    last = False  # as SASLCancelled.last

    def __init__(self, message: str, encoding: bool = False) -> None:
        super().__init__(message)
        self.encoding = encoding


class UnknownMechanism(Exception):
    """The mechanism is not offered on this connection."""


@dataclass(frozen=True)
class LoggedIn:
    """A successful login: the account avatar and its logout callable."""

    account: Any
    logout: Callable[[], None]
    mechanism: str


def decode_response(line: bytes, initial: bool = False) -> bytes:
    """A SASL response line decoded.

    ``*`` cancels (:class:`SASLCancelled`); an initial response (SASL-IR,
    RFC 5034) of ``=`` is empty.  :raises SASLMalformed: for bad base64.
    """
    line = line.strip(b" \t")
    if line == b"*" and not initial:
        raise SASLCancelled()
    if len(line) > MAX_SASL_LINE:
        raise SASLMalformed("SASL response too long", encoding=True)
    if line == b"=" and initial:
        return b""
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        raise SASLMalformed("invalid base64 in the SASL response", encoding=True) from None


class LoginFlow:
    """Logs one session's user in; see the module docstring.

    :param session: the :class:`~exchmail.session.core.Session` (for
        ``secure``, ``client_address``, ``admission``, output and lines).
    :param settings: the protocol's profile settings (``login_type``,
        ``max_failed_logins``), read when the flow is made.
    """

    def __init__(self, session: Any, settings: Any) -> None:
        self.session = session
        self.login_type: LoginType = settings.login_type
        self.max_failures: int = settings.max_failed_logins
        self.failures = 0
        self.sasl_active = False  # the protocol log hides what crosses the wire now

    # -- what is allowed now ---------------------------------------------------------
    def plaintext_allowed(self) -> bool:
        """Whether plaintext LOGIN (IMAP) / USER+PASS (POP3) may be used now (V0022, V0010)."""
        return self.login_type is LoginType.PLAIN_TEXT_LOGIN or self.session.secure

    def mechanisms(self) -> list[bytes]:
        """The SASL mechanisms usable now: those sending the password in the
        clear only under PlainTextLogin/PlainTextAuthentication or with TLS."""
        allowed = self.login_type is not LoginType.SECURE_LOGIN or self.session.secure
        return [
            name
            for name, factory in self.session.context.mechanisms.items()
            if allowed or not sasl.is_plaintext(factory)
        ]

    # -- SASL ----------------------------------------------------------------------------
    @defer.inlineCallbacks
    def authenticate(self, name: bytes, initial: bytes | None):
        """Run the SASL exchange of mechanism ``name`` and log in with its outcome.

        ``initial`` is the raw initial response (base64 or ``=``), if any.
        The result is a :class:`LoggedIn`; failures are :class:`LoginRefused`,
        :class:`SASLCancelled`, :class:`SASLMalformed`, :class:`UnknownMechanism`.
        """
        name = name.upper()
        if name not in self.mechanisms():
            raise UnknownMechanism()
        mechanism = sasl.as_mechanism(self.session.context.mechanisms[name]())
        self.sasl_active = True
        try:
            first = decode_response(initial, initial=True) if initial is not None else None
            try:
                step = yield defer.maybeDeferred(mechanism.start, first)
                while isinstance(step, sasl.Challenge):
                    response = yield self.challenge(step.data)
                    step = yield defer.maybeDeferred(mechanism.step, decode_response(response))
            except sasl.MalformedResponse as error:
                raise SASLMalformed(str(error)) from None
            except (UnauthorizedLogin, DirectoryUnavailable) as error:
                # A mechanism that verifies by itself (GSSAPI, bearer tokens)
                # refused: like a wrong password, in the session and the throttle.
                yield self._mechanism_refused(error, name.decode("ascii"))
            result = yield self.login(step.credentials, name.decode("ascii"), step.final)
        except (SASLCancelled, SASLMalformed) as error:
            error.last = self._abandoned(name.decode("ascii"))
            raise
        finally:
            self.sasl_active = False
        return result

    def _abandoned(self, mechanism: str) -> bool:
        """A cancelled or malformed exchange: a failed attempt for the session's
        limit and the address's throttle budget.  True when it was the last."""
        throttle = self.session.context.throttle
        if throttle is not None:
            throttle.failed(self.session.client_address, "")
        self._report("", mechanism, "failure")
        return self.count_failure()

    def _mechanism_refused(self, error: Exception, mechanism: str) -> defer.Deferred[Any]:
        """Answer a refusal raised by a mechanism's step through the throttle (held
        back or blocked like a wrong password); always fails with LoginRefused."""
        who = UsernamePassword(getattr(error, "username", "").encode("utf-8"), b"")
        session = self.session
        d: defer.Deferred[Any] = guarded_login(
            session.context.throttle, session.client_address, who, lambda: defer.fail(error)
        )
        return d.addErrback(self._refused, who, mechanism)

    def challenge(self, data: bytes) -> defer.Deferred[bytes]:
        """Send ``+ base64(data)`` and wait for the client's response line."""
        self.session.write_line(b"+ " + base64.b64encode(data))
        return self.session.await_line(MAX_SASL_LINE)

    # -- the login itself --------------------------------------------------------------
    def login(self, credentials: Any, mechanism: str, final: bytes | None = None) -> defer.Deferred[LoggedIn]:
        """Log in with ``credentials`` under the throttle; see :class:`LoginRefused`.

        ``final`` is a mechanism's last server message (SCRAM's ``v=``): it
        goes out as one more challenge, whose answer must be empty, before
        the login counts as done.
        """
        session = self.session
        mind = LoginMind(session.context.protocol, session.client_address, session.secure)
        portal = session.context.portal
        d: defer.Deferred[Any] = guarded_login(
            session.context.throttle,
            session.client_address,
            credentials,
            lambda: portal.login(credentials, mind, IStoreAccount),
        )
        if final is not None:
            d.addCallback(self._final_step, final)
        d.addCallbacks(
            self._logged_in, self._refused, callbackArgs=(mechanism,), errbackArgs=(credentials, mechanism)
        )
        return d

    def _final_step(self, result: tuple[Any, Any, Any], final: bytes) -> defer.Deferred[Any]:
        d = self.challenge(final)

        def answered(line: bytes) -> Any:
            if decode_response(line) != b"":
                raise SASLMalformed("expected an empty response to the final challenge")
            return result

        def abandoned(failure: Any) -> Any:
            result[2]()  # the avatar's logout
            return failure

        return d.addCallback(answered).addErrback(abandoned)

    def _logged_in(self, result: tuple[Any, Any, Any], mechanism: str) -> LoggedIn:
        _, account, logout = result
        session = self.session
        if session.closing:
            logout()
            raise LoginRefused("closed")
        if not session.admission.admit_user(account.name.lower()):
            logout()
            self._report(account.name, mechanism, "refused", "sessions")
            raise LoginRefused("sessions")
        self.failures = 0
        session.info.user = account.name
        self._report(account.name, mechanism, "success")
        return LoggedIn(account, logout, mechanism)

    def _refused(self, failure: Any, credentials: Any, mechanism: str) -> None:
        user = _user_of(credentials)
        if failure.check(DirectoryUnavailable):
            self._report(user, mechanism, "unavailable", "unavailable")
            raise LoginRefused("unavailable")
        if failure.check(SASLMalformed, SASLCancelled):
            return failure.raiseException()
        failure.trap(UnauthorizedLogin, InvalidUserName)
        self._report(user, mechanism, "failure", "blocked" if failure.check(LoginBlocked) else "credentials")
        raise LoginRefused("credentials", last=self.count_failure())

    def count_failure(self) -> bool:
        """Count a failed attempt; True when it was the last one allowed."""
        self.failures += 1
        return bool(self.max_failures) and self.failures >= self.max_failures

    def _report(self, user: str, mechanism: str, outcome: str, reason: str = "") -> None:
        # The reason of a failure travels on the SessionInfo (access log, metrics).
        self.session.info.login_failure = reason if outcome != "success" else ""
        for observer in self.session.context.observers:
            observer.login_done(self.session.info, user, mechanism, outcome)


def _user_of(credentials: Any) -> str:
    name = getattr(credentials, "username", b"") or b""
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
