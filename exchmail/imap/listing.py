"""LIST/LSUB name matching (RFC 3501 6.3.8), pure."""

from __future__ import annotations

import re
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


def pattern_regex(pattern: str, case_insensitive: bool = False) -> re.Pattern[str]:
    """``*`` matches anything, ``%`` anything but the delimiter; INBOX matches in any case
    (every name does with ``case_insensitive``)."""
    out = []
    for char in pattern:
        if char == "*":
            out.append(".*")
        elif char == "%":
            out.append("[^" + re.escape(DELIMITER) + "]*")
        else:
            out.append(re.escape(char))
    body = "".join(out)
    if pattern[:5].upper() == "INBOX" and (len(pattern) == 5 or pattern[5] in (DELIMITER, "*", "%")):
        body = "(?i:INBOX)" + "".join(out[5:])
    return re.compile("^" + body + "$", re.S | (re.IGNORECASE if case_insensitive else 0))


def list_entries(existing: Iterable[str], pattern: str, children: bool = True,
                 case_insensitive: bool = False,
                 marked: Callable[[str], bool] | None = None) -> list[tuple[str, list[bytes]]]:
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
    regex = pattern_regex(pattern, case_insensitive)
    result = []
    for name in sorted(candidates, key=lambda n: (n != names.INBOX, n)):
        if not regex.match(name):
            continue
        attributes = [] if name in exists else [b"\\Noselect"]
        if marked is not None and name in exists and marked(name):
            attributes.append(b"\\Marked")
        if children:
            attributes.append(b"\\HasChildren" if name in has_children else b"\\HasNoChildren")
        result.append((name, attributes))
    return result


def lsub_entries(subscribed: Iterable[str], existing: Iterable[str], pattern: str,
                 noselect_parents: bool = False,
                 case_insensitive: bool = False) -> list[tuple[str, list[bytes]]]:
    """``(name, attributes)`` for subscribed names matching ``pattern``.

    A subscribed name that does not exist is ``\\Noselect``.  With
    ``noselect_parents`` (RFC 3501 6.3.9; Exchange omits them, MS-STANXIMAP
    2.1.4) an unsubscribed superior of a subscribed name that ``%`` matches
    is returned too, flagged ``\\Noselect``.
    """
    exists, chosen = set(existing), set(subscribed)
    regex = pattern_regex(pattern, case_insensitive)
    entries = {name: [] if name in exists else [b"\\Noselect"]
               for name in chosen if regex.match(name)}
    if noselect_parents:
        # Only for a superior whose subscribed inferiors the pattern does not
        # reach itself ('%'): with '*' the inferiors are listed instead.
        for name in chosen - set(entries):
            for parent in names.parents(name):
                if parent not in entries and parent not in chosen and regex.match(parent):
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
