"""One session's view of its selected mailbox.

The store's mailbox index is shared by all sessions; what is per session
is only what RFC 3501 makes per session: which messages the client has
been told about (sequence numbers stay stable until EXPUNGE responses are
sent), which are \\Recent for it, which flag changes by others it has not
heard of yet, and which keywords it has been told exist.  The UID list
itself is the store's copy-on-write sequence, so a view holds a
reference, never a copy.

The view is protocol-neutral: :meth:`MailboxView.updates` says what
changed as plain values and the protocol renders them.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from typing import TYPE_CHECKING

from zope.interface import implementer

from exchmail.interfaces import IIndexScan, IMailboxListener, IndexColumns, IStoreMailbox

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

RECENT = "\\Recent"

#: ``(seq, uid, flags, internal_date, stored_size, exact_size)`` of one message.
IndexRow = tuple[int, int, frozenset[str], float, int, int]
#: A sequence set as ranges of (low, high); ``None`` stands for ``*``.
Ranges = Iterable[tuple[int | None, int | None]]


@dataclass(frozen=True)
class Updates:
    """What a client must be told to catch up (in this order).

    :ivar expunged: sequence numbers of EXPUNGE responses, each valid when
        sent (descending order makes every one valid).
    :ivar exists: the new message count, or None if unchanged.
    :ivar recent: the new \\Recent count (with ``exists``).
    :ivar flags: ``(seq, uid, flags)`` of messages whose flags others changed.
    :ivar expunged_uids: the UIDs of ``expunged``, ascending (QRESYNC's VANISHED).
    """

    expunged: tuple[int, ...] = ()
    exists: int | None = None
    recent: int = 0
    flags: tuple[tuple[int, int, frozenset[str]], ...] = ()
    expunged_uids: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.expunged or self.exists is not None or self.flags)


class RecentUids:
    """The UIDs that are \\Recent for one session, ascending, 8 octets each
    (the first SELECT of a new 100,000-message mailbox makes them all recent)."""

    __slots__ = ("_uids",)

    def __init__(self, uids: Iterable[int] = ()) -> None:
        self._uids = array("Q", sorted(uids))

    def __len__(self) -> int:
        return len(self._uids)

    def __contains__(self, uid: int) -> bool:
        uids = self._uids
        index = bisect_left(uids, uid)
        return index < len(uids) and uids[index] == uid

    def update(self, uids: Iterable[int]) -> None:
        """Add ``uids`` (claims bring UIDs above all others: appended)."""
        new = sorted(uids)
        if not new:
            return
        if not self._uids or new[0] > self._uids[-1]:
            self._uids.extend(new)
        else:  # an EXAMINE session sees the unclaimed ones again
            self._uids = array("Q", sorted(set(self._uids).union(new)))

    def discard_all(self, uids: Iterable[int]) -> None:
        """Forget ``uids`` (expunged)."""
        gone = set(uids)
        if gone.intersection(self._uids):
            self._uids = array("Q", (uid for uid in self._uids if uid not in gone))

    def marks(self, uids: Sequence[int]) -> Iterable[bool]:
        """Whether each of ``uids`` (ascending) is recent, in C where the recent
        UIDs are the last of them (a new mailbox, or new mail)."""
        count, recent = len(uids), self._uids
        if not recent:
            return repeat(False, count)
        first = count - len(recent)
        if first >= 0 and array("Q", uids[first:]) == recent:  # compared in C
            return chain(repeat(False, first), repeat(True, len(recent)))
        return map(set(recent).__contains__, uids)


@implementer(IMailboxListener)
class MailboxView:
    """Sequence numbering, \\Recent and pending updates for one session.

    :param on_change: called (on the reactor thread) when the store reports
        a change this session may want to tell its client about at once.
    :param notify_external_flags: whether other sessions' flag changes
        become pending updates (MS-STANXIMAP V0044).
    :param details_known: for a mailbox opened early
        (:meth:`~exchmail.interfaces.IEarlyOpen.mailbox_early`), the function
        that says whether its dates and sizes are known yet.
    """

    def __init__(
        self,
        mailbox: IStoreMailbox,
        readonly: bool,
        on_change: Callable[[], None] = lambda: None,
        notify_external_flags: bool = True,
        details_known: Callable[[], Deferred[None] | None] | None = None,
    ) -> None:
        self.mailbox = mailbox
        self._details_known = details_known
        self.readonly = readonly
        self.notify_external_flags = notify_external_flags
        self._on_change = on_change
        self._uids: Sequence[int] = mailbox.uids()
        self.exists = len(self._uids)
        # RFC 3501 §2.3.2: a read-only session sees \Recent without claiming it.
        self.recent = RecentUids(unclaimed_recent(mailbox) if readonly else mailbox.claim_recent())
        self._pending_flags: set[int] = set()
        self._expunges_pending = False
        mailbox.add_listener(self)

    def close(self) -> None:
        """Stop listening to the mailbox."""
        self.mailbox.remove_listener(self)

    def details_known(self) -> Deferred[None] | None:
        """``None`` if the index knows every message's internal date and
        sizes; otherwise a Deferred that fires when it does (wait for it
        before reading them, or any content)."""
        if self._details_known is None:
            return None
        waiting = self._details_known()
        if waiting is None:
            self._details_known = None  # known for good
        return waiting

    # -- numbering -----------------------------------------------------
    def uid_at(self, seq: int) -> int:
        """The UID of 1-based sequence number ``seq``."""
        return self._uids[seq - 1]

    def seq_of(self, uid: int) -> int | None:
        """The sequence number of ``uid``, or ``None``."""
        index = bisect_left(self._uids, uid, 0, self.exists)
        if index < self.exists and self._uids[index] == uid:
            return index + 1
        return None

    @property
    def max_uid(self) -> int:
        """The largest UID the client knows of (0 for an empty mailbox)."""
        return self._uids[self.exists - 1] if self.exists else 0

    def known_uids(self) -> Sequence[int]:
        """The UIDs the client knows, in sequence order (do not mutate)."""
        uids = self._uids
        return uids if len(uids) == self.exists else uids[: self.exists]

    def index_rows(self, pairs: Sequence[tuple[int, int]] | None = None) -> Iterator[IndexRow]:
        """``(seq, uid, flags, internal_date, stored_size, exact_size)`` of the
        messages of ``pairs`` (``(seq, uid)``, ascending; default: all the
        client knows) that still exist, straight from the store's columns
        when it offers :class:`~exchmail.interfaces.IIndexScan`."""
        if pairs is None:
            pairs = list(enumerate(self.known_uids(), 1))
        mailbox = self.mailbox
        if not IIndexScan.providedBy(mailbox):
            for seq, uid in pairs:
                record = mailbox.message(uid)
                if record is not None:
                    yield (
                        seq,
                        uid,
                        record.flags,
                        record.internal_date,
                        record.stored_size,
                        record.exact_size,
                    )
            return
        known = iter(pairs)
        for row in IIndexScan(mailbox).scan([uid for _, uid in pairs]):
            for seq, uid in known:  # skip what the store no longer has
                if uid == row[0]:
                    yield (seq, *row)
                    break

    def columns(self, count: int | None = None) -> IndexColumns | None:
        """The index of the first ``count`` messages the client knows (default:
        all), column by column, if the store offers that and none of them is
        gone; ``None`` otherwise (then use :meth:`index_rows`)."""
        if not IIndexScan.providedBy(self.mailbox):
            return None
        known = self.known_uids()
        return IIndexScan(self.mailbox).columns(known if count is None else known[:count])

    def resolve(self, ranges: Ranges, by_uid: bool) -> list[tuple[int, int]]:
        """``(seq, uid)`` pairs a sequence set selects, ascending, no duplicates.

        UID ranges match the UIDs that exist; for message sets see
        :meth:`seqs_in_range` (numbers beyond the mailbox are an error there).
        """
        exists = self.exists
        uids = self._uids
        ordered = list(_ordered(ranges, self.max_uid if by_uid else exists))
        if len(ordered) == 1:  # the common case (1:*, one UID range): no set needed
            low, high = ordered[0]
            if by_uid:
                start, stop = bisect_left(uids, low, 0, exists), bisect_right(uids, high, 0, exists)
            else:
                start, stop = max(low, 1) - 1, min(high, exists)
            return [(index + 1, uids[index]) for index in range(start, stop)]
        selected: set[int] = set()
        if by_uid:
            largest = self.max_uid
            for low, high in _ordered(ranges, largest):
                start = bisect_left(uids, low, 0, exists)
                stop = bisect_right(uids, high, 0, exists)
                selected.update(range(start, stop))
        else:
            for low, high in _ordered(ranges, exists):
                selected.update(range(max(low, 1) - 1, min(high, exists)))
        return [(index + 1, uids[index]) for index in sorted(selected)]

    def seqs_in_range(self, ranges: Ranges) -> bool:
        """Whether every number of a message sequence set exists."""
        return all(low >= 1 and high <= self.exists for low, high in _ordered(ranges, self.exists))

    def flags_of(self, uid: int) -> frozenset[str] | None:
        """Current flags of ``uid`` including the session's ``\\Recent``."""
        record = self.mailbox.message(uid)
        if record is None:
            return None
        return self.with_recent(uid, record.flags)

    def with_recent(self, uid: int, flags: frozenset[str]) -> frozenset[str]:
        """``flags`` plus ``\\Recent`` if ``uid`` is recent for this session."""
        return flags | {RECENT} if uid in self.recent else flags

    # -- updates -------------------------------------------------------
    def updates(self, allow_expunge: bool) -> Updates:
        """What brings the client up to date.

        Expunges (and with them any renumbering, and any EXISTS) are held
        back when ``allow_expunge`` is false, as RFC 3501 §7.4.1 requires
        during FETCH, STORE and SEARCH.
        """
        current = self.mailbox.uids()
        expunged: tuple[int, ...] = ()
        gone_uids: tuple[int, ...] = ()
        if self._expunges_pending:
            if not allow_expunge:
                return Updates(flags=self._flag_updates())
            self._expunges_pending = False
            expunged, gone_uids = self._apply_expunges(current)
        else:
            # Only additions since the last look (the store says so through
            # messages_expunged otherwise): the known prefix is unchanged.
            self._uids = current
        exists = None
        if len(current) > self.exists:
            self.exists = len(current)
            if self.readonly:
                self.recent.update(unclaimed_recent(self.mailbox))
            else:
                self.recent.update(self.mailbox.claim_recent())
            exists = self.exists
        return Updates(expunged, exists, len(self.recent), self._flag_updates(), gone_uids)

    def _apply_expunges(self, current: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        still = set(current)
        gone, uids = [], []
        for index in range(self.exists - 1, -1, -1):
            uid = self._uids[index]
            if uid not in still:
                gone.append(index + 1)
                uids.append(uid)
                self._pending_flags.discard(uid)
        self.recent.discard_all(uids)
        last_known = self.max_uid
        self._uids = current
        self.exists = bisect_right(current, last_known)
        return tuple(gone), tuple(reversed(uids))

    def _flag_updates(self) -> tuple[tuple[int, int, frozenset[str]], ...]:
        out = []
        for uid in sorted(self._pending_flags):
            seq = self.seq_of(uid)
            flags = self.flags_of(uid)
            if seq is not None and flags is not None:
                out.append((seq, uid, flags))
        self._pending_flags.clear()
        return tuple(out)

    # -- IMailboxListener ----------------------------------------------
    def messages_added(self, mailbox: IStoreMailbox, uids: list[int]) -> None:
        self._on_change()

    def messages_expunged(self, mailbox: IStoreMailbox, uids: list[int]) -> None:
        self._expunges_pending = True
        self._on_change()

    def flags_changed(self, mailbox: IStoreMailbox, uids: list[int], origin: object) -> None:
        # V0044: whether others' flag changes become untagged FETCH responses.
        if origin is not self and self.notify_external_flags:
            self._pending_flags.update(uids)
            self._on_change()


def unclaimed_recent(mailbox: IStoreMailbox) -> Sequence[int]:
    """The UIDs that are \\Recent for no session yet, without claiming them.

    Claims take every unclaimed message and new messages get larger UIDs,
    so these are always the last ``recent_count()`` UIDs.
    """
    count = mailbox.recent_count()
    if not count:
        return ()
    uids = mailbox.uids()
    return uids[len(uids) - count :]


def _ordered(ranges: Ranges, largest: int) -> Iterable[tuple[int, int]]:
    """Each range with ``*`` replaced by ``largest``, low..high."""
    for low, high in ranges:
        a = largest if low is None else low
        b = largest if high is None else high
        yield (a, b) if a <= b else (b, a)
