"""Syntax of the IMAP extensions of issue 14 (part 2 of the modern profile).

CONDSTORE/QRESYNC (RFC 7162): SELECT/EXAMINE parameters, FETCH and STORE
modifiers, the FETCH item MODSEQ (:mod:`exchmail.imap.fetchatt`) and the
SEARCH key MODSEQ (:mod:`exchmail.imap.searchkeys`); ESEARCH (RFC 4731),
SEARCHRES (RFC 5182) and CONTEXT (RFC 5267): ``SEARCH RETURN (...)``;
SORT and THREAD (RFC 5256, 5957, 5267's ESORT); CANCELUPDATE (RFC 5267);
NOTIFY (RFC 5465).

Like :mod:`exchmail.imap.commands_modern`, the parse functions take the
command's :class:`~exchmail.imap.commands.Arguments` (duck-typed) and
:data:`PARSERS` lists the new commands with the capability that makes
them exist; syntax that extends a base command is BAD when the profile
has its extension off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from exchmail.imap.commands_args import astring, sequence_set
from exchmail.imap.commands_types import Command, Resync, SearchReturn
from exchmail.imap.parsing import Atom, ParseError, SequenceSet, Token, as_bytes, as_number
from exchmail.imap.searchkeys import CODECS, SearchKey, as_mod_sequence, parse_search

#: sort keys (RFC 5256 §3; DISPLAYFROM/DISPLAYTO: RFC 5957) -> capability needed
SORT_KEYS = {
    b"ARRIVAL": "SORT",
    b"CC": "SORT",
    b"DATE": "SORT",
    b"FROM": "SORT",
    b"SIZE": "SORT",
    b"SUBJECT": "SORT",
    b"TO": "SORT",
    b"DISPLAYFROM": "SORT=DISPLAY",
    b"DISPLAYTO": "SORT=DISPLAY",
}
#: RETURN options -> the capability that defines them
RETURN_OPTIONS = {
    b"MIN": "ESEARCH",
    b"MAX": "ESEARCH",
    b"ALL": "ESEARCH",
    b"COUNT": "ESEARCH",
    b"SAVE": "SEARCHRES",
    b"UPDATE": "CONTEXT=SEARCH",
    b"CONTEXT": "CONTEXT=SEARCH",
    b"PARTIAL": "CONTEXT=SEARCH",
}
NOTIFY_EVENTS = {
    b"MESSAGENEW",
    b"MESSAGEEXPUNGE",
    b"FLAGCHANGE",
    b"ANNOTATIONCHANGE",
    b"MAILBOXNAME",
    b"SUBSCRIPTIONCHANGE",
    b"MAILBOXMETADATACHANGE",
    b"SERVERMETADATACHANGE",
}
NOTIFY_FILTERS = {
    b"SELECTED",
    b"SELECTED-DELAYED",
    b"INBOXES",
    b"PERSONAL",
    b"SUBSCRIBED",
    b"SUBTREE",
    b"MAILBOXES",
}


class SavedSet(SequenceSet):
    """The sequence set ``$`` (RFC 5182): the session's saved search result."""


SAVED = SavedSet(())


@dataclass(frozen=True, slots=True)
class Sort(Command):
    """[UID] SORT [RETURN (...)] (keys) charset criteria; ``keys`` are
    ``(name, reverse)`` pairs."""

    NAME: ClassVar[bytes] = b"SORT"
    keys: tuple[tuple[bytes, bool], ...]
    charset: str
    criteria: SearchKey
    uid: bool = False
    returns: SearchReturn | None = None


@dataclass(frozen=True, slots=True)
class Thread(Command):
    """[UID] THREAD algorithm charset criteria (RFC 5256)."""

    NAME: ClassVar[bytes] = b"THREAD"
    algorithm: bytes
    charset: str
    criteria: SearchKey
    uid: bool = False


@dataclass(frozen=True, slots=True)
class CancelUpdate(Command):
    """CANCELUPDATE tag... (RFC 5267 §4.3)."""

    NAME: ClassVar[bytes] = b"CANCELUPDATE"
    tags: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class NotifyGroup:
    """One event group of NOTIFY SET: a filter and its events (empty: NONE)."""

    filter: bytes
    mailboxes: tuple[bytes, ...]
    events: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Notify(Command):
    """NOTIFY NONE (``groups`` None) or NOTIFY SET [STATUS] groups (RFC 5465)."""

    NAME: ClassVar[bytes] = b"NOTIFY"
    groups: tuple[NotifyGroup, ...] | None
    status: bool = False


# -- modifiers of base commands ------------------------------------------------------------
def select_parameters(tokens: Sequence[Token], extensions: frozenset[str]) -> tuple[bool, Resync | None]:
    """SELECT's ``(CONDSTORE)`` / ``(QRESYNC (...))`` parameters."""
    if len(tokens) != 1 or not isinstance(tokens[0], list) or "CONDSTORE" not in extensions:
        raise ParseError("SELECT takes a mailbox name and at most one parameter list")
    condstore, resync, items = False, None, list(tokens[0])
    while items:
        name = items.pop(0)
        word = bytes(name).upper() if isinstance(name, Atom) else b""
        if word == b"CONDSTORE":
            condstore = True
        elif word == b"QRESYNC" and "QRESYNC" in extensions and items and isinstance(items[0], list):
            resync = _resync(items.pop(0))
        else:
            raise ParseError("unknown SELECT parameter")
    return condstore, resync


def _resync(values: list[Token]) -> Resync:
    if not 2 <= len(values) <= 4:
        raise ParseError("QRESYNC takes (uidvalidity modseq [known-uids [seq-match-data]])")
    validity = as_number(values[0])
    modseq = as_mod_sequence(values[1], zero=False)
    if validity == 0:
        raise ParseError("UIDVALIDITY must be positive")
    known, match = None, None
    rest = values[2:]
    if rest and isinstance(rest[0], Atom):
        known = sequence_set(rest.pop(0))
    if rest:
        pair = rest.pop(0)
        if not isinstance(pair, list) or len(pair) != 2 or rest:
            raise ParseError("QRESYNC seq-match-data is (sequence-set uid-set)")
        match = (sequence_set(pair[0]), sequence_set(pair[1]))
    return Resync(validity, modseq, known, match)


def fetch_modifiers(tokens: Sequence[Token], extensions: frozenset[str], uid: bool) -> tuple[int, bool]:
    """FETCH's ``(CHANGEDSINCE n [VANISHED])``: ``(n, vanished)``."""
    if len(tokens) != 1 or not isinstance(tokens[0], list) or "CONDSTORE" not in extensions:
        raise ParseError("FETCH takes a sequence set and fetch attributes")
    changed, vanished, items = None, False, list(tokens[0])
    while items:
        name = items.pop(0)
        word = bytes(name).upper() if isinstance(name, Atom) else b""
        if word == b"CHANGEDSINCE" and items and changed is None:
            changed = as_mod_sequence(items.pop(0), zero=False)
        elif word == b"VANISHED" and "QRESYNC" in extensions and not vanished:
            vanished = True
        else:
            raise ParseError("unknown FETCH modifier")
    if changed is None:
        raise ParseError("FETCH modifiers need CHANGEDSINCE")
    if vanished and not uid:
        raise ParseError("VANISHED is only valid with UID FETCH")
    return changed, vanished


def store_modifier(token: Token, extensions: frozenset[str]) -> int:
    """STORE's ``(UNCHANGEDSINCE n)``."""
    if "CONDSTORE" not in extensions or not isinstance(token, list) or len(token) != 2:
        raise ParseError("STORE needs FLAGS, +FLAGS or -FLAGS")
    if not isinstance(token[0], Atom) or bytes(token[0]).upper() != b"UNCHANGEDSINCE":
        raise ParseError("unknown STORE modifier")
    return as_mod_sequence(token[1])


def search_return(
    tokens: Sequence[Token], extensions: frozenset[str], sort: bool = False
) -> tuple[SearchReturn | None, Sequence[Token]]:
    """``RETURN (options)`` at the start of SEARCH or SORT, and the tokens after it."""
    first = tokens[0] if tokens else None
    if not (isinstance(first, Atom) and first.upper() == b"RETURN"):
        return None, tokens
    if len(tokens) < 2 or not isinstance(tokens[1], list):
        raise ParseError("RETURN needs a parenthesised list of options")
    if ("ESORT" if sort else "ESEARCH") not in extensions:
        raise ParseError("unknown search key 'RETURN'")
    options: set[bytes] = set()
    partial = None
    items = list(tokens[1])
    while items:
        name = items.pop(0)
        word = bytes(name).upper() if isinstance(name, Atom) else b""
        needed = RETURN_OPTIONS.get(word)
        if sort and needed == "CONTEXT=SEARCH":
            needed = "CONTEXT=SORT"
        if needed is None or needed not in extensions:
            raise ParseError(f"unknown RETURN option {word[:20]!r}")
        if word == b"PARTIAL":
            partial = _partial(items.pop(0) if items else None)
        options.add(word)
    return SearchReturn(frozenset(options), partial), tokens[2:]


def _partial(token: Token | None) -> tuple[int, int]:
    """``m:n`` of PARTIAL: two positive numbers (either order)."""
    if not isinstance(token, Atom):
        raise ParseError("PARTIAL needs a range m:n")
    low, colon, high = bytes(token).partition(b":")
    if not colon or not low.isdigit() or not high.isdigit() or int(low) < 1 or int(high) < 1:
        raise ParseError("PARTIAL needs a range m:n of positive numbers")
    if len(low) > 10 or len(high) > 10:
        raise ParseError("PARTIAL range out of range")
    a, b = int(low), int(high)
    return (a, b) if a <= b else (b, a)


def _charset(token: Token, options: Any) -> str:
    charset = as_bytes(token).decode("ascii", "replace").upper()
    if charset not in CODECS:
        names = b" ".join(name.encode() for name in CODECS)
        raise ParseError("Unsupported charset", code=b"BADCHARSET (" + names + b")", status="NO")
    return charset


def _criteria(tokens: Sequence[Token], charset: str, options: Any) -> SearchKey:
    return parse_search(tokens, charset, options.max_search_keys, options.max_depth, options.extensions)


# -- new commands --------------------------------------------------------------------------------
def parse_sort(args: Any) -> Command:
    returns, tokens = search_return(args.tokens, args.options.extensions, sort=True)
    if returns is not None and b"UPDATE" in returns.options:
        # Sorted results are not kept up to date (CONTEXT=SORT's PARTIAL is).
        raise ParseError("SORT RETURN (UPDATE) is not supported", code=b"CANNOT", status="NO")
    if len(tokens) < 3 or not isinstance(tokens[0], list) or not tokens[0]:
        raise ParseError("SORT needs (sort criteria), a charset and search criteria")
    keys: list[tuple[bytes, bool]] = []
    reverse = False
    for token in tokens[0]:
        word = bytes(token).upper() if isinstance(token, Atom) else b""
        if word == b"REVERSE" and not reverse:
            reverse = True
            continue
        needed = SORT_KEYS.get(word)
        if needed is None or needed not in args.options.extensions:
            raise ParseError(f"unknown sort key {word[:20]!r}")
        keys.append((word, reverse))
        reverse = False
    if reverse:
        raise ParseError("REVERSE must be followed by a sort key")
    charset = _charset(tokens[1], args.options)
    criteria = _criteria(tokens[2:], charset, args.options)
    return Sort(args.tag, tuple(keys), charset, criteria, args.uid, returns)


def parse_thread(args: Any) -> Command:
    if len(args.tokens) < 3:
        raise ParseError("THREAD needs an algorithm, a charset and search criteria")
    algorithm = bytes(args.tokens[0]).upper() if isinstance(args.tokens[0], Atom) else b""
    if "THREAD=" + algorithm.decode("ascii", "replace") not in args.options.extensions:
        raise ParseError("unsupported threading algorithm")
    charset = _charset(args.tokens[1], args.options)
    criteria = _criteria(args.tokens[2:], charset, args.options)
    return Thread(args.tag, algorithm, charset, criteria, args.uid)


def parse_cancelupdate(args: Any) -> Command:
    if not args.tokens:
        raise ParseError("CANCELUPDATE needs at least one tag")
    return CancelUpdate(args.tag, tuple(astring(token) for token in args.tokens))


def parse_notify(args: Any) -> Command:
    tokens = list(args.tokens)
    word = bytes(tokens.pop(0)).upper() if tokens and isinstance(tokens[0], Atom) else b""
    if word == b"NONE" and not tokens:
        return Notify(args.tag, None)
    if word != b"SET":
        raise ParseError("NOTIFY takes NONE or SET")
    status = False
    if tokens and isinstance(tokens[0], Atom) and tokens[0].upper() == b"STATUS":
        status = True
        tokens.pop(0)
    if not tokens:
        raise ParseError("NOTIFY SET needs at least one event group")
    groups = tuple(_notify_group(token) for token in tokens)
    return Notify(args.tag, groups, status)


def _notify_group(token: Token) -> NotifyGroup:
    if not isinstance(token, list) or len(token) < 2:
        raise ParseError("a NOTIFY event group is (filter events)")
    items = list(token)
    word = bytes(items.pop(0)).upper() if isinstance(items[0], Atom) else b""
    if word not in NOTIFY_FILTERS:
        raise ParseError("unknown NOTIFY filter")
    mailboxes: tuple[bytes, ...] = ()
    if word in (b"SUBTREE", b"MAILBOXES"):
        names = items.pop(0) if items else None
        names_list = names if isinstance(names, list) else [names] if names is not None else []
        if not names_list:
            raise ParseError("SUBTREE and MAILBOXES need mailbox names")
        mailboxes = tuple(astring(name) for name in names_list)
    if len(items) != 1:
        raise ParseError("a NOTIFY event group needs one list of events or NONE")
    events = items[0]
    if isinstance(events, Atom) and events.upper() == b"NONE":
        return NotifyGroup(word, mailboxes, ())
    if not isinstance(events, list) or not events:
        raise ParseError("NOTIFY events are a parenthesised list")
    names = tuple(bytes(e).upper() if isinstance(e, Atom) else b"" for e in events)
    if not all(name in NOTIFY_EVENTS for name in names):
        raise ParseError("unknown NOTIFY event")
    return NotifyGroup(word, mailboxes, names)


#: command name -> (parse function, has a UID form, capability that enables it)
PARSERS: dict[bytes, tuple[Callable[[Any], Command], bool, str]] = {
    b"SORT": (parse_sort, True, "SORT"),
    b"THREAD": (parse_thread, True, "THREAD=REFERENCES"),
    b"CANCELUPDATE": (parse_cancelupdate, False, "CONTEXT=SEARCH"),
    b"NOTIFY": (parse_notify, False, "NOTIFY"),
}
