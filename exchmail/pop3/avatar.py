"""The POP3 maildrop: a per-session snapshot of the account's INBOX.

:class:`Maildrop` is the avatar the realm hands to POP3 sessions
(``twisted.mail.pop3.IMailbox``).  It numbers the INBOX messages present
at login 1..N for the whole session (RFC 1939 section 4), reports their
sizes from the store's records and uses the IMAP UID as the unique-id
(MS-STANXPOP3 C0007-C0009: decimal, increasing, never reused, and the same
number an IMAP client sees).

Deletion is session state until the UPDATE state: :meth:`sync` flags the
marked messages ``\\Deleted`` in the shared store and expunges exactly
those UIDs, message by message.  A message another session (IMAP or POP3)
flagged or removed is never touched by this session unless its own client
marked it (V0006: an error in the middle never removes an unmarked message).
"""

from __future__ import annotations

from typing import Any, BinaryIO

from twisted.internet import defer
from twisted.mail import pop3
from zope.interface import implementer

from exchmail.errors import NoSuchMessage
from exchmail.interfaces import IStoreMailbox, IStoreMessage

DELETED = "\\Deleted"


@implementer(pop3.IMailbox)
class Maildrop:
    """INBOX as POP3 sees it for one session; message indexes are 0-based."""

    #: Size mode of Twisted's ``listMessages``; the server passes its own.
    exact_sizes = False

    def __init__(self, account_name: str, mailbox: IStoreMailbox) -> None:
        self.account_name = account_name
        self.mailbox = mailbox
        records: list[IStoreMessage] = []
        for uid in list(mailbox.uids()):
            record = mailbox.message(uid)
            if record is not None:
                records.append(record)
        self.records = records
        self.deleted: set[int] = set()

    def number_newest_first(self) -> None:
        """Number the messages from the newest (MessageRetrievalSortOrder Descending);
        call before the first command, while nothing is marked deleted."""
        assert not self.deleted
        self.records.reverse()

    # -- what the server uses -------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def valid(self, index: int) -> bool:
        """Whether 0-based ``index`` names a message not marked as deleted."""
        return 0 <= index < len(self.records) and index not in self.deleted

    def size(self, index: int, exact: bool) -> int:
        record = self.records[index]
        return int(record.exact_size if exact else record.stored_size)

    def uid(self, index: int) -> int:
        return int(self.records[index].uid)

    def live(self) -> list[int]:
        """The indexes of the messages not marked as deleted, ascending."""
        return [i for i in range(len(self.records)) if i not in self.deleted]

    def total_size(self, exact: bool) -> int:
        return sum(self.size(i, exact) for i in self.live())

    def open(self, index: int) -> BinaryIO:
        """The message in wire form (CRLF); NoSuchMessage if another session removed it."""
        if self.mailbox.message(self.uid(index)) is None:
            raise NoSuchMessage(f"message {index + 1} was removed by another session")
        return self.mailbox.open_message(self.uid(index))

    # -- twisted.mail.pop3.IMailbox ------------------------------------------------
    def listMessages(self, i: int | None = None) -> Any:
        if i is None:
            return [0 if n in self.deleted else self.size(n, self.exact_sizes)
                    for n in range(len(self.records))]
        if not self.valid(i):
            raise ValueError(i)
        return self.size(i, self.exact_sizes)

    def getMessage(self, i: int) -> BinaryIO:
        if not self.valid(i):
            raise ValueError(i)
        return self.open(i)

    def getUidl(self, i: int) -> bytes:
        if not self.valid(i):
            raise ValueError(i)
        return b"%d" % self.uid(i)

    def deleteMessage(self, i: int) -> None:
        if not self.valid(i):
            raise ValueError(i)
        self.deleted.add(i)

    def undeleteMessages(self) -> None:
        self.deleted.clear()

    def sync(self) -> defer.Deferred[list[int]]:
        """The UPDATE state: remove the marked messages; a Deferred of the removed UIDs.

        On failure the messages already removed stay removed, the others
        get their ``\\Deleted`` flag back as it was, and the error is
        re-raised.
        """
        doomed = [self.uid(i) for i in sorted(self.deleted)
                  if self.mailbox.message(self.uid(i)) is not None]
        if not doomed:
            return defer.succeed([])
        had_flag = {uid for uid in doomed
                    if DELETED in (getattr(self.mailbox.message(uid), "flags", None) or ())}
        self.mailbox.set_flags(doomed, frozenset({DELETED}), "add", origin=self)
        d: defer.Deferred[list[int]] = defer.maybeDeferred(self.mailbox.expunge, doomed)

        def failed(failure: Any) -> Any:
            left = [uid for uid in doomed
                    if uid not in had_flag and self.mailbox.message(uid) is not None]
            if left:
                self.mailbox.set_flags(left, frozenset({DELETED}), "remove", origin=self)
            return failure

        d.addCallbacks(lambda removed: list(removed), failed)
        return d
