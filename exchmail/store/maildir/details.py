"""Waiting for the dates and sizes a first load left for later.

A first load of a Maildir folder reads names only (:func:`.scan.load`);
files whose names do not record their internal date and sizes are
measured afterwards, in the background, under the mailbox's lock.  Until
that is done, whoever needs those values waits here.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger(namespace="exchmail.store")


class DetailsWaiters:
    """The waiters for one mailbox's deferred dates and sizes."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._waiting: list[defer.Deferred[None]] | None = None  # None: nothing to wait for
        self._failure: Failure | None = None

    def start(self, learning: defer.Deferred[Any]) -> None:
        """Wait for ``learning`` (it may have fired already)."""
        self._waiting = []
        learning.addBoth(self._done)

    def wait(self) -> defer.Deferred[None] | None:
        """``None`` if nothing is left to learn, else a new Deferred of the outcome."""
        if self._failure is not None:
            return defer.fail(self._failure)
        if self._waiting is None:
            return None
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiting.append(waiter)
        return waiter

    def _done(self, outcome: Any) -> None:
        waiting, self._waiting = self._waiting or [], None
        if isinstance(outcome, Failure):
            # The index stays incomplete: every wait fails from now on,
            # until the mailbox is released and loaded afresh.
            log.failure("learning dates and sizes of {name} failed", outcome, name=self.name)
            self._failure = outcome
        for waiter in waiting:
            if self._failure is not None:
                waiter.errback(self._failure)
            else:
                waiter.callback(None)
