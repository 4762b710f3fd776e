"""CONTEXT=SEARCH (RFC 5267 §4): searches the server keeps up to date.

``SEARCH RETURN (UPDATE ...)`` registers the search under its tag.  From
then on the client hears of changes to the result as ``* ESEARCH (TAG
"t") ADDTO (0 set)`` and ``REMOVEFROM (0 set)`` (position 0: the results
are not sorted) until it sends ``CANCELUPDATE "t"`` or leaves the mailbox:

- messages that are expunged are removed at once, before their EXPUNGE
  responses, with the sequence numbers the client still knows
  (:func:`refresh_contexts`, from the session's update writer);
- after every command (:func:`after_command`), and on every change while
  the client idles (:func:`refresh_while_idle`), the kept searches run
  again over the mailbox and the differences are sent.  A search over a
  very large mailbox costs what the SEARCH cost; clients keep few contexts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from exchmail.imap.handlers.messages import compact_uid_set
from exchmail.imap.responses import CommandFailed
from exchmail.imap.searchkeys import SearchKey

if TYPE_CHECKING:
    from exchmail.imap.session import IMAPSession
    from exchmail.mailbox.view import Updates

#: The most searches one session keeps up to date.
MAX_CONTEXTS = 8


@dataclass
class SearchContext:
    """One kept search: its criteria, UID mode and current result (UIDs)."""

    tag: bytes
    criteria: SearchKey
    by_uid: bool
    result: set[int] = field(default_factory=set)


def register(session: IMAPSession, command: Any, uids: list[int]) -> None:
    """Keep ``command``'s search up to date (NO [LIMIT] beyond MAX_CONTEXTS)."""
    contexts = session.search_contexts
    if command.tag not in contexts and len(contexts) >= MAX_CONTEXTS:
        raise CommandFailed(b"[LIMIT] Too many searches kept up to date")
    contexts[command.tag] = SearchContext(command.tag, command.criteria, command.uid, set(uids))


def cancelupdate(command: Any, session: IMAPSession) -> bytes:
    for tag in command.tags:
        if tag not in session.search_contexts:
            raise CommandFailed(b"[BADCOMPARATOR] Unknown search context tag")
    for tag in command.tags:
        del session.search_contexts[tag]
    return b"CANCELUPDATE completed."


def _line(context: SearchContext, word: bytes, numbers: list[int]) -> bytes:
    uid = b" UID" if context.by_uid else b""
    return b'ESEARCH (TAG "%s")%s %s (0 %s)' % (context.tag, uid, word, compact_uid_set(numbers))


def refresh_contexts(session: IMAPSession, updates: Updates) -> None:
    """Expunged messages leave every kept result (called before EXPUNGE is written)."""
    if not updates.expunged:
        return
    # updates.expunged: the old sequence numbers, descending; expunged_uids ascending.
    old_seq = dict(zip(updates.expunged_uids, reversed(updates.expunged), strict=False))
    for context in session.search_contexts.values():
        gone = sorted(uid for uid in updates.expunged_uids if uid in context.result)
        if gone:
            context.result -= set(gone)
            numbers = gone if context.by_uid else sorted(old_seq[uid] for uid in gone)
            session.untagged(_line(context, b"REMOVEFROM", numbers))


@defer.inlineCallbacks
def after_command(session: IMAPSession):
    """Run the kept searches again and send what changed (ADDTO / REMOVEFROM)."""
    from exchmail.imap.handlers.searching import matching_uids

    if session.view is None:
        return
    session.send_updates(allow_expunge=False)
    view = session.selected_view()
    for context in list(session.search_contexts.values()):
        found, _ = yield matching_uids(session, context.criteria)
        now = set(found)
        removed, added = sorted(context.result - now), sorted(now - context.result)
        context.result = now
        for word, uids in ((b"REMOVEFROM", removed), (b"ADDTO", added)):
            numbers = uids if context.by_uid else [s for s in map(view.seq_of, uids) if s]
            if numbers:
                session.untagged(_line(context, word, numbers))


def refresh_while_idle(session: IMAPSession) -> None:
    """A change while the client idles: refresh the kept searches (one run at a
    time per session; changes during a run cause one more run)."""
    if session.contexts_refreshing is not None:
        session.contexts_refreshing = True  # run again when this run is done
        return
    session.contexts_refreshing = False

    def done(_: object) -> None:
        again, session.contexts_refreshing = session.contexts_refreshing, None
        session.flush()
        if again and session.idling and session.search_contexts:
            refresh_while_idle(session)

    d = after_command(session)
    d.addErrback(lambda failure: session.log.failure("updating kept searches failed", failure))
    d.addBoth(done)
