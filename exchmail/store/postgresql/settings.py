"""The ``[store]`` keys of the PostgreSQL backend, parsed and checked.

::

    [store]
    backend = "postgresql"
    dsn = "host=db.example.org dbname=mail user=exchmail"   # or "" for PG* variables
    pool_size = 8              # connections per frontend
    statement_timeout = 30     # seconds per statement (0: none)
    poll_interval = 5          # seconds; a safety net under LISTEN/NOTIFY

Importing this module does not import the driver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exchmail.errors import ConfigError

#: The ``[store]`` keys this backend reads.
KEYS = ("dsn", "pool_size", "statement_timeout", "poll_interval")


@dataclass(frozen=True)
class PostgreSQLSettings:
    """Where the database is and how this frontend uses it."""

    #: A libpq connection string or URI; "" takes everything from PG* environment variables.
    dsn: str = ""
    #: The most connections this frontend opens (also bounds its concurrent queries).
    pool_size: int = 8
    #: Seconds a statement may run before the server cancels it (0: no limit).
    statement_timeout: float = 30.0
    #: Seconds between polls of listened mailboxes, in case a notification was lost (0: never).
    poll_interval: float = 5.0

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> PostgreSQLSettings:
        """Read the keys of ``[store]``; raises ConfigError naming a bad key."""
        dsn = table.get("dsn", "")
        if not isinstance(dsn, str):
            raise ConfigError(f"store.dsn: expected a string, got {dsn!r}")
        pool = table.get("pool_size", cls.pool_size)
        if isinstance(pool, bool) or not isinstance(pool, int) or not 1 <= pool <= 1000:
            raise ConfigError(f"store.pool_size: expected an integer from 1 to 1000, got {pool!r}")
        return cls(
            dsn=dsn,
            pool_size=pool,
            statement_timeout=_seconds(table, "statement_timeout", cls.statement_timeout),
            poll_interval=_seconds(table, "poll_interval", cls.poll_interval),
        )


def _seconds(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"store.{key}: expected seconds (a number, 0 or more), got {value!r}")
    return float(value)
