"""Polling for outside changes, once per mailbox, while it has listeners.

The contract (:class:`~exchmail.interfaces.IStoreMailbox`) asks a mailbox
to report changes made outside the process to its listeners on its own.
A backend that cannot be told about changes (a database other programs
write to, a Maildir on a system without inotify) polls: one
:class:`PollingWatch` per *mailbox*, started by its first listener and
stopped by its last, so ten thousand IDLE sessions on a hundred mailboxes
cost a hundred cheap checks per interval, not ten thousand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger

log = Logger(namespace="exchmail.store")


class PollingWatch:
    """Calls ``check()`` every ``interval`` seconds on ``clock`` while started.

    ``check`` may return a Deferred; the next call is scheduled only after
    it fires, so checks never overlap.  A failed check is logged and the
    polling goes on.
    """

    def __init__(self, clock: Any, interval: float, check: Callable[[], Any]) -> None:
        self.interval = interval
        self._check = check
        self._call = task.LoopingCall(self._tick)
        self._call.clock = clock

    @property
    def running(self) -> bool:
        return bool(self._call.running)

    def start(self) -> None:
        if not self._call.running:
            self._call.start(self.interval, now=False)

    def stop(self) -> None:
        if self._call.running:
            self._call.stop()

    def _tick(self) -> defer.Deferred[None]:
        d = defer.maybeDeferred(self._check)
        d.addErrback(lambda failure: log.failure("checking for outside changes failed", failure))
        return d
