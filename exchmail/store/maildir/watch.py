"""Watching Maildir folders for outside changes while they have listeners.

:class:`MaildirWatcher` (one per store) watches a mailbox's ``new/`` and
``cur/`` from its first listener to its last: with inotify
(:mod:`twisted.internet.inotify`) where the reactor can read file
descriptors and the system has it, else by polling the folder's stamp
every ``poll_interval`` seconds (:class:`~exchmail.store.watch.PollingWatch`).
Either way it costs one watch per mailbox, however many sessions listen.

inotify reports this process's own renames and deletions too.
:class:`OwnChanges` recognises them by name -- the mailbox says which
names it is about to touch, and a scan says which it touched -- so that
only changes made by others cause a scan.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from typing import Any

from twisted.internet.interfaces import IReactorFDSet
from twisted.logger import Logger
from twisted.python.filepath import FilePath
from twisted.python.runtime import platform

from exchmail.store.maildir.filenames import split_name, unique_part
from exchmail.store.watch import PollingWatch

log = Logger(namespace="exchmail.store.maildir")

#: Own changes remembered at most (normally each is matched within milliseconds).
MAX_EXPECTED = 10_000
WATCH_MODES = ("auto", "inotify", "poll")

Key = tuple[str, str]  # (sub-directory, file name)


class OwnChanges:
    """Which inotify events come from this process's own changes."""

    def __init__(self) -> None:
        self._expected: dict[Key, None] = {}
        self._deliveries: dict[str, None] = {}
        self._during: set[Key] | None = None

    def expect(self, keys: Iterable[Key]) -> None:
        """Events on ``keys`` are coming from a change of ours."""
        for key in keys:
            self._expected[key] = None
        _bound(self._expected)

    def expect_delivery(self, unique: str) -> None:
        """A delivery of ours will rename a file whose name starts with ``unique`` into cur/."""
        self._deliveries[unique] = None
        _bound(self._deliveries)

    def explained(self, sub: str, name: str) -> bool:
        """Whether the event on ``sub/name`` needs no scan (now)."""
        key = (sub, name)
        if key in self._expected:
            del self._expected[key]
            return True
        if sub == "cur":
            unique = unique_part(split_name(name)[0])
            if unique in self._deliveries:
                del self._deliveries[unique]
                return True
        if self._during is not None:
            self._during.add(key)  # decided when the scan ends
            return True
        return False

    def scan_started(self) -> None:
        """A scan begins: hold events until it says what it touched."""
        self._during = set()

    def scan_finished(self, touched: Iterable[Key]) -> bool:
        """The scan touched ``touched``; whether other events came meanwhile."""
        if self._during is None:
            return False
        during, self._during = self._during, None
        mine = set(touched)
        self.expect(mine - during)  # their events are still to come
        return bool(during - mine)


def _bound(entries: dict[Any, None]) -> None:
    while len(entries) > MAX_EXPECTED:
        del entries[next(iter(entries))]


def inotify_usable(reactor: Any) -> bool:
    """Whether inotify can serve on ``reactor`` (Linux, a real reactor)."""
    return bool(platform.supportsINotify()) and IReactorFDSet.providedBy(reactor)


class MaildirWatcher:
    """Watches the folders of listened-to mailboxes, one watch per mailbox.

    :param mode: ``"auto"`` (inotify if usable, else polling), ``"inotify"``
        (the same, but say so in the log when it is not usable) or ``"poll"``.
    """

    def __init__(self, reactor: Any, mode: str = "auto", poll_interval: float = 5.0) -> None:
        if mode not in WATCH_MODES:
            raise ValueError(f"watch mode must be one of {WATCH_MODES}, not {mode!r}")
        self._reactor = reactor
        self.poll_interval = poll_interval
        self._use_inotify = mode != "poll" and inotify_usable(reactor)
        if mode == "inotify" and not self._use_inotify:
            log.warn("inotify is not usable here; polling Maildir folders instead")
        self._notifier: Any = None
        self._closing = False
        self._watches: dict[int, tuple[Any, Any]] = {}  # id(box) -> (box, paths or poller)

    @property
    def watched(self) -> int:
        """How many mailboxes are being watched."""
        return len(self._watches)

    def watch(self, box: Any) -> str:
        """Start watching ``box``; the mode used (``"inotify"`` or ``"poll"``)."""
        self.unwatch(box)
        if self._use_inotify:
            try:
                self._watches[id(box)] = (box, self._add_inotify(box))
                return "inotify"
            except Exception as exc:  # noqa: BLE001 - e.g. the watch limit: poll instead
                log.warn(
                    "cannot watch {path} with inotify ({error}); polling it", path=str(box.path), error=exc
                )
        poller = PollingWatch(self._reactor, self.poll_interval, box.refresh)
        poller.start()
        self._watches[id(box)] = (box, poller)
        return "poll"

    def unwatch(self, box: Any) -> None:
        """Stop watching ``box`` (no error if it is not watched)."""
        entry = self._watches.pop(id(box), None)
        if entry is None:
            return
        handle = entry[1]
        if isinstance(handle, PollingWatch):
            handle.stop()
        elif self._notifier is not None:
            for path in handle:
                try:
                    self._notifier.ignore(path)
                except (KeyError, OSError):
                    pass  # gone with its directory

    def close(self) -> None:
        """Stop every watch and close the inotify descriptor."""
        self._closing = True
        for box, _ in list(self._watches.values()):
            self.unwatch(box)
        if self._notifier is not None:
            self._notifier.loseConnection()
            self._notifier = None

    # -- inotify -------------------------------------------------------------------------
    def _notifier_now(self) -> Any:
        if self._notifier is None:
            from twisted.internet import inotify

            class Notifier(inotify.INotify):
                """An INotify that tells the watcher when it stops (INotify closes
                itself when a watched directory is deleted)."""

                def connectionLost(notifier, reason: Any) -> None:  # noqa: N805
                    super().connectionLost(reason)
                    self._lost(notifier)

            self._notifier = Notifier(reactor=self._reactor)
            self._notifier.startReading()
        return self._notifier

    def _add_inotify(self, box: Any) -> list[FilePath[bytes]]:
        from twisted.internet import inotify

        notifier = self._notifier_now()
        mask = inotify.IN_CREATE | inotify.IN_DELETE | inotify.IN_MOVED_FROM | inotify.IN_MOVED_TO
        callback = functools.partial(self._event, box)
        paths: list[FilePath[bytes]] = []
        try:
            for sub in ("new", "cur"):
                path = FilePath(os.fsencode(box.path / sub))
                notifier.watch(path, mask=mask, callbacks=[callback])
                paths.append(path)
        except BaseException:
            for path in paths:
                notifier.ignore(path)
            raise
        return paths

    def _event(self, box: Any, _watch: Any, path: FilePath[bytes], mask: int) -> None:
        from twisted.internet import inotify

        if mask & (
            inotify.IN_DELETE_SELF
            | inotify.IN_MOVE_SELF
            | inotify.IN_IGNORED
            | inotify.IN_UNMOUNT
            | inotify.IN_Q_OVERFLOW
        ):
            box.outside_event(None, None)
            return
        box.outside_event(os.fsdecode(path.parent().basename()), os.fsdecode(path.basename()))

    def _lost(self, notifier: Any) -> None:
        if notifier is not self._notifier or self._closing:
            return
        self._notifier = None
        broken = [box for box, handle in self._watches.values() if not isinstance(handle, PollingWatch)]
        for box in broken:
            del self._watches[id(box)]
        self._reactor.callLater(0, self._rewatch, broken)

    def _rewatch(self, boxes: list[Any]) -> None:
        for box in boxes:
            box.watch_again()
