"""FETCH and UID FETCH (RFC 3501 §6.4.5).

Per message: one index record read, and at most one content read.

- Items that need no content (UID, FLAGS, INTERNALDATE, RFC822.SIZE) are
  rendered from the record on the reactor thread.
- ENVELOPE, BODY and BODYSTRUCTURE come from the shared
  :class:`~exchmail.mailbox.cache.MessageCache` when a session computed
  them before; a FETCH of only those needs no content at all.
- Everything else reads the content (a few messages ahead, so the store's
  pool works while responses are written) and renders it with
  :func:`render_content` -- on the reactor thread up to
  :data:`~exchmail.mailbox.content.INLINE_LIMIT` octets, in the thread pool
  above, so a big message never stalls other sessions.
- BINARY items (RFC 3516) decode the content the other items see: with
  ``seven_bit_output`` that is the 7-bit view, whose decoded part contents
  equal the stored ones, so BINARY still returns the parts' real octets
  (8-bit, NUL) and only BINARY[] of a whole message shows the view's
  RFC 2047 headers.  An encoding BINARY cannot undo ends the command with
  ``NO [UNKNOWN-CTE]``.
- A whole-message item (BODY[], BODY.PEEK[], RFC822) of a message larger
  than :data:`STREAM_THRESHOLD` that needs no 7-bit view is streamed from
  the store in chunks, with back-pressure, without reading it into memory
  and without a MIME parse.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice, repeat
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, task

from exchmail.imap import commands as syntax
from exchmail.imap import fetch
from exchmail.imap.binary import UnknownCTE, binary_literal, binary_section
from exchmail.imap.fetchatt import FetchItem
from exchmail.imap.handlers import condstore
from exchmail.imap.handlers.messages import message_set
from exchmail.imap.preview import preview_value
from exchmail.imap.responses import CommandFailed
from exchmail.interfaces import IModSeq, IndexColumns
from exchmail.mailbox.content import ReadAhead, offload
from exchmail.mailbox.view import RECENT, IndexRow
from exchmail.mime.headers import header_end, select_fields
from exchmail.mime.message import ParsedMessage
from exchmail.mime.scan import WINDOW
from exchmail.mime.sevenbit import has_8bit, to_seven_bit

if TYPE_CHECKING:
    from exchmail.imap.session import IMAPSession

#: Whole-message items of messages larger than this are streamed.
STREAM_THRESHOLD = 1024 * 1024
CHUNK = 64 * 1024
#: Messages between two returns to the reactor, and output flushed at once.
BATCH = 1000
#: Lines made from index columns between two returns to the reactor.
COLUMN_BATCH = 5000
CONTENT_BATCH = 200
FLUSH_AT = 64 * 1024
MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")
#: Items computed from the structure alone, worth caching.
CACHED = frozenset({b"ENVELOPE", b"BODYSTRUCTURE", b"BODY", b"PREVIEW"})
_METADATA = frozenset({b"UID", b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"MODSEQ"})


def internal_date(epoch: float) -> bytes:
    """``"17-Jul-1996 02:44:25 +0000"`` (UTC, English month names)."""
    t = time.gmtime(epoch)
    return b'"%02d-%s-%04d %02d:%02d:%02d +0000"' % (
        t.tm_mday,
        MONTHS[t.tm_mon - 1],
        t.tm_year,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
    )


@dataclass(frozen=True)
class FetchOptions:
    """The profile settings FETCH reads, once per command."""

    exact_size: bool
    seven_bit: bool
    empty_as_nil: bool


def is_cached_item(item: FetchItem) -> bool:
    return item.section is None and item.name in CACHED


def whole_message(item: FetchItem) -> bool:
    """Whether the item is the whole message without a partial range."""
    if item.name == b"RFC822":
        return True
    return item.name == b"BODY" and item.section == b"" and item.partial is None


def top_level_spec(item: FetchItem) -> str | None:
    """The section of the message itself an item asks for (``HEADER``,
    ``HEADER.FIELDS``, ``HEADER.FIELDS.NOT`` or ``TEXT``), else None."""
    if item.name == b"BODY" and not item.path and item.text is not None:
        return item.text.upper()
    if item.name in (b"RFC822.HEADER", b"RFC822.TEXT"):
        return item.name[7:].decode()
    return None


def header_only(item: FetchItem) -> bool:
    """Whether the item needs the message's own header and nothing after it."""
    return top_level_spec(item) in ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT")


def needs_content(item: FetchItem, options: FetchOptions) -> bool:
    if item.name in _METADATA:
        return item.name == b"RFC822.SIZE" and options.exact_size and options.seven_bit
    return True


# -- rendering (pure: runs on the reactor thread or in the pool) --------------------------------
def render_content(data: bytes, items: Sequence[FetchItem], options: FetchOptions) -> dict[FetchItem, bytes]:
    """The rendered value of every content item of one message.

    With ``seven_bit`` the message is first re-encoded (MS-STANXIMAP V0007)
    and every item, sizes included, describes that view.
    """
    view = to_seven_bit(data) if options.seven_bit and has_8bit(data) else data
    out: dict[FetchItem, bytes] = {}
    parsed: ParsedMessage | None = None
    decoded: dict[tuple[int, ...], bytes] = {}  # BINARY sections, decoded once
    for item in items:
        name = item.name
        if name == b"RFC822.SIZE":
            out[item] = b"%d" % len(view)
            continue
        if whole_message(item):
            out[item] = b"{%d}\r\n" % len(view) + fetch.nul_safe(view)
            continue
        selected = _top_level_section(view, item)
        if selected is not None:
            out[item] = selected
            continue
        if parsed is None:
            parsed = ParsedMessage(view)
        if name in (b"BINARY", b"BINARY.SIZE"):
            out[item] = _render_binary(parsed, item, decoded)
            continue
        out[item] = _render_parsed(parsed, item, options)
    return out


def _top_level_section(data: bytes, item: FetchItem) -> bytes | None:
    """``BODY[HEADER.FIELDS (...)]``, ``BODY[HEADER]``, ``BODY[TEXT]`` (and
    ``RFC822.HEADER``/``RFC822.TEXT``) of the message itself, found without
    parsing it: what mail clients ask of every message of a list.  None for
    other items, and for messages over :data:`~exchmail.mime.scan.WINDOW`
    (the searches here are single C calls)."""
    if len(data) > WINDOW:
        return None
    spec = top_level_spec(item)
    if spec == "HEADER.FIELDS":
        found = select_fields(data, item.fields)
        if found is None:
            return None
    elif spec in ("HEADER", "TEXT"):
        end = header_end(data)
        end = len(data) if end is None else end
        found = data[:end] if spec == "HEADER" else data[end:]
    else:
        return None
    return _literal(item, fetch.nul_safe(found))


def _literal(item: FetchItem, data: bytes) -> bytes:
    """A section's octets as the literal of its item (its partial range only)."""
    if item.partial is not None:
        data = fetch.partial(data, *item.partial)
    return b"{%d}\r\n" % len(data) + data


def _render_binary(parsed: ParsedMessage, item: FetchItem, decoded: dict[tuple[int, ...], bytes]) -> bytes:
    """BINARY[...] or BINARY.SIZE[...] (raises UnknownCTE)."""
    data = decoded.get(item.path)
    if data is None:
        data = decoded[item.path] = binary_section(parsed, item.path)
    if item.name == b"BINARY.SIZE":
        return b"%d" % len(data)
    if item.partial is not None:
        data = fetch.partial(data, *item.partial)
    return binary_literal(data)


def _render_parsed(parsed: ParsedMessage, item: FetchItem, options: FetchOptions) -> bytes:
    name = item.name
    if name == b"PREVIEW":  # RFC 8970
        return preview_value(parsed)
    if name == b"ENVELOPE":
        return fetch.envelope(parsed, empty_as_nil=options.empty_as_nil)
    if name == b"BODYSTRUCTURE" or (name == b"BODY" and item.section is None):
        return fetch.bodystructure(
            parsed, extensible=name == b"BODYSTRUCTURE", empty_as_nil=options.empty_as_nil
        )
    if name == b"RFC822.HEADER":
        data = fetch.section(parsed, (), "HEADER")
    elif name == b"RFC822.TEXT":
        data = fetch.section(parsed, (), "TEXT")
    else:
        data = fetch.section(parsed, item.path, item.text, item.fields)
    return _literal(item, data)


# -- the handler ------------------------------------------------------------------------------------------
def fetch_command(command: syntax.Fetch, session: IMAPSession) -> Any:
    pairs = message_set(session, command.sequence_set, command.uid)
    items = list(command.items)  # UID FETCH: the parser put UID in (RFC 3501 6.4.8)
    if command.changed_since is not None:  # RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ
        pairs = condstore.fetch_changed(command, session, pairs)
        if not any(item.name == b"MODSEQ" for item in items):
            items.append(FetchItem(b"MODSEQ"))
    if any(item.name == b"MODSEQ" for item in items):
        condstore.modseq_mailbox(session)  # CONDSTORE on; BAD where NOMODSEQ
    d = _Fetch(session, items, command.uid).run(pairs)
    return d.addErrback(_unknown_cte)


def _unknown_cte(failure: Any) -> None:
    failure.trap(UnknownCTE)
    encoding = str(failure.value).encode("ascii", "replace")[:60]
    raise CommandFailed(b"[UNKNOWN-CTE] Cannot decode the Content-Transfer-Encoding " + encoding)


class _Fetch:
    """One FETCH command's run over its messages."""

    def __init__(self, session: IMAPSession, items: list[FetchItem], uid: bool) -> None:
        settings = session.context.profile.imap
        self.session = session
        self.view = session.selected_view()
        self.mailbox = self.view.mailbox
        self.items = items
        self.options = FetchOptions(
            settings.exact_rfc822_size, settings.seven_bit_output, settings.empty_envelope_fields_nil
        )
        self.cache = session.context.cache
        account = getattr(session.account, "name", "")
        self.cache_prefix = (account, self.mailbox.name, self.mailbox.uid_validity)
        self.content_items = [i for i in items if needs_content(i, self.options)]
        # Only the header is read of large messages (the 7-bit view is made
        # from the whole message).
        self.headers_only = not self.options.seven_bit and all(header_only(i) for i in self.content_items)
        self._flag_text: dict[tuple[frozenset[str], bool], bytes] = {}
        self.modseqs: dict[int, int] = {}

    @defer.inlineCallbacks
    def run(self, pairs: list[tuple[int, int]]):
        newly_seen = yield self._mark_seen(pairs)
        if any(item.name == b"MODSEQ" for item in self.items):
            # after the implicit \Seen, which gave those messages new MODSEQs
            self.modseqs = dict(IModSeq(self.mailbox).modseqs([uid for _, uid in pairs]))
        if not self.content_items:
            yield self._metadata_only(pairs)
            return b"FETCH completed."
        message = self.mailbox.message
        streamed = {uid for _, uid in pairs if self._streams(uid)}
        reads = [uid for _, uid in pairs if uid not in streamed and self._reads_content(uid)]
        ahead = ReadAhead(self.mailbox, reads, headers_only=self.headers_only)
        read = set(reads)
        for count, (seq, uid) in enumerate(pairs, 1):
            record = message(uid)
            if record is None:
                if uid in read:
                    yield ahead.next()  # keep the read-ahead in step
                continue  # expunged by another session; the client hears of it later
            items = self.items
            if uid in newly_seen and not any(i.name == b"FLAGS" for i in items):
                items = [*items, FetchItem(b"FLAGS")]
            if uid in streamed:
                yield self._stream_one(seq, uid, record, items)
                continue
            if uid in read:
                data = yield ahead.next()
                if data is None:
                    continue
                values = yield self._render(uid, data)
            else:
                values = self._cached(uid)
            self._write_one(seq, uid, record, items, values)
            if self.session.buffered_output > FLUSH_AT:
                yield self.session.flush_and_wait()
            if count % CONTENT_BATCH == 0:
                yield task.deferLater(self.session.context.reactor, 0, lambda: None)
        return b"FETCH completed."

    @defer.inlineCallbacks
    def _metadata_only(self, pairs: list[tuple[int, int]]):
        """The common FETCH of index data only (FLAGS, UID, sizes, dates): the
        index rows straight from the store, no content, each distinct flag set
        formatted once.  None of these items sets \\Seen (RFC 3501 6.4.5: only
        body sections, RFC822 and RFC822.TEXT do), so no FLAGS are added."""
        session = self.session
        write = session.write
        if len(pairs) > BATCH:  # the sequence set made the pairs in this turn already
            yield task.deferLater(session.context.reactor, 0, lambda: None)
        by_columns = self._column_lines(pairs)
        if by_columns is not None:
            while lines := b"".join(islice(by_columns, COLUMN_BATCH)):
                write(lines)
                if session.buffered_output > FLUSH_AT:
                    yield session.flush_and_wait()
                yield task.deferLater(session.context.reactor, 0, lambda: None)
            return
        items = [(item.label() + b" ", self._row_renderer(item)) for item in self.items]
        rows = self.view.index_rows(pairs)
        while True:
            batch = list(islice(rows, BATCH))
            for row in batch:
                write(
                    b"* %d FETCH (%s)\r\n"
                    % (row[0], b" ".join([label + render(row) for label, render in items]))
                )
            if len(batch) < BATCH:
                return
            if session.buffered_output > FLUSH_AT:
                yield session.flush_and_wait()
            yield task.deferLater(session.context.reactor, 0, lambda: None)

    def _column_lines(self, pairs: list[tuple[int, int]]) -> Iterator[bytes] | None:
        """The response lines of a FETCH of the first messages (``1:n``), made
        from the index columns by one format per line, the values mapped in C;
        ``None`` where that does not apply (then row by row)."""
        count = len(pairs)
        if not count or pairs[0][0] != 1 or pairs[-1][0] != count:
            return None  # ascending, unique sequence numbers: 1..count exactly
        columns = self.view.columns(count)
        if columns is None:
            return None
        specs: list[bytes] = []
        values: list[Iterable[Any]] = [range(1, count + 1)]
        for item in self.items:
            name = item.name
            if name == b"UID":
                specs.append(b"UID %d")
                values.append(columns.uids)
            elif name == b"FLAGS":
                specs.append(b"FLAGS %s")
                values.append(self._column_flags(columns))
            elif name == b"INTERNALDATE":
                specs.append(b"INTERNALDATE %s")
                values.append(map(internal_date, columns.internal_dates))
            elif name == b"RFC822.SIZE" and item.section is None:
                specs.append(b"RFC822.SIZE %d")
                values.append(columns.exact_sizes if self.options.exact_size else columns.stored_sizes)
            else:
                return None  # MODSEQ: from the store's MODSEQs, row by row
        line = b"* %d FETCH (" + b" ".join(specs) + b")\r\n"
        return map(line.__mod__, zip(*values, strict=True))

    def _column_flags(self, columns: IndexColumns) -> Iterator[bytes]:
        """Each message's FLAGS text, made as the lines are (in C, batch by
        batch); each flag set in use is formatted once, up front and in the
        order of first use, so its keywords are announced before any line."""
        recent = self.view.recent
        sets = columns.flag_sets
        texts: dict[int, bytes] = {}
        for number in dict.fromkeys(columns.flags):
            texts[2 * number] = self._flag_text_of(sets[number])
            if recent:
                texts[2 * number + 1] = self._flag_text_of(sets[number] | {RECENT})
        # key: 2 * flag set number, + 1 if \Recent for this session
        keys = map(operator.mul, columns.flags, repeat(2))
        if recent:
            keys = map(operator.add, keys, recent.marks(columns.uids))
        return map(texts.__getitem__, keys)

    def _row_renderer(self, item: FetchItem) -> Callable[[IndexRow], bytes]:
        """How to render an index item from a row ``(seq, uid, flags, date, stored, exact)``."""
        name = item.name
        if name == b"UID":
            return lambda row: b"%d" % row[1]
        if name == b"FLAGS":
            return lambda row: self._flags_text(row[1], row[2])
        if name == b"INTERNALDATE":
            return lambda row: internal_date(row[3])
        if name == b"MODSEQ":
            return lambda row: b"(%d)" % self.modseqs.get(row[1], 0)
        if self.options.exact_size:
            return lambda row: b"%d" % row[5]
        return lambda row: b"%d" % row[4]

    def _flags_text(self, uid: int, flags: frozenset[str]) -> bytes:
        key = (flags, uid in self.view.recent)
        text = self._flag_text.get(key)
        if text is None:
            text = self._flag_text[key] = self._flag_text_of(self.view.with_recent(uid, flags))
        return text

    def _flag_text_of(self, flags: frozenset[str]) -> bytes:
        return self.session.flags_for_client(flags)

    def _mark_seen(self, pairs: list[tuple[int, int]]) -> defer.Deferred[set[int]]:
        """Set ``\\Seen`` where an item implies it (RFC 3501 §6.4.5), in one store call."""
        if self.view.readonly or not any(i.sets_seen for i in self.items):
            return defer.succeed(set())
        message = self.mailbox.message
        unseen = [uid for _, uid in pairs if (r := message(uid)) is not None and "\\Seen" not in r.flags]
        if not unseen:
            return defer.succeed(set())
        d = defer.maybeDeferred(self.mailbox.set_flags, unseen, frozenset({"\\Seen"}), "add", self.view)
        return d.addCallback(lambda changed: set(changed))

    # -- what a message needs ---------------------------------------------------------------------
    def _reads_content(self, uid: int) -> bool:
        items = self.content_items  # not empty: run() answers index items alone without reading
        if self.cache is not None and all(is_cached_item(i) for i in items):
            return self._cached(uid) is None
        return True

    def _streams(self, uid: int) -> bool:
        """Whether this message's content is streamed instead of read."""
        if self.options.seven_bit:
            return False
        record = self.mailbox.message(uid)
        return (
            record is not None
            and record.exact_size > STREAM_THRESHOLD
            and all(whole_message(i) for i in self.content_items)
        )

    def _cached(self, uid: int) -> dict[FetchItem, bytes] | None:
        cache = self.cache
        assert cache is not None  # asked only when the context has a cache (_reads_content)
        values = {}
        for item in self.content_items:
            value = cache.get((*self.cache_prefix, uid, self._cache_name(item)))
            if value is None:
                return None
            values[item] = value
        return values

    def _cache_name(self, item: FetchItem) -> tuple[bytes, bool, bool]:
        return (item.name, self.options.seven_bit, self.options.empty_as_nil)

    def _render(self, uid: int, data: bytes) -> defer.Deferred[dict[FetchItem, bytes]]:
        d = offload(
            self.session.context.run_blocking,
            len(data),
            render_content,
            data,
            self.content_items,
            self.options,
        )
        if self.cache is not None:
            d.addCallback(self._remember, uid)
        return d

    def _remember(self, values: dict[FetchItem, bytes], uid: int) -> dict[FetchItem, bytes]:
        for item, value in values.items():
            if is_cached_item(item):
                self.cache.put((*self.cache_prefix, uid, self._cache_name(item)), value)
        return values

    # -- output ---------------------------------------------------------------------------------------
    def _metadata(self, uid: int, record: Any, item: FetchItem) -> bytes:
        name = item.name
        if name == b"UID":
            return b"%d" % uid
        if name == b"FLAGS":
            return self._flags_text(uid, record.flags)
        if name == b"INTERNALDATE":
            return internal_date(record.internal_date)
        if name == b"MODSEQ":
            return b"(%d)" % self.modseqs.get(uid, 0)
        size = record.exact_size if self.options.exact_size else record.stored_size
        return b"%d" % size

    def _write_one(
        self, seq: int, uid: int, record: Any, items: list[FetchItem], values: dict[FetchItem, bytes] | None
    ) -> None:
        parts = []
        for item in items:
            value = values.get(item) if values else None
            if value is None:
                value = self._metadata(uid, record, item)
            parts.append(item.label() + b" " + value)
        self.session.write(b"* %d FETCH (%s)\r\n" % (seq, b" ".join(parts)))

    @defer.inlineCallbacks
    def _stream_one(self, seq: int, uid: int, record: Any, items: list[FetchItem]):
        """Write one message's response, streaming its whole-message items."""
        text = b"* %d FETCH (" % seq
        for index, item in enumerate(items):
            if index:
                text += b" "
            if not whole_message(item):
                text += item.label() + b" " + self._metadata(uid, record, item)
                continue
            reader = yield defer.maybeDeferred(self.mailbox.open_message, uid)
            try:
                self.session.write(text + item.label() + b" {%d}\r\n" % reader.size)
                self.session.note_data_sent(reader.size)
                yield self._copy(reader, reader.size)
            finally:
                reader.close()
            text = b""
        self.session.write(text + b")\r\n")

    @defer.inlineCallbacks
    def _copy(self, reader: Any, size: int):
        left = size
        while left > 0:
            chunk = yield reader.read(min(CHUNK, left))
            if not chunk:
                # The store promised ``size`` octets; pad so the literal stays well-formed.
                self.session.log.error("message shorter than its size; padding {left} octets", left=left)
                chunk = b" " * left
            left -= len(chunk)
            yield self.session.write_now(fetch.nul_safe(chunk))
