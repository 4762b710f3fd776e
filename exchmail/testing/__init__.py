"""Test support for exchmail and for authors of its backends.

- :mod:`exchmail.testing.store_contract`: the store compliance kit.
- :func:`call`, :func:`result`: the results of synchronously fired Deferreds.
- :class:`Recorder`: an :class:`~exchmail.interfaces.IMailboxListener` that
  records every notification.

Importing :mod:`exchmail.testing.store_contract` needs pytest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure
from zope.interface import implementer

from exchmail.interfaces import IMailboxListener, IStoreMailbox


def result(d: defer.Deferred[Any]) -> Any:
    """The result of an already fired Deferred (raising its failure)."""
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]


def call(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``f`` (which may return a Deferred) and return its result."""
    return result(defer.maybeDeferred(f, *args, **kwargs))


@implementer(IMailboxListener)
class Recorder:
    """A listener that records every notification."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def messages_added(self, mailbox: IStoreMailbox, uids: list[int]) -> None:
        self.events.append(("added", list(uids)))

    def messages_expunged(self, mailbox: IStoreMailbox, uids: list[int]) -> None:
        self.events.append(("expunged", list(uids)))

    def flags_changed(self, mailbox: IStoreMailbox, uids: list[int], origin: object) -> None:
        self.events.append(("flags", list(uids), origin))
