"""SORT, UID SORT (RFC 5256, 5957; ESORT and CONTEXT=SORT's PARTIAL: RFC 5267)
and THREAD, UID THREAD (RFC 5256).

The messages are chosen by the SEARCH machinery
(:func:`~exchmail.imap.handlers.searching.matching_uids`); their sort keys
(:class:`~exchmail.imap.sorting.SortFields`) come from the shared message
cache, computed once per message from its header block -- itself cached by
SEARCH and SORT -- so a SORT over a mailbox seen before reads no message.
Missing keys are computed in batches, in the thread pool for many.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from exchmail.imap.commands_sync import Sort, Thread
from exchmail.imap.handlers import esearch
from exchmail.imap.handlers.searching import matching_uids
from exchmail.imap.sorting import SortFields, SortRow, sort_fields, sort_rows
from exchmail.imap.threads import format_threads, orderedsubject, references
from exchmail.mailbox.content import ReadAhead, offload
from exchmail.mime.headers import header_end

if TYPE_CHECKING:
    from exchmail.imap.session import IMAPSession

#: The cache entry of a message's sort keys (beside SEARCH's b"HEADER").
FIELDS = b"SORTFIELDS"
#: Messages read (and their headers parsed) per thread trip.
SORT_BATCH = 512
#: Rough size of one cached SortFields, for the cache's budget.
FIELDS_SIZE = 400


#: Sort keys that come from the index alone (no header is read for them).
INDEX_KEYS = frozenset({b"ARRIVAL", b"SIZE"})
_NO_FIELDS = SortFields(None, "", False, "", "", "", "", "", None, ())


@defer.inlineCallbacks
def sort(command: Sort, session: IMAPSession):
    found, modseq_used = yield matching_uids(session, command.criteria)
    headers = not all(name in INDEX_KEYS for name, _ in command.keys)
    rows = yield sort_rows_of(session, found, headers)
    ordered = [row[1] for row in sort_rows(rows, command.keys)]
    esearch.answer(session, command.tag, command.uid, command.returns, ordered, modseq_used, kind=b"SORT")
    return b"SORT completed."


@defer.inlineCallbacks
def thread(command: Thread, session: IMAPSession):
    found, _ = yield matching_uids(session, command.criteria)
    rows = yield sort_rows_of(session, found)
    roots = orderedsubject(rows) if command.algorithm == b"ORDEREDSUBJECT" else references(rows)
    number = (lambda row: row[1]) if command.uid else (lambda row: row[0])
    session.untagged(b"THREAD " + format_threads(roots, number) if roots else b"THREAD")
    return b"THREAD completed."


@defer.inlineCallbacks
def sort_rows_of(session: IMAPSession, uids: list[int], headers: bool = True):
    """A Deferred of the :data:`SortRow` of each of ``uids`` that still exists
    (without ``headers``, with empty fields: for index keys alone)."""
    view = session.selected_view()
    cache = _FieldCache(session)
    exact = session.context.profile.imap.exact_rfc822_size
    fields: dict[int, SortFields] = {}
    missing = []
    for uid in uids if headers else ():
        value = cache.get(uid)
        if value is None:
            missing.append(uid)
        else:
            fields[uid] = value
    # Bigger batches than FETCH's: a SORT reads every message once, and each
    # batch is a thread trip to read it and another to parse its headers.
    ahead = ReadAhead(view.mailbox, missing, batch_count=SORT_BATCH)
    while (batch := ahead.next_batch()) is not None:
        contents = yield batch
        blocks = [(uid, cache.header(uid) or _header(data)) for uid, data in contents if data is not None]
        size = sum(len(block) for _, block in blocks)
        parsed = yield offload(session.context.run_blocking, size, _parse_all, blocks, count=len(blocks))
        for uid, value in parsed:
            fields[uid] = value
            cache.put(uid, value)
    if not headers:
        fields = dict.fromkeys(uids, _NO_FIELDS)
    rows: list[SortRow] = []
    for seq, uid, _, date, stored, exact_size in view.index_rows(
        [(view.seq_of(uid) or 0, uid) for uid in uids if uid in fields]
    ):
        rows.append((seq, uid, date, exact_size if exact else stored, fields[uid]))
    return rows


def _header(data: bytes) -> bytes:
    end = header_end(data)
    return data if end is None else data[:end]


def _parse_all(blocks: list[tuple[int, bytes]]) -> list[tuple[int, SortFields]]:
    return [(uid, sort_fields(block)) for uid, block in blocks]


class _FieldCache:
    """Sort keys (and SEARCH's header blocks) in the shared message cache."""

    def __init__(self, session: IMAPSession) -> None:
        mailbox = session.selected_view().mailbox
        self.cache: Any = session.context.cache
        self.prefix = (getattr(session.account, "name", ""), mailbox.name, mailbox.uid_validity)

    def get(self, uid: int) -> SortFields | None:
        return None if self.cache is None else self.cache.get((*self.prefix, uid, FIELDS))

    def header(self, uid: int) -> bytes | None:
        return None if self.cache is None else self.cache.get((*self.prefix, uid, b"HEADER"))

    def put(self, uid: int, value: SortFields) -> None:
        if self.cache is not None:
            self.cache.put((*self.prefix, uid, FIELDS), value, size=FIELDS_SIZE)
