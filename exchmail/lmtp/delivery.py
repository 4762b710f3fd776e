"""Delivering one received message to one recipient, and the reply that says how it went.

Delivery goes the way IMAP APPEND goes: ``store.account(user)``, then
``account.mailbox(folder)``, then ``mailbox.append(source, flags, date)``.
So the quota wrapper, the retention run and the listeners of open
mailboxes (unsolicited EXISTS to IDLE sessions) see it like any APPEND,
and the append's Deferred fires only once the message is durable: a
``250`` reply means the message is on disk.

Every outcome is a :class:`Reply`; nothing is lost silently:

==============================  ==========================================
unknown account name            ``550 5.1.1``
over quota                      ``552 5.2.2`` (Exchange) or ``452 4.2.2``
directory unavailable           ``451 4.4.3``
any store error, any bug        ``451 4.3.0`` (the client keeps the message
                                and tries again; bugs are logged)
==============================  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, BinaryIO

from twisted.internet import defer
from twisted.logger import Logger

from exchmail.errors import (
    DirectoryUnavailable,
    InvalidMailboxName,
    InvalidUserName,
    MailboxExists,
    OverQuota,
    StoreError,
)
from exchmail.lmtp.recipients import Recipient
from exchmail.store import names

log = Logger(namespace="exchmail.lmtp")


@dataclass(frozen=True)
class Reply:
    """An SMTP/LMTP reply: ``code``, enhanced ``status`` (RFC 3463) and text."""

    code: int
    status: str
    text: str

    @property
    def ok(self) -> bool:
        """Whether it is a success (2xx)."""
        return 200 <= self.code < 300

    @property
    def temporary(self) -> bool:
        """Whether it is a temporary failure (4xx)."""
        return 400 <= self.code < 500

    def message(self) -> bytes:
        """The reply's text with its enhanced status code, as sent after the code."""
        return f"{self.status} {self.text}".encode("utf-8", "replace")


def over_quota_reply(code: int, address: str, reason: str) -> Reply:
    """The reply for a recipient over quota (``[lmtp] over_quota``: 552 or 452)."""
    status = "5.2.2" if code >= 500 else "4.2.2"
    return Reply(code, status, f"<{address}> mailbox full: {reason}")


class Deliverer:
    """Delivers messages into a store (LMTP and ``exchmail deliver`` share it).

    :param store: the :class:`~exchmail.interfaces.IStore` (with the quota
        wrapper when ``[quota]`` is set, as the service builds it).
    :param detail_folder: ``"existing"``, ``"create"`` or ``"off"`` (see
        :mod:`exchmail.lmtp.settings`).
    :param over_quota: the reply code for a full mailbox (552 or 452).
    """

    def __init__(self, store: Any, detail_folder: str = "existing", over_quota: int = 552) -> None:
        self.store = store
        self.detail_folder = detail_folder
        self.over_quota = over_quota

    @defer.inlineCallbacks
    def deliver(self, recipient: Recipient, source: BinaryIO, internal_date: float | None = None) -> Any:
        """A Deferred of the :class:`Reply` for delivering ``source`` (read from
        its start) to ``recipient``; it never fails."""
        address = recipient.address
        try:
            account = yield defer.maybeDeferred(self.store.account, recipient.user)
            folder = yield self.folder_for(account, recipient.detail)
            mailbox = yield defer.maybeDeferred(account.mailbox, folder)
            source.seek(0)
            uid = yield defer.maybeDeferred(mailbox.append, source, frozenset(), internal_date)
        except OverQuota as e:
            return over_quota_reply(self.over_quota, address, str(e))
        except InvalidUserName:
            return Reply(550, "5.1.1", f"<{address}> no such mailbox")
        except DirectoryUnavailable:
            return Reply(451, "4.4.3", f"<{address}> directory unavailable, try again later")
        except StoreError as e:
            log.error("delivery to {address} failed: {error}", address=address, error=e)
            return Reply(451, "4.3.0", f"<{address}> cannot store the message now: {e}")
        except Exception:  # noqa: BLE001 - answered 451 and logged: the client retries
            log.failure("delivery to {address} failed", address=address)
            return Reply(451, "4.3.0", f"<{address}> internal error, try again later")
        log.info(
            "delivered to {user} ({address}) in {folder}, UID {uid}",
            user=recipient.user,
            address=address,
            folder=folder,
            uid=uid,
        )
        return Reply(250, "2.0.0", f"<{address}> delivered to {folder}")

    @defer.inlineCallbacks
    def folder_for(self, account: Any, detail: str) -> Any:
        """A Deferred of the folder for ``detail``: an existing folder of that
        name in any case, a new one (``"create"``), or INBOX."""
        if not detail or self.detail_folder == "off":
            return names.INBOX
        try:
            wanted = names.normalize_mailbox(detail)
        except InvalidMailboxName:
            return names.INBOX
        existing = yield defer.maybeDeferred(account.list_mailboxes)
        if wanted in existing:
            return wanted
        folded = {name.casefold(): name for name in existing}
        if wanted.casefold() in folded:
            return folded[wanted.casefold()]
        if self.detail_folder != "create":
            return names.INBOX
        try:
            yield defer.maybeDeferred(account.create, wanted)
        except MailboxExists:
            pass  # created meanwhile
        except InvalidMailboxName:
            return names.INBOX
        return wanted
