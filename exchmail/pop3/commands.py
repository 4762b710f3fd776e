"""The POP3 commands (RFC 1939, RFC 2449 CAPA, RFC 5034 AUTH, RFC 2595 STLS).

Each handler is ``cmd_NAME(session, args, rest)``: ``args`` are the
arguments split as the profile says, ``rest`` the line after the keyword
(PASS takes it whole, spaces included: MS-STANXPOP3 V0011).  A handler
writes its response and returns (or returns a Deferred); it raises
:class:`CommandError` for a ``-ERR`` answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.cred.credentials import UsernamePassword
from twisted.internet import defer

from exchmail import errors
from exchmail.pop3 import wire
from exchmail.pop3.maildrop import Maildrop
from exchmail.profile.settings import SortOrder
from exchmail.session.login import (
    LoggedIn,
    LoginRefused,
    SASLCancelled,
    SASLMalformed,
    UnknownMechanism,
)

if TYPE_CHECKING:
    from exchmail.pop3.session import POP3Session

LOGIN_FAILED = b"[AUTH] Logon failure: unknown user name or bad password."


class CommandError(Exception):
    """Answer the command ``-ERR`` with this text (bytes)."""


# -- AUTHORIZATION ------------------------------------------------------------------------
def cmd_USER(session: POP3Session, args: list[bytes], rest: bytes) -> None:
    """V0008/V0009: always ``+OK``; the name is checked with the password."""
    session.user = args[0]
    session.ok()


def cmd_PASS(session: POP3Session, args: list[bytes], rest: bytes) -> Any:
    """V0011: the password is the whole rest of the line, spaces included."""
    user, session.user = session.user, None
    if user is None:
        raise CommandError(b"USER command required before PASS.")
    if not session.login.plaintext_allowed():  # V0010
        raise CommandError(b"[AUTH] Plaintext authentication is not allowed on this connection; use TLS.")
    d = session.login.login(UsernamePassword(user, rest), "USER")
    return d.addCallbacks(_logged_in, _refused, callbackArgs=(session,), errbackArgs=(session,))


def cmd_AUTH(session: POP3Session, args: list[bytes], rest: bytes) -> Any:
    mechanisms = session.login.mechanisms()
    if not args:
        session.ok()
        session.multiline(mechanisms)
        return None
    d = session.login.authenticate(args[0], args[1] if len(args) > 1 else None)
    return d.addCallbacks(_logged_in, _refused, callbackArgs=(session,), errbackArgs=(session,))


def _refused(failure: Any, session: POP3Session) -> None:
    if failure.check(UnknownMechanism):
        raise CommandError(b"Unrecognized authentication type.")
    if failure.check(SASLCancelled, SASLMalformed):
        # An abandoned exchange counts as a failed attempt (C0005).
        if failure.value.last:
            session.close_after_command()
        if failure.check(SASLCancelled):  # Exchange's text
            raise CommandError(b"The AUTH protocol exchange was canceled by the client.")
        if failure.value.encoding:
            raise CommandError(b"Invalid base64 in the AUTH response.")
        session.err(LOGIN_FAILED)
        return None
    failure.trap(LoginRefused)
    reason = failure.value.reason
    if reason == "unavailable":
        raise CommandError(b"[SYS/TEMP] The account directory is unavailable; try later.")
    if reason == "sessions":
        raise CommandError(b"[IN-USE] Too many sessions for this user; try again later.")
    if reason == "closed":
        return None
    return _failed_login(session, failure.value.last)


def _failed_login(session: POP3Session, last: bool) -> None:
    """A failed attempt; C0005: after ``max_failed_logins`` the ``-ERR`` is the last word."""
    if last:
        session.close_after_command()
    session.err(LOGIN_FAILED)


@defer.inlineCallbacks
def _logged_in(done: LoggedIn, session: POP3Session):
    settings = session.context.profile.pop3
    user = done.account.name.lower()
    if settings.exclusive_lock:  # RFC 1939 §4, 2.1.3/C0004
        if user in session.context.locks:
            done.logout()
            raise CommandError(b"[IN-USE] The maildrop is in use by another POP3 session.")
        session.context.locks.add(user)
        session.locked = user
    try:
        inbox = yield defer.maybeDeferred(done.account.mailbox, "INBOX")
        yield defer.maybeDeferred(inbox.refresh)
    except Exception:
        session.release_lock()
        done.logout()
        raise
    newest_first = settings.message_retrieval_sort_order is SortOrder.DESCENDING
    session.maildrop = Maildrop(done.account.name, inbox, newest_first)
    session.set_logout(done.logout)
    session.phase = "TRANSACTION"
    session.ok(b"User successfully logged on.")


def cmd_STLS(session: POP3Session, args: list[bytes], rest: bytes) -> None:
    """RFC 2595 §4: +OK in the clear, drop pipelined input, then the TLS handshake."""
    if not session.can_start_tls():
        raise CommandError(
            b"TLS is already active." if session.secure else b"STLS is not available on this server."
        )
    session.ok(b"Begin TLS negotiation.")
    session.user = None
    session.start_tls()


def capabilities(session: POP3Session) -> list[bytes]:
    """CAPA in the profile's order (Exchange: TOP UIDL SASL USER [STLS]), then the extras."""
    settings = session.context.profile.pop3
    mechanisms = session.login.mechanisms()
    present = {
        "SASL": [b"SASL " + b" ".join(mechanisms)] if mechanisms else [],
        "STLS": [b"STLS"] if session.can_start_tls() else [],
    }
    caps: list[bytes] = []
    for name in (*settings.capabilities, *settings.extra_capabilities):
        caps.extend(present.get(name, [name.encode("ascii")]))
    return caps


def cmd_CAPA(session: POP3Session, args: list[bytes], rest: bytes) -> None:
    session.ok()
    session.multiline(capabilities(session))


def cmd_QUIT(session: POP3Session, args: list[bytes], rest: bytes) -> Any:
    sign_off = session.context.profile.pop3.sign_off.encode("utf-8")
    maildrop = session.maildrop
    if session.phase == "AUTHORIZATION" or maildrop is None:
        session.ok(sign_off)
        session.close()
        return None
    session.phase = "UPDATE"
    d = maildrop.update()

    def updated(removed: list[int]) -> None:
        session.ok(sign_off)

    def failed(failure: Any) -> None:
        if not failure.check(errors.StoreError):
            session.log.failure("error in the POP3 UPDATE state", failure)
        session.err(b"[SYS/TEMP] Some deleted messages were not removed.")

    d.addCallbacks(updated, failed)
    d.addBoth(lambda _: session.close())
    return d


# -- TRANSACTION -------------------------------------------------------------------------------
def _maildrop(session: POP3Session) -> Maildrop:
    assert session.maildrop is not None
    return session.maildrop


def _index(session: POP3Session, arg: bytes) -> int:
    """The 0-based index of a message-number argument naming a live message."""
    if not arg.isdigit():
        raise CommandError(b"Protocol error: the message number must be a decimal number.")
    index = int(arg) - 1
    maildrop = _maildrop(session)
    if not 0 <= index < len(maildrop):
        raise CommandError(b"The specified message is out of range.")
    if index in maildrop.deleted:
        raise CommandError(b"Message %d has been deleted." % (index + 1))
    return index


def cmd_STAT(session: POP3Session, args: list[bytes], rest: bytes) -> None:
    """2.1.4 and V0004: count and size, nothing after the size."""
    maildrop, exact = _maildrop(session), session.context.profile.pop3.exact_rfc822_size
    session.ok(b"%d %d" % (len(maildrop.live()), maildrop.total_size(exact)))


def cmd_LIST(session: POP3Session, args: list[bytes], rest: bytes) -> None:
    """2.1.5 and V0005: scan listings are the number and the size, nothing more."""
    maildrop, exact = _maildrop(session), session.context.profile.pop3.exact_rfc822_size
    if args:
        index = _index(session, args[0])
        session.ok(b"%d %d" % (index + 1, maildrop.size(index, exact)))
        return
    live = maildrop.live()
    session.ok(b"%d messages (%d octets)" % (len(live), maildrop.total_size(exact)))
    session.multiline([b"%d %d" % (i + 1, maildrop.size(i, exact)) for i in live])


def cmd_UIDL(session: POP3Session, args: list[bytes], rest: bytes) -> None:
    """C0007-C0009: the unique-id is the IMAP UID, in decimal."""
    maildrop = _maildrop(session)
    if args:
        index = _index(session, args[0])
        session.ok(b"%d %d" % (index + 1, maildrop.uid(index)))
        return
    session.ok()
    session.multiline([b"%d %d" % (i + 1, maildrop.uid(i)) for i in maildrop.live()])


#: Messages up to this size are read whole (one store trip) and written in
#: one call; larger ones are streamed with back-pressure.
READ_WHOLE = 256 * 1024


def cmd_RETR(session: POP3Session, args: list[bytes], rest: bytes) -> defer.Deferred[None]:
    """C0011: the message in wire form, byte-stuffed, as IMAP's BODY[] has it."""
    index = _index(session, args[0])
    size = _maildrop(session).size(index, session.context.profile.pop3.exact_rfc822_size)
    return _send(session, index, b"%d octets" % size, None)


def cmd_TOP(session: POP3Session, args: list[bytes], rest: bytes) -> defer.Deferred[None]:
    """V0007: the header, the blank line and the first n body lines."""
    index = _index(session, args[0])
    if not args[1].isdigit():
        raise CommandError(b"Protocol error: the line count must be a decimal number.")
    return _send(session, index, b"", int(args[1]))


def _send(session: POP3Session, index: int, ok_text: bytes, top_lines: int | None) -> defer.Deferred[None]:
    """``+OK`` and the message (or its top): whole if small, else streamed."""
    maildrop = _maildrop(session)

    def whole(data: bytes) -> None:
        session.ok(ok_text)
        session.write_data(wire.stuffed_message(data, top_lines))

    def streamed(reader: Any) -> defer.Deferred[None]:
        session.ok(ok_text)
        return wire.send_message(session, reader, top_lines)

    if maildrop.size(index, exact=True) <= READ_WHOLE:
        return maildrop.read(index).addCallback(whole)
    return maildrop.open(index).addCallback(streamed)


def cmd_DELE(session: POP3Session, args: list[bytes], rest: bytes) -> None:
    index = _index(session, args[0])
    _maildrop(session).delete(index)
    session.ok(b"Message %d marked for deletion." % (index + 1))


def cmd_NOOP(session: POP3Session, args: list[bytes], rest: bytes) -> None:
    session.ok()


def cmd_RSET(session: POP3Session, args: list[bytes], rest: bytes) -> None:
    _maildrop(session).undelete_all()
    session.ok()
