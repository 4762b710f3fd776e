"""``exchmail db`` and ``exchmail migrate``: the PostgreSQL store's schema and data.

::

    exchmail db init    [--config FILE] [--dsn DSN]
    exchmail db upgrade [--config FILE] [--dsn DSN]
    exchmail db status  [--config FILE] [--dsn DSN]
    exchmail migrate --from maildir --to postgresql [--config FILE] [--dsn DSN]
                     [--user NAME]... [--progress auto|bar|lines|none]

The DSN comes from ``--dsn``, else from ``[store] dsn`` of the
configuration, else from the PG* environment variables.  ``init`` refuses
a database that has a schema; ``upgrade`` applies the missing migrations
(never destructive); both are safe to run from several hosts at once.

``migrate`` copies every account of the Maildir store under ``[server]
data_dir`` (or those named with ``--user``) into the database through the
import machinery of ``exchmail import``: folders, flags, internal dates and
subscriptions are kept, UIDs and UIDVALIDITY are new (clients resync), and
a second run imports nothing twice (``<data_dir>/imports/USER.map``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from exchmail.cli.common import Failure
from exchmail.errors import ConfigError, StoreError
from exchmail.service.config import Config, default_config, load_config


def add_commands(commands: Any) -> None:
    """Add ``db`` and ``migrate`` to the ``exchmail`` command."""
    db = commands.add_parser("db", help="create or upgrade the PostgreSQL store's schema")
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        ("init", "create the schema in an empty database"),
        ("upgrade", "apply the schema migrations the database lacks"),
        ("status", "show the database's schema version"),
    ):
        sub = actions.add_parser(name, help=text)
        _connection_options(sub)
        sub.set_defaults(run=run_db)
    migrate = commands.add_parser("migrate", help="copy the Maildir store's mail into PostgreSQL")
    migrate.add_argument("--from", dest="source", choices=("maildir",), required=True)
    migrate.add_argument("--to", dest="target", choices=("postgresql",), required=True)
    migrate.add_argument("--user", action="append", metavar="NAME", help="only this account (repeatable)")
    migrate.add_argument(
        "--progress",
        choices=("auto", "bar", "lines", "none"),
        default="auto",
        help="a progress bar (auto: on a terminal), plain lines, or nothing",
    )
    _connection_options(migrate)
    migrate.set_defaults(run=run_migrate)


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="the server's configuration file (for [server] data_dir and [store] dsn)",
    )
    parser.add_argument("--dsn", metavar="DSN", help="libpq connection string (default: [store] dsn, PG*)")


def _config(args: argparse.Namespace) -> Config:
    try:
        return load_config(args.config) if args.config else default_config(Path.cwd())
    except ConfigError as e:
        raise Failure(str(e), 2) from None


def _dsn(args: argparse.Namespace, config: Config) -> str:
    if args.dsn is not None:
        return str(args.dsn)
    settings = config.store.postgresql
    return settings.dsn if settings is not None else ""


def _connect(dsn: str) -> Any:
    try:
        import psycopg
    except ImportError:
        raise Failure("psycopg is not installed: pip install 'exchmail[postgresql]'", 2) from None
    try:
        return psycopg.connect(dsn)
    except psycopg.Error as e:
        raise Failure(f"cannot connect to the database: {str(e).strip()}", 1) from None


def run_db(args: argparse.Namespace) -> int:
    from exchmail.store.postgresql import schema

    conn = _connect(_dsn(args, _config(args)))
    try:
        with conn:
            if args.action == "status":
                version = schema.current_version(conn)
                state = "no schema" if version is None else f"schema version {version}"
                print(f"exchmail: {state} (this exchmail writes version {schema.LATEST})")
                return 0 if version == schema.LATEST else 1
            step = schema.init if args.action == "init" else schema.upgrade
            version = step(conn, lambda text: print(f"exchmail: {text}", file=sys.stderr))
    except schema.SchemaError as e:
        raise Failure(str(e), 1) from None
    print(f"exchmail: the database is at schema version {version}")
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    from exchmail.cli.delivery import wait
    from exchmail.cli.transfer import make_progress
    from exchmail.store.maildir import MaildirStore
    from exchmail.store.postgresql import schema
    from exchmail.store.postgresql.db import Database
    from exchmail.store.postgresql.store import PostgreSQLStore
    from exchmail.transfer.importer import Importer, ImportMap
    from exchmail.transfer.maildir import MaildirSource

    config = _config(args)
    dsn = _dsn(args, config)
    with _connect(dsn) as conn:
        try:
            schema.check(conn)
        except schema.SchemaError as e:
            raise Failure(str(e), 1) from None
    root = config.server.data_dir / "mail"
    users = args.user or wait(MaildirStore(root).account_names())
    target = PostgreSQLStore(Database(dsn, pool_size=2), listen=False)
    failed = 0
    try:
        for number, user in enumerate(users, 1):
            if not (root / user).is_dir():
                raise Failure(f"no Maildir for {user!r} under {root}", 1)
            print(f"exchmail: migrate: account {number}/{len(users)}: {user}", file=sys.stderr)
            account = wait(target.account(user))
            import_map = ImportMap(config.server.data_dir / "imports" / f"{user}.map")
            source = MaildirSource(root / user)
            try:
                report = wait(
                    Importer(account, import_map, make_progress(args.progress, "migrate")).run(source)
                )
                _copy_subscriptions(MaildirStore(root), account, user, wait)
            finally:
                import_map.close()
                source.close()
            for label, reason in report.failed:
                print(f"exchmail: failed: {user}: {label}: {reason}", file=sys.stderr)
            failed += len(report.failed)
            print(f"exchmail: migrate {user}: {report.summary()}", file=sys.stderr)
    except StoreError as e:
        raise Failure(f"the database refused: {e}", 1) from None
    finally:
        target.close()
    return 1 if failed else 0


def _copy_subscriptions(source: Any, account: Any, user: str, wait: Any) -> None:
    """The Maildir account's subscriptions, added to the migrated account."""
    for name in sorted(wait(wait(source.account(user)).subscriptions())):
        wait(account.subscribe(name))
