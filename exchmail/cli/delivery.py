"""``exchmail deliver``: one message from standard input into a mailbox.

A mail delivery agent for procmail, ``fetchmail --mda``, cron scripts and
``mailbox_command``::

    exchmail deliver [--config FILE] [--folder FOLDER] USER < message

``USER`` is an account name or an address (``alice+lists@example.org``),
resolved through the same directory as logins and LMTP.  ``--folder``
names the folder (created if missing); otherwise a ``+detail`` chooses it
as ``[lmtp] detail_folder`` says, else INBOX.  An mbox ``From `` line in
front of the message is dropped.

With the Maildir store it needs no running server and is safe beside one
(see :mod:`exchmail.lmtp.local`); other stores are used through the store
API (:class:`~exchmail.lmtp.delivery.Deliverer`).

Exit status (``sysexits.h``, which MTAs and procmail read): 0 delivered;
64 usage; 65 empty message; 67 unknown user; 73 mailbox full (``[lmtp]
over_quota = 552``); 74 standard input unreadable; 75 temporary failure
(directory or store unavailable, ``over_quota = 452``); 78 configuration
error.  Errors are one line on standard error.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from twisted.internet import defer
from twisted.python.failure import Failure as TwistedFailure

from exchmail.cli.common import Failure
from exchmail.errors import ConfigError, DirectoryUnavailable, InvalidUserName
from exchmail.lmtp.delivery import Deliverer, Reply, over_quota_reply
from exchmail.lmtp.recipients import Recipient, RecipientResolver
from exchmail.service.config import Config, default_config, load_config
from exchmail.store.crlf import CRLFConverter

EX_OK, EX_USAGE, EX_DATAERR, EX_NOUSER = 0, 64, 65, 67
EX_SOFTWARE, EX_CANTCREAT, EX_IOERR, EX_TEMPFAIL, EX_CONFIG = 70, 73, 74, 75, 78
SPOOL_MEMORY = 1024 * 1024


def add_commands(commands: Any) -> None:
    """Add ``deliver`` to the ``exchmail`` command."""
    deliver = commands.add_parser(
        "deliver", help="deliver a message from standard input (an MDA for procmail, fetchmail --mda, cron)"
    )
    deliver.add_argument("user", metavar="USER", help="account name or address (user+detail@domain)")
    deliver.add_argument(
        "--folder",
        "-m",
        metavar="FOLDER",
        help="deliver into this folder ('/'-separated; created if missing)",
    )
    deliver.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="the server's configuration file (default: the newcomer set-up in this folder)",
    )
    deliver.set_defaults(run=run)


def wait(d: defer.Deferred[Any]) -> Any:
    """The result of ``d``; runs the reactor if it has not fired yet (custom stores)."""
    outcome: list[Any] = []
    d.addBoth(outcome.append)
    if not outcome:
        from twisted.internet import reactor as global_reactor

        reactor: Any = global_reactor
        d.addBoth(lambda _: reactor.stop())
        reactor.run(installSignalHandlers=False)
    if isinstance(outcome[0], TwistedFailure):
        outcome[0].raiseException()
    return outcome[0]


def read_message(stream: BinaryIO) -> BinaryIO:
    """Standard input as a spooled file in wire form (CRLF), without a ``From `` line."""
    spool: Any = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)
    converter = CRLFConverter()
    first = True
    while chunk := stream.read(64 * 1024):
        if first and chunk.startswith(b"From "):
            while b"\n" not in chunk:  # the envelope line may span reads
                more = stream.read(64 * 1024)
                if not more:
                    break
                chunk += more
            chunk = chunk.partition(b"\n")[2]
        first = False
        spool.write(converter.feed(chunk))
    spool.write(converter.flush())
    spool.seek(0)
    result: BinaryIO = spool
    return result


def directory_for(config: Config) -> Any:
    """The ``[auth]`` backend as a directory, working without a reactor."""
    if config.auth.backend == "accounts":
        from exchmail.auth.checker import AccountsChecker

        return AccountsChecker(config.auth.users_file)
    if config.auth.backend == "ldap" and config.ldap is not None:
        from exchmail.auth.ldap import LDAPChecker

        return LDAPChecker(config.ldap)
    from twisted.application.service import MultiService

    from exchmail.service.backends import make_checker
    from exchmail.store.runner import run_sync

    return make_checker(config, None, run_sync, MultiService())


def exit_status(reply: Reply) -> int:
    """The sysexits status of a delivery reply."""
    if reply.ok:
        return EX_OK
    if reply.temporary:
        return EX_TEMPFAIL
    if reply.status == "5.1.1":
        return EX_NOUSER
    return EX_CANTCREAT


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config) if args.config else default_config(Path.cwd())
    except ConfigError as e:
        raise Failure(str(e), EX_CONFIG) from None
    try:
        message = read_message(sys.stdin.buffer)
    except OSError as e:
        raise Failure(f"cannot read the message: {e.strerror or e}", EX_IOERR) from None
    if message.seek(0, 2) == 0:
        raise Failure("the message is empty", EX_DATAERR)
    message.seek(0)
    try:
        resolver = RecipientResolver(
            directory_for(config), config.lmtp.recipient_delimiter, config.lmtp.domains
        )
        recipient = wait(resolver.resolve(args.user))
    except ConfigError as e:
        raise Failure(str(e), EX_CONFIG) from None
    except (DirectoryUnavailable, OSError) as e:
        raise Failure(f"cannot look {args.user!r} up: {e}", EX_TEMPFAIL) from None
    if recipient is None:
        raise Failure(f"no such user {args.user!r}", EX_NOUSER)
    reply = deliver(config, recipient, message, args.folder)
    if not reply.ok:
        raise Failure(reply.text, exit_status(reply))
    return EX_OK


def deliver(config: Config, recipient: Recipient, message: BinaryIO, folder: str | None) -> Reply:
    """Deliver ``message`` to ``recipient`` in the store ``config`` names."""
    mode = config.lmtp.detail_folder
    wanted = folder or (recipient.detail if mode != "off" else "")
    create = bool(folder) or mode == "create"
    if config.store.backend == "memory":
        raise Failure("the memory store lives inside the server: deliver through LMTP", EX_CONFIG)
    if config.store.backend != "maildir":
        from exchmail.service.backends import open_store

        deliverer = Deliverer(open_store(config), "create" if create else mode, config.lmtp.over_quota)
        return wait(deliverer.deliver(Recipient(recipient.address, recipient.user, wanted), message))
    return _maildir(config, recipient, message, wanted, create)


def _maildir(config: Config, recipient: Recipient, message: BinaryIO, folder: str, create: bool) -> Reply:
    from exchmail.lmtp.local import drop, usage
    from exchmail.store.quota import QuotaLimits, QuotaPolicy

    root = config.server.data_dir / "mail"
    quota = config.quota
    policy = QuotaPolicy(
        QuotaLimits(quota.limit, quota.warning),
        {user: QuotaLimits(*limits) for user, limits in quota.users.items()},
    )
    limit = policy.limits_for(recipient.user).limit
    size = message.seek(0, 2)
    message.seek(0)
    try:
        if limit:
            used = usage(root, recipient.user)
            if used + size > limit:
                return over_quota_reply(
                    config.lmtp.over_quota,
                    recipient.address,
                    f"{used} of {limit} octets used, the message has {size}",
                )
        name, _ = drop(root, recipient.user, message, folder, create)
    except InvalidUserName:
        return Reply(550, "5.1.1", f"<{recipient.address}> no such mailbox")
    except OSError as e:
        return Reply(451, "4.3.0", f"cannot store the message: {e.strerror or e}")
    return Reply(250, "2.0.0", f"delivered to {recipient.user} in {name}")
