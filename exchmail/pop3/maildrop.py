"""The POP3 maildrop: a per-session snapshot of the account's INBOX.

:class:`Maildrop` numbers the INBOX messages present at login 1..N for
the whole session (RFC 1939 section 4), reports their sizes from the
store's records and uses the IMAP UID as the unique-id (MS-STANXPOP3
C0007-C0009: decimal, increasing, never reused, and the same number an
IMAP client sees).

Deletion is session state until the UPDATE state: :meth:`Maildrop.update`
flags the marked messages ``\\Deleted`` in the shared store and expunges
exactly those UIDs.  A message another session (IMAP or POP3) flagged or
removed is never touched by this session unless its own client marked it
(V0006: an error in the middle never removes an unmarked message).  If the
process dies between the two steps, the marked messages are left flagged
``\\Deleted`` (and no message is removed): the next UPDATE or IMAP
EXPUNGE of that mailbox removes them, which is what the client asked for.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from exchmail.errors import NoSuchMessage
from exchmail.interfaces import IBatchRead, IMessageReader, IStoreMailbox, IStoreMessage

DELETED = "\\Deleted"
#: How much of the maildrop one read may bring ahead of the message asked for.
READ_AHEAD_OCTETS = 512 * 1024


class Maildrop:
    """INBOX as POP3 sees it for one session; message indexes are 0-based."""

    def __init__(self, account_name: str, mailbox: IStoreMailbox, newest_first: bool = False) -> None:
        self.account_name = account_name
        self.mailbox = mailbox
        records: list[IStoreMessage] = []
        for uid in mailbox.uids():
            record = mailbox.message(uid)
            if record is not None:
                records.append(record)
        if newest_first:  # MessageRetrievalSortOrder Descending
            records.reverse()
        self.records = records
        self.deleted: set[int] = set()
        self._ahead: dict[int, bytes] = {}  # messages read ahead, by index

    def __len__(self) -> int:
        return len(self.records)

    def size(self, index: int, exact: bool) -> int:
        record = self.records[index]
        return int(record.exact_size if exact else record.stored_size)

    def uid(self, index: int) -> int:
        return int(self.records[index].uid)

    def live(self) -> list[int]:
        """The indexes of the messages not marked as deleted, ascending."""
        deleted = self.deleted
        return [i for i in range(len(self.records)) if i not in deleted]

    def total_size(self, exact: bool) -> int:
        return sum(self.size(i, exact) for i in self.live())

    def open(self, index: int) -> defer.Deferred[IMessageReader]:
        """A reader of the message in wire form (CRLF), for streaming a big one;
        NoSuchMessage if another session removed it."""
        return self._content(index, self.mailbox.open_message)

    def read(self, index: int) -> defer.Deferred[bytes]:
        """The whole message in wire form (small messages).

        Clients read a maildrop from the first message to the last, so a
        store that reads in batches (IBatchRead) is asked for this message
        and the small ones after it together, up to READ_AHEAD_OCTETS: one
        trip to the store's thread for many RETRs.
        """
        data = self._ahead.pop(index, None)
        if data is not None:
            return defer.succeed(data)
        if not IBatchRead.providedBy(self.mailbox):
            return self._content(index, self.mailbox.read_message)
        batch = self._batch_from(index)
        d = defer.maybeDeferred(IBatchRead(self.mailbox).read_messages, [self.uid(i) for i in batch])
        return d.addCallback(self._arrived, batch, index)

    def _batch_from(self, index: int) -> list[int]:
        batch, total = [index], self.size(index, exact=True)
        for following in range(index + 1, len(self.records)):
            size = self.size(following, exact=True)
            if following in self.deleted or total + size > READ_AHEAD_OCTETS:
                break
            batch.append(following)
            total += size
        return batch

    def _arrived(self, contents: list[bytes | None], batch: list[int], index: int) -> bytes:
        self._ahead = {
            i: data for i, data in zip(batch, contents, strict=True) if data is not None and i != index
        }
        data = contents[0]
        if data is None:
            raise NoSuchMessage(f"message {index + 1} was removed by another session")
        return data

    def _content(self, index: int, how: Any) -> defer.Deferred[Any]:
        uid = self.uid(index)
        if self.mailbox.message(uid) is None:
            return defer.fail(NoSuchMessage(f"message {index + 1} was removed by another session"))
        return defer.maybeDeferred(how, uid)

    def delete(self, index: int) -> None:
        """Mark message ``index`` for removal at UPDATE."""
        self.deleted.add(index)

    def undelete_all(self) -> None:
        """RSET: unmark every message."""
        self.deleted.clear()

    @defer.inlineCallbacks
    def update(self):
        """The UPDATE state: remove the marked messages; the result is the removed UIDs.

        On failure the messages already removed stay removed, the others
        get their ``\\Deleted`` flag back as it was, and the error is
        re-raised.
        """
        mailbox = self.mailbox
        doomed = [self.uid(i) for i in sorted(self.deleted) if mailbox.message(self.uid(i)) is not None]
        if not doomed:
            return []
        had_flag = {uid for uid in doomed if DELETED in _flags(mailbox.message(uid))}
        yield defer.maybeDeferred(mailbox.set_flags, doomed, frozenset({DELETED}), "add", self)
        try:
            removed = yield defer.maybeDeferred(mailbox.expunge, doomed)
        except Exception:
            left = [uid for uid in doomed if uid not in had_flag and mailbox.message(uid) is not None]
            if left:
                yield defer.maybeDeferred(mailbox.set_flags, left, frozenset({DELETED}), "remove", self)
            raise
        return list(removed)


def _flags(record: Any) -> frozenset[str]:
    return getattr(record, "flags", None) or frozenset()
