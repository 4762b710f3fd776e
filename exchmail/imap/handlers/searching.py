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

from itertools import compress, islice
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, task

from exchmail.imap import commands as syntax
from exchmail.imap.handlers import context, esearch
from exchmail.imap.search import ContentCandidate, IndexCandidate, Needs, SearchProgram, compile_search
from exchmail.imap.searchkeys import All, SearchKey
from exchmail.mailbox.content import ReadAhead, offload
from exchmail.mime.headers import header_end

if TYPE_CHECKING:
    from collections.abc import Callable

    from exchmail.imap.session import IMAPSession
    from exchmail.mailbox.view import IndexRow, MailboxView

#: Messages evaluated between two returns to the reactor: index keys cost
#: about a microsecond a message.
INDEX_BATCH = 5000
#: Cached header blocks evaluated in one call.
CACHED_BATCH = 256


def _matching(
    program: SearchProgram, candidates: list[ContentCandidate], headers_only: bool
) -> tuple[list[int], list[bytes]]:
    """The candidates (their indexes) that match, one batch in one call (in
    the pool for more than a few messages), and -- for a search on headers
    alone -- each candidate's header block, which is all it needed."""
    blocks: list[bytes] = []
    if headers_only:
        for candidate in candidates:
            end = header_end(candidate.data)
            if end is not None:
                candidate.data = candidate.data[:end]
            blocks.append(candidate.data)
    return [i for i, candidate in enumerate(candidates) if program.matches(candidate)], blocks


@defer.inlineCallbacks
def search(command: syntax.Search, session: IMAPSession):
    found, modseq_used = yield matching_uids(session, command.criteria)
    if len(found) > INDEX_BATCH:  # a long answer is made in a turn of its own
        yield task.deferLater(session.context.reactor, 0, lambda: None)
    esearch.answer(session, command.tag, command.uid, command.returns, found, modseq_used)
    if command.returns is not None and b"UPDATE" in command.returns.options:
        context.register(session, command, found)  # CONTEXT=SEARCH (RFC 5267 §4)
    return b"SEARCH completed."


@defer.inlineCallbacks
def matching_uids(session: IMAPSession, criteria: SearchKey):
    """A Deferred of ``(UIDs that match, ascending; whether MODSEQ was a key)``
    among the messages the client knows."""
    view = session.selected_view()
    if isinstance(criteria, All):  # SORT/THREAD ALL, SEARCH ALL: the index alone
        return [row[1] for row in view.index_rows()], False  # (what still exists)
    criteria, modseq_used = esearch.resolve_keys(session, criteria)
    program = compile_search(criteria, view.exists, view.max_uid, session.context.reactor.seconds())
    exact = session.context.profile.imap.exact_rfc822_size
    uids = list(view.known_uids())
    if program.needs > Needs.INDEX:
        found = yield _search_content(session, program, uids, exact, True)
    else:
        found = yield _search_index(session, program, uids, exact, True)
    return found, modseq_used


@defer.inlineCallbacks
def _search_index(session: IMAPSession, program: SearchProgram, uids: list[int], exact: bool, by_uid: bool):
    """Keys on flags, sizes, dates and numbers: from the index records alone."""
    view = session.selected_view()
    if program.flags_only and len(uids) == view.exists:
        by_flag_set = _by_flag_set(view, program, exact, by_uid)
        if by_flag_set is not None:
            return by_flag_set
    recent, matches, from_row = view.recent, program.matches, IndexCandidate.from_row
    found: list[int] = []
    rows = view.index_rows(list(enumerate(uids, 1)))
    answers: dict[tuple[frozenset[str], bool], bool] = {}  # flags-only programs: per flag set
    while True:
        batch = list(islice(rows, INDEX_BATCH))
        for row in batch:
            if program.flags_only:
                key = (row[2], row[1] in recent)
                matched = answers.get(key)
                if matched is None:
                    matched = answers[key] = matches(from_row(row, key[1], exact))
            else:
                matched = matches(from_row(row, row[1] in recent, exact))
            if matched:
                found.append(row[1] if by_uid else row[0])
        if len(batch) < INDEX_BATCH:
            return found
        yield task.deferLater(session.context.reactor, 0, lambda: None)


def _by_flag_set(view: MailboxView, program: SearchProgram, exact: bool, by_uid: bool) -> list[int] | None:
    """A program on flags alone over every message the client knows: worked
    out once per distinct flag set, then the messages picked by their flag
    set numbers in C (100,000 messages in milliseconds).  ``None`` where the
    store has no columns to offer or the answer depends on \\Recent too."""
    columns = view.columns()
    if columns is None:
        return None

    def answer(flags: frozenset[str], recent: bool) -> bool:
        return program.matches(IndexCandidate.from_row((0, 0, flags, 0.0, 0, 0), recent, exact))

    plain = [answer(flags, False) for flags in columns.flag_sets]
    if view.recent and plain != [answer(flags, True) for flags in columns.flag_sets]:
        return None
    numbers = columns.uids if by_uid else range(1, len(columns.uids) + 1)
    return list(compress(numbers, map(plain.__getitem__, columns.flags)))


@defer.inlineCallbacks
def _search_content(session: IMAPSession, program: SearchProgram, uids: list[int], exact: bool, by_uid: bool):
    """Header and body keys: content read in batches, each batch evaluated in
    one call (in the thread pool when it is larger than INLINE_LIMIT).

    Header blocks are kept in the shared cache, so a later SEARCH on headers
    alone reads no message at all for the messages already seen.
    """
    view = session.selected_view()
    recent = view.recent
    seqs = {uid: seq for seq, uid in enumerate(uids, 1)}
    headers = _HeaderCache(session) if program.needs == Needs.HEADERS else None
    to_read = uids
    if headers is not None:
        to_read = []
        for start in range(0, len(uids), INDEX_BATCH):  # 100,000 look-ups: let others in between
            if start:
                yield task.deferLater(session.context.reactor, 0, lambda: None)
            to_read.extend(uid for uid in uids[start : start + INDEX_BATCH] if headers.get(uid) is None)
    found: set[int] = set()
    row_of = _index_rows(view, uids, seqs)

    def evaluate(contents: list[tuple[int, bytes | None]], keep: bool) -> defer.Deferred[Any]:
        candidates = []
        for uid, data in contents:
            row = row_of(uid)
            if data is not None and row is not None:
                candidates.append(ContentCandidate.of_row(row, uid in recent, exact, data))
        size = sum(len(c.data) for c in candidates)
        d = offload(
            session.context.run_blocking, size, _matching, program, candidates, keep, count=len(candidates)
        )

        def done(result: tuple[list[int], list[bytes]]) -> None:
            matched, blocks = result
            found.update(candidates[i].uid for i in matched)
            if blocks and headers is not None:  # kept on the reactor thread (the cache's)
                for candidate, block in zip(candidates, blocks, strict=True):
                    headers.keep(candidate.uid, block)

        return d.addCallback(done)

    if headers is not None and len(to_read) < len(uids):
        unread = set(to_read)
        known = [(uid, headers.get(uid)) for uid in uids if uid not in unread]
        for start in range(0, len(known), CACHED_BATCH):
            yield evaluate(known[start : start + CACHED_BATCH], False)
    ahead = ReadAhead(view.mailbox, to_read, headers_only=headers is not None)
    while (batch := ahead.next_batch()) is not None:
        contents = yield batch
        yield evaluate(contents, headers is not None)
    return [uid if by_uid else seqs[uid] for uid in uids if uid in found]


def _index_rows(view: MailboxView, uids: list[int], seqs: dict[int, int]) -> Callable[[int], IndexRow | None]:
    """How to get a message's index row: from the columns, taken once, when
    ``uids`` are all the client knows; else a record per message."""
    columns = view.columns() if len(uids) == view.exists else None
    if columns is not None:
        sets, flags, dates = columns.flag_sets, columns.flags, columns.internal_dates
        stored, exact = columns.stored_sizes, columns.exact_sizes

        def from_columns(uid: int) -> IndexRow:
            seq = seqs[uid]
            i = seq - 1
            return (seq, uid, sets[flags[i]], dates[i], stored[i], exact[i])

        return from_columns
    message = view.mailbox.message

    def from_record(uid: int) -> IndexRow | None:
        record = message(uid)
        if record is None:
            return None  # expunged meanwhile
        return (seqs[uid], uid, record.flags, record.internal_date, record.stored_size, record.exact_size)

    return from_record


class _HeaderCache:
    """Messages' header blocks in the shared :class:`~exchmail.mailbox.cache.MessageCache`."""

    def __init__(self, session: IMAPSession) -> None:
        mailbox = session.selected_view().mailbox
        self.cache = session.context.cache
        self.prefix = (getattr(session.account, "name", ""), mailbox.name, mailbox.uid_validity)

    def get(self, uid: int) -> bytes | None:
        return None if self.cache is None else self.cache.get((*self.prefix, uid, b"HEADER"))

    def keep(self, uid: int, block: bytes) -> None:
        """Remember a message's header block (all a header search needs)."""
        if self.cache is not None:
            self.cache.put((*self.prefix, uid, b"HEADER"), block)
