"""SEARCH (RFC 3501 6.4.4): compile search keys into a predicate, pure.

:func:`compile_search` turns the token list of a SEARCH command into a
:class:`SearchProgram`; :meth:`SearchProgram.matches` evaluates it for one
message described by a :class:`Candidate`.  Message content is parsed only
when a key needs it (``Candidate.parsed`` is a callable).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from exchmail.imap.parsing import (
    Atom,
    ParseError,
    Spool,
    Token,
    as_bytes,
    as_number,
    parse_sequence_set,
    resolve_sequence_set,
)

_DATE = re.compile(r"^\d{1,2}-[A-Za-z]{3}-\d{4}$")
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]


@dataclass
class Candidate:
    """What a search needs to know of one message."""

    seq: int
    uid: int
    flags: frozenset[str]
    recent: bool
    internal_date: float
    size: int
    parsed: Callable[[], object]


Predicate = Callable[[Candidate], bool]


@dataclass
class SearchProgram:
    """A compiled search: a predicate plus the number of keys it has."""

    predicate: Predicate
    key_count: int = 0
    needs_content: bool = False

    def matches(self, candidate: Candidate) -> bool:
        """Whether the message satisfies every key."""
        return self.predicate(candidate)


def parse_search_date(token: Token) -> datetime.date:
    """Parse an IMAP ``date`` (``1-Feb-1994``, quoted or not)."""
    text = as_bytes(token).decode("ascii", "replace")
    if not _DATE.match(text):
        raise ParseError(f"invalid date {text[:30]!r}")
    try:
        day, month, year = text.split("-")
        return datetime.date(int(year), MONTHS.index(month.upper()) + 1, int(day))
    except (ValueError, IndexError):
        raise ParseError(f"invalid date {text[:30]!r}") from None


def _internal_day(candidate: Candidate) -> datetime.date:
    return datetime.datetime.fromtimestamp(candidate.internal_date, datetime.timezone.utc).date()


def _contains(haystack: str, needle: str) -> bool:
    return needle.casefold() in haystack.casefold()


@dataclass
class _Compiler:
    charset: str
    max_seq: int
    max_uid: int
    keys: int = 0
    needs_content: bool = False
    tokens: list[Token] = field(default_factory=list)

    def string(self) -> str:
        token = self.take()
        try:
            return as_bytes(token).decode(self.charset)
        except UnicodeDecodeError:
            raise ParseError(f"search string is not valid {self.charset}") from None

    def take(self) -> Token:
        if not self.tokens:
            raise ParseError("missing search argument")
        return self.tokens.pop(0)

    def all_keys(self) -> Predicate:
        predicates = []
        while self.tokens:
            predicates.append(self.key())
        if not predicates:
            raise ParseError("missing search key")
        return lambda c: all(p(c) for p in predicates)

    def key(self) -> Predicate:
        token = self.take()
        self.keys += 1
        if isinstance(token, list):
            inner = _Compiler(self.charset, self.max_seq, self.max_uid, tokens=list(token))
            predicate = inner.all_keys()
            self.keys += inner.keys - 1
            self.needs_content |= inner.needs_content
            return predicate
        if isinstance(token, Spool) or not isinstance(token, Atom):
            raise ParseError("expected a search key")
        name = bytes(token).upper()
        if name[:1].isdigit() or name[:1] == b"*":
            return self.sequence(bytes(token), by_uid=False)
        method = getattr(self, "key_" + name.decode("ascii", "replace").replace(".", "_"), None)
        if method is None:
            raise ParseError(f"unknown search key {name[:30]!r}")
        return method()

    def sequence(self, text: bytes, by_uid: bool) -> Predicate:
        largest = self.max_uid if by_uid else self.max_seq
        ranges = resolve_sequence_set(parse_sequence_set(text), largest)
        if by_uid:
            return lambda c: any(lo <= c.uid <= hi for lo, hi in ranges)
        return lambda c: any(lo <= c.seq <= hi for lo, hi in ranges)

    # flags
    def _flag(self, flag: str, present: bool = True) -> Predicate:
        return lambda c: (flag in c.flags) == present

    def key_ALL(self) -> Predicate:
        return lambda c: True

    def key_ANSWERED(self) -> Predicate:
        return self._flag("\\Answered")

    def key_DELETED(self) -> Predicate:
        return self._flag("\\Deleted")

    def key_DRAFT(self) -> Predicate:
        return self._flag("\\Draft")

    def key_FLAGGED(self) -> Predicate:
        return self._flag("\\Flagged")

    def key_SEEN(self) -> Predicate:
        return self._flag("\\Seen")

    def key_UNANSWERED(self) -> Predicate:
        return self._flag("\\Answered", False)

    def key_UNDELETED(self) -> Predicate:
        return self._flag("\\Deleted", False)

    def key_UNDRAFT(self) -> Predicate:
        return self._flag("\\Draft", False)

    def key_UNFLAGGED(self) -> Predicate:
        return self._flag("\\Flagged", False)

    def key_UNSEEN(self) -> Predicate:
        return self._flag("\\Seen", False)

    def key_KEYWORD(self) -> Predicate:
        return self._flag(self.string())

    def key_UNKEYWORD(self) -> Predicate:
        return self._flag(self.string(), False)

    def key_RECENT(self) -> Predicate:
        return lambda c: c.recent

    def key_NEW(self) -> Predicate:
        return lambda c: c.recent and "\\Seen" not in c.flags

    def key_OLD(self) -> Predicate:
        return lambda c: not c.recent

    # structure
    def key_NOT(self) -> Predicate:
        inner = self.key()
        return lambda c: not inner(c)

    def key_OR(self) -> Predicate:
        left, right = self.key(), self.key()
        return lambda c: left(c) or right(c)

    def key_UID(self) -> Predicate:
        return self.sequence(as_bytes(self.take()), by_uid=True)

    # sizes and dates
    def key_LARGER(self) -> Predicate:
        limit = as_number(self.take())
        return lambda c: c.size > limit

    def key_SMALLER(self) -> Predicate:
        limit = as_number(self.take())
        return lambda c: c.size < limit

    def key_BEFORE(self) -> Predicate:
        day = parse_search_date(self.take())
        return lambda c: _internal_day(c) < day

    def key_ON(self) -> Predicate:
        day = parse_search_date(self.take())
        return lambda c: _internal_day(c) == day

    def key_SINCE(self) -> Predicate:
        day = parse_search_date(self.take())
        return lambda c: _internal_day(c) >= day

    def _sent(self, compare: Callable[[datetime.date, datetime.date], bool]) -> Predicate:
        day = parse_search_date(self.take())
        self.needs_content = True

        def predicate(c: Candidate) -> bool:
            sent = c.parsed().sent_date()  # type: ignore[attr-defined]
            return sent is not None and compare(sent, day)
        return predicate

    def key_SENTBEFORE(self) -> Predicate:
        return self._sent(lambda a, b: a < b)

    def key_SENTON(self) -> Predicate:
        return self._sent(lambda a, b: a == b)

    def key_SENTSINCE(self) -> Predicate:
        return self._sent(lambda a, b: a >= b)

    # content
    def _header(self, name: str) -> Predicate:
        needle = self.string()
        self.needs_content = True

        def predicate(c: Candidate) -> bool:
            message = c.parsed()
            if not message.get_all(name):  # type: ignore[attr-defined]
                return False
            return _contains(message.decoded_header(name), needle)  # type: ignore[attr-defined]
        return predicate

    def key_BCC(self) -> Predicate:
        return self._header("Bcc")

    def key_CC(self) -> Predicate:
        return self._header("Cc")

    def key_FROM(self) -> Predicate:
        return self._header("From")

    def key_TO(self) -> Predicate:
        return self._header("To")

    def key_SUBJECT(self) -> Predicate:
        return self._header("Subject")

    def key_HEADER(self) -> Predicate:
        name = as_bytes(self.take()).decode("ascii", "replace")
        return self._header(name)

    def key_BODY(self) -> Predicate:
        needle = self.string()
        self.needs_content = True
        return lambda c: _contains(c.parsed().body_text(), needle)  # type: ignore[attr-defined]

    def key_TEXT(self) -> Predicate:
        needle = self.string()
        self.needs_content = True

        def predicate(c: Candidate) -> bool:
            message = c.parsed()
            return (_contains(message.header_text(), needle)  # type: ignore[attr-defined]
                    or _contains(message.body_text(), needle))  # type: ignore[attr-defined]
        return predicate


def compile_search(tokens: list[Token], charset: str, max_seq: int, max_uid: int) -> SearchProgram:
    """Compile SEARCH keys; raises :class:`ParseError` for malformed keys."""
    compiler = _Compiler(charset, max_seq, max_uid, tokens=list(tokens))
    predicate = compiler.all_keys()
    return SearchProgram(predicate, compiler.keys, compiler.needs_content)
