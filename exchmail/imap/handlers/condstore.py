"""CONDSTORE and QRESYNC (RFC 7162) in the session: what SELECT, FETCH,
STORE and ENABLE add.

A session has CONDSTORE on once the client used a CONDSTORE-enabling
command (ENABLE CONDSTORE or QRESYNC, SELECT/EXAMINE (CONDSTORE), FETCH
MODSEQ or CHANGEDSINCE, STORE UNCHANGEDSINCE, SEARCH MODSEQ, STATUS
HIGHESTMODSEQ; §3.1); from then on flag changes carry MODSEQ.  A mailbox
whose store does not provide :class:`~exchmail.interfaces.IModSeq` is
selected with ``OK [NOMODSEQ]``, and the commands that need MODSEQs are
refused there with BAD (§3.1.2).

Expunged UIDs come from the store's bounded memory
(``IModSeq.expunged_since``); when it does not reach back far enough, every
UID the client asked about that no longer exists is reported as VANISHED,
which §3.2.5.1 allows (the client ignores UIDs it does not know).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from exchmail.imap import commands as syntax
from exchmail.imap.handlers.messages import compact_uid_set as compact_set
from exchmail.imap.parsing import SequenceSet
from exchmail.imap.responses import CommandBad
from exchmail.interfaces import IModSeq

if TYPE_CHECKING:
    from exchmail.imap.session import IMAPSession

#: The most VANISHED UIDs reported for a ``known-uids`` range when the store
#: forgot expunges that old: larger ranges are cut to the UIDs below UIDNEXT.
MAX_RANGE = 10_000_000


def enable_condstore(session: IMAPSession) -> None:
    """Switch CONDSTORE on; while a mailbox is selected, tell its HIGHESTMODSEQ
    (RFC 7162 §3.1: the first CONDSTORE-enabling command in the selected state)."""
    if session.condstore:
        return
    session.enabled.add(b"CONDSTORE")
    if session.view is not None:
        session.untagged(highest_modseq_line(session.view.mailbox))


def highest_modseq_line(mailbox: Any) -> bytes:
    if IModSeq.providedBy(mailbox):
        return b"OK [HIGHESTMODSEQ %d] Highest" % IModSeq(mailbox).highest_modseq()
    return b"OK [NOMODSEQ] No permanent modsequences"


def modseq_mailbox(session: IMAPSession) -> Any:
    """The selected mailbox as IModSeq (CONDSTORE switched on); BAD for NOMODSEQ."""
    enable_condstore(session)
    mailbox = session.selected_view().mailbox
    if not IModSeq.providedBy(mailbox):
        raise CommandBad(b"[NOMODSEQ] This mailbox keeps no modsequences")
    return IModSeq(mailbox)


# -- SELECT / EXAMINE ------------------------------------------------------------------------
def check_select(command: syntax.Select, session: IMAPSession) -> None:
    """Before the mailbox is opened: QRESYNC needs ENABLE QRESYNC (§3.2.5)."""
    if command.qresync is not None and not session.qresync:
        raise CommandBad(b"QRESYNC parameter without ENABLE QRESYNC")
    if command.condstore:  # before the view is made: it reports others' flag changes
        session.enabled.add(b"CONDSTORE")


def after_select(command: syntax.Select, session: IMAPSession, mailbox: Any) -> None:
    """The untagged responses CONDSTORE/QRESYNC add to SELECT/EXAMINE."""
    if not session.condstore:
        return
    session.untagged(highest_modseq_line(mailbox))
    resync = command.qresync
    if resync is None or resync.uid_validity != mailbox.uid_validity:
        return  # a changed UIDVALIDITY: the client must resynchronise in full
    uid_next = mailbox.uid_next
    if not IModSeq.providedBy(mailbox):
        return
    view = session.selected_view()
    known = resync.known_uids
    vanished = vanished_since(IModSeq(mailbox), view.known_uids(), resync.modseq, known, uid_next)
    if vanished:
        session.untagged(b"VANISHED (EARLIER) " + compact_set(vanished))
    changed_fetches(session, resync.modseq, known)


def changed_fetches(session: IMAPSession, modseq: int, known: SequenceSet | None) -> None:
    """``* n FETCH (UID FLAGS MODSEQ)`` for the messages changed after ``modseq``."""
    view = session.selected_view()
    ranges = known.ranges if known is not None else ((1, None),)
    pairs = view.resolve(ranges, by_uid=True)
    modseqs = dict(IModSeq(view.mailbox).modseqs([uid for _, uid in pairs]))
    for seq, uid in pairs:
        value = modseqs.get(uid, 0)
        if value > modseq:
            flags = view.flags_of(uid)
            if flags is not None:
                session.untagged(
                    b"%d FETCH (UID %d FLAGS %s MODSEQ (%d))"
                    % (seq, uid, session.flags_for_client(flags), value)
                )


def vanished_since(
    box: Any, present: Sequence[int], modseq: int, within: SequenceSet | None, uid_next: int
) -> list[int]:
    """The UIDs expunged after ``modseq`` (within the UID set ``within``)."""
    ranges = within.resolve(max(uid_next - 1, 1)) if within is not None else None
    remembered = box.expunged_since(modseq)
    if remembered is not None:
        if ranges is None:
            return list(remembered)
        return [uid for uid in remembered if any(low <= uid <= high for low, high in ranges)]
    # Forgotten: every UID asked about (or below UIDNEXT) that does not exist now.
    exists = set(present)
    out: list[int] = []
    for low, high in ranges or [(1, uid_next - 1)]:
        high = min(high, uid_next - 1, low + MAX_RANGE)
        out.extend(uid for uid in range(low, high + 1) if uid not in exists)
    return sorted(set(out))


# -- FETCH (CHANGEDSINCE n [VANISHED]) -------------------------------------------------------
def fetch_changed(
    command: syntax.Fetch, session: IMAPSession, pairs: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The messages of a FETCH with CHANGEDSINCE; VANISHED (EARLIER) first."""
    box = modseq_mailbox(session)
    modseq = command.changed_since or 0
    if command.vanished:
        if not session.qresync:
            raise CommandBad(b"VANISHED needs ENABLE QRESYNC")
        view = session.selected_view()
        gone = vanished_since(box, view.known_uids(), modseq, command.sequence_set, view.mailbox.uid_next)
        if gone:
            session.untagged(b"VANISHED (EARLIER) " + compact_set(gone))
    modseqs = dict(box.modseqs([uid for _, uid in pairs]))
    return [(seq, uid) for seq, uid in pairs if modseqs.get(uid, 0) > modseq]
