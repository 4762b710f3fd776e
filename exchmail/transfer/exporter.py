"""Exporting an account's folders as mbox files or a Maildir++ tree.

``mbox``: ``DEST`` is a folder that receives one mbox file per mail folder
(``INBOX.mbox``, ``Work/Projects.mbox``), or, with a single folder chosen,
``DEST`` is that one file.  ``maildir``: ``DEST`` becomes a Maildir++ tree.
Both keep flags, keywords, internal dates and the UID order, and both can
be imported again (:mod:`.importer`).  Messages are read through the store
API (``read_message``); writing files goes through ``run_blocking``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from twisted.internet import defer

from exchmail.errors import StoreError
from exchmail.store import names
from exchmail.store.runner import RunBlocking, run_sync
from exchmail.transfer.importer import Progress, QuietProgress
from exchmail.transfer.maildir import MaildirWriter
from exchmail.transfer.mbox import mbox_entry

FORMATS = ("mbox", "maildir")


@dataclass
class ExportReport:
    """What an export wrote."""

    exported: int = 0
    octets: int = 0
    folders: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.exported} exported ({self.octets} octets) from {len(self.folders)} "
            f"folders, {len(self.failed)} failed"
        )


def mbox_path(dest: Path, folder: str) -> Path:
    """The mbox file of ``folder`` under ``dest``."""
    return dest.joinpath(*folder.split(names.DELIMITER)).with_name(
        folder.split(names.DELIMITER)[-1] + ".mbox"
    )


class Exporter:
    """Writes one account's folders to ``dest`` in ``fmt`` (``mbox`` or ``maildir``).

    :param folders: only these folders (default: all).
    """

    def __init__(
        self,
        account: Any,
        dest: Path,
        fmt: str,
        progress: Progress | None = None,
        run_blocking: RunBlocking = run_sync,
        folders: list[str] | None = None,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r} (choose {', '.join(FORMATS)})")
        self.account = account
        self.dest = Path(dest)
        self.fmt = fmt
        self.progress = progress or QuietProgress()
        self.run_blocking = run_blocking
        self.folders = folders
        self.report = ExportReport()
        self._writer = MaildirWriter(self.dest) if fmt == "maildir" else None
        self._files: dict[str, BinaryIO] = {}

    def _target(self, folder: str) -> BinaryIO:
        handle = self._files.get(folder)
        if handle is None:
            single = self.folders is not None and len(self.folders) == 1 and not self.dest.is_dir()
            path = self.dest if single else mbox_path(self.dest, folder)
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = self._files[folder] = open(path, "wb")  # noqa: SIM115 - closed in run()
        return handle

    def _write(self, folder: str, content: bytes, flags: frozenset[str], date: float) -> None:
        if self._writer is not None:
            self._writer.add(folder, content, flags, date)
        else:
            self._target(folder).write(mbox_entry(content, flags, date))

    @defer.inlineCallbacks
    def run(self) -> Any:
        """A Deferred of the :class:`ExportReport`."""
        found = yield defer.maybeDeferred(self.account.list_mailboxes)
        wanted = [names.normalize_mailbox(f) for f in self.folders] if self.folders else None
        chosen = sorted(found, key=lambda n: (n != names.INBOX, n))
        if wanted is not None:
            chosen = [n for n in chosen if n in wanted]
        boxes = []
        for name in chosen:
            box = yield defer.maybeDeferred(self.account.mailbox, name)
            boxes.append((name, box, list(box.uids())))
        total = sum(len(uids) for _, _, uids in boxes)
        octets = sum(
            box.message(uid).exact_size
            for _, box, uids in boxes
            for uid in uids
            if box.message(uid) is not None
        )
        self.progress.start(total, octets)
        try:
            for name, box, uids in boxes:
                self.report.folders.append(name)
                if self._writer is not None:
                    yield self.run_blocking(self._writer.folder_path, name)
                for uid in uids:
                    yield self._one(name, box, uid)
        finally:
            for handle in self._files.values():
                handle.close()
            self.progress.finish()
        return self.report

    @defer.inlineCallbacks
    def _one(self, name: str, box: Any, uid: int) -> Any:
        record = box.message(uid)
        if record is None:
            return  # expunged meanwhile
        try:
            content = yield defer.maybeDeferred(box.read_message, uid)
            yield self.run_blocking(self._write, name, content, record.flags, record.internal_date)
        except (StoreError, OSError) as e:
            self.report.failed.append((f"{name} UID {uid}", str(e)))
            self.progress.problem(f"{name} UID {uid}: {e}; skipped")
            self.progress.advance(record.exact_size, "failed")
            return
        self.report.exported += 1
        self.report.octets += len(content)
        self.progress.advance(len(content), "exported")
