"""What a PostgreSQL store operation costs, by part: the thread hop versus the database.

::

    .venv/bin/python benchmarks/pg_driver_cost.py [--count 2000]

Starts a private cluster (``exchmail.testing.postgres``) and times, per
call, on a running reactor: a no-op through ``deferToThreadPool`` (the
thread hop every store operation pays), a ``SELECT 1`` transaction through
the store's pool in that thread (hop + pool + round trips), and a
one-message APPEND through the store.  Calls run one after another, so the
figures are latencies, not throughput.  Everything is bounded by
``--count`` and listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from twisted.internet import defer, reactor, threads  # noqa: E402
from twisted.internet.threads import blockingCallFromThread  # noqa: E402
from twisted.python.threadpool import ThreadPool  # noqa: E402

from exchmail.store.postgresql import schema  # noqa: E402
from exchmail.store.postgresql.db import Database  # noqa: E402
from exchmail.store.postgresql.store import PostgreSQLStore  # noqa: E402
from exchmail.store.runner import pool_runner  # noqa: E402
from exchmail.testing.postgres import PostgresCluster  # noqa: E402


def timed(count: int, call: object) -> float:
    """Median microseconds of ``count`` sequential calls of ``call`` (a Deferred factory) on the reactor."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        blockingCallFromThread(reactor, call)  # type: ignore[arg-type]
        samples.append(time.perf_counter() - start)
    return 1e6 * statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    cluster = PostgresCluster(durable=True)
    pool = ThreadPool(minthreads=4, maxthreads=4, name="bench")
    pool.start()
    threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False}, daemon=True).start()
    try:
        import psycopg

        with psycopg.connect(cluster.dsn) as conn:
            schema.init(conn)
        db = Database(cluster.dsn, pool_size=4)

        def select_one() -> int:
            with db.transaction() as conn:
                return int(conn.execute("SELECT 1").fetchone()[0])

        store = PostgreSQLStore(db, pool_runner(reactor, pool), reactor)
        box = blockingCallFromThread(
            reactor, lambda: store.account("bench").addCallback(lambda account: account.mailbox("INBOX"))
        )
        base = timed(args.count, lambda: defer.succeed(None))
        hop = timed(args.count, lambda: threads.deferToThreadPool(reactor, pool, lambda: None))
        select = timed(args.count, lambda: threads.deferToThreadPool(reactor, pool, select_one))
        append = timed(min(args.count, 500), lambda: box.append(b"Subject: x\r\n\r\nbody\r\n"))
        print(f"calling the reactor from this thread: {base:.0f} us (subtract it from the rest)")
        print(f"thread hop (deferToThreadPool, no-op): {hop - base:.0f} us")
        print(f"SELECT 1 transaction via the pool in that thread: {select - base:.0f} us")
        print(f"APPEND of a small message (one transaction, fsync at commit): {append - base:.0f} us")
        blockingCallFromThread(reactor, store.close)
    finally:
        pool.stop()
        reactor.callFromThread(reactor.stop)
        cluster.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
