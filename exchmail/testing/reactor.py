"""The reactor thread that in-process test servers run on.

Tests are synchronous code: a client library blocks on its socket while
the server answers.  So the servers run on Twisted's global reactor in a
daemon thread, started on first use and shared by every server of the
process; :func:`in_reactor` runs a function there and waits for its
(Deferred) result.  A reactor that is already running in another thread
(started by the test suite itself) is used as it is.

A test suite that runs the reactor in the test's own thread (trial,
pytest-twisted) cannot block on it: use the standalone server
(``exchmail serve --ephemeral``) there.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from typing import Any

from twisted.internet.threads import blockingCallFromThread
from twisted.python import threadable

#: Seconds to wait for the reactor thread to start.
START_TIMEOUT = 30.0

_lock = threading.Lock()
_thread: threading.Thread | None = None
_stopped = False


def running_reactor() -> Any:
    """The global reactor, running (in a daemon thread started now if needed)."""
    global _thread
    reactor = _global_reactor()
    with _lock:
        if _stopped:
            raise RuntimeError(
                "the exchmail test reactor was stopped; a reactor cannot be started twice in one process"
            )
        if not reactor.running and _thread is None:
            started = threading.Event()
            reactor.callWhenRunning(started.set)
            _thread = threading.Thread(
                target=reactor.run,
                kwargs={"installSignalHandlers": False},
                name="exchmail-reactor",
                daemon=True,
            )
            _thread.start()
            atexit.register(stop_reactor)  # before the interpreter kills daemon threads
            if not started.wait(START_TIMEOUT):
                raise RuntimeError("the reactor thread did not start")
    return reactor


def in_reactor(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``f(*args, **kwargs)`` on the reactor thread and return its result
    (waiting for it if it is a Deferred); its exception is raised here."""
    reactor = running_reactor()
    if threadable.isInIOThread():
        raise RuntimeError(
            "exchmail.testing: called on the reactor thread; the blocking "
            "test API is for test code in another thread"
        )
    return blockingCallFromThread(reactor, f, *args, **kwargs)


def stop_reactor(timeout: float = 10.0) -> None:
    """Stop the reactor thread if this module started it (at the end of a test
    session; the reactor cannot be started again in this process)."""
    global _thread, _stopped
    with _lock:
        thread, _thread = _thread, None
        _stopped = thread is not None
    if thread is None:
        return
    reactor = _global_reactor()
    reactor.callFromThread(reactor.stop)
    thread.join(timeout)


def _global_reactor() -> Any:
    """The global reactor (typed ``Any``: it provides many interfaces)."""
    from twisted.internet import reactor

    return reactor
