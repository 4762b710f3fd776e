"""HashPool: a small thread pool of its own for password hashing.

A scrypt verification takes tens of milliseconds of CPU.  Run in the
store's pool, a burst of logins queued in front of APPEND and delivery
(an APPEND measured 98 ms instead of 45 ms behind logins).  Hashing gets
its own bounded pool instead: at most ``threads`` hashes run at once, at
most ``max_waiting`` wait, and past that a login fails at once with
:class:`~exchmail.errors.DirectoryUnavailable` (a temporary failure: the
client is told to try again later, and it does not count as a failed
login).  ``hashlib.scrypt`` and ``pbkdf2_hmac`` release the GIL, so the
reactor thread keeps running while they do.
"""

from __future__ import annotations

from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool

from exchmail.errors import DirectoryUnavailable

#: ``[auth] hash_threads`` default.
DEFAULT_THREADS = 2
#: Verifications that may wait per pool thread (about 64 ms each with the
#: default scrypt parameters: 128 per thread is some 8 s of queue).
WAITING_PER_THREAD = 128


class HashPool(Service):
    """Owns the thread pool that password hashes run in; start and stop it as a service.

    :param reactor: an ``IReactorFromThreads`` (results are delivered on its thread).
    :param threads: hashes that run at once.
    :param max_waiting: hashes queued or running at most; ``None``:
        ``threads * WAITING_PER_THREAD``.
    """

    name = "auth-hash"

    def __init__(self, reactor: Any, threads: int = DEFAULT_THREADS, max_waiting: int | None = None) -> None:
        if threads < 1:
            raise ValueError("a hash pool needs at least one thread")
        self.reactor = reactor
        self.pool = ThreadPool(minthreads=0, maxthreads=threads, name="exchmail-auth-hash")
        self.max_waiting = threads * WAITING_PER_THREAD if max_waiting is None else max_waiting
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Hashes queued or running now."""
        return self._waiting

    def run_blocking(self, f: Any, *args: Any) -> defer.Deferred[Any]:
        """Run ``f(*args)`` in the pool; a Deferred of its result on the reactor thread.

        Fails at once with :class:`DirectoryUnavailable` while ``max_waiting``
        hashes are already queued or running.
        """
        if self._waiting >= self.max_waiting:
            return defer.fail(DirectoryUnavailable("too many logins are waiting for a password check"))
        self._waiting += 1
        d = threads.deferToThreadPool(self.reactor, self.pool, f, *args)
        return d.addBoth(self._done)

    def _done(self, result: Any) -> Any:
        self._waiting -= 1
        return result

    def startService(self) -> None:
        super().startService()
        self.pool.start()

    def stopService(self) -> defer.Deferred[None] | None:
        super().stopService()
        self.pool.stop()  # waits for the running hashes (tens of milliseconds)
        return None
