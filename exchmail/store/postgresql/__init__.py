"""The PostgreSQL store: one shared database, any number of frontends.

See :mod:`exchmail.store.postgresql.store`; the driver (psycopg 3 and
psycopg-pool, the ``postgresql`` extra) is imported only when a store is built.
"""

from exchmail.store.postgresql.settings import PostgreSQLSettings

__all__ = ["PostgreSQLSettings", "PostgreSQLStore"]


def __getattr__(name: str) -> object:
    if name == "PostgreSQLStore":
        from exchmail.store.postgresql.store import PostgreSQLStore

        return PostgreSQLStore
    raise AttributeError(name)
