"""LIST in full (authenticated state): references (V0029), LIST-EXTENDED
(RFC 5258), LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154); and CREATE
with CREATE-SPECIAL-USE."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from exchmail import errors
from exchmail.imap import commands as syntax
from exchmail.imap import folders
from exchmail.imap.handlers import mailboxes
from exchmail.imap.listext import Entry, Query, join_reference, select_entries
from exchmail.imap.responses import CommandFailed, decode_mailbox
from exchmail.interfaces import IMarkedMailboxes, ISpecialUseMailboxes

if TYPE_CHECKING:
    from exchmail.imap.session import IMAPSession

CHILDINFO = b' ("CHILDINFO" ("SUBSCRIBED"))'


def _name_or_none(raw: bytes, utf8: bool) -> str | None:
    """A LIST reference or pattern; None if it is not valid modified UTF-7
    (such a pattern matches nothing: LIST still answers OK).  After ENABLE
    UTF8=ACCEPT it is UTF-8 (invalid UTF-8 is BAD, RFC 6855)."""
    if raw == b"":
        return ""
    try:
        return decode_mailbox(raw, utf8=utf8)
    except CommandFailed:
        return None


@defer.inlineCallbacks
def list_command(command: syntax.List, session: IMAPSession):
    settings = session.context.profile.imap
    if not command.extended and command.pattern == b"":
        session.untagged(b'LIST (\\Noselect) "/" ""')  # the delimiter and the root
        return b"LIST completed."
    reference = _name_or_none(command.reference, session.utf8)
    patterns = []
    for raw in command.patterns or (command.pattern,):
        pattern = _name_or_none(raw, session.utf8)
        if reference is not None and pattern is not None:
            full = join_reference(reference, pattern, settings.list_reference_without_delimiter)
            if full is not None:
                patterns.append(full)
    if not patterns:
        return b"LIST completed."
    account = session.account
    selection, returns = command.selection, command.returns
    existing = yield defer.maybeDeferred(account.list_mailboxes)
    subscribed: set[str] = set()
    if b"SUBSCRIBED" in selection | returns:
        subscribed = yield defer.maybeDeferred(account.subscriptions)
    special = yield folders.special_uses(account, settings, existing)
    query = Query(
        tuple(patterns),
        subscribed_only=b"SUBSCRIBED" in selection,
        special_only=b"SPECIAL-USE" in selection,
        recursive=b"RECURSIVEMATCH" in selection,
        show_subscribed=b"SUBSCRIBED" in selection | returns,
        # RFC 5258 section 4: asked for with RETURN (CHILDREN); a LIST that
        # selects nothing special shows them when the profile has CHILDREN on.
        children=b"CHILDREN" in returns
        or (settings.list_children_attributes and not selection - {b"REMOTE"}),
        case_insensitive=settings.case_insensitive_names,
        special=special,
    )
    entries = select_entries(query, existing, subscribed)
    if IMarkedMailboxes.providedBy(account) and entries:
        marked = yield defer.maybeDeferred(account.marked, [e.name for e in entries if e.selectable])
        if marked:  # again, with \Marked where it belongs in the attributes
            entries = select_entries(query, existing, subscribed, marked.__contains__)
    for entry in entries:
        yield _send_entry(session, entry, command.status_items)
    return b"LIST completed."


@defer.inlineCallbacks
def _send_entry(session: IMAPSession, entry: Entry, status_items: tuple[bytes, ...]):
    extra = CHILDINFO if entry.childinfo else b""
    session.untagged(
        b'LIST (%s) "/" %s%s'
        % (b" ".join(entry.attributes), mailboxes.mailbox_line(session, entry.name), extra)
    )
    if status_items and entry.selectable:  # RFC 5819: right after its LIST response
        try:
            line = yield mailboxes.status_response(session, entry.name, status_items)
        except errors.NoSuchMailbox:
            return None  # deleted meanwhile
        session.untagged(line)
    return None


@defer.inlineCallbacks
def create_command(command: syntax.Create, session: IMAPSession):
    """CREATE; with ``(USE (...))`` the mailbox is made only if the store can
    keep its special use (RFC 6154 section 3: else ``NO [USEATTR]``)."""
    if not command.uses:
        result = yield mailboxes.create(command, session)
        return result
    known = set(folders.SPECIAL_USES.values())
    if any(use not in known for use in command.uses):
        raise CommandFailed(b"[USEATTR] Unsupported special-use attribute")
    if not ISpecialUseMailboxes.providedBy(session.account):
        raise CommandFailed(b"[USEATTR] This mail store cannot keep special-use attributes")
    account: Any = session.account
    name = yield mailboxes.new_mailbox_name(session, command.mailbox)
    yield defer.maybeDeferred(account.create, name)
    try:
        yield defer.maybeDeferred(account.set_special_use, name, frozenset(command.uses))
    except errors.StoreError:
        yield defer.maybeDeferred(account.delete, name)
        raise CommandFailed(b"[USEATTR] The special use could not be kept") from None
    return b"CREATE completed."
