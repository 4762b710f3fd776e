"""Pieces shared by the IMAP command mixins: failures, name encoding, typing base."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from exchmail import errors, mutf7
from exchmail.imap import wire
from exchmail.imap.parsing import Token, as_bytes

if TYPE_CHECKING:
    from twisted.internet import defer

    from exchmail.imap.selected import SelectedMailbox
    from exchmail.profile import Profile


class CommandFailed(Exception):
    """Answer the command with a tagged NO carrying this text (bytes)."""


def store_error_text(error: Exception) -> bytes:
    """The NO text for a store error, with its RFC 5530 response code."""
    text = str(error).encode("utf-8", "replace")
    if isinstance(error, errors.MailboxExists):
        return b"[ALREADYEXISTS] " + text
    if isinstance(error, errors.NoSuchMailbox):
        return b"[NONEXISTENT] " + text
    if isinstance(error, errors.InvalidMailboxName):
        return b"[CANNOT] " + text
    if isinstance(error, errors.OverQuota):
        return b"[OVERQUOTA] " + text
    return text


def decode_mailbox(token: Token) -> str:
    """A mailbox name argument as ``str``: modified UTF-7, or raw UTF-8 from
    clients that send 8-bit names."""
    raw = as_bytes(token)
    try:
        if raw.isascii():
            return mutf7.decode(raw.decode("ascii"))
        return raw.decode("utf-8")
    except ValueError:
        raise CommandFailed(b"[CANNOT] Mailbox name is not valid modified UTF-7") from None


def encode_mailbox(name: str, literal_for_backslash: bool = False) -> bytes:
    """A mailbox name for a response: modified UTF-7 as a quoted string, or a
    literal when it holds a backslash and the profile wants that (V0009)."""
    encoded = mutf7.encode(name).encode("ascii")
    if literal_for_backslash and b"\\" in encoded:
        return wire.literal(encoded)
    return wire.string(encoded)


class SessionBase:
    """What the command mixins may use of :class:`~exchmail.imap.server.IMAPServer`.

    Declarations only (for readers and type checkers); the server defines them.
    """

    profile: Profile
    portal: Any
    reactor: Any
    account: Any
    selected: SelectedMailbox | None
    state: str
    challengers: Any  # mechanism name -> IChallengeResponse factory
    transport: Any
    log: Any
    login_type: str
    startedTLS: bool
    POSTAUTH_TIMEOUT: int
    _buffer: bytes
    _await_line: defer.Deferred[bytes] | None
    _logout_hook: Callable[[], None] | None
    _busy: bool
    write_gate: Any
    _drop_reason: bytes | None
    admission: Any

    if TYPE_CHECKING:
        def sendLine(self, line: bytes) -> None: ...
        def send_raw(self, data: bytes) -> None: ...
        def flush(self) -> None: ...
        def sendUntaggedResponse(self, message: bytes, isAsync: Any = None) -> None: ...
        def sendPositiveResponse(self, tag: bytes | None = None, message: bytes = b"") -> None: ...
        def sendContinuationRequest(self, msg: bytes = b"") -> None: ...
        def setTimeout(self, period: float | None) -> Any: ...
        def send_updates(self, allow_expunge: bool = True) -> None: ...
        def close_selected(self) -> None: ...
        def await_line(self) -> defer.Deferred[bytes]: ...
        def _process_input(self) -> None: ...
        def listCapabilities(self) -> list[bytes]: ...
        def refresh_selected(self) -> defer.Deferred[None]: ...
        def mailbox_name(self, token: Token) -> str: ...
        def allowed_flags(self, flags: frozenset[str], storing: bool) -> frozenset[str]: ...
