"""The open mailboxes of one account: shared while in use, released when idle.

A store hands out one mailbox object per mailbox, shared by every session
(:class:`~exchmail.interfaces.IStoreMailbox`).  :class:`OpenMailboxes`
keeps that promise for a backend whose mailboxes can be loaded again from
storage (Maildir, the example SQLite store):

- concurrent opens of one name share one load;
- a mailbox that has had no listeners, and no use, for ``release_after``
  seconds is *released*: the account keeps only a weak reference to it,
  so the index memory goes as soon as nobody holds the object.  Whoever
  still holds it keeps using the same object, and the next open returns it
  again if it is still alive -- there are never two objects for one
  mailbox, whose UIDs could then collide.  Otherwise the next open loads it
  afresh;
- a load that raced with a DELETE or RENAME (``generation`` moved) is done
  again, so an object never appears under a name it no longer has.

Time comes from the injected ``reactor`` (a :class:`~twisted.internet.task.Clock`
in tests); without one nothing is ever released.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from exchmail.errors import StoreError
from exchmail.store.index import IndexedMailbox

MAX_LOAD_ATTEMPTS = 3


class _Entry:
    __slots__ = ("timer", "last_used")

    def __init__(self, now: float) -> None:
        self.timer: Any = None
        self.last_used = now


class OpenMailboxes:
    """The shared, releasable mailbox objects of one account.

    :param reactor: schedules releases (``callLater``/``seconds``); ``None``
        keeps every mailbox open for good.
    :param release_after: seconds without listeners and without use after
        which a mailbox is released; ``None`` never releases.
    :param on_release: called with each mailbox as it is released.
    """

    def __init__(
        self,
        reactor: Any = None,
        release_after: float | None = 300.0,
        on_release: Callable[[IndexedMailbox], None] | None = None,
    ) -> None:
        self._reactor = reactor
        self.release_after = release_after
        self._on_release = on_release
        self._open: dict[str, IndexedMailbox] = {}
        self._entries: dict[int, _Entry] = {}
        self._released: weakref.WeakValueDictionary[str, IndexedMailbox] = weakref.WeakValueDictionary()
        self._loading: dict[str, list[defer.Deferred[Any]]] = {}
        #: Bumped by DELETE and RENAME: loads that began before are done again.
        self.generation = 0

    # -- looking up and opening -----------------------------------------------------
    def get(self, name: str) -> IndexedMailbox | None:
        """The open (or released but still alive) mailbox ``name``, if any."""
        box = self._open.get(name)
        if box is None:
            box = self._released.pop(name, None)
            if box is not None:
                self._adopt(name, box)
        if box is not None:
            self._touch(box)
        return box

    def peek(self, name: str) -> IndexedMailbox | None:
        """The mailbox ``name`` if it is alive, without counting this as use."""
        return self._open.get(name) or self._released.get(name)

    def open_boxes(self) -> list[IndexedMailbox]:
        """Every mailbox object alive (held open, or released but still in use)."""
        return [*self._open.values(), *self._released.values()]

    def open(self, name: str, load: Callable[[], Any]) -> defer.Deferred[Any]:
        """The mailbox ``name``: shared if open, else from ``load()`` (a Deferred)."""
        box = self.get(name)
        if box is not None:
            return defer.succeed(box)
        waiter: defer.Deferred[Any] = defer.Deferred()
        if name in self._loading:
            self._loading[name].append(waiter)
            return waiter
        self._loading[name] = [waiter]
        self._load(name, load, 1).addBoth(self._wake, name)
        return waiter

    def _load(self, name: str, load: Callable[[], Any], attempt: int) -> defer.Deferred[Any]:
        generation = self.generation
        d = defer.maybeDeferred(load)
        d.addCallback(self._loaded, name, load, attempt, generation)
        return d

    def _loaded(
        self, box: IndexedMailbox, name: str, load: Callable[[], Any], attempt: int, generation: int
    ) -> Any:
        if generation != self.generation:
            # A DELETE or RENAME ran meanwhile: what was loaded may be stale.
            if attempt >= MAX_LOAD_ATTEMPTS:
                raise StoreError("the mailbox is being changed; try again")
            return self._load(name, load, attempt + 1)
        existing = self.get(name)
        if existing is not None:
            return existing
        self._adopt(name, box)
        return box

    def _wake(self, outcome: Any, name: str) -> None:
        for waiter in self._loading.pop(name, []):
            if isinstance(outcome, Failure):
                waiter.errback(outcome)
            else:
                waiter.callback(outcome)

    # -- DELETE and RENAME ------------------------------------------------------------
    def pop(self, name: str) -> IndexedMailbox | None:
        """Forget ``name`` (it is being deleted); the object, if any was alive."""
        self.generation += 1
        box = self._open.pop(name, None) or self._released.pop(name, None)
        if box is not None:
            self._forget(box)
        return box

    def rename(self, moves: list[tuple[str, str]]) -> list[IndexedMailbox]:
        """Re-key the mailboxes of ``(old, new)`` names; the objects moved."""
        self.generation += 1
        moved = []
        for old, new in moves:
            box = self._open.pop(old, None) or self._released.pop(old, None)
            if box is not None:
                moved.append((new, box))
        for new, box in moved:
            self._open[new] = box
        return [box for _, box in moved]

    # -- idle release -----------------------------------------------------------------
    def _adopt(self, name: str, box: IndexedMailbox) -> None:
        self._open[name] = box
        box.idle_observer = self._observe
        self._entries.setdefault(id(box), _Entry(self._now()))
        self._observe(box)

    def _forget(self, box: IndexedMailbox) -> None:
        entry = self._entries.pop(id(box), None)
        if entry is not None and entry.timer is not None and entry.timer.active():
            entry.timer.cancel()
        box.idle_observer = None

    def _now(self) -> float:
        return float(self._reactor.seconds()) if self._reactor is not None else 0.0

    def _touch(self, box: IndexedMailbox) -> None:
        entry = self._entries.get(id(box))
        if entry is not None:
            entry.last_used = self._now()

    def _observe(self, box: IndexedMailbox) -> None:
        """A mailbox gained or lost listeners, or finished an operation."""
        if self._open.get(box.name) is not box:
            if self._released.get(box.name) is box and (box.listened or box.busy):
                self.get(box.name)  # in use again: hold it again
            return
        entry = self._entries.get(id(box))
        if entry is None or self._reactor is None or self.release_after is None:
            return
        entry.last_used = self._now()
        if entry.timer is None and not box.listened:
            entry.timer = self._reactor.callLater(self.release_after, self._expire, box)

    def _expire(self, box: IndexedMailbox) -> None:
        entry = self._entries.get(id(box))
        if entry is None:
            return
        entry.timer = None
        if self._open.get(box.name) is not box or box.listened:
            return  # a new listener re-arms the timer when it leaves
        assert self.release_after is not None
        left = entry.last_used + self.release_after - self._now()
        if box.busy or left > 0:
            entry.timer = self._reactor.callLater(max(left, 1.0), self._expire, box)
            return
        del self._open[box.name]
        self._forget(box)
        box.idle_observer = self._observe  # so that new use holds it again
        self._released[box.name] = box
        if self._on_release is not None:
            self._on_release(box)

    def close(self) -> None:
        """Cancel every release timer (the store is closing)."""
        for entry in self._entries.values():
            if entry.timer is not None and entry.timer.active():
                entry.timer.cancel()
            entry.timer = None
