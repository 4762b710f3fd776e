"""APPEND with MULTIAPPEND (RFC 3502), CATENATE (RFC 4469) and literal8 (RFC 3516).

An :class:`~exchmail.imap.commands_ext.ExtendedAppend` stores all its
messages or none:

1. the target mailbox is opened (``NO [TRYCREATE]`` if it does not exist,
   before any URL is looked at, as imaptest's ``catenate`` expects);
2. every message is built without storing anything: CATENATE URLs are
   resolved (``NO [BADURL url]`` for the first bad one), parts joined,
   literal8 messages made storable (:func:`exchmail.imap.binary.storable`),
   each checked against the size limit (``max_literal_size``: ``NO
   [TOOBIG]``) and the UTF8=ACCEPT header rule;
3. the quota is checked once for their total (``NO [OVERQUOTA]``);
4. they are appended in order; if one fails, the ones already stored are
   flagged ``\\Deleted`` and expunged again, and the command fails.

The tagged OK carries ``APPENDUID uidvalidity uid-set`` (RFC 4315).  Reading
spooled literals and message content, and parsing it, happens off the
reactor thread for large data (:func:`~exchmail.mailbox.content.offload`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from exchmail import errors
from exchmail.imap import commands as syntax
from exchmail.imap import fetch, listing
from exchmail.imap.binary import NotStorable, storable
from exchmail.imap.handlers.mailboxes import mailbox_name
from exchmail.imap.handlers.messages import allowed_flags, compact_uid_set
from exchmail.imap.imapurl import BadURL, MessageURL, parse_url
from exchmail.imap.responses import CommandFailed
from exchmail.imap.utf8 import check_append_headers
from exchmail.mailbox.content import offload
from exchmail.mime.message import ParsedMessage
from exchmail.session.reader import SpooledLiteral
from exchmail.store.quota import check_room

if TYPE_CHECKING:
    from exchmail.imap.session import IMAPSession

log = Logger(namespace="exchmail.imap.append")


def message_size_limit(session: IMAPSession) -> int:
    """The largest message one APPEND may store (each message of a MULTIAPPEND).

    The one place an APPENDLIMIT (RFC 7889) setting joins in: every message
    is checked before any is stored, so one over the limit fails the whole
    command with ``NO [TOOBIG]`` and stores nothing.
    """
    return session.context.profile.imap.max_literal_size


@defer.inlineCallbacks
def extended_append(command: syntax.ExtendedAppend, session: IMAPSession):
    name = yield mailbox_name(session, command.mailbox)
    try:
        mailbox = yield defer.maybeDeferred(session.account.mailbox, name)
    except errors.NoSuchMailbox:
        raise CommandFailed(b"[TRYCREATE] Mailbox does not exist") from None
    limit = message_size_limit(session)
    built: list[tuple[Any, frozenset[str], float | None]] = []
    total = 0
    for message in command.messages:
        flags = allowed_flags(session, message.flags, storing=False)
        source, size = yield _build(session, message)
        if size > limit:
            raise CommandFailed(b"[TOOBIG] The message is larger than %d octets" % limit)
        yield check_append_headers(session, source)
        built.append((source, flags, message.internal_date))
        total += size
    yield check_room(mailbox, total)
    uids = yield _append_all(mailbox, built)
    return b"[APPENDUID %d %s] APPEND completed." % (mailbox.uid_validity, compact_uid_set(uids))


@defer.inlineCallbacks
def _append_all(mailbox: Any, built: list[tuple[Any, frozenset[str], float | None]]):
    """Append every message, or (after a failure) none: RFC 3502's atomicity."""
    uids: list[int] = []
    try:
        for source, flags, when in built:
            if isinstance(source, SpooledLiteral):
                source = source.reader()
            uid = yield defer.maybeDeferred(mailbox.append, source, flags, when)
            uids.append(uid)
    except Exception:
        if uids:
            yield _undo(mailbox, uids)
        raise
    return uids


@defer.inlineCallbacks
def _undo(mailbox: Any, uids: list[int]):
    try:
        yield defer.maybeDeferred(mailbox.set_flags, uids, frozenset({"\\Deleted"}), "add")
        yield defer.maybeDeferred(mailbox.expunge, uids)
    except Exception:  # noqa: BLE001 - report the first failure, not this one
        log.failure("cannot remove the messages of a failed MULTIAPPEND: UIDs {uids}", uids=uids)


# -- building one message ---------------------------------------------------------------------
@defer.inlineCallbacks
def _build(session: IMAPSession, message: syntax.AppendMessage):
    """``(source, size)`` of one message: bytes, or a spooled literal as it came."""
    parts = message.parts
    if len(parts) == 1 and isinstance(parts[0], syntax.CatenateText) and not parts[0].binary:
        data = parts[0].data
        return data, len(data)
    pieces = []
    binary = False
    limit = message_size_limit(session)
    size = 0
    for part in parts:
        if isinstance(part, syntax.CatenateUrl):
            piece = yield _resolve(session, part.url)
        else:
            binary = binary or part.binary
            piece = yield _literal_bytes(session, part.data)
        size += len(piece)
        if size > limit:  # checked as it grows: URLs can name large messages many times
            raise CommandFailed(b"[TOOBIG] The message is larger than %d octets" % limit)
        pieces.append(piece)
    data = b"".join(pieces)
    if binary:
        try:
            data = yield offload(session.context.run_blocking, len(data), storable, data)
        except NotStorable as error:
            raise CommandFailed(
                b"[UNKNOWN-CTE] Cannot store this message: " + str(error).encode("ascii", "replace")
            ) from None
    return data, len(data)


def _literal_bytes(session: IMAPSession, data: Any) -> defer.Deferred[bytes]:
    if isinstance(data, SpooledLiteral):
        return offload(session.context.run_blocking, data.size, data.read_all)
    return defer.succeed(bytes(data))


@defer.inlineCallbacks
def _resolve(session: IMAPSession, raw: bytes):
    """The octets a CATENATE URL names (BODY[section]<partial> of a message of
    this user's); ``NO [BADURL url]`` when it names none."""
    try:
        url = parse_url(raw)
        data = yield _url_content(session, url, raw)
    except BadURL as error:
        text = raw.replace(b"]", b"%5D").replace(b"\r", b"").replace(b"\n", b"")[:512]
        raise CommandFailed(b"[BADURL " + text + b"] " + str(error).encode("ascii", "replace")) from None
    return data


@defer.inlineCallbacks
def _url_content(session: IMAPSession, url: MessageURL, raw: bytes):
    mailbox = yield _url_mailbox(session, url, raw)
    if url.uidvalidity is not None and url.uidvalidity != mailbox.uid_validity:
        raise BadURL(raw, "UIDVALIDITY does not match")
    if mailbox.message(url.uid) is None:
        raise BadURL(raw, "no such message")
    try:
        data = yield defer.maybeDeferred(mailbox.read_message, url.uid)
    except errors.NoSuchMessage:
        raise BadURL(raw, "no such message") from None
    if url.path or url.text is not None:
        data = yield offload(session.context.run_blocking, len(data), _section, data, url)
    if url.partial is not None:
        data = fetch.partial(data, *url.partial)
    return data


def _section(data: bytes, url: MessageURL) -> bytes:
    parsed = ParsedMessage(data)
    if url.path and parsed.part(url.path) is None:
        raise BadURL(b"", "no such body part")
    return fetch.section(parsed, url.path, url.text, url.fields)


@defer.inlineCallbacks
def _url_mailbox(session: IMAPSession, url: MessageURL, raw: bytes):
    if url.mailbox is None:
        if session.view is None:
            raise BadURL(raw, "a relative URL needs a selected mailbox")
        return session.view.mailbox
    name = url.mailbox
    if session.context.profile.imap.case_insensitive_names and name.upper() != "INBOX":
        existing = yield defer.maybeDeferred(session.account.list_mailboxes)
        name = listing.canonical_name(name, existing)
    try:
        mailbox = yield defer.maybeDeferred(session.account.mailbox, name)
    except (errors.NoSuchMailbox, errors.InvalidMailboxName):
        raise BadURL(raw, "no such mailbox") from None
    return mailbox
