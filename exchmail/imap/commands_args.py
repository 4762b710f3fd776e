"""Argument parsers shared by the IMAP commands: flags, date-time, sets, strings.

Every function takes tokens (:mod:`exchmail.imap.parsing`) and returns a
plain value, or raises :class:`~exchmail.imap.parsing.ParseError` with the
reason the client is told after BAD.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass

from exchmail.imap.extensions import enabled_extensions
from exchmail.imap.parsing import (
    MAX_DEPTH,
    MAX_LITERALS,
    Atom,
    ParseError,
    SequenceSet,
    Token,
    as_bytes,
)
from exchmail.imap.searchkeys import MONTHS
from exchmail.profile.settings import IMAPSettings, TagSyntax
from exchmail.store.changes import SYSTEM_FLAGS


@dataclass(frozen=True, slots=True, kw_only=True)
class ParseOptions:
    """What the parser needs of the profile, as plain values (read once per command).

    The defaults are those of the default profile's settings (exchange2010).

    :param liberal_whitespace: runs of SP/TAB separate tokens (V0003); else one SP.
    :param tag_syntax: which tags are valid (C0001).
    :param max_search_keys: most SEARCH keys (V0041); 0 for no limit.
    :param ignore_invalid_parameters: drop unknown STATUS items instead of BAD (2.3).
    :param search_charsets: the charsets SEARCH accepts (V0035/V0036).
    :param max_depth: deepest nesting of lists, and of SEARCH lists/NOT/OR together.
    :param max_literals: most literals in one command.
    :param extensions: capability names of the extensions the profile turns
        on (:mod:`exchmail.imap.extensions`); their commands and syntax are
        BAD without them.
    :param utf8: the client enabled UTF8=ACCEPT (RFC 6855): quoted strings
        must be valid UTF-8, SEARCH takes no CHARSET.
    """

    liberal_whitespace: bool = True
    tag_syntax: TagSyntax = TagSyntax.ANY_PRINTABLE
    max_search_keys: int = 10
    ignore_invalid_parameters: bool = True
    search_charsets: tuple[str, ...] = ("US-ASCII",)
    max_depth: int = MAX_DEPTH
    max_literals: int = MAX_LITERALS
    extensions: frozenset[str] = frozenset()
    utf8: bool = False

    @classmethod
    def from_settings(cls, imap: IMAPSettings) -> ParseOptions:
        """The options of a profile's IMAP settings."""
        return cls(
            liberal_whitespace=imap.liberal_whitespace,
            tag_syntax=imap.tag_syntax,
            max_search_keys=imap.max_search_keys,
            ignore_invalid_parameters=imap.ignore_invalid_parameters,
            search_charsets=tuple(imap.search_charsets),
            extensions=enabled_extensions(imap),
        )


# -- strings and sets -------------------------------------------------------------
def astring(token: Token) -> bytes:
    """An astring argument: atom, quoted string or literal (at most 64 KiB)."""
    return as_bytes(token)


def sequence_set(token: Token) -> SequenceSet:
    """A sequence-set argument (an atom such as ``1:3,5:*``), or ``$`` (RFC 5182's
    saved search result, which the handlers refuse unless SEARCHRES is on)."""
    if not isinstance(token, Atom):
        raise ParseError("expected a sequence set")
    if token == b"$":
        from exchmail.imap.commands_sync import SAVED

        return SAVED
    return SequenceSet.parse(bytes(token))


# -- flags -----------------------------------------------------------------------
_CANONICAL_FLAGS = {flag.lower(): flag for flag in SYSTEM_FLAGS | {"\\Recent"}}
# atom-specials (RFC 3501 section 9) and "]" cannot appear in a flag keyword.
_KEYWORD = re.compile(r"^[^\x00-\x20\x7f-\uffff(){%*\"\\\]]+$")


def flag(token: Token) -> str:
    """One flag: a system flag in its canonical spelling, or a keyword."""
    if not isinstance(token, Atom) or not token:
        raise ParseError("flags must be atoms")
    text = bytes(token).decode("ascii", "replace")
    if text.startswith("\\"):
        canonical = _CANONICAL_FLAGS.get(text.lower())
        if canonical is None:
            raise ParseError(f"unknown system flag {text[:30]}")
        return canonical
    if not _KEYWORD.match(text):
        raise ParseError("invalid keyword")
    return text


def flag_list(token: Token) -> frozenset[str]:
    """A flag list argument (a parenthesised list of flags, or one flag)."""
    items = token if isinstance(token, list) else [token]
    return frozenset(flag(item) for item in items)


# -- date-time ------------------------------------------------------------------------
_DATE_TIME = re.compile(
    rb"^([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})$"
)
#: The instants an internal date may name: 1900-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
EARLIEST_DATE_TIME = calendar.timegm((1900, 1, 1, 0, 0, 0))
LATEST_DATE_TIME = calendar.timegm((9999, 12, 31, 23, 59, 59))


def date_time(token: Token) -> float:
    """An APPEND date-time (``"17-Jul-1996 02:44:25 -0700"``) as epoch seconds.

    RFC 3501's syntax exactly (the day is two digits or SP and a digit), a
    real calendar date and time of day, a zone of at most 23:59, and an
    instant between 1900 and the end of 9999 in UTC.
    """
    raw = as_bytes(token)
    match = _DATE_TIME.match(raw)
    if not match:
        raise ParseError("invalid date-time")
    day_text, month_text, *numbers, sign, zone_hours, zone_minutes = (
        g.decode("ascii") for g in match.groups()
    )
    year, hour, minute, second = (int(n) for n in numbers)
    day = int(day_text)
    if month_text.upper() not in MONTHS:
        raise ParseError("invalid date-time: unknown month")
    month = MONTHS.index(month_text.upper()) + 1
    if not 1 <= year or not 1 <= day <= calendar.monthrange(year, month)[1]:
        raise ParseError("invalid date-time: no such day")
    if hour > 23 or minute > 59 or second > 59:
        raise ParseError("invalid date-time: no such time of day")
    if int(zone_hours) > 23 or int(zone_minutes) > 59:
        raise ParseError("invalid date-time: invalid time zone")
    offset = (int(zone_hours) * 60 + int(zone_minutes)) * 60 * (-1 if sign == "-" else 1)
    instant = calendar.timegm((year, month, day, hour, minute, second)) - offset
    if not EARLIEST_DATE_TIME <= instant <= LATEST_DATE_TIME:
        raise ParseError("invalid date-time: out of range (1900 to 9999)")
    return float(instant)


# -- STATUS -----------------------------------------------------------------------------
STATUS_ITEMS = frozenset({b"MESSAGES", b"RECENT", b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN"})


def status_items(
    token: Token, ignore_unknown: bool, extra: frozenset[bytes] = frozenset()
) -> tuple[bytes, ...]:
    """STATUS data items (a list, or one atom), upper case, in order.

    ``extra`` are the items of extensions the profile has on (``SIZE``...).
    Unknown items are BAD, or dropped with ``ignore_unknown``; at least one
    known item must remain.
    """
    wanted = token if isinstance(token, list) else [token]
    items = []
    for item in wanted:
        if not isinstance(item, Atom):
            raise ParseError("expected an atom")
        name = bytes(item).upper()
        if name in STATUS_ITEMS or name in extra:
            items.append(name)
        elif not ignore_unknown:
            raise ParseError("invalid STATUS item")
    if not items:
        raise ParseError("no STATUS item")
    return tuple(items)
