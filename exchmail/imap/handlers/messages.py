"""Commands that change messages: APPEND (authenticated state), and CLOSE,
EXPUNGE, STORE, COPY with their UID forms (selected state); IDLE."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from exchmail import errors
from exchmail.imap import commands as syntax
from exchmail.imap.commands_sync import SavedSet
from exchmail.imap.handlers.mailboxes import mailbox_name
from exchmail.imap.responses import SYSTEM_FLAGS, CommandBad, CommandFailed
from exchmail.imap.utf8 import check_append_headers
from exchmail.mailbox.view import MailboxView
from exchmail.session.reader import SpooledLiteral
from exchmail.uidsets import format_uid_set

if TYPE_CHECKING:
    from exchmail.imap.session import IMAPSession


def compact_uid_set(uids: Iterable[int]) -> bytes:
    """``1:3,7`` for [1, 2, 3, 7] (as UIDPLUS responses want)."""
    return format_uid_set(uids).encode("ascii")


def allowed_flags(session: IMAPSession, flags: frozenset[str], storing: bool) -> frozenset[str]:
    """``flags`` if the profile lets clients set them all.

    Keywords the server does not define are refused (STORE) or, when the
    profile ignores invalid parameters (2.3), dropped (APPEND).
    """
    settings = session.context.profile.imap
    if settings.client_keywords:
        return flags
    allowed = SYSTEM_FLAGS | frozenset(settings.server_keywords)
    if flags <= allowed:
        return flags
    if settings.ignore_invalid_parameters and not storing:
        return flags & allowed
    raise CommandFailed(b"[CANNOT] Client-defined keywords are not supported")


def writable(session: IMAPSession) -> MailboxView:
    view = session.selected_view()
    if view.readonly:
        raise CommandFailed(b"[READ-ONLY] Mailbox is read-only")
    return view


def message_set(session: IMAPSession, sequence_set: Any, uid: bool) -> list[tuple[int, int]]:
    """``(seq, uid)`` pairs of a sequence set; BAD for message numbers that do not exist."""
    view = session.selected_view()
    if isinstance(sequence_set, SavedSet):  # RFC 5182: '$'
        from exchmail.imap.handlers.esearch import saved_set_uids

        return [(view.seq_of(u) or 0, u) for u in saved_set_uids(session)]
    ranges = sequence_set.ranges
    if not uid and not view.seqs_in_range(ranges):
        raise CommandBad(b"Invalid message sequence number")
    return view.resolve(ranges, uid)


# -- APPEND -------------------------------------------------------------------------------------
@defer.inlineCallbacks
def append(command: syntax.Append, session: IMAPSession):
    name = yield mailbox_name(session, command.mailbox)
    flags = allowed_flags(session, command.flags, storing=False)
    try:
        mailbox = yield defer.maybeDeferred(session.account.mailbox, name)
    except errors.NoSuchMailbox:
        raise CommandFailed(b"[TRYCREATE] Mailbox does not exist") from None
    message = command.message
    yield check_append_headers(session, message)  # RFC 6855 §4, where the profile says so
    source = message.reader() if isinstance(message, SpooledLiteral) else message
    try:
        new_uid = yield defer.maybeDeferred(mailbox.append, source, flags, command.internal_date)
    except errors.NoSuchMailbox:  # deleted or renamed meanwhile
        raise CommandFailed(b"[TRYCREATE] Mailbox does not exist") from None
    return b"[APPENDUID %d %d] APPEND completed." % (mailbox.uid_validity, new_uid)


# -- CLOSE / EXPUNGE ------------------------------------------------------------------------------
@defer.inlineCallbacks
def close(command: syntax.Close, session: IMAPSession):
    view = session.selected_view()
    if not view.readonly:
        yield defer.maybeDeferred(view.mailbox.expunge)
    session.close_mailbox()
    return b"CLOSE completed."


@defer.inlineCallbacks
def expunge(command: syntax.Expunge, session: IMAPSession):
    view = writable(session)
    if command.uid_set is not None:
        uids = [u for _, u in message_set(session, command.uid_set, uid=True)]
        yield defer.maybeDeferred(view.mailbox.expunge, uids)
    else:
        yield defer.maybeDeferred(view.mailbox.expunge)
    if session.context.profile.imap.exists_after_expunge:
        session.send_updates(allow_expunge=True)
        session.untagged(b"%d EXISTS" % view.exists)  # V0053
    return b"EXPUNGE completed."


# -- STORE ---------------------------------------------------------------------------------------------
@defer.inlineCallbacks
def store(command: syntax.Store, session: IMAPSession):
    from exchmail.imap.handlers.condstore import modseq_mailbox
    from exchmail.imap.session import modseq_map

    pairs = message_set(session, command.sequence_set, command.uid)
    view = writable(session)
    flags = allowed_flags(session, command.flags, storing=True)
    uids = [u for _, u in pairs]
    modified: list[int] = []
    if command.unchanged_since is not None:  # RFC 7162 §3.1.3: a conditional STORE
        box = modseq_mailbox(session)
        changed, modified = yield defer.maybeDeferred(
            box.set_flags_unchanged_since, uids, flags, command.mode, command.unchanged_since, view
        )
    else:
        changed = yield defer.maybeDeferred(view.mailbox.set_flags, uids, flags, command.mode, view)
    modseqs = modseq_map(session, [uid for uid in uids if uid in changed])
    for seq, uid in pairs:
        current = changed.get(uid)
        if current is None or (command.silent and uid not in modseqs):
            continue
        # With CONDSTORE even .SILENT answers the new MODSEQ (RFC 7162 §3.1.3).
        parts = (
            [] if command.silent else [b"FLAGS " + session.flags_for_client(view.with_recent(uid, current))]
        )
        if command.uid or (session.qresync and uid in modseqs):
            parts.append(b"UID %d" % uid)
        if uid in modseqs:
            parts.append(b"MODSEQ (%d)" % modseqs[uid])
        session.untagged(b"%d FETCH (%s)" % (seq, b" ".join(parts)))
    if modified:
        numbers = modified if command.uid else [s for s, u in pairs if u in set(modified)]
        return b"[MODIFIED %s] Conditional STORE failed" % compact_uid_set(numbers)
    return b"STORE completed."


# -- COPY --------------------------------------------------------------------------------------------------
@defer.inlineCallbacks
def copy(command: syntax.Copy, session: IMAPSession):
    pairs = message_set(session, command.sequence_set, command.uid)
    name = yield mailbox_name(session, command.mailbox)
    try:
        target = yield defer.maybeDeferred(session.account.mailbox, name)
    except errors.NoSuchMailbox:
        raise CommandFailed(b"[TRYCREATE] Mailbox does not exist") from None
    source = session.selected_view().mailbox
    try:
        copied = yield defer.maybeDeferred(source.copy_to, [u for _, u in pairs], target)
    except errors.NoSuchMailbox:  # the target was deleted or renamed meanwhile
        raise CommandFailed(b"[TRYCREATE] Mailbox does not exist") from None
    if not copied:
        return b"COPY completed."
    return b"[COPYUID %d %s %s] COPY completed." % (
        target.uid_validity,
        compact_uid_set(a for a, _ in copied),
        compact_uid_set(b for _, b in copied),
    )


# -- IDLE ---------------------------------------------------------------------------------------------------
@defer.inlineCallbacks
def idle(command: syntax.Idle, session: IMAPSession):
    """RFC 2177: updates as they happen (the store tells the view; nothing polls)."""
    session.continuation(b"idling")
    session.send_updates(allow_expunge=True)
    session.idling = True
    try:
        line = yield session.await_line()
    finally:
        session.idling = False
    if line.strip(b" \t").upper() != b"DONE":
        raise CommandBad(b"Expected DONE to end IDLE")
    return b"IDLE completed."
