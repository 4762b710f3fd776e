"""How stores run blocking work: the ``run_blocking`` callable.

``run_blocking(f, *args)`` calls ``f(*args)`` somewhere that may block and
returns a Deferred that fires, on the reactor thread, with the result or
the error.  The service passes one built on a bounded thread pool
(:func:`pool_runner`); the bound is the pool's size, so however many
sessions ask, at most that many blocking calls run at once.

:func:`run_sync` runs the work at once on the calling thread.  Stores built
with it (the default of every built-in store) hand back Deferreds that have
already fired, which is what tests, scripts and the store compliance kit
want.  It must not be used by a running server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer, threads

RunBlocking = Callable[..., "defer.Deferred[Any]"]


def run_sync(f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
    """A ``run_blocking`` that calls ``f`` now and wraps the outcome in a fired Deferred."""
    return defer.maybeDeferred(f, *args)


def pool_runner(reactor: Any, pool: Any) -> RunBlocking:
    """A ``run_blocking`` over a started :class:`twisted.python.threadpool.ThreadPool`."""

    def run_blocking(f: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        return threads.deferToThreadPool(reactor, pool, f, *args)

    return run_blocking
