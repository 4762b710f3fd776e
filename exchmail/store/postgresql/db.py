"""Connections to the PostgreSQL database: a pool, transactions, error mapping.

Every query is blocking (psycopg's synchronous API); the store runs the
functions that issue them through ``run_blocking``, i.e. in exchmail's
bounded store thread pool, never on the reactor thread.  Why threads and
not psycopg's asyncio API: see docs/backends.md (a store operation is one
or two short transactions; a thread hop costs microseconds next to the
database round trips, and it keeps the whole store on Twisted's default
reactor, which exchmail's LMTP, LDAP and file stores need).

Database failures (server down, connection lost, statement timeout, pool
exhausted) become :class:`~exchmail.errors.StoreUnavailable`, which IMAP
answers ``NO [UNAVAILABLE]`` and POP3 ``-ERR [SYS/TEMP]``; the pool
replaces broken connections by itself, with backoff, so the store serves
again as soon as the database is back.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from exchmail.errors import StoreUnavailable

#: Seconds a caller waits for a free connection before giving up (UNAVAILABLE).
POOL_TIMEOUT = 5.0
#: Seconds a pooled connection may sit unused before it is checked on its next use.
CHECK_IDLE = 1.0
#: Seconds psycopg_pool keeps retrying one failed connection before it gives up.
#: It doubles the delay between tries (1, 2, 4 s...) for as long as this
#: allows, so this also caps the delay: with its default (300 s) a database
#: that was down for a minute stayed unreachable for about another minute.
#: Once a try gives up, the next transaction that needs a connection starts
#: a new one at once.
RECONNECT_TIMEOUT = 8.0


def connect_kwargs(statement_timeout_ms: int) -> dict[str, Any]:
    """libpq options of every connection: autocommit off, the statement timeout."""
    options = f"-c statement_timeout={int(statement_timeout_ms)}" if statement_timeout_ms else ""
    return {"options": options, "autocommit": False} if options else {"autocommit": False}


class Database:
    """A psycopg connection pool and the store's way of using it.

    :param dsn: a libpq connection string or URI ("" uses the PG* environment).
    :param pool_size: the most connections this process opens.
    :param statement_timeout_ms: the server-side limit per statement (0: none).
    :param reconnect_timeout: see :data:`RECONNECT_TIMEOUT`.
    """

    def __init__(
        self,
        dsn: str,
        pool_size: int = 8,
        statement_timeout_ms: int = 30_000,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
    ) -> None:
        from psycopg_pool import ConnectionPool

        self.dsn = dsn
        self.statement_timeout_ms = statement_timeout_ms
        self._check_connection = ConnectionPool.check_connection
        self._last_used: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self.pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs=connect_kwargs(statement_timeout_ms),
            timeout=POOL_TIMEOUT,
            reconnect_timeout=reconnect_timeout,
            # A connection that broke while idle (the database restarted) is
            # replaced before use, instead of failing the caller's transaction.
            check=self._check,
            open=False,
            name="exchmail-store",
        )
        self.pool.open(wait=False)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A connection inside one transaction (committed on success)."""
        with unavailable_on_errors():
            with self.pool.connection() as conn:
                try:
                    with conn.transaction():
                        yield conn
                finally:
                    self._last_used[conn] = time.monotonic()

    def _check(self, conn: Any) -> None:
        """Check a connection that has been idle a while (one round trip); a
        busy one was fine a moment ago, and if it broke since, the caller
        gets UNAVAILABLE once and the pool replaces it."""
        if time.monotonic() - self._last_used.get(conn, 0.0) > CHECK_IDLE:
            self._check_connection(conn)

    def close(self) -> None:
        """Close every connection (blocking: call it off the reactor thread or at exit)."""
        self.pool.close()


@contextmanager
def unavailable_on_errors() -> Iterator[None]:
    """Turn driver and pool failures into StoreUnavailable (the cause is kept)."""
    import psycopg
    from psycopg_pool import PoolTimeout

    try:
        yield
    except PoolTimeout as e:
        raise StoreUnavailable("the mailbox database does not answer; try again later") from e
    except (psycopg.OperationalError, psycopg.errors.QueryCanceled) as e:
        raise StoreUnavailable("the mailbox database is unavailable; try again later") from e
    except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure) as e:
        # Rolled back as a whole: nothing happened, the client may try again.
        raise StoreUnavailable("the mailbox database is busy; try again") from e
