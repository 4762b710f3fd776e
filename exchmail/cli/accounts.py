"""``exchmail user``, ``exchmail profile show`` and ``exchmail cert selfsigned``.

``user`` commands take ``--config FILE`` (use its ``auth.users_file``) or
``--users-file FILE``; with neither they use ``./exchmail-data/users``, the
file of a server started without a configuration file in this folder.

``user add`` and ``user passwd`` refuse passwords below the floor of
``[auth] password_min_length`` (8 characters by default; 0 turns it off),
passwords equal to the user name and one character repeated.  ``user del``
removes the account and keeps its mailbox, saying where it is; with
``--purge`` it removes the mailbox folder too (Maildir store only).
"""

from __future__ import annotations

import argparse
import getpass
import shutil
import sys
from pathlib import Path
from typing import Any

from exchmail.auth.accounts import AccountsFile
from exchmail.cli.common import Failure
from exchmail.errors import AccountError
from exchmail.profile import PROFILE_NAMES, describe, load_profile
from exchmail.service.config import Config, default_config, load_config, read_toml
from exchmail.store.names import check_user_name


def add_commands(commands: Any) -> None:
    """Add ``user``, ``profile`` and ``cert`` to the ``exchmail`` command."""
    user = commands.add_parser("user", help="manage accounts")
    user_commands = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, help_text, needs_name, reads_password in (
        ("add", "add an account", True, True),
        ("passwd", "change an account's password", True, True),
        ("del", "delete an account", True, False),
        ("list", "list the accounts", False, False),
    ):
        sub = user_commands.add_parser(action, help=help_text)
        if needs_name:
            sub.add_argument("name", metavar="NAME")
        if reads_password:
            sub.add_argument(
                "--password-stdin",
                action="store_true",
                help="read the password from the first line of standard input",
            )
            sub.add_argument(
                "--nt-hash",
                action="store_true",
                help="also store the NT hash for NTLM (password-equivalent; "
                "implied by a configuration with [ntlm])",
            )
        if action == "del":
            sub.add_argument(
                "--purge",
                action="store_true",
                help="also remove the user's mailbox folder (default: keep it)",
            )
        where = sub.add_mutually_exclusive_group()
        where.add_argument(
            "--config",
            type=Path,
            metavar="FILE",
            help="use the accounts file named by this configuration file",
        )
        where.add_argument(
            "--users-file",
            type=Path,
            metavar="FILE",
            help="the accounts file (default: ./exchmail-data/users)",
        )

    cert = commands.add_parser("cert", help="make TLS certificates")
    cert_commands = cert.add_subparsers(dest="action", required=True, metavar="ACTION")
    selfsigned = cert_commands.add_parser(
        "selfsigned",
        help="make a private key (key.pem, mode 0600) and a self-signed certificate (cert.pem) for testing",
    )
    selfsigned.add_argument(
        "--hostname",
        required=True,
        metavar="HOST",
        help="the server name clients connect to (or an IP address)",
    )
    selfsigned.add_argument(
        "--out-dir",
        type=Path,
        default=Path("exchmail-data") / "tls",
        metavar="DIR",
        help="where to write them (default: ./exchmail-data/tls, the newcomer's)",
    )
    selfsigned.add_argument(
        "--days", type=int, default=365, metavar="N", help="days of validity (default: 365)"
    )
    selfsigned.add_argument("--force", action="store_true", help="replace existing files")

    profile = commands.add_parser("profile", help="inspect conformance profiles")
    profile_commands = profile.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = profile_commands.add_parser("show", help="print every setting of a profile")
    show.add_argument(
        "name",
        nargs="?",
        metavar="NAME",
        help=f"one of {', '.join(PROFILE_NAMES)} (default: the configured profile, or exchange2010)",
    )
    show.add_argument(
        "--config", type=Path, metavar="FILE", help="apply this configuration file's [profile] overrides"
    )
    user.set_defaults(run=_user)
    cert.set_defaults(run=_cert)
    profile.set_defaults(run=_profile_show)


def _config(args: argparse.Namespace) -> Config | None:
    """The configuration named by ``--config``, the newcomer's without
    ``--users-file``, or None (a bare accounts file)."""
    if args.config is not None:
        return load_config(args.config)
    if args.users_file is not None:
        return None
    return default_config(Path.cwd())


def weak_password(password: str, name: str, min_length: int) -> str | None:
    """Why ``password`` is below the floor for user ``name`` (None: it is not)."""
    if not min_length:
        return None
    if len(password) < min_length:
        return f"the password is too short: at least {min_length} characters ([auth] password_min_length)"
    if password.lower() == name.lower():
        return "the password must not be the user name"
    if len(set(password)) == 1:
        return "the password must not be one character repeated"
    return None


def _read_password(args: argparse.Namespace, min_length: int) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise Failure("the passwords do not match", 1)
    if not password:
        raise Failure("the password must not be empty", 1)
    problem = weak_password(password, args.name, min_length)
    if problem is not None:
        raise Failure(problem, 1)
    return password


def _user(args: argparse.Namespace) -> int:
    config = _config(args)
    path = config.auth.users_file if config is not None else Path(args.users_file)
    floor = config.auth.password_min_length if config is not None else 8
    # NTLM verifies against NT hashes: a configuration with [ntlm] keeps them
    nt_hash = getattr(args, "nt_hash", False) or (config is not None and config.ntlm is not None)
    accounts = AccountsFile(path)
    if args.action == "list":
        accounts.load()
        for name in accounts.users():
            print(name)
    elif args.action == "add":
        check_user_name(args.name)  # fail before asking for a password
        accounts.load()
        if accounts.exists(args.name):
            raise AccountError(f"user {args.name!r} already exists")
        accounts.add(args.name, _read_password(args, floor), nt_hash)
        print(f"added user {args.name} to {accounts.path}")
    elif args.action == "passwd":
        accounts.load()
        if not accounts.exists(args.name):  # fail before asking for a password
            raise AccountError(f"no such user {args.name!r}")
        accounts.set_password(args.name, _read_password(args, floor), nt_hash)
        print(f"changed the password of {args.name}")
    else:
        _delete(accounts, args.name, config, args.purge)
    return 0


def _mailbox_folder(config: Config | None, name: str) -> Path | None:
    """The Maildir folder of user ``name`` (None: not a Maildir store, or unknown)."""
    if config is None or config.store.backend != "maildir":
        return None
    return config.server.data_dir / "mail" / name


def _delete(accounts: AccountsFile, name: str, config: Config | None, purge: bool) -> None:
    accounts.load()
    canonical = accounts.canonical_name(name)
    if canonical is None:
        raise AccountError(f"no such user {name!r}")
    folder = _mailbox_folder(config, canonical)
    if purge and folder is None:
        raise Failure(
            "--purge removes Maildir folders only: give --config (or no option, "
            'for ./exchmail-data) with [store] backend = "maildir"',
            2,
        )
    accounts.remove(canonical)
    if folder is None:
        print(f"deleted user {canonical}; its mail, if any, is left in the store")
    elif not folder.exists():
        print(f"deleted user {canonical} (no mailbox folder at {folder})")
    elif purge:
        try:
            shutil.rmtree(folder)
        except OSError as e:
            raise Failure(
                f"deleted user {canonical}, but cannot remove {folder}: {e.strerror or e}", 1
            ) from None
        print(f"deleted user {canonical} and removed the mailbox {folder}")
    else:
        print(
            f"deleted user {canonical}; the mailbox {folder} is kept (remove it with "
            f"'exchmail user del --purge', or add the user again to use it)"
        )


def _profile_show(args: argparse.Namespace) -> int:
    if args.config is None:
        profile = load_profile(args.name or "exchange2010")
    elif args.name is None:
        profile = load_config(args.config).profile
    else:
        load_config(args.config)  # report any error in the file
        overrides = read_toml(args.config).get("profile", {})
        profile = load_profile(args.name, overrides)
    sys.stdout.write(describe(profile))
    return 0


def _cert(args: argparse.Namespace) -> int:
    from exchmail.tls.selfsigned import make_self_signed

    if args.days < 1:
        raise Failure("--days must be at least 1", 2)
    cert, key = args.out_dir / "cert.pem", args.out_dir / "key.pem"
    existing = [str(path) for path in (cert, key) if path.exists()]
    if existing and not args.force:
        raise Failure(f"{' and '.join(existing)} already exist(s); use --force to replace", 1)
    try:
        make_self_signed(args.hostname, cert, key, days=args.days)
    except (OSError, ValueError) as e:
        raise Failure(f"cannot make the certificate: {getattr(e, 'strerror', None) or e}", 1) from None
    print(
        f"wrote {key} (private key, mode 0600) and {cert} (self-signed for {args.hostname}, {args.days} days)"
    )
    print(f'use it with:  [tls] certificate = "{cert}"  private_key = "{key}"')
    return 0
