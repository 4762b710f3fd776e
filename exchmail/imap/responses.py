"""Pieces every IMAP handler uses: failures, flags and mailbox names on the wire."""

from __future__ import annotations

from exchmail import errors, mutf7
from exchmail.imap import wire

#: The system flags, in the order responses list them.
SYSTEM_FLAGS = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})


class CommandFailed(Exception):
    """Answer the command with a tagged NO carrying this text (bytes)."""


class CommandBad(Exception):
    """Answer the command with a tagged BAD carrying this text (bytes)."""


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
    if isinstance(error, errors.NoSuchMessage):
        return b"[EXPUNGEISSUED] " + text
    if isinstance(error, errors.StoreUnavailable):
        return b"[UNAVAILABLE] " + text
    return text


def format_flags(flags: frozenset[str] | set[str]) -> bytes:
    """``(\\Seen $MDNSent)``, system flags first, stable order."""
    ordered = sorted(flags, key=lambda f: (not f.startswith("\\"), f.lower()))
    return b"(" + " ".join(ordered).encode("utf-8") + b")"


def decode_mailbox(raw: bytes, utf8: bool = False) -> str:
    """A mailbox name argument as ``str``: modified UTF-7, or raw UTF-8 from
    clients that send 8-bit names.  With ``utf8`` (the client enabled
    UTF8=ACCEPT, RFC 6855 §3) the name is UTF-8 only ("&" is just "&"), and
    control characters, U+2028 and U+2029 are refused."""
    if utf8:
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise CommandBad(b"Mailbox name is not valid UTF-8") from None
        if any(c < " " or "\x7f" <= c <= "\x9f" or c in "\u2028\u2029" for c in name):
            raise CommandFailed(b"[CANNOT] Mailbox names may not contain control characters")
        return name
    try:
        if raw.isascii():
            return mutf7.decode(raw.decode("ascii"))
        return raw.decode("utf-8")
    except ValueError:
        raise CommandFailed(b"[CANNOT] Mailbox name is not valid modified UTF-7") from None


def encode_mailbox(name: str, literal_for_backslash: bool = False, utf8: bool = False) -> bytes:
    """A mailbox name for a response: modified UTF-7 (UTF-8 after ENABLE
    UTF8=ACCEPT) as a quoted string, or a literal when it holds a backslash
    and the profile wants that (V0009)."""
    if utf8:
        raw = name.encode("utf-8")
        if literal_for_backslash and b"\\" in raw:
            return wire.literal(raw)
        if len(raw) <= wire.MAX_QUOTED and b"\r" not in raw and b"\n" not in raw:
            return wire.quoted(raw)  # RFC 6855 §3: UTF-8 in quoted strings
        return wire.literal(raw)
    encoded = mutf7.encode(name).encode("ascii")
    if literal_for_backslash and b"\\" in encoded:
        return wire.literal(encoded)
    return wire.string(encoded)
