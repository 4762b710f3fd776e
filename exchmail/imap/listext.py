"""LIST with references and the extended LIST of RFC 5258, pure.

:func:`join_reference` applies the profile's rule for a reference that
does not end with the delimiter (MS-STANXIMAP V0029); :func:`select_entries`
answers a LIST in full: several patterns, the selection options
SUBSCRIBED, REMOTE, RECURSIVEMATCH and SPECIAL-USE (RFC 6154 section 5.1),
and the attributes the return options ask for.  Name matching itself is
:class:`exchmail.imap.listing.Pattern`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from exchmail.imap.listing import DELIMITER, Pattern
from exchmail.profile.settings import ListReference
from exchmail.store import names


def join_reference(reference: str, pattern: str, rule: ListReference) -> str | None:
    """The pattern to match for ``LIST reference pattern``, or None for no results.

    A reference ending with the delimiter is a hierarchy level in every
    profile; otherwise ``rule`` decides: nothing (Exchange), a level
    (``a`` + ``%`` is ``a/%``) or plain concatenation (``a`` + ``*`` is
    ``a*``, as Dovecot and Cyrus do, so the reference itself is listed too).
    """
    if not reference:
        return pattern
    if reference.endswith(DELIMITER):
        return reference + pattern[1:] if pattern.startswith(DELIMITER) else reference + pattern
    if rule is ListReference.NO_RESULTS:
        return None
    if rule is ListReference.CONCATENATE:
        return reference + pattern
    if pattern.startswith(DELIMITER):
        return reference + pattern
    return reference + DELIMITER + pattern


@dataclass(frozen=True)
class Query:
    """What one LIST asks for.

    :ivar patterns: full patterns (references applied), matched as a union.
    :ivar subscribed_only: the SUBSCRIBED selection option.
    :ivar special_only: the SPECIAL-USE selection option.
    :ivar recursive: RECURSIVEMATCH.
    :ivar show_subscribed: return ``\\Subscribed`` (selection or return option).
    :ivar children: return ``\\HasChildren``/``\\HasNoChildren``.
    :ivar case_insensitive: names match without regard to case (V0008).
    """

    patterns: tuple[str, ...]
    subscribed_only: bool = False
    special_only: bool = False
    recursive: bool = False
    show_subscribed: bool = False
    children: bool = False
    case_insensitive: bool = False
    special: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    """One LIST response: the name, its attributes and the CHILDINFO data."""

    name: str
    attributes: tuple[bytes, ...]
    childinfo: bool = False
    selectable: bool = True


def select_entries(
    query: Query,
    existing: Iterable[str],
    subscribed: Iterable[str],
    marked: Callable[[str], bool] | None = None,
) -> list[Entry]:
    """The LIST responses for ``query`` over the ``existing`` and ``subscribed`` names.

    Names that only exist as superiors of existing mailboxes are
    ``\\Noselect``; subscribed names that do not exist at all are
    ``\\NonExistent`` (RFC 5258 section 3.4).  With RECURSIVEMATCH, a name
    matching a pattern but not the selection criteria is returned, with
    ``CHILDINFO ("SUBSCRIBED")``, when one of its descendants meets the
    criteria without being matched by a pattern itself (section 3.5).
    """
    exists = set(existing)
    chosen = set(subscribed)
    hierarchy = set(exists)
    for name in exists:
        hierarchy.update(names.parents(name))
    candidates = set(hierarchy)
    if query.subscribed_only:
        candidates |= chosen
        for name in chosen:
            candidates.update(names.parents(name))
    has_children = {parent for name in hierarchy for parent in names.parents(name)}
    matchers = [Pattern(p, query.case_insensitive) for p in query.patterns]

    def matches(name: str) -> bool:
        return any(m.match(name) for m in matchers)

    def meets(name: str) -> bool:
        if query.subscribed_only and name not in chosen:
            return False
        if query.special_only and not query.special.get(name):
            return False
        return name in hierarchy or name in chosen

    childinfo: set[str] = set()
    if query.recursive:
        for name in candidates:
            if meets(name) and not matches(name):
                childinfo.update(names.parents(name))
    out = []
    for name in sorted(candidates, key=lambda n: (n != names.INBOX, n)):
        if not matches(name):
            continue
        info = name in childinfo
        if not meets(name) and not info:
            continue
        out.append(_entry(name, query, exists, hierarchy, chosen, has_children, info, marked))
    return out


def _entry(
    name: str,
    query: Query,
    exists: set[str],
    hierarchy: set[str],
    chosen: set[str],
    has_children: set[str],
    info: bool,
    marked: Callable[[str], bool] | None,
) -> Entry:
    attributes: list[bytes] = []
    selectable = name in exists
    if name not in hierarchy:
        attributes.append(b"\\NonExistent")  # implies \Noselect (RFC 5258 section 3)
    elif not selectable:
        attributes.append(b"\\Noselect")
    if selectable and marked is not None and marked(name):
        attributes.append(b"\\Marked")
    if query.show_subscribed and name in chosen:
        attributes.append(b"\\Subscribed")
    if query.children and name in hierarchy:
        attributes.append(b"\\HasChildren" if name in has_children else b"\\HasNoChildren")
    attributes.extend(use.encode("ascii") for use in sorted(query.special.get(name, ())))
    return Entry(name, tuple(attributes), info, selectable)
