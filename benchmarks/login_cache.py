"""Login cost with and without the verified-credentials cache, in-process.

Measures, with the default scrypt hash:

1. ``direct``: AccountsChecker.requestAvatarId run synchronously (no pools):
   the median of a cold verification (cache_ttl = 0) and of a cached one;
2. ``reactor``: the same through a running reactor, with the file checks in
   a store-like pool and the hashes in a HashPool, as the service wires it
   (time from the call until the Deferred fires);
3. ``store pool``: how long a trivial job in the store pool waits while a
   burst of cold logins hashes -- in the store pool itself (the old wiring)
   and in a HashPool of its own.

Usage: ``python benchmarks/login_cache.py [--rounds N]``.  Prints a table;
numbers depend on the machine (they are not asserted anywhere).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.cred.credentials import UsernamePassword
from twisted.internet import defer, task, threads
from twisted.python.threadpool import ThreadPool

from exchmail.auth.accounts import AccountsFile
from exchmail.auth.checker import AccountsChecker
from exchmail.auth.hashpool import HashPool

USER, PASSWORD = "alice", "correct horse battery staple"


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.3f} ms"


def _once(checker: AccountsChecker) -> float:
    start = time.perf_counter()
    out: list[Any] = []
    checker.requestAvatarId(UsernamePassword(USER.encode(), PASSWORD.encode())).addBoth(out.append)
    assert out == [USER], out
    return time.perf_counter() - start


def direct(users: Path, rounds: int) -> tuple[list[float], list[float]]:
    cold = AccountsChecker(users, cache_ttl=0)
    warm = AccountsChecker(users)
    _once(warm)  # the first login fills the cache
    return [_once(cold) for _ in range(rounds)], [_once(warm) for _ in range(rounds * 20)]


def through_reactor(users: Path, rounds: int, burst: int) -> dict[str, list[float]]:
    from twisted.internet import reactor

    store_pool = ThreadPool(minthreads=1, maxthreads=4, name="bench-store")
    hash_pool = HashPool(reactor, threads=2)
    results: dict[str, list[float]] = {}

    def run_store(f: Any, *args: Any) -> defer.Deferred[Any]:
        return threads.deferToThreadPool(reactor, store_pool, f, *args)

    def timed(d: defer.Deferred[Any]) -> defer.Deferred[float]:
        start = time.perf_counter()
        return d.addCallback(lambda _: time.perf_counter() - start)

    def login(checker: AccountsChecker) -> defer.Deferred[float]:
        return timed(checker.requestAvatarId(UsernamePassword(USER.encode(), PASSWORD.encode())))

    @defer.inlineCallbacks
    def store_job_wait(hash_blocking: Any) -> Any:
        """Latency of one trivial store-pool job queued behind ``burst`` cold logins."""
        checker = AccountsChecker(users, run_blocking=run_store, hash_blocking=hash_blocking, cache_ttl=0)
        yield checker.refresh()
        logins = [
            checker.requestAvatarId(UsernamePassword(USER.encode(), PASSWORD.encode())) for _ in range(burst)
        ]
        yield task.deferLater(reactor, 0.02, lambda: None)  # the file checks are done:
        # the burst's hashes are queued now, and the store job queues behind them
        waited = yield timed(run_store(lambda: None))
        yield defer.gatherResults(logins)
        return waited

    @defer.inlineCallbacks
    def main() -> Any:
        try:
            cold = AccountsChecker(
                users, run_blocking=run_store, hash_blocking=hash_pool.run_blocking, cache_ttl=0
            )
            warm = AccountsChecker(users, run_blocking=run_store, hash_blocking=hash_pool.run_blocking)
            yield login(warm)
            cases = [
                ("cold", lambda: login(cold), rounds),
                ("cached", lambda: login(warm), rounds * 20),
                ("store job, hashing in the store pool", lambda: store_job_wait(None), 3),
                ("store job, hashing in a HashPool", lambda: store_job_wait(hash_pool.run_blocking), 3),
            ]
            for name, measure, count in cases:
                samples = []
                for _ in range(count):
                    samples.append((yield measure()))
                results[name] = samples
        finally:
            reactor.stop()

    store_pool.start()
    hash_pool.startService()
    reactor.callWhenRunning(main)
    reactor.run()
    hash_pool.stopService()
    store_pool.stop()
    return results


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="cold verifications per case")
    parser.add_argument("--burst", type=int, default=8, help="cold logins in the store-pool case")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        users = Path(tmp) / "users"
        AccountsFile(users).add(USER, PASSWORD)
        cold, cached = direct(users, args.rounds)
        print(f"direct   cold verification   {_ms(cold)}   (median of {len(cold)})")
        print(f"direct   cached verification {_ms(cached)}   (median of {len(cached)})")
        for name, samples in through_reactor(users, args.rounds, args.burst).items():
            print(f"reactor  {name:<38} {_ms(samples)}   (median of {len(samples)})")


if __name__ == "__main__":
    main(sys.argv[1:])
