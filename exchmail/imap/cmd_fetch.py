"""FETCH (RFC 3501 6.4.5) and UID FETCH.

Responses are queued per message and written in one transport call; a
whole-message body larger than :data:`STREAM_THRESHOLD` is streamed from
the store in chunks instead of being read into memory, pausing while the
client's socket is full (the :class:`WriteGate` registered on the transport).
"""

from __future__ import annotations

import time
from typing import Any, BinaryIO

from twisted.internet import defer, task
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from exchmail.imap import fetch
from exchmail.imap.common import SessionBase
from exchmail.imap.fetchatt import FetchItem, parse_fetch_items
from exchmail.imap.parsing import Token, expect_count
from exchmail.imap.selected import SelectedMailbox, format_flags
from exchmail.mime.message import ParsedMessage
from exchmail.mime.sevenbit import has_8bit, to_seven_bit

STREAM_THRESHOLD = 1024 * 1024
CHUNK = 64 * 1024
BATCH = 200
MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun",
          b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")
_NEEDS_CONTENT = {b"ENVELOPE", b"BODY", b"BODYSTRUCTURE", b"RFC822", b"RFC822.HEADER", b"RFC822.TEXT"}


def internal_date(epoch: float) -> bytes:
    """``"17-Jul-1996 02:44:25 +0000"`` (UTC, English month names)."""
    t = time.gmtime(epoch)
    return b'"%02d-%s-%04d %02d:%02d:%02d +0000"' % (
        t.tm_mday, MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)


@implementer(IPushProducer)
class WriteGate:
    """Tells a long FETCH when the transport's send buffer is full."""

    def __init__(self) -> None:
        self.paused = False
        self._waiters: list[defer.Deferred[None]] = []

    def wait(self) -> defer.Deferred[None]:
        """A Deferred that fires once writing may go on."""
        if not self.paused:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._waiters.append(d)
        return d

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)

    def stopProducing(self) -> None:
        self.resumeProducing()


class _Stream:
    """A placeholder in a queued response: stream this message's content here."""

    def __init__(self, uid: int, size: int) -> None:
        self.uid, self.size = uid, size


class FetchCommand(SessionBase):
    """The FETCH handler and its rendering glue."""

    write_gate: WriteGate

    def cmd_FETCH(self, tag: bytes, args: list[Token], uid: bool) -> Any:
        expect_count(args, 2)
        pairs = self.message_set(args[0], uid)  # type: ignore[attr-defined]
        items = parse_fetch_items(args[1:])
        if uid and not any(item.name == b"UID" for item in items):
            items.insert(0, FetchItem(b"UID"))
        return self._fetch_all(pairs, items, uid)

    @defer.inlineCallbacks
    def _fetch_all(self, pairs: list[tuple[int, int]], items: list[FetchItem], uid: bool):
        selected = self.selected
        assert selected is not None
        for count, (seq, message_uid) in enumerate(pairs, 1):
            if selected.mailbox.message(message_uid) is None:
                continue  # expunged by another session; the client hears of it later
            parts = self._fetch_one(selected, seq, message_uid, items)
            yield self._write_parts(selected, parts)
            if count % BATCH == 0:
                yield task.deferLater(self.reactor, 0, lambda: None)
        return b"FETCH completed."

    def _fetch_one(self, selected: SelectedMailbox, seq: int, uid: int,
                   items: list[FetchItem]) -> list[bytes | _Stream]:
        record = selected.mailbox.message(uid)
        assert record is not None
        if not selected.readonly and "\\Seen" not in record.flags and any(i.sets_seen for i in items):
            selected.mailbox.set_flags([uid], frozenset({"\\Seen"}), "add", origin=selected)
            if not any(i.name == b"FLAGS" for i in items):
                items = items + [FetchItem(b"FLAGS")]
        imap = self.profile.imap
        seven_bit = imap.seven_bit_output
        streams = record.exact_size > STREAM_THRESHOLD and not (
            seven_bit and self._has_8bit(selected, uid))
        exact_size_of_view = (imap.exact_rfc822_size and seven_bit
                              and any(i.name == b"RFC822.SIZE" for i in items))
        needs_parse = exact_size_of_view or any(
            i.name in _NEEDS_CONTENT and not (streams and _whole_message(i)) for i in items)
        parsed = self._parse(selected, uid, seven_bit) if needs_parse else None
        parts: list[bytes | _Stream] = [b"* %d FETCH (" % seq]
        for index, item in enumerate(items):
            if index:
                parts.append(b" ")
            if streams and _whole_message(item):
                parts.append(item.label() + b" {%d}\r\n" % record.exact_size)
                parts.append(_Stream(uid, record.exact_size))
            else:
                parts.append(item.label() + b" " + self._render(selected, uid, item, parsed))
        parts.append(b")\r\n")
        return parts

    @staticmethod
    def _parse(selected: SelectedMailbox, uid: int, seven_bit: bool) -> ParsedMessage:
        """The message as the client sees it (re-encoded to 7 bits if so configured)."""
        with selected.mailbox.open_message(uid) as source:
            data = source.read()
        return ParsedMessage(to_seven_bit(data) if seven_bit else data)

    @staticmethod
    def _has_8bit(selected: SelectedMailbox, uid: int) -> bool:
        """Whether a (large) message has 8-bit octets, read in chunks."""
        with selected.mailbox.open_message(uid) as source:
            while chunk := source.read(CHUNK):
                if has_8bit(chunk):
                    return True
        return False

    def _render(self, selected: SelectedMailbox, uid: int, item: FetchItem,
                parsed: ParsedMessage | None) -> bytes:
        record = selected.mailbox.message(uid)
        assert record is not None
        imap = self.profile.imap
        name = item.name
        if name == b"UID":
            return b"%d" % uid
        if name == b"FLAGS":
            return format_flags(selected.flags_of(uid) or frozenset())
        if name == b"INTERNALDATE":
            return internal_date(record.internal_date)
        if name == b"RFC822.SIZE":
            if not imap.exact_rfc822_size:
                return b"%d" % record.stored_size
            return b"%d" % (parsed.size if parsed is not None else record.exact_size)
        assert parsed is not None
        if name == b"ENVELOPE":
            return fetch.envelope(parsed, empty_as_nil=imap.empty_envelope_fields_nil)
        if name == b"BODYSTRUCTURE" or (name == b"BODY" and item.section is None):
            return fetch.bodystructure(parsed, extensible=name == b"BODYSTRUCTURE",
                                       empty_as_nil=imap.empty_envelope_fields_nil)
        if name == b"RFC822":
            data = parsed.raw
        elif name == b"RFC822.HEADER":
            data = fetch.section(parsed, (), "HEADER")
        elif name == b"RFC822.TEXT":
            data = fetch.section(parsed, (), "TEXT")
        else:
            data = fetch.section(parsed, item.path, item.text, item.fields)
            if item.partial is not None:
                data = fetch.partial(data, *item.partial)
        return b"{%d}\r\n" % len(data) + data

    @defer.inlineCallbacks
    def _write_parts(self, selected: SelectedMailbox, parts: list[bytes | _Stream]):
        for part in parts:
            if isinstance(part, _Stream):
                self.flush()
                with selected.mailbox.open_message(part.uid) as source:
                    yield self._stream(source, part.size)
            else:
                self.send_raw(part)
        yield self.write_gate.wait()

    @defer.inlineCallbacks
    def _stream(self, source: BinaryIO, size: int):
        left = size
        while left > 0:
            chunk = source.read(min(CHUNK, left))
            if not chunk:
                # The store promised ``size`` octets; pad so the literal stays well-formed.
                self.log.error("message shorter than its size; padding {left} octets", left=left)
                chunk = b" " * left
            self.transport.write(chunk)
            left -= len(chunk)
            yield self.write_gate.wait()


def _whole_message(item: FetchItem) -> bool:
    """Whether the item is the whole message without a partial range."""
    if item.name == b"RFC822":
        return True
    return item.section == b"" and item.partial is None
