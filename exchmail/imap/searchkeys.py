"""SEARCH criteria (RFC 3501 6.4.4) as a frozen syntax tree, parsed from tokens.

:func:`parse_search` turns the tokens after ``SEARCH [CHARSET x]`` into a
:class:`SearchKey`; :mod:`exchmail.imap.search` evaluates it.  Strings are
decoded with the charset here, so a string that is not valid in it is a
syntax error (BAD), and so are unknown keys and malformed arguments.

Limits are counted while parsing: parentheses, ``NOT`` and ``OR`` together
nest at most :data:`~exchmail.imap.parsing.MAX_DEPTH` levels (BAD beyond,
never a RecursionError), and more keys than ``max_keys`` answer
``NO [LIMIT]`` (V0041) once the criteria are known to be well formed.
Keys are counted as Exchange counts them: every key, ``NOT`` and ``OR``
included, but not the parentheses of a list.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from exchmail.imap.parsing import (
    MAX_DEPTH,
    Atom,
    ParseError,
    SequenceSet,
    Spool,
    Token,
    as_bytes,
    as_number,
)

#: IMAP charset name -> Python codec, for the charsets SEARCH can decode.
CODECS = {"US-ASCII": "ascii", "UTF-8": "utf-8"}
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DATE = re.compile(r"^\d{1,2}-[A-Za-z]{3}-\d{4}$")


class SearchKey:
    """Base of the search criteria nodes (all frozen dataclasses)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class All(SearchKey):
    """``ALL``: every message."""


@dataclass(frozen=True, slots=True)
class Flag(SearchKey):
    """A flag set (``present``) or not: ``SEEN``/``UNSEEN``..., ``KEYWORD``/``UNKEYWORD``."""

    flag: str
    present: bool = True


@dataclass(frozen=True, slots=True)
class Recent(SearchKey):
    """``RECENT`` (``present``) or ``OLD``; ``NEW`` is ``And(Recent(), Flag(Seen, False))``."""

    present: bool = True


@dataclass(frozen=True, slots=True)
class MessageSet(SearchKey):
    """A sequence set (``uid`` false) or ``UID`` set; ``*`` is resolved when evaluated."""

    sequence_set: SequenceSet
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Size(SearchKey):
    """``LARGER n`` / ``SMALLER n``: RFC822.SIZE strictly above/below ``octets``."""

    op: Literal["larger", "smaller"]
    octets: int


@dataclass(frozen=True, slots=True)
class Date(SearchKey):
    """``BEFORE/ON/SINCE`` (``field`` internal: the internal date's UTC day) and
    ``SENTBEFORE/SENTON/SENTSINCE`` (``field`` sent: the Date header's day)."""

    field: Literal["internal", "sent"]
    op: Literal["before", "on", "since"]
    date: datetime.date


@dataclass(frozen=True, slots=True)
class Header(SearchKey):
    """Header field ``name`` present and containing ``value`` (case-insensitive);
    ``FROM``, ``TO``, ``CC``, ``BCC``, ``SUBJECT`` and ``HEADER name value``."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Body(SearchKey):
    """``BODY value``: the decoded body text contains ``value``."""

    value: str


@dataclass(frozen=True, slots=True)
class Text(SearchKey):
    """``TEXT value``: the header text or the body text contains ``value``."""

    value: str


@dataclass(frozen=True, slots=True)
class Not(SearchKey):
    """``NOT key``."""

    key: SearchKey


@dataclass(frozen=True, slots=True)
class Or(SearchKey):
    """``OR left right``."""

    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class And(SearchKey):
    """Several keys that must all match: a parenthesised list, or the criteria
    of a SEARCH with more than one key."""

    keys: tuple[SearchKey, ...]


@dataclass(frozen=True, slots=True)
class ModSeq(SearchKey):
    """``MODSEQ [entry type] n`` (RFC 7162 §3.1.5): MODSEQ at least ``value``
    (the entry name is accepted; every entry shares the message's MODSEQ)."""

    value: int


@dataclass(frozen=True, slots=True)
class Within(SearchKey):
    """``OLDER n`` / ``YOUNGER n`` (RFC 5032): the internal date more / at most
    ``seconds`` before the search."""

    op: Literal["older", "younger"]
    seconds: int


@dataclass(frozen=True, slots=True)
class SavedResult(SearchKey):
    """``$`` (RFC 5182): the messages of the last ``SEARCH RETURN (SAVE)``."""


@dataclass(frozen=True, slots=True)
class UidSet(SearchKey):
    """Messages whose UID is in ``uids`` (what ``MODSEQ`` and ``$`` resolve to
    before evaluation, from the store's index and the session)."""

    uids: frozenset[int]


#: search keys of extensions -> the capability without which they are unknown
EXTENSION_KEYS = {b"MODSEQ": "CONDSTORE", b"OLDER": "WITHIN", b"YOUNGER": "WITHIN", b"$": "SEARCHRES"}
_ENTRY_TYPES = (b"PRIV", b"SHARED", b"ALL")


def as_mod_sequence(token: Token, zero: bool = True) -> int:
    """A mod-sequence value (RFC 7162 §7: 63-bit; 0 only where ``zero``)."""
    if not isinstance(token, Atom) or not token.isdigit() or len(token) > 19:
        raise ParseError("expected a mod-sequence value")
    value = int(token)
    if value > 0x7FFFFFFFFFFFFFFF or (value == 0 and not zero):
        raise ParseError("mod-sequence value out of range")
    return value


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


class _Cursor:
    """Reads the tokens of one list level in order."""

    __slots__ = ("tokens", "index")

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = tokens
        self.index = 0

    def more(self) -> bool:
        return self.index < len(self.tokens)

    def take(self) -> Token:
        if self.index >= len(self.tokens):
            raise ParseError("missing search argument")
        token = self.tokens[self.index]
        self.index += 1
        return token


_FLAG_KEYS = {
    b"ANSWERED": Flag("\\Answered"),
    b"DELETED": Flag("\\Deleted"),
    b"DRAFT": Flag("\\Draft"),
    b"FLAGGED": Flag("\\Flagged"),
    b"SEEN": Flag("\\Seen"),
    b"UNANSWERED": Flag("\\Answered", False),
    b"UNDELETED": Flag("\\Deleted", False),
    b"UNDRAFT": Flag("\\Draft", False),
    b"UNFLAGGED": Flag("\\Flagged", False),
    b"UNSEEN": Flag("\\Seen", False),
    b"ALL": All(),
    b"RECENT": Recent(),
    b"OLD": Recent(False),
    b"NEW": And((Recent(), Flag("\\Seen", False))),
}
_HEADER_KEYS = {b"BCC": "Bcc", b"CC": "Cc", b"FROM": "From", b"TO": "To", b"SUBJECT": "Subject"}
_DATE_KEYS: dict[bytes, tuple[Literal["internal", "sent"], Literal["before", "on", "since"]]] = {
    b"BEFORE": ("internal", "before"),
    b"ON": ("internal", "on"),
    b"SINCE": ("internal", "since"),
    b"SENTBEFORE": ("sent", "before"),
    b"SENTON": ("sent", "on"),
    b"SENTSINCE": ("sent", "since"),
}


class _Parser:
    """One SEARCH's criteria: counts keys and depth as it goes."""

    def __init__(self, charset: str, max_depth: int, extensions: frozenset[str] = frozenset()) -> None:
        self.extensions = extensions
        self.charset = charset
        self.codec = CODECS[charset]
        self.max_depth = max_depth
        self.count = 0

    def string(self, cursor: _Cursor) -> str:
        try:
            return as_bytes(cursor.take()).decode(self.codec)
        except UnicodeDecodeError:
            raise ParseError(f"search string is not valid {self.charset}") from None

    def keys(self, tokens: Sequence[Token], depth: int) -> SearchKey:
        """All keys of one list level (at least one), as one key."""
        cursor = _Cursor(tokens)
        found = []
        while cursor.more():
            found.append(self.key(cursor, depth))
        if not found:
            raise ParseError("missing search key")
        return found[0] if len(found) == 1 else And(tuple(found))

    def key(self, cursor: _Cursor, depth: int) -> SearchKey:
        """The next key; ``depth`` is how many lists, NOTs and ORs enclose it."""
        token = cursor.take()
        if isinstance(token, list):
            return self.keys(token, self.deeper(depth))
        self.count += 1
        if isinstance(token, Spool) or not isinstance(token, Atom):
            raise ParseError("expected a search key")
        name = bytes(token).upper()
        if name[:1].isdigit() or name[:1] == b"*":
            return MessageSet(SequenceSet.parse(bytes(token)))
        simple = _FLAG_KEYS.get(name)
        if simple is not None:
            return simple
        needed = EXTENSION_KEYS.get(name)
        if needed is not None and needed not in self.extensions:
            raise ParseError(f"unknown search key {name[:30]!r}")
        if name == b"$":
            return SavedResult()
        if name == b"NOT":
            return Not(self.key(cursor, self.deeper(depth)))
        if name == b"OR":
            inner = self.deeper(depth)
            left = self.key(cursor, inner)
            return Or(left, self.key(cursor, inner))
        parse = self._ARGUMENT_KEYS.get(name)
        if parse is None:
            raise ParseError(f"unknown search key {name[:30]!r}")
        return parse(self, name, cursor)

    def deeper(self, depth: int) -> int:
        if depth >= self.max_depth:
            raise ParseError(f"search keys nested too deeply (at most {self.max_depth} levels)")
        return depth + 1

    # keys with arguments
    def keyword(self, name: bytes, cursor: _Cursor) -> SearchKey:
        return Flag(self.string(cursor), name == b"KEYWORD")

    def uid(self, name: bytes, cursor: _Cursor) -> SearchKey:
        return MessageSet(SequenceSet.parse(as_bytes(cursor.take())), uid=True)

    def size(self, name: bytes, cursor: _Cursor) -> SearchKey:
        return Size("larger" if name == b"LARGER" else "smaller", as_number(cursor.take()))

    def date(self, name: bytes, cursor: _Cursor) -> SearchKey:
        field, op = _DATE_KEYS[name]
        return Date(field, op, parse_search_date(cursor.take()))

    def header(self, name: bytes, cursor: _Cursor) -> SearchKey:
        return Header(_HEADER_KEYS[name], self.string(cursor))

    def any_header(self, name: bytes, cursor: _Cursor) -> SearchKey:
        field = as_bytes(cursor.take()).decode("ascii", "replace")
        return Header(field, self.string(cursor))

    def body(self, name: bytes, cursor: _Cursor) -> SearchKey:
        return Body(self.string(cursor))

    def text(self, name: bytes, cursor: _Cursor) -> SearchKey:
        return Text(self.string(cursor))

    def modseq(self, name: bytes, cursor: _Cursor) -> SearchKey:
        token = cursor.take()
        if not isinstance(token, Atom) or not bytes(token).isdigit():
            as_bytes(token)  # the entry name (a string), then its type
            kind = cursor.take()
            if not isinstance(kind, Atom) or bytes(kind).upper() not in _ENTRY_TYPES:
                raise ParseError("MODSEQ entry type must be priv, shared or all")
            token = cursor.take()
        return ModSeq(as_mod_sequence(token))

    def within(self, name: bytes, cursor: _Cursor) -> SearchKey:
        seconds = as_number(cursor.take())
        if seconds < 1:
            raise ParseError("OLDER and YOUNGER need a positive number of seconds")
        return Within("older" if name == b"OLDER" else "younger", seconds)

    _ARGUMENT_KEYS: dict[bytes, Callable[[_Parser, bytes, _Cursor], SearchKey]] = {
        b"KEYWORD": keyword,
        b"UNKEYWORD": keyword,
        b"UID": uid,
        b"LARGER": size,
        b"SMALLER": size,
        **dict.fromkeys(_DATE_KEYS, date),
        **dict.fromkeys(_HEADER_KEYS, header),
        b"HEADER": any_header,
        b"BODY": body,
        b"TEXT": text,
        b"MODSEQ": modseq,
        b"OLDER": within,
        b"YOUNGER": within,
    }


def parse_search(
    tokens: Sequence[Token],
    charset: str = "US-ASCII",
    max_keys: int = 0,
    max_depth: int = MAX_DEPTH,
    extensions: frozenset[str] = frozenset(),
) -> SearchKey:
    """Parse SEARCH criteria; one key, or :class:`And` of the top-level keys.

    ``charset`` is an IMAP name from :data:`CODECS`; ``max_keys`` 0 means no
    limit.  Raises :class:`ParseError`: BAD for malformed criteria or
    nesting deeper than ``max_depth``, ``NO [LIMIT]`` for too many keys.
    """
    parser = _Parser(charset, max_depth, extensions)
    criteria = parser.keys(tokens, 0)
    if max_keys and parser.count > max_keys:
        raise ParseError(f"At most {max_keys} search keys are supported", code=b"LIMIT", status="NO")
    return criteria
