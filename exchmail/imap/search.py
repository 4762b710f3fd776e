"""SEARCH evaluation (RFC 3501 6.4.4): criteria against one message, pure.

:func:`compile_search` turns parsed criteria (:mod:`exchmail.imap.searchkeys`)
into a :class:`SearchProgram` for one mailbox state (``*`` is resolved
then); :meth:`SearchProgram.matches` evaluates it for a :class:`Candidate`.
:attr:`SearchProgram.needs` tells the caller how much of a message the
program may ask for, so that it loads nothing it does not need.

Programs hold no mutable state: one program may be evaluated from several
threads at once (content keys run in a thread pool).  This module parses
no MIME: the candidate supplies decoded header values and texts.

Matching, as before: strings match case-insensitively as substrings
(``str.casefold``); a header key needs the field to be present (``HEADER
X ""`` matches any message with an ``X`` field); dates compare days, the
internal date's in UTC and the Date header's in its own time zone.
"""

from __future__ import annotations

import bisect
import datetime
import enum
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from exchmail.imap.searchkeys import (
    All,
    And,
    Body,
    Date,
    Flag,
    Header,
    MessageSet,
    ModSeq,
    Not,
    Or,
    Recent,
    SavedResult,
    SearchKey,
    Size,
    Text,
    UidSet,
    Within,
)
from exchmail.mime.headers import field_values
from exchmail.mime.message import ParsedMessage, body_contains, nested_header_texts
from exchmail.mime.text import header_search_text


class Needs(enum.IntEnum):
    """How much of a message a search may look at, in increasing cost."""

    INDEX = 0  #: flags, UID, sequence number, size, internal date
    HEADERS = 1  #: header fields (and the Date header)
    BODY = 2  #: the body text too


class Candidate(Protocol):
    """What a search may ask of one message.

    The attributes come from the index; the methods are called only when
    the program's :attr:`~SearchProgram.needs` says so, and may be called
    from a worker thread.
    """

    @property
    def seq(self) -> int:
        """The 1-based message sequence number."""

    @property
    def uid(self) -> int:
        """The UID."""

    @property
    def flags(self) -> frozenset[str]:
        """The stored flags (``\\Seen``, keywords...), without ``\\Recent``."""

    @property
    def recent(self) -> bool:
        """Whether the message is ``\\Recent`` for this session."""

    @property
    def internal_date(self) -> float:
        """The internal date, seconds since the epoch."""

    @property
    def size(self) -> int:
        """The RFC822.SIZE the client sees."""

    def header(self, name: str) -> str | None:
        """Field ``name`` (any case) with encoded-words decoded, several
        occurrences joined by newlines; ``None`` when the field is absent."""

    def sent_date(self) -> datetime.date | None:
        """The day of the Date header in its own time zone, or ``None``."""

    def header_text(self) -> str:
        """The whole header as ``Name: decoded value`` lines."""

    def body_contains(self, needle: str) -> bool:
        """Whether the body's text (transfer- and charset-decoded text parts)
        contains ``needle``, ignoring case."""

    def nested_header_texts(self) -> Iterator[str]:
        """The headers of the body parts and encapsulated messages, as text."""


Predicate = Callable[[Candidate], bool]


@dataclass(frozen=True, slots=True)
class SearchProgram:
    """Compiled criteria: a predicate and what it needs of a message."""

    predicate: Predicate
    needs: Needs
    #: Whether the answer depends on a message's flags and \\Recent alone
    #: (so it can be worked out once per distinct flag set).
    flags_only: bool = False

    def matches(self, candidate: Candidate) -> bool:
        """Whether the message satisfies the criteria."""
        return self.predicate(candidate)


def needs_of(key: SearchKey) -> Needs:
    """How much of a message evaluating ``key`` may need."""
    needs, stack = Needs.INDEX, [key]
    while stack:
        node = stack.pop()
        if isinstance(node, (Body, Text)):
            return Needs.BODY
        if isinstance(node, Header) or (isinstance(node, Date) and node.field == "sent"):
            needs = Needs.HEADERS
        elif isinstance(node, And):
            stack.extend(node.keys)
        elif isinstance(node, Or):
            stack.extend((node.left, node.right))
        elif isinstance(node, Not):
            stack.append(node.key)
    return needs


def flags_only(key: SearchKey) -> bool:
    """Whether ``key`` looks at nothing but flags and \\Recent."""
    return _only(key, (Flag, Recent, All))


def index_only(key: SearchKey) -> bool:
    """Whether ``key`` looks at nothing but flags, \\Recent, sequence
    numbers, UIDs and MODSEQs (no dates, sizes or content)."""
    return _only(key, (Flag, Recent, All, MessageSet, UidSet, SavedResult, ModSeq))


def _only(key: SearchKey, kinds: tuple[type[SearchKey], ...]) -> bool:
    stack = [key]
    while stack:
        node = stack.pop()
        if isinstance(node, And):
            stack.extend(node.keys)
        elif isinstance(node, Or):
            stack.extend((node.left, node.right))
        elif isinstance(node, Not):
            stack.append(node.key)
        elif not isinstance(node, kinds):
            return False
    return True


def compile_search(criteria: SearchKey, max_seq: int, max_uid: int, now: float = 0.0) -> SearchProgram:
    """The program for ``criteria`` in a mailbox whose last message has
    sequence number ``max_seq`` and UID ``max_uid`` (for ``*``); ``now`` is
    the time OLDER and YOUNGER count from (RFC 5032).  ``MODSEQ`` and ``$``
    must have been resolved to :class:`UidSet` keys first."""
    return SearchProgram(
        _Compiler(max_seq, max_uid, now).compile(criteria), needs_of(criteria), flags_only(criteria)
    )


_DAY_OPS: dict[str, Callable[[datetime.date, datetime.date], bool]] = {
    "before": operator.lt,
    "on": operator.eq,
    "since": operator.ge,
}


def _merge(ranges: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Sorted, disjoint ``(lows, highs)`` covering ``ranges``, for bisection."""
    lows: list[int] = []
    highs: list[int] = []
    for low, high in sorted(ranges):
        if highs and low <= highs[-1] + 1:
            highs[-1] = max(highs[-1], high)
        else:
            lows.append(low)
            highs.append(high)
    return lows, highs


def _internal_day(candidate: Candidate) -> datetime.date:
    return datetime.datetime.fromtimestamp(candidate.internal_date, datetime.timezone.utc).date()


def _contains(haystack: str, needle: str) -> bool:
    return needle.casefold() in haystack.casefold()


@dataclass(frozen=True, slots=True)
class _Compiler:
    max_seq: int
    max_uid: int
    now: float = 0.0

    def compile(self, key: SearchKey) -> Predicate:
        """A predicate for ``key``; the recursion is as deep as the criteria,
        which :func:`~exchmail.imap.searchkeys.parse_search` bounds."""
        if isinstance(key, And):
            # Cheap keys first: a message that fails on its flags is never read.
            parts = [self.compile(k) for k in sorted(key.keys, key=needs_of)]
            return lambda c: all(p(c) for p in parts)
        if isinstance(key, Or):
            first, second = sorted((key.left, key.right), key=needs_of)
            left, right = self.compile(first), self.compile(second)
            return lambda c: left(c) or right(c)
        if isinstance(key, Not):
            inner = self.compile(key.key)
            return lambda c: not inner(c)
        return self.leaf(key)

    def leaf(self, key: SearchKey) -> Predicate:
        if isinstance(key, All):
            return lambda c: True
        if isinstance(key, Flag):
            flag, present = key.flag, key.present
            return lambda c: (flag in c.flags) == present
        if isinstance(key, Recent):
            wanted = key.present
            return lambda c: c.recent == wanted
        if isinstance(key, MessageSet):
            return self.message_set(key)
        if isinstance(key, Size):
            octets = key.octets
            if key.op == "larger":
                return lambda c: c.size > octets
            return lambda c: c.size < octets
        if isinstance(key, Date):
            return self.date(key)
        if isinstance(key, Header):
            name, needle = key.name, key.value

            def header(c: Candidate) -> bool:
                value = c.header(name)
                return value is not None and _contains(value, needle)

            return header
        if isinstance(key, Body):
            needle = key.value
            return lambda c: c.body_contains(needle)
        if isinstance(key, Text):
            needle = key.value
            return lambda c: (
                _contains(c.header_text(), needle)
                or c.body_contains(needle)
                or any(_contains(text, needle) for text in c.nested_header_texts())
            )
        if isinstance(key, UidSet):
            uids = key.uids
            return lambda c: c.uid in uids
        if isinstance(key, Within):
            cutoff = self.now - key.seconds
            if key.op == "older":
                return lambda c: c.internal_date < cutoff
            return lambda c: c.internal_date >= cutoff
        raise TypeError(f"unknown search key {key!r}")

    def message_set(self, key: MessageSet) -> Predicate:
        largest = self.max_uid if key.uid else self.max_seq
        lows, highs = _merge(key.sequence_set.resolve(largest))

        def member(number: int) -> bool:
            index = bisect.bisect_right(lows, number) - 1
            return index >= 0 and number <= highs[index]

        if key.uid:
            return lambda c: member(c.uid)
        return lambda c: member(c.seq)

    @staticmethod
    def date(key: Date) -> Predicate:
        compare, day = _DAY_OPS[key.op], key.date
        if key.field == "internal":
            return lambda c: compare(_internal_day(c), day)

        def sent(c: Candidate) -> bool:
            value = c.sent_date()
            return value is not None and compare(value, day)

        return sent


# -- candidates over index records and message content --------------------------
_Candidate = TypeVar("_Candidate", bound="IndexCandidate")


class IndexCandidate:
    """A message as SEARCH sees it from the index alone."""

    __slots__ = ("seq", "uid", "flags", "recent", "internal_date", "size")

    def __init__(self, seq: int, uid: int, record: Any, recent: bool, exact: bool) -> None:
        self.seq, self.uid, self.recent = seq, uid, recent
        self.flags = record.flags
        self.internal_date = record.internal_date
        self.size = record.exact_size if exact else record.stored_size

    @classmethod
    def from_row(
        cls: type[_Candidate],
        row: tuple[int, int, frozenset[str], float, int, int],
        recent: bool,
        exact: bool,
    ) -> _Candidate:
        """A candidate from a view's index row ``(seq, uid, flags, date, stored, exact)``."""
        candidate = cls.__new__(cls)
        candidate.seq, candidate.uid, candidate.flags, candidate.internal_date = row[:4]
        candidate.recent = recent
        candidate.size = row[5] if exact else row[4]
        return candidate

    def header(self, name: str) -> str | None:
        raise LookupError("index candidates have no content")

    def sent_date(self) -> datetime.date | None:
        raise LookupError("index candidates have no content")

    def header_text(self) -> str:
        raise LookupError("index candidates have no content")

    def body_contains(self, needle: str) -> bool:
        raise LookupError("index candidates have no content")

    def nested_header_texts(self) -> Iterator[str]:
        raise LookupError("index candidates have no content")


class ContentCandidate(IndexCandidate):
    """A message with its content, parsed only as far as a key asks."""

    __slots__ = ("data", "_parsed")

    def __init__(self, seq: int, uid: int, record: Any, recent: bool, exact: bool, data: bytes) -> None:
        super().__init__(seq, uid, record, recent, exact)
        self.data = data
        self._parsed: ParsedMessage | None = None

    @classmethod
    def of_row(
        cls, row: tuple[int, int, frozenset[str], float, int, int], recent: bool, exact: bool, data: bytes
    ) -> ContentCandidate:
        """A candidate from an index row ``(seq, uid, flags, date, stored, exact)`` and its content."""
        candidate = cls.from_row(row, recent, exact)
        candidate.data = data
        candidate._parsed = None
        return candidate

    @property
    def parsed(self) -> ParsedMessage:
        if self._parsed is None:
            self._parsed = ParsedMessage(self.data)
        return self._parsed

    def header(self, name: str) -> str | None:
        # Address fields as their decoded names and addr-specs (routes and
        # groups included), so FROM user@domain matches however it is written.
        # Unparsed content: only the named fields are looked for (a header
        # SEARCH over a big mailbox would otherwise split every field).
        values = field_values(self.data, name) if self._parsed is None else None
        if values is None:
            texts = self.parsed.search_texts(name)
        else:
            texts = [header_search_text(name, value) for value in values]
        return "\n".join(texts) if texts else None

    def sent_date(self) -> datetime.date | None:
        return self.parsed.sent_date()

    def header_text(self) -> str:
        return self.parsed.header_text()

    def body_contains(self, needle: str) -> bool:
        return body_contains(self.parsed.root, needle)

    def nested_header_texts(self) -> Iterator[str]:
        return nested_header_texts(self.parsed.root)
