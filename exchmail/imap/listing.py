"""LIST/LSUB name matching (RFC 3501 6.3.8), pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from exchmail.store import names

DELIMITER = names.DELIMITER


def full_pattern(reference: str, pattern: str) -> str:
    """Join a LIST reference and pattern (RFC 3501 6.3.8: the reference is a prefix)."""
    if not reference:
        return pattern
    if reference.endswith(DELIMITER) or pattern.startswith(DELIMITER):
        return reference + pattern
    return reference + DELIMITER + pattern


class Pattern:
    """A compiled LIST/LSUB pattern (RFC 3501 6.3.8), matched without backtracking.

    ``*`` matches any run of characters, ``%`` any run without the
    hierarchy delimiter.  ``INBOX`` at the start of the pattern matches in
    any case (every character does with ``case_insensitive``).

    The pattern is a small automaton (one state per pattern position) run
    over the name as a bit set of live states, so a match costs one step
    per character of the name whatever the pattern: no input can make it
    exponential, as a backtracking regular expression can be.
    """

    __slots__ = ("_literal", "_star", "_percent", "_wild", "_accept", "_fold")

    def __init__(self, pattern: str, case_insensitive: bool = False) -> None:
        elements = _collapse(pattern)
        inbox = _inbox_prefix(pattern)
        self._fold = case_insensitive
        self._literal: dict[str, int] = {}
        self._star = self._percent = 0
        for index, char in enumerate(elements):
            bit = 1 << index
            if char == _STAR:
                self._star |= bit
            elif char == _PERCENT:
                self._percent |= bit
            elif case_insensitive:
                self._add(_fold(char), bit)
            elif index < inbox:
                self._add(char.lower(), bit)
                self._add(char.upper(), bit)
            else:
                self._add(char, bit)
        self._wild = self._star | self._percent
        self._accept = 1 << len(elements)

    def _add(self, char: str, bit: int) -> None:
        self._literal[char] = self._literal.get(char, 0) | bit

    def _closure(self, states: int) -> int:
        # A wildcard may match nothing; wildcards never follow each other
        # (see _collapse), so one step reaches every state.
        return states | ((states & self._wild) << 1)

    def match(self, name: str) -> bool:
        """Whether ``name`` matches the whole pattern."""
        states = self._closure(1)
        literal, star, percent = self._literal, self._star, self._percent
        for char in name:
            key = _fold(char) if self._fold else char
            moved = (states & literal.get(key, 0)) << 1
            stay = states & (star if char == DELIMITER else star | percent)
            states = self._closure(moved | stay)
            if not states:
                return False
        return bool(states & self._accept)


# Markers for the wildcards in a collapsed pattern (never equal to a character).
_STAR, _PERCENT = "*", "%"


def _collapse(pattern: str) -> list[str]:
    """The pattern's characters with each run of wildcards reduced to one:
    ``*`` if the run holds a ``*`` (it matches what ``%`` would), else ``%``."""
    out: list[str] = []
    for char in pattern:
        if char in "*%" and out and out[-1] in "*%":
            if char == "*":
                out[-1] = _STAR
            continue
        out.append(char)
    return out


def _inbox_prefix(pattern: str) -> int:
    """5 if the pattern starts with INBOX (any case) as a whole level, else 0."""
    if pattern[:5].upper() == "INBOX" and (len(pattern) == 5 or pattern[5] in (DELIMITER, "*", "%")):
        return 5
    return 0


def _fold(char: str) -> str:
    """``char`` in lower case, kept as one character so positions stay aligned."""
    lower = char.lower()
    return lower if len(lower) == 1 else char


def list_entries(
    existing: Iterable[str],
    pattern: str,
    children: bool = True,
    case_insensitive: bool = False,
    marked: Callable[[str], bool] | None = None,
) -> list[tuple[str, list[bytes]]]:
    """``(name, attributes)`` for every name matching ``pattern``.

    Superiors of existing mailboxes that do not exist themselves are
    listed with ``\\Noselect`` when the pattern matches them, as RFC 3501
    requires for ``%``.  With ``children``, CHILDREN attributes (RFC 3348)
    are included; with ``case_insensitive``, names match in any case;
    ``marked`` tells which mailboxes get ``\\Marked``.
    """
    exists = set(existing)
    candidates = set(exists)
    for name in exists:
        candidates.update(names.parents(name))
    has_children = {parent for name in candidates for parent in names.parents(name)}
    matcher = Pattern(pattern, case_insensitive)
    result = []
    for name in sorted(candidates, key=lambda n: (n != names.INBOX, n)):
        if not matcher.match(name):
            continue
        attributes = [] if name in exists else [b"\\Noselect"]
        if marked is not None and name in exists and marked(name):
            attributes.append(b"\\Marked")
        if children:
            attributes.append(b"\\HasChildren" if name in has_children else b"\\HasNoChildren")
        result.append((name, attributes))
    return result


def lsub_entries(
    subscribed: Iterable[str],
    existing: Iterable[str],
    pattern: str,
    noselect_parents: bool = False,
    case_insensitive: bool = False,
) -> list[tuple[str, list[bytes]]]:
    """``(name, attributes)`` for subscribed names matching ``pattern``.

    A subscribed name that does not exist is ``\\Noselect``.  With
    ``noselect_parents`` (RFC 3501 6.3.9; Exchange omits them, MS-STANXIMAP
    2.1.4) an unsubscribed superior of a subscribed name that ``%`` matches
    is returned too, flagged ``\\Noselect``.
    """
    exists, chosen = set(existing), set(subscribed)
    matcher = Pattern(pattern, case_insensitive)
    entries = {name: [] if name in exists else [b"\\Noselect"] for name in chosen if matcher.match(name)}
    if noselect_parents:
        # Only for a superior whose subscribed inferiors the pattern does not
        # reach itself ('%'): with '*' the inferiors are listed instead.
        for name in chosen - set(entries):
            for parent in names.parents(name):
                if parent not in entries and parent not in chosen and matcher.match(parent):
                    entries[parent] = [b"\\Noselect"]
    return sorted(entries.items())


def canonical_name(name: str, existing: Iterable[str]) -> str:
    """``name`` spelled as the existing mailboxes spell it, ignoring case (V0008).

    Each hierarchy level that matches an existing mailbox (or superior)
    without regard to case takes that spelling; the rest is kept as given.
    """
    known: dict[str, str] = {}
    for candidate in existing:
        for level in [*names.parents(candidate), candidate]:
            known.setdefault(level.casefold(), level)
    resolved: list[str] = []
    for part in name.split(DELIMITER):
        prefix = DELIMITER.join([*resolved, part])
        match = known.get(prefix.casefold())
        resolved.append(match.rsplit(DELIMITER, 1)[-1] if match else part)
    return DELIMITER.join(resolved)


def has_wildcards(name: str) -> bool:
    """Whether a mailbox name contains a LIST wildcard (``*`` or ``%``)."""
    return "*" in name or "%" in name
