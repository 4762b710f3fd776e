"""Commands on mailboxes (authenticated state): SELECT, EXAMINE, CREATE, DELETE,
RENAME, SUBSCRIBE, UNSUBSCRIBE, LSUB, STATUS, NAMESPACE (LIST: see
:mod:`exchmail.imap.handlers.listext`)."""

from __future__ import annotations

from itertools import compress, count
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from exchmail.imap import commands as syntax
from exchmail.imap import listing
from exchmail.imap.responses import CommandFailed, decode_mailbox, encode_mailbox
from exchmail.interfaces import IEarlyOpen, IModSeq
from exchmail.profile.settings import ListReference
from exchmail.store import names

if TYPE_CHECKING:
    from exchmail.imap.session import IMAPSession


# -- names ----------------------------------------------------------------------------------
@defer.inlineCallbacks
def mailbox_name(session: IMAPSession, raw: bytes):
    """A mailbox argument, spelled as the existing mailbox is when the profile
    makes names case-insensitive (V0008)."""
    name = decode_mailbox(raw, utf8=session.utf8)
    if session.context.profile.imap.case_insensitive_names and name.upper() != "INBOX":
        existing = yield defer.maybeDeferred(session.account.list_mailboxes)
        name = listing.canonical_name(name, existing)
    return name


@defer.inlineCallbacks
def new_mailbox_name(session: IMAPSession, raw: bytes):
    """The name for CREATE or a RENAME target, checked against the profile (V0010)."""
    name = yield mailbox_name(session, raw)
    name = name.rstrip(listing.DELIMITER)
    if not session.context.profile.imap.wildcards_in_names and listing.has_wildcards(name):
        raise CommandFailed(b"[CANNOT] Mailbox names may not contain '*' or '%'")
    return name


def mailbox_line(session: IMAPSession, name: str) -> bytes:
    """A mailbox name as responses spell it (V0009: a literal if the profile says so)."""
    return encode_mailbox(name, session.context.profile.imap.backslash_names_as_literal, utf8=session.utf8)


# -- SELECT / EXAMINE ----------------------------------------------------------------------------
@defer.inlineCallbacks
def select(command: syntax.Select, session: IMAPSession):
    from exchmail.imap.handlers import condstore

    condstore.check_select(command, session)
    name = yield mailbox_name(session, command.mailbox)
    if session.view is not None and (session.qresync or session.rev2):
        session.untagged(b"OK [CLOSED] Previous mailbox closed")  # RFC 7162 §3.2.11
    session.close_mailbox()
    mailbox, details_known = yield open_early(session.account, name)
    learning = details_known()
    if learning is None:
        yield defer.maybeDeferred(mailbox.refresh)
    else:
        # Loaded just now, its dates and sizes still being learnt: a refresh
        # would only wait for that.  Commands that need them wait (and fail).
        learning.addErrback(lambda _: None)
    view = session.select(mailbox, command.readonly, details_known)
    session.send_flags()
    session.untagged(b"%d EXISTS" % view.exists)
    if not session.rev2:  # RFC 9051 has no \Recent
        session.untagged(b"%d RECENT" % len(view.recent))
    first_unseen = _first_unseen(view)
    if first_unseen is not None:
        session.untagged(b"OK [UNSEEN %d] First unseen message" % first_unseen)
    session.untagged(b"OK [UIDVALIDITY %d] UIDs valid" % mailbox.uid_validity)
    session.untagged(b"OK [UIDNEXT %d] Predicted next UID" % mailbox.uid_next)
    condstore.after_select(command, session, mailbox)
    mode = b"[READ-ONLY] EXAMINE" if command.readonly else b"[READ-WRITE] SELECT"
    return mode + b" completed."


def open_early(account: Any, name: str) -> defer.Deferred[tuple[Any, Any]]:
    """``(mailbox, details_known)`` (:class:`~exchmail.interfaces.IEarlyOpen`);
    a store without early opens hands out complete mailboxes only."""
    if IEarlyOpen.providedBy(account):
        return defer.maybeDeferred(account.mailbox_early, name)
    d = defer.maybeDeferred(account.mailbox, name)
    return d.addCallback(lambda mailbox: (mailbox, _complete))


def _complete() -> None:
    return None


def _first_unseen(view: Any) -> int | None:
    columns = view.columns()
    if columns is not None:  # found in C, however many are seen
        unseen = ["\\Seen" not in flags for flags in columns.flag_sets]
        return next(compress(count(1), map(unseen.__getitem__, columns.flags)), None)
    for seq, _, flags, *_ in view.index_rows():
        if "\\Seen" not in flags:
            return seq
    return None


# -- CREATE / DELETE / RENAME ---------------------------------------------------------------------
@defer.inlineCallbacks
def create(command: syntax.Create, session: IMAPSession):
    name = yield new_mailbox_name(session, command.mailbox)
    yield defer.maybeDeferred(session.account.create, name)
    return b"CREATE completed."


@defer.inlineCallbacks
def delete(command: syntax.Delete, session: IMAPSession):
    name = yield mailbox_name(session, command.mailbox)
    if not session.context.profile.imap.delete_with_children:  # V0026
        existing = yield defer.maybeDeferred(session.account.list_mailboxes)
        if any(names.is_inferior(other, name) for other in existing):
            raise CommandFailed(b"[CANNOT] Mailbox has inferior hierarchical names")
    if session.view is not None and session.view.mailbox.name == name:
        session.close_mailbox()
    yield defer.maybeDeferred(session.account.delete, name)
    return b"DELETE completed."


@defer.inlineCallbacks
def rename(command: syntax.Rename, session: IMAPSession):
    old = yield mailbox_name(session, command.old)
    new = yield new_mailbox_name(session, command.new)
    yield defer.maybeDeferred(session.account.rename, old, new)
    return b"RENAME completed."


# -- SUBSCRIBE / UNSUBSCRIBE ------------------------------------------------------------------------
@defer.inlineCallbacks
def subscribe(command: syntax.Subscribe, session: IMAPSession):
    name = yield mailbox_name(session, command.mailbox)
    if session.context.profile.imap.subscribe_requires_existing:  # V0027
        existing = yield defer.maybeDeferred(session.account.list_mailboxes)
        if name not in existing:
            raise CommandFailed(b"[NONEXISTENT] No such mailbox")
    yield defer.maybeDeferred(session.account.subscribe, name)
    return b"SUBSCRIBE completed."


@defer.inlineCallbacks
def unsubscribe(command: syntax.Unsubscribe, session: IMAPSession):
    name = yield mailbox_name(session, command.mailbox)
    yield defer.maybeDeferred(session.account.unsubscribe, name)
    return b"UNSUBSCRIBE completed."


# -- LIST / LSUB ------------------------------------------------------------------------------------
def _pattern(raw: bytes, utf8: bool = False) -> str:
    """A LIST reference or pattern; the empty string is allowed."""
    return "" if raw == b"" else decode_mailbox(raw, utf8=utf8)


@defer.inlineCallbacks
def lsub(command: syntax.Lsub, session: IMAPSession):
    reference, pattern = (_pattern(command.reference, session.utf8), _pattern(command.pattern, session.utf8))
    settings = session.context.profile.imap
    if settings.list_reference_without_delimiter is ListReference.CONCATENATE:
        full = reference + pattern  # as LIST does (exchmail.imap.listext.join_reference)
    else:
        full = listing.full_pattern(reference, pattern)
    subscribed = yield defer.maybeDeferred(session.account.subscriptions)
    existing = yield defer.maybeDeferred(session.account.list_mailboxes)
    entries = listing.lsub_entries(
        subscribed, existing, full, settings.lsub_percent_noselect_parent, settings.case_insensitive_names
    )
    for name, attributes in entries:
        _list_line(session, b"LSUB", name, attributes)
    return b"LSUB completed."


def _list_line(session: IMAPSession, kind: bytes, name: str, attributes: list[bytes]) -> None:
    session.untagged(b'%s (%s) "/" %s' % (kind, b" ".join(attributes), mailbox_line(session, name)))


# -- STATUS / NAMESPACE ------------------------------------------------------------------------------
@defer.inlineCallbacks
def status(command: syntax.Status, session: IMAPSession):
    name = yield mailbox_name(session, command.mailbox)
    line = yield status_response(session, name, command.items)
    session.untagged(line)
    return b"STATUS completed."


@defer.inlineCallbacks
def status_response(session: IMAPSession, name: str, items: tuple[bytes, ...]):
    """A Deferred of the ``STATUS name (item value ...)`` response (without ``* ``)."""
    mailbox = yield defer.maybeDeferred(session.account.mailbox, name)
    yield defer.maybeDeferred(mailbox.refresh)
    settings = session.context.profile.imap
    values = {
        b"MESSAGES": lambda: len(mailbox.uids()),
        b"RECENT": mailbox.recent_count,
        b"UIDNEXT": lambda: mailbox.uid_next,
        b"UIDVALIDITY": lambda: mailbox.uid_validity,
        b"UNSEEN": lambda: _unseen(mailbox),
        # RFC 8438: the octets RFC822.SIZE would report, summed.
        b"SIZE": lambda: _size(mailbox, settings.exact_rfc822_size),
        b"APPENDLIMIT": lambda: settings.max_literal_size,  # RFC 7889
        # RFC 9208: what EXPUNGE would free, in the STORAGE unit (1024 octets).
        b"DELETED-STORAGE": lambda: -(-_size(mailbox, False, "\\Deleted") // 1024),
        b"DELETED": lambda: _count_flag(mailbox, "\\Deleted"),  # RFC 9051 §6.3.11
        # RFC 7162 §3.1.8 (0 for a store without MODSEQs)
        b"HIGHESTMODSEQ": lambda: IModSeq(mailbox).highest_modseq() if IModSeq.providedBy(mailbox) else 0,
    }
    if b"HIGHESTMODSEQ" in items and not session.condstore:
        session.enabled.add(b"CONDSTORE")  # a CONDSTORE-enabling command (§3.1)
    body = b" ".join(b"%s %d" % (item, values[item]()) for item in items)
    return b"STATUS " + mailbox_line(session, mailbox.name) + b" (" + body + b")"


def _size(mailbox: Any, exact: bool, flag: str | None = None) -> int:
    message = mailbox.message
    total = 0
    for uid in mailbox.uids():
        record = message(uid)
        if record is not None and (flag is None or flag in record.flags):
            total += record.exact_size if exact else record.stored_size
    return total


def _count_flag(mailbox: Any, flag: str) -> int:
    message = mailbox.message
    return sum(1 for uid in mailbox.uids() if (r := message(uid)) is not None and flag in r.flags)


def _unseen(mailbox: Any) -> int:
    message = mailbox.message
    count = 0
    for uid in mailbox.uids():
        record = message(uid)
        if record is not None and "\\Seen" not in record.flags:
            count += 1
    return count


def namespace(command: syntax.Namespace, session: IMAPSession) -> bytes:
    session.untagged(b'NAMESPACE (("" "/")) NIL NIL')
    return b"NAMESPACE completed."
