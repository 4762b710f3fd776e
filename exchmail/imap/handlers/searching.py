"""SEARCH and UID SEARCH (RFC 3501 §6.4.4).

The criteria arrive parsed (:mod:`exchmail.imap.searchkeys`, limits already
enforced) and compile to a program that says what it needs
(:class:`~exchmail.imap.search.Needs`):

- ``INDEX`` (flags, sizes, dates, numbers): evaluated on the reactor thread
  from the index records, in batches that let other sessions run;
- ``HEADERS``: from the per-message header values in the shared cache, or
  from the content when they are not cached yet;
- ``BODY``: from the content, evaluated on the reactor thread for small
  messages and in the thread pool for large ones.

Content is read a few messages ahead (one read per message).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet import defer, task

from exchmail.imap import commands as syntax
from exchmail.imap.search import ContentCandidate, IndexCandidate, Needs, SearchProgram, compile_search
from exchmail.mailbox.content import ReadAhead, offload

if TYPE_CHECKING:
    from exchmail.imap.session import IMAPSession

#: Messages evaluated between two returns to the reactor.
BATCH = 500


def _matches(program: SearchProgram, candidate: IndexCandidate) -> bool:
    return program.matches(candidate)


@defer.inlineCallbacks
def search(command: syntax.Search, session: IMAPSession):
    view = session.selected_view()
    program = compile_search(command.criteria, view.exists, view.max_uid)
    exact = session.context.profile.imap.exact_rfc822_size
    uids = list(view.known_uids())
    mailbox = view.mailbox
    message = mailbox.message
    recent = view.recent
    reactor = session.context.reactor
    found: list[int] = []
    ahead = ReadAhead(mailbox, uids) if program.needs > Needs.INDEX else None
    for seq, uid in enumerate(uids, 1):
        if ahead is None:
            record = message(uid)
            matched = record is not None and program.matches(
                IndexCandidate(seq, uid, record, uid in recent, exact))
        else:
            data = yield ahead.next()
            record = message(uid)
            if data is None or record is None:
                continue
            candidate = ContentCandidate(seq, uid, record, uid in recent, exact, data)
            matched = yield offload(session.context.run_blocking, len(data), _matches,
                                    program, candidate)
        if matched:
            found.append(uid if command.uid else seq)
        if seq % BATCH == 0:
            yield task.deferLater(reactor, 0, lambda: None)
    session.untagged(b"SEARCH" + b"".join(b" %d" % n for n in found))
    return b"SEARCH completed."
