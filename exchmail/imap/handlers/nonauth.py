"""CAPABILITY, NOOP, LOGOUT (any state); LOGIN, AUTHENTICATE, STARTTLS (not authenticated)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.cred.credentials import UsernamePassword
from twisted.internet import defer

from exchmail.imap import commands as syntax
from exchmail.imap import folders
from exchmail.imap.responses import CommandBad, CommandFailed
from exchmail.session.login import (
    LoggedIn,
    LoginRefused,
    SASLCancelled,
    SASLMalformed,
    UnknownMechanism,
)

if TYPE_CHECKING:
    from exchmail.imap.session import IMAPSession


def capability(command: syntax.Capability, session: IMAPSession) -> bytes:
    session.untagged(b"CAPABILITY " + b" ".join(session.capabilities()))
    return b"CAPABILITY completed."


def noop(command: Any, session: IMAPSession) -> Any:
    """NOOP (and CHECK, V0034): let the store pick up outside changes now."""
    view = session.view
    done = b"NOOP completed." if isinstance(command, syntax.Noop) else b"CHECK completed."
    if view is None:
        return done
    return defer.maybeDeferred(view.mailbox.refresh).addCallback(lambda _: done)


def logout(command: syntax.Logout, session: IMAPSession) -> None:
    session.untagged(b"BYE " + session.context.profile.imap.sign_off.encode("utf-8"))
    session.tagged(command.tag, b"OK", b"LOGOUT completed.")
    session.close_mailbox()
    session.state = "logout"
    session.close()


def login(command: syntax.Login, session: IMAPSession) -> Any:
    if not session.login.plaintext_allowed():
        raise CommandFailed(b"[PRIVACYREQUIRED] LOGIN is disabled before STARTTLS")
    credentials = UsernamePassword(command.user, command.password)
    d = session.login.login(credentials, "LOGIN")
    d.addCallbacks(_logged_in, _refused, callbackArgs=(session, b"LOGIN completed."), errbackArgs=(session,))
    return d


def authenticate(command: syntax.Authenticate, session: IMAPSession) -> Any:
    # RFC 4959 SASL-IR: accepted in every profile, advertised where the profile lists it.
    d = session.login.authenticate(command.mechanism, command.initial_response)
    d.addCallbacks(
        _logged_in, _refused, callbackArgs=(session, b"AUTHENTICATE completed."), errbackArgs=(session,)
    )
    return d


def _logged_in(done: LoggedIn, session: IMAPSession, text: bytes) -> Any:
    session.logged_in(done.account, done.logout)
    settings = session.context.profile.imap
    if settings.capability_in_login_response:
        text = b"[CAPABILITY " + b" ".join(session.capabilities()) + b"] " + text
    # The profile's default folders exist before the client's first command.
    d = folders.ensure_default_folders(done.account, settings)
    return d.addCallback(lambda _: text)


def _refused(failure: Any, session: IMAPSession) -> None:
    if failure.check(UnknownMechanism):
        raise CommandFailed(b"Unsupported authentication mechanism")
    if failure.check(SASLCancelled, SASLMalformed):
        if failure.value.last:  # an abandoned exchange counts as a failed attempt (V0058)
            session.close_after_command(b"* BYE Too many failed login attempts\r\n")
        if failure.check(SASLCancelled):  # Exchange's text
            raise CommandFailed(b"The AUTH protocol exchange was canceled by the client.")
        raise CommandBad(f"Invalid SASL response: {failure.value}".encode())
    failure.trap(LoginRefused)
    refused = failure.value
    if refused.reason == "unavailable":  # temporary; not a wrong password
        raise CommandFailed(b"[UNAVAILABLE] The account directory is unavailable; try again later.")
    if refused.reason == "sessions":
        raise CommandFailed(b"[UNAVAILABLE] Too many sessions for this user")
    if refused.last:  # V0058: the session ends after the answer
        session.close_after_command(b"* BYE Too many failed login attempts\r\n")
    raise CommandFailed(b"[AUTHENTICATIONFAILED] Authentication failed.")


def starttls(command: syntax.StartTLS, session: IMAPSession) -> None:
    """RFC 3501 §6.2.1, RFC 2595 §3.1: the OK in the clear, then the handshake;
    capabilities are evaluated afresh after it."""
    if session.context.tls is None:
        raise CommandBad(b"Unsupported command")
    if session.secure:
        raise CommandBad(b"STARTTLS not allowed: TLS is already active")
    session.tagged(command.tag, b"OK", b"Begin TLS negotiation now.")
    session.start_tls()
