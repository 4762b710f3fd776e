"""Search results as the client asked for them: plain ``* SEARCH`` (RFC 3501),
``* ESEARCH`` (RFC 4731, also for SORT's RETURN: RFC 5267 ESORT), the
saved result of SEARCHRES (RFC 5182), PARTIAL (RFC 5267) and the MODSEQ of
CONDSTORE searches (RFC 7162 §3.1.5).

The SEARCH keys that need the session or the store's MODSEQs (``$`` and
``MODSEQ``) are resolved to UID sets first (:func:`resolve_keys`), so the
search program itself stays pure.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from itertools import compress, islice
from typing import TYPE_CHECKING

from exchmail.imap.commands_types import SearchReturn
from exchmail.imap.handlers.condstore import modseq_mailbox
from exchmail.imap.handlers.messages import compact_uid_set
from exchmail.imap.responses import CommandBad
from exchmail.imap.searchkeys import And, ModSeq, Not, Or, SavedResult, SearchKey, UidSet

if TYPE_CHECKING:
    from exchmail.imap.session import IMAPSession


def resolve_keys(session: IMAPSession, key: SearchKey) -> tuple[SearchKey, bool]:
    """``key`` with ``$`` and ``MODSEQ n`` replaced by UID sets; whether MODSEQ was used."""
    used = [False]

    def walk(node: SearchKey) -> SearchKey:
        if isinstance(node, And):
            return And(tuple(walk(k) for k in node.keys))
        if isinstance(node, Or):
            return Or(walk(node.left), walk(node.right))
        if isinstance(node, Not):
            return Not(walk(node.key))
        if isinstance(node, SavedResult):
            return UidSet(frozenset(session.saved_result))
        if isinstance(node, ModSeq):
            used[0] = True
            box = modseq_mailbox(session)
            uids = session.selected_view().known_uids()
            return UidSet(frozenset(uid for uid, m in box.modseqs(uids) if m >= node.value))
        return node

    return walk(key), used[0]


def highest_of(session: IMAPSession, uids: Sequence[int]) -> int:
    """The largest MODSEQ among ``uids`` (0 if none)."""
    box = modseq_mailbox(session)
    return max((m for _, m in box.modseqs(sorted(set(uids)))), default=0)


def saved_set_uids(session: IMAPSession) -> list[int]:
    """``$`` as a message set: the saved UIDs that still exist, ascending."""
    if not session.context.profile.imap.searchres:
        raise CommandBad(b"'$' needs SEARCHRES")
    view = session.selected_view()
    return [uid for uid in session.saved_result if view.seq_of(uid) is not None]


def numbers(session: IMAPSession, uids: Sequence[int], by_uid: bool) -> list[int]:
    """``uids`` as UIDs or as the sequence numbers the client knows."""
    if by_uid:
        return list(uids)
    view = session.selected_view()
    known = view.known_uids()
    if len(uids) == len(known) and all(map(operator.eq, uids, known)):
        return list(range(1, len(known) + 1))  # every message matched
    if len(uids) > 64 and all(map(operator.lt, uids, islice(uids, 1, None))):
        # Ascending (as SEARCH answers): one pass over the known UIDs in C
        # instead of a bisection per UID.
        wanted = set(uids)
        seqs = list(compress(range(1, len(known) + 1), map(wanted.__contains__, known)))
        if len(seqs) == len(uids):
            return seqs
    return [seq for seq in (view.seq_of(uid) for uid in uids) if seq is not None]


def ordered_set(values: Sequence[int]) -> bytes:
    """A sequence set keeping the order of ``values`` (ascending runs joined)."""
    return compact_uid_set(values) if values else b""


def answer(
    session: IMAPSession,
    tag: bytes,
    by_uid: bool,
    returns: SearchReturn | None,
    uids: Sequence[int],
    modseq_used: bool,
    kind: bytes = b"SEARCH",
) -> None:
    """Write the result of SEARCH (or SORT, ``kind``) for ``uids`` (in result order)."""
    if returns is None and not (session.rev2 and kind == b"SEARCH"):
        found = numbers(session, uids, by_uid)
        text = kind + (" " + " ".join(map(str, found)) if found else "").encode("ascii")
        if modseq_used and found:
            text += b" (MODSEQ %d)" % highest_of(session, uids)
        session.untagged(text)
        return
    options = returns.options if returns is not None else frozenset()
    if b"SAVE" in options:
        save(session, options, uids)
    if (
        options - {b"SAVE", b"UPDATE", b"CONTEXT"} == set()
        and b"SAVE" in options
        and returns is not None
        and returns.partial is None
    ):
        return  # RFC 5182 §2.1: SAVE alone answers no ESEARCH
    session.untagged(esearch_line(session, tag, by_uid, returns, uids, modseq_used))


def save(session: IMAPSession, options: frozenset[bytes], uids: Sequence[int]) -> None:
    """RFC 5182 §2.1: SAVE with MIN/MAX alone keeps just those messages."""
    if not uids or b"ALL" in options or b"COUNT" in options or not options & {b"MIN", b"MAX"}:
        session.saved_result = sorted(uids)
        return
    kept = set()
    if b"MIN" in options:
        kept.add(min(uids))
    if b"MAX" in options:
        kept.add(max(uids))
    session.saved_result = sorted(kept)


def esearch_line(
    session: IMAPSession,
    tag: bytes,
    by_uid: bool,
    returns: SearchReturn | None,
    uids: Sequence[int],
    modseq_used: bool,
) -> bytes:
    """``ESEARCH (TAG "t") [UID] [MIN n] [MAX n] [ALL set] [PARTIAL (r set)] [COUNT n] [MODSEQ m]``."""
    options = returns.options if returns is not None else frozenset()
    partial = returns.partial if returns is not None else None
    if not options - {b"SAVE", b"UPDATE", b"CONTEXT"} and partial is None:
        options = options | {b"ALL"}  # RETURN () means ALL (RFC 4731 §3.1)
    if (
        b"UPDATE" in options
        and options <= {b"UPDATE", b"CONTEXT", b"ALL"}
        and returns is not None
        and not returns.options - {b"UPDATE", b"CONTEXT"}
    ):
        options = options - {b"ALL"}  # UPDATE alone: no result data (RFC 5267 §4.2)
    found = numbers(session, uids, by_uid)
    text = b'ESEARCH (TAG "%s")' % tag + (b" UID" if by_uid else b"")
    reported: list[int] = []
    if found:
        if b"MIN" in options:
            text += b" MIN %d" % min(found)
            reported.append(min(found))
        if b"MAX" in options:
            text += b" MAX %d" % max(found)
            reported.append(max(found))
        if b"ALL" in options:
            text += b" ALL " + ordered_set(found)
            reported = found
    if partial is not None:
        low, high = partial
        window = found[low - 1 : high]
        text += b" PARTIAL (%d:%d %s)" % (low, high, ordered_set(window) if window else b"NIL")
        reported = reported + window
    if b"COUNT" in options:
        text += b" COUNT %d" % len(found)
        reported = found
    if modseq_used and reported:
        to_uid = dict(zip(found, uids, strict=False))
        chosen = reported if by_uid else [to_uid[n] for n in reported]
        text += b" MODSEQ %d" % highest_of(session, chosen)
    return text
