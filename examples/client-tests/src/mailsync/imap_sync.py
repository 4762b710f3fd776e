"""Keep a local copy of one IMAP folder: the client under test.

:class:`FolderSync` downloads the messages of a folder that it does not
have yet, forgets those the server no longer has, starts over when the
folder's UIDVALIDITY changes, and survives what servers do to clients:
temporary refusals (``NO [UNAVAILABLE]``), ``BYE`` and dropped connections,
and answers that take too long.  Every failure it met is listed in the
:class:`SyncReport`, in the words the server (or the socket) used.
"""

from __future__ import annotations

import imaplib
import re
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field

_FETCH_UID = re.compile(rb"UID (\d+)")


class TemporaryFailure(Exception):
    """The server refused for now (``NO [UNAVAILABLE]`` or ``[INUSE]``); try again."""


class SyncError(Exception):
    """The folder could not be synchronized (a permanent refusal, or retries used up)."""


@dataclass(frozen=True)
class Account:
    """Where and who: ``tls`` is ``"none"``, ``"starttls"`` or ``"implicit"``."""

    host: str
    port: int
    user: str
    password: str
    tls: str = "none"
    ca_file: str | None = None
    timeout: float = 10.0


@dataclass
class Mirror:
    """The local copy: UIDVALIDITY and the messages by UID."""

    uid_validity: int | None = None
    messages: dict[int, bytes] = field(default_factory=dict)


@dataclass
class SyncReport:
    """What one :meth:`FolderSync.sync` did and met."""

    fetched: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    resynced: bool = False
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)


def connect(account: Account) -> imaplib.IMAP4:
    """A logged-in connection."""
    context = ssl.create_default_context(cafile=account.ca_file) if account.tls != "none" else None
    if account.tls == "implicit":
        client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
            account.host, account.port, ssl_context=context, timeout=account.timeout
        )
    else:
        client = imaplib.IMAP4(account.host, account.port, timeout=account.timeout)
        if account.tls == "starttls":
            client.starttls(context)
    client.login(account.user, account.password)
    return client


def _check(status: str, data: list, what: str) -> list:
    if status == "OK":
        return data
    text = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
    if text.startswith(("[UNAVAILABLE]", "[INUSE]")):
        raise TemporaryFailure(f"{status} {text}")
    raise SyncError(f"{what}: {status} {text}")


class FolderSync:
    """Synchronizes ``folder`` of ``account`` into ``mirror``.

    :param retries: attempts after the first one, on temporary failures and
        lost connections.
    :param pause: seconds to wait between attempts (``sleep`` is called).
    """

    def __init__(
        self,
        account: Account,
        folder: str = "INBOX",
        mirror: Mirror | None = None,
        retries: int = 3,
        pause: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.account = account
        self.folder = folder
        self.mirror = mirror if mirror is not None else Mirror()
        self.retries = retries
        self.pause = pause
        self.sleep = sleep
        self.client: imaplib.IMAP4 | None = None

    def sync(self) -> SyncReport:
        """Bring the mirror up to date; raises :class:`SyncError` when it cannot."""
        report = SyncReport()
        for attempt in range(self.retries + 1):
            try:
                self._sync_once(report)
                return report
            except TemporaryFailure as error:
                report.errors.append(str(error))
            except (imaplib.IMAP4.abort, OSError) as error:  # BYE, dropped, timed out
                report.errors.append(_describe(error))
                self._forget_connection()
                report.reconnects += 1
            if attempt < self.retries:
                self.sleep(self.pause)
        raise SyncError(f"gave up after {self.retries + 1} attempts: {report.errors}")

    def _sync_once(self, report: SyncReport) -> None:
        if self.client is None:
            self.client = connect(self.account)
        client = self.client
        _check(*client.select(self.folder, readonly=True), "SELECT")
        validity = int(client.response("UIDVALIDITY")[1][0])
        if self.mirror.uid_validity not in (None, validity):
            report.resynced = True  # the old UIDs mean nothing now
            self.mirror.messages.clear()
        self.mirror.uid_validity = validity
        (found,) = _check(*client.uid("SEARCH", "ALL"), "UID SEARCH")
        on_server = {int(uid) for uid in found.split()}
        for uid in sorted(set(self.mirror.messages) - on_server):
            del self.mirror.messages[uid]
            report.removed.append(uid)
        for uid in sorted(on_server - set(self.mirror.messages)):
            content = self._fetch(uid)
            if content is None:  # expunged by someone else meanwhile
                report.removed.append(uid)
                continue
            self.mirror.messages[uid] = content
            report.fetched.append(uid)

    def _fetch(self, uid: int) -> bytes | None:
        assert self.client is not None
        data = _check(*self.client.uid("FETCH", str(uid), "(BODY.PEEK[])"), "UID FETCH")
        for item in data:
            if isinstance(item, tuple) and _FETCH_UID.search(item[0]):
                return bytes(item[1])
        return None

    def save_draft(self, message: bytes) -> None:
        """APPEND ``message`` to Drafts (``\\Draft``); temporary refusals raise
        :class:`TemporaryFailure` for the caller to retry later."""
        client = self.client or connect(self.account)
        self.client = client
        _check(*client.append("Drafts", "(\\Draft)", None, message), "APPEND")

    def _forget_connection(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                client.shutdown()
            except OSError:
                pass

    def close(self) -> None:
        """Log out (quietly if the connection is gone already)."""
        client, self.client = self.client, None
        if client is not None:
            try:
                client.logout()
            except (imaplib.IMAP4.error, OSError):
                pass


def _describe(error: Exception) -> str:
    """A lost connection in a few words: the server's BYE text, "timeout" or "EOF"."""
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timeout"
    text = str(error)
    # imaplib says "command: UID => <BYE text or socket error>"
    return "lost: " + text.split(" => ", 1)[-1]
