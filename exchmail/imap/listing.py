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

    A regular expression would backtrack: ``*a*a*a*a*b`` against a name of
    200 ``a`` took 25 s.  Instead, a pattern with ``*`` only is matched
    greedily, leftmost occurrence first, which is exact for ``*``; one
    with ``%`` only, level by level (``%`` never crosses a delimiter, so
    both must have as many levels); one with both, after the same cheap
    checks, by an automaton (:class:`_Automaton`).  Each is linear in the
    name for a given pattern.
    """

    __slots__ = ("_fold", "_inbox", "_chunks", "_levels", "_automaton")

    def __init__(self, pattern: str, case_insensitive: bool = False) -> None:
        self._fold = case_insensitive
        self._inbox = not case_insensitive and _starts_with_inbox(pattern)
        text = "".join(_collapse(self._normalise(pattern)))
        self._chunks = text.replace("%", "*").split("*")
        self._levels: list[list[str]] | None = None
        self._automaton: _Automaton | None = None
        if "%" in text and "*" not in text:
            self._levels = [level.replace("%", "*").split("*") for level in text.split(DELIMITER)]
        elif "%" in text:
            self._automaton = _Automaton(text)

    def _normalise(self, text: str) -> str:
        """Case-folded text, or with a leading INBOX in upper case (see __init__)."""
        if self._fold:
            lower = text.lower()
            return lower if len(lower) == len(text) else "".join(map(_fold, text))
        if self._inbox and text[:5].upper() == "INBOX":
            return "INBOX" + text[5:]
        return text

    def match(self, name: str) -> bool:
        """Whether ``name`` matches the whole pattern."""
        name = self._normalise(name)
        if self._levels is not None:
            parts = name.split(DELIMITER)
            return len(parts) == len(self._levels) and all(
                _glob(chunks, part) for chunks, part in zip(self._levels, parts, strict=True)
            )
        # With '%' read as '*' the pattern matches more: a quick necessary test,
        # and the whole answer when the name has no delimiter for '%' to refuse.
        if not _glob(self._chunks, name):
            return False
        return self._automaton is None or DELIMITER not in name or self._automaton.match(name)


def _glob(chunks: list[str], name: str) -> bool:
    """Whether ``name`` is ``chunks`` joined by runs of any characters.

    Taking each middle chunk at its leftmost place is never wrong: a later
    place leaves less room for the chunks after it.
    """
    first, last = chunks[0], chunks[-1]
    if len(chunks) == 1:
        return name == first
    end = len(name) - len(last)
    if end < len(first) or not name.startswith(first) or not name.endswith(last):
        return False
    pos = len(first)
    for chunk in chunks[1:-1]:
        found = name.find(chunk, pos, end)
        if found < 0:
            return False
        pos = found + len(chunk)
    return True


class _Automaton:
    """A pattern with ``*`` and ``%`` as a nondeterministic automaton, one state
    per pattern position, run over the name as a bit set of live states:
    one step per character, whatever the pattern."""

    __slots__ = ("_literal", "_star", "_percent", "_wild", "_accept")

    def __init__(self, text: str) -> None:
        self._literal: dict[str, int] = {}
        self._star = self._percent = 0
        for index, char in enumerate(text):
            bit = 1 << index
            if char == "*":
                self._star |= bit
            elif char == "%":
                self._percent |= bit
            else:
                self._literal[char] = self._literal.get(char, 0) | bit
        self._wild = self._star | self._percent
        self._accept = 1 << len(text)

    def _closure(self, states: int) -> int:
        # A wildcard may match nothing; wildcards never follow each other
        # (see _collapse), so one step reaches every state.
        return states | ((states & self._wild) << 1)

    def match(self, name: str) -> bool:
        states = self._closure(1)
        literal, star, percent = self._literal, self._star, self._percent
        for char in name:
            moved = (states & literal.get(char, 0)) << 1
            stay = states & (star if char == DELIMITER else star | percent)
            states = self._closure(moved | stay)
            if not states:
                return False
        return bool(states & self._accept)


def _collapse(pattern: str) -> list[str]:
    """The pattern's characters with each run of wildcards reduced to one:
    ``*`` if the run holds a ``*`` (it matches what ``%`` would), else ``%``."""
    out: list[str] = []
    for char in pattern:
        if char in "*%" and out and out[-1] in "*%":
            if char == "*":
                out[-1] = "*"
            continue
        out.append(char)
    return out


def _starts_with_inbox(pattern: str) -> bool:
    """Whether the pattern starts with INBOX (any case) as a whole level."""
    return pattern[:5].upper() == "INBOX" and (len(pattern) == 5 or pattern[5] in (DELIMITER, "*", "%"))


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
