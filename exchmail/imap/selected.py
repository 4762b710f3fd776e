"""One session's view of its selected mailbox.

The store's mailbox index is shared by all sessions; what is per session
is only what RFC 3501 makes per session: which messages the client has
been told about (sequence numbers stay stable until EXPUNGE responses are
sent), which are \\Recent for it, and which flag changes by others it
has not heard of yet.  The UID list itself is the store's copy-on-write
sequence, so a session holds a reference, never a copy.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence

from zope.interface import implementer

from exchmail.imap.parsing import parse_sequence_set, resolve_sequence_set
from exchmail.interfaces import IMailboxListener, IStoreMailbox


def format_flags(flags: frozenset[str] | set[str]) -> bytes:
    """``(\\Seen $MDNSent)``, system flags first, stable order."""
    ordered = sorted(flags, key=lambda f: (not f.startswith("\\"), f.lower()))
    return b"(" + " ".join(ordered).encode("utf-8") + b")"


@implementer(IMailboxListener)
class SelectedMailbox:
    """Sequence numbering, \\Recent and pending updates for one session."""

    def __init__(self, mailbox: IStoreMailbox, readonly: bool,
                 on_change: Callable[[], None] = lambda: None,
                 notify_external_flags: bool = True) -> None:
        self.mailbox = mailbox
        self.readonly = readonly
        self.notify_external_flags = notify_external_flags
        self._on_change = on_change
        self._uids: Sequence[int] = mailbox.uids()
        self.exists = len(self._uids)
        self.recent: set[int] = set() if readonly else set(mailbox.claim_recent())
        self._pending_flags: set[int] = set()
        mailbox.add_listener(self)

    def close(self) -> None:
        """Stop listening to the mailbox."""
        self.mailbox.remove_listener(self)

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

    def resolve(self, text: bytes, by_uid: bool) -> Iterator[tuple[int, int]]:
        """``(seq, uid)`` pairs selected by a sequence set, ascending, no duplicates.

        Raises ParseError for a malformed set; sequence numbers beyond the
        mailbox are simply not matched for UID sets, and rejected by the
        caller for message sets (see :meth:`check_seqs`).
        """
        ranges = parse_sequence_set(text)
        seen: set[int] = set()
        pairs = []
        if by_uid:
            for low, high in resolve_sequence_set(ranges, self.max_uid):
                start = bisect_left(self._uids, low, 0, self.exists)
                stop = bisect_right(self._uids, high, 0, self.exists)
                for index in range(start, stop):
                    if index not in seen:
                        seen.add(index)
                        pairs.append((index + 1, self._uids[index]))
        else:
            for low, high in resolve_sequence_set(ranges, self.exists):
                for seq in range(max(low, 1), min(high, self.exists) + 1):
                    if seq not in seen:
                        seen.add(seq)
                        pairs.append((seq, self._uids[seq - 1]))
        return iter(sorted(pairs))

    def seqs_in_range(self, text: bytes) -> bool:
        """Whether every number of a message sequence set exists."""
        for low, high in resolve_sequence_set(parse_sequence_set(text), self.exists):
            if low < 1 or high > self.exists:
                return False
        return True

    def flags_of(self, uid: int) -> frozenset[str] | None:
        """Current flags of ``uid`` including the session's ``\\Recent``."""
        record = self.mailbox.message(uid)
        if record is None:
            return None
        return record.flags | {"\\Recent"} if uid in self.recent else record.flags

    # -- updates -------------------------------------------------------
    def updates(self, allow_expunge: bool) -> list[bytes]:
        """Untagged responses that bring the client up to date.

        EXPUNGE responses (and with them any renumbering) are held back
        when ``allow_expunge`` is false, as RFC 3501 7.4.1 requires during
        FETCH, STORE and SEARCH.
        """
        lines: list[bytes] = []
        current = self.mailbox.uids()
        if current is not self._uids:
            if not allow_expunge:
                return self._flag_updates()
            lines.extend(self._apply_expunges(current))
        if len(current) > self.exists:
            self.exists = len(current)
            if not self.readonly:
                self.recent.update(self.mailbox.claim_recent())
            lines.append(b"* %d EXISTS" % self.exists)
            lines.append(b"* %d RECENT" % len(self.recent))
        lines.extend(self._flag_updates())
        return lines

    def _apply_expunges(self, current: Sequence[int]) -> list[bytes]:
        still = set(current)
        lines = []
        for index in range(self.exists - 1, -1, -1):
            uid = self._uids[index]
            if uid not in still:
                lines.append(b"* %d EXPUNGE" % (index + 1))
                self.recent.discard(uid)
                self._pending_flags.discard(uid)
        last_known = self.max_uid
        self._uids = current
        self.exists = bisect_right(current, last_known)
        return lines

    def _flag_updates(self) -> list[bytes]:
        lines = []
        for uid in sorted(self._pending_flags):
            seq = self.seq_of(uid)
            flags = self.flags_of(uid)
            if seq is not None and flags is not None:
                lines.append(b"* %d FETCH (FLAGS %s)" % (seq, format_flags(flags)))
        self._pending_flags.clear()
        return lines

    # -- IMailboxListener ----------------------------------------------
    def messages_added(self, mailbox: IStoreMailbox, uids: list[int]) -> None:
        self._on_change()

    def messages_expunged(self, mailbox: IStoreMailbox, uids: list[int]) -> None:
        self._on_change()

    def flags_changed(self, mailbox: IStoreMailbox, uids: list[int], origin: object) -> None:
        # V0044: whether others' flag changes become untagged FETCH responses.
        if origin is not self and self.notify_external_flags:
            self._pending_flags.update(uids)
            self._on_change()
