"""Test support for exchmail, for authors of its backends and for client developers.

- :class:`ExchmailServer` (:mod:`exchmail.testing.server`): an Exchange-like
  IMAP/POP3 server for a client's tests, set up and inspected in code, with
  fault injection (:mod:`exchmail.testing.faults`); the pytest plugin
  (:mod:`exchmail.testing.pytest_plugin`) and the standalone server
  (``exchmail serve --ephemeral``) are built on it.  See ``docs/testing.md``.
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

#: Names imported from submodules on first use (importing this package stays light).
_LAZY = {
    "ExchmailServer": "exchmail.testing.server",
    "ServerCore": "exchmail.testing.server",
    "Message": "exchmail.testing.server",
    "Faults": "exchmail.testing.faults",
    "FaultRule": "exchmail.testing.faults",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
