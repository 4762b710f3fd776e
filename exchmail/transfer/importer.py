"""Importing messages into a store account: folders, flags, dates, order; idempotent.

A *source* (:mod:`.mbox`, :mod:`.maildir`, :mod:`.imap`) yields
:class:`SourceMessage` objects in their original order.  :class:`Importer`
puts each into its folder through the store API -- ``account.create``,
``account.mailbox(name)``, ``mailbox.append(content, flags, date)`` -- so
UIDs follow the source's order and the quota applies.

Idempotence comes from an :class:`ImportMap`: a file that lists, for every
message imported into the account, its folder and the SHA-256 of its
content.  A message whose (folder, digest) pair is listed is skipped, so a
second run imports nothing twice, an interrupted run picks up where it
stopped, and a source that grew imports only what is new.  Identical
messages are counted: a source holding the same message twice imports it
twice, once.

A message that cannot be read or stored is reported (:attr:`ImportReport.failed`)
and skipped; the import goes on.  Reading the source blocks, so every read
goes through ``run_blocking`` (the CLI passes one that runs at once).
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from twisted.internet import defer
from twisted.logger import Logger

from exchmail.errors import MailboxExists, NoSuchMailbox, StoreError
from exchmail.store import names
from exchmail.store.runner import RunBlocking, run_sync

log = Logger(namespace="exchmail.transfer")


@dataclass
class SourceMessage:
    """One message of a source.

    :ivar folder: the target folder ('/'-delimited; ``INBOX`` for the inbox).
    :ivar flags: system flags and keywords (no ``\\Recent``).
    :ivar internal_date: seconds since the epoch, or ``None`` (now).
    :ivar size: the size as the source reports it (for progress).
    :ivar label: where it comes from, for reports ("mbox message 17").
    :ivar read: returns the content in wire form (CRLF); may raise.
    """

    folder: str
    flags: frozenset[str]
    internal_date: float | None
    size: int
    label: str
    read: Callable[[], bytes]


class Source(Protocol):
    """Where messages come from."""

    def totals(self) -> tuple[int, int]:
        """``(messages, octets)`` to expect: the count and the sum of the messages'
        :attr:`SourceMessage.size` (for the progress bar)."""

    def messages(self) -> Iterator[SourceMessage]:
        """Every message, folder by folder, in the source's order."""

    def close(self) -> None:
        """Release files and connections."""


class Progress(Protocol):
    """Told how an import or export goes (a progress bar, log lines)."""

    def start(self, messages: int, octets: int) -> None: ...

    def advance(self, octets: int, outcome: str) -> None:
        """One message done: ``"imported"``, ``"skipped"`` or ``"failed"``."""

    def problem(self, text: str) -> None:
        """A message could not be moved (reported, then skipped)."""

    def finish(self) -> None: ...


class QuietProgress:
    """A :class:`Progress` that shows nothing."""

    def start(self, messages: int, octets: int) -> None:
        pass

    def advance(self, octets: int, outcome: str) -> None:
        pass

    def problem(self, text: str) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass
class ImportReport:
    """What an import did."""

    imported: int = 0
    skipped: int = 0
    octets: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    folders_created: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the end of the run."""
        created = f", {len(self.folders_created)} folders created" if self.folders_created else ""
        return (
            f"{self.imported} imported ({self.octets} octets), {self.skipped} already "
            f"there, {len(self.failed)} failed{created}"
        )


class ImportMap:
    """The (folder, SHA-256) pairs already imported into one account, in a file.

    One line per imported message, ``<hex digest> <folder>``, appended and
    flushed as each message is stored, and fsynced at :meth:`close`.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stored: Counter[tuple[str, str]] = Counter()
        self._used: Counter[tuple[str, str]] = Counter()
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                digest, _, folder = line.partition(" ")
                if len(digest) == 64 and folder:
                    self._stored[(folder, digest)] += 1
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def take(self, folder: str, digest: str) -> bool:
        """Whether a not yet matched copy of this message is listed (and match it)."""
        key = (folder, digest)
        if self._used[key] < self._stored[key]:
            self._used[key] += 1
            return True
        return False

    def record(self, folder: str, digest: str) -> None:
        """Note one more copy of this message as imported."""
        key = (folder, digest)
        self._stored[key] += 1
        self._used[key] += 1
        self._file.write(f"{digest} {folder}\n")
        self._file.flush()

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


def _next(iterator: Iterator[SourceMessage]) -> SourceMessage | None:
    return next(iterator, None)


class Importer:
    """Imports a :class:`Source` into one account.

    :param account: the :class:`~exchmail.interfaces.IStoreAccount`.
    :param import_map: the account's :class:`ImportMap`.
    :param progress: told of every message.
    :param run_blocking: runs source reads (blocking) off the reactor thread.
    :param into: put every message into this folder instead of the source's
        (sub)folders; ``None`` keeps the source's folders.
    """

    def __init__(
        self,
        account: Any,
        import_map: ImportMap,
        progress: Progress | None = None,
        run_blocking: RunBlocking = run_sync,
        into: str | None = None,
    ) -> None:
        self.account = account
        self.map = import_map
        self.progress = progress or QuietProgress()
        self.run_blocking = run_blocking
        self.into = into
        self.report = ImportReport()
        self._folders: set[str] | None = None

    @defer.inlineCallbacks
    def run(self, source: Source) -> Any:
        """A Deferred of the :class:`ImportReport`; fails only if the account
        itself fails (listing its folders)."""
        self._folders = set((yield defer.maybeDeferred(self.account.list_mailboxes)))
        messages, octets = yield self.run_blocking(source.totals)
        self.progress.start(messages, octets)
        iterator = iter((yield self.run_blocking(source.messages)))
        try:
            while True:
                item = yield self.run_blocking(_next, iterator)
                if item is None:
                    break
                yield self._one(item)
        finally:
            self.progress.finish()
        return self.report

    @defer.inlineCallbacks
    def _one(self, item: SourceMessage) -> Any:
        folder = self.into or item.folder
        try:
            folder = names.normalize_mailbox(folder)
            content = yield self.run_blocking(item.read)
            digest = hashlib.sha256(content).hexdigest()
            if self.map.take(folder, digest):
                self.report.skipped += 1
                self.progress.advance(item.size, "skipped")
                return
            mailbox = yield self._mailbox(folder)
            flags = frozenset(f for f in item.flags if f.lower() != "\\recent")
            yield defer.maybeDeferred(mailbox.append, content, flags, item.internal_date)
        except (StoreError, OSError, ValueError) as e:
            self._failed(item, f"{type(e).__name__}: {e}")
            return
        except Exception as e:  # noqa: BLE001 - one bad message never stops the import
            log.failure("importing {label} failed", label=item.label)
            self._failed(item, f"{type(e).__name__}: {e}")
            return
        self.map.record(folder, digest)
        self.report.imported += 1
        self.report.octets += len(content)
        self.progress.advance(item.size, "imported")

    def _failed(self, item: SourceMessage, reason: str) -> None:
        self.report.failed.append((item.label, reason))
        self.progress.problem(f"{item.label}: {reason}; skipped")
        self.progress.advance(item.size, "failed")

    @defer.inlineCallbacks
    def _mailbox(self, folder: str) -> Any:
        assert self._folders is not None
        if folder not in self._folders:
            try:
                yield defer.maybeDeferred(self.account.create, folder)
                self.report.folders_created.append(folder)
            except MailboxExists:
                pass
            self._folders.add(folder)
        try:
            box = yield defer.maybeDeferred(self.account.mailbox, folder)
        except NoSuchMailbox:  # deleted meanwhile: make it again
            yield defer.maybeDeferred(self.account.create, folder)
            box = yield defer.maybeDeferred(self.account.mailbox, folder)
        return box
