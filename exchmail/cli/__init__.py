"""The ``exchmail`` command: manage accounts, inspect profiles, make certificates.

::

    exchmail --version
    exchmail user add NAME [--password-stdin]
    exchmail user passwd NAME [--password-stdin]
    exchmail user del NAME [--purge]
    exchmail user list
    exchmail profile show [NAME] [--config FILE]
    exchmail cert selfsigned --hostname HOST [--out-dir DIR] [--days N] [--force]
    exchmail deliver [--config FILE] [--folder F] USER < message
    exchmail import [--config FILE] [--folder F] USER SOURCE   (mbox, Maildir, imaps://)
    exchmail export [--config FILE] [--format mbox|maildir] USER DEST
    exchmail config check [--config FILE]
    exchmail db init|upgrade|status [--config FILE] [--dsn DSN]
    exchmail migrate --from maildir --to postgresql [--config FILE] [--dsn DSN] [--user NAME]...
    exchmail serve --ephemeral [--user NAME:PASSWORD]... [--profile P] [--tls] ...
    exchmail control SOCKET [REQUEST]...

Each group of subcommands lives in a module of this package with an
``add_commands(subparsers)`` function; a subcommand's ``run(args)`` returns
the exit status.

Exit status: 0 on success; 1 when an operation fails (unknown or duplicate
user, invalid name, unreadable accounts file, passwords that do not match);
2 for usage and configuration errors.  Errors are one line,
``exchmail: error: ...``, on standard error.
"""

from __future__ import annotations

import argparse
import sys

from exchmail import __version__
from exchmail.cli import accounts, configcheck, database, delivery, serve, transfer
from exchmail.cli.common import PROG, Failure
from exchmail.errors import AccountError, ConfigError, InvalidUserName

#: The modules whose ``add_commands`` make up the command, in help order.
COMMAND_MODULES = (accounts, delivery, transfer, database, configcheck, serve)


def parser() -> argparse.ArgumentParser:
    """The ``exchmail`` argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog=PROG, description="Manage an exchmail IMAP4/POP3 server.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``exchmail`` command with ``argv`` (default: ``sys.argv[1:]``).

    :return: the exit status (see the module docstring).
    """
    try:
        args = parser().parse_args(argv)
    except SystemExit as e:  # --help, or a usage error already printed
        return e.code if isinstance(e.code, int) else 2
    try:
        status: int = args.run(args)
        return status
    except Failure as e:
        message, status = str(e), e.status
    except (AccountError, InvalidUserName) as e:
        message, status = str(e), 1
    except ConfigError as e:
        message, status = str(e), 2
    except (EOFError, KeyboardInterrupt):
        message, status = "interrupted", 1
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
