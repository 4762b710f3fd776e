"""``exchmail import`` and ``exchmail export``: moving whole mailboxes.

::

    exchmail import [--config FILE] [--folder F] [--ca-file PEM] USER SOURCE
    exchmail export [--config FILE] [--format mbox|maildir] [--folder F]... USER DEST

``SOURCE`` is an mbox file, a folder of mbox files, a Maildir/Maildir++
tree, or ``imaps://user@host[:port][/folder]`` (``imap://`` with
STARTTLS); the remote password comes from the environment variable
``EXCHMAIL_IMPORT_PASSWORD`` or else the first line of standard input.
Imports are idempotent: ``<data_dir>/imports/USER.map`` lists what was
imported, so running the same import again imports nothing twice.

On a terminal a progress bar (tqdm) shows messages, octets and the rate;
otherwise a plain line every few seconds.  A summary ends the run.
Messages that cannot be read or stored are reported and skipped; the exit
status is then 1 (0 when everything went, 2 for usage and configuration
errors).

Both work on the store directly, like ``exchmail deliver``; unlike it they
write the store's UID lists, so with the Maildir store run them while the
server is stopped, or at least while nobody uses that account.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from exchmail.cli.common import Failure
from exchmail.cli.delivery import directory_for, wait
from exchmail.errors import ConfigError
from exchmail.service.config import Config, default_config, load_config

PASSWORD_VARIABLE = "EXCHMAIL_IMPORT_PASSWORD"
#: Seconds between the plain progress lines written when not on a terminal.
LINE_INTERVAL = 5.0


def add_commands(commands: Any) -> None:
    """Add ``import`` and ``export`` to the ``exchmail`` command."""
    importing = commands.add_parser(
        "import", help="import mail (mbox, Maildir, or imaps://user@host) into an account"
    )
    importing.add_argument("user", metavar="USER", help="the account to import into")
    importing.add_argument(
        "source",
        metavar="SOURCE",
        help="an mbox file, a folder of mbox files, a Maildir tree, or imaps://user@host[:port][/folder]",
    )
    importing.add_argument(
        "--folder",
        metavar="FOLDER",
        help="put every message into this folder (default: keep the "
        "source's folders; a single mbox file goes to INBOX)",
    )
    importing.add_argument(
        "--ca-file", metavar="PEM", help="trust these CA certificates for imaps:// (default: the system's)"
    )
    exporting = commands.add_parser("export", help="export an account as mbox files or Maildir")
    exporting.add_argument("user", metavar="USER", help="the account to export")
    exporting.add_argument(
        "dest", type=Path, metavar="DEST", help="a folder (or, with one --folder and mbox, a file)"
    )
    exporting.add_argument(
        "--format",
        choices=("mbox", "maildir"),
        default="mbox",
        help="mbox files (default) or a Maildir++ tree",
    )
    exporting.add_argument(
        "--folder", action="append", metavar="FOLDER", help="export only this folder (repeatable)"
    )
    for sub in (importing, exporting):
        sub.add_argument(
            "--config",
            type=Path,
            metavar="FILE",
            help="the server's configuration file (default: the newcomer set-up in this folder)",
        )
        sub.add_argument(
            "--progress",
            choices=("auto", "bar", "lines", "none"),
            default="auto",
            help="a progress bar (auto: on a terminal), plain lines, or nothing",
        )
    importing.set_defaults(run=run_import)
    exporting.set_defaults(run=run_export)


# -- progress ----------------------------------------------------------------------------


class BarProgress:
    """A tqdm progress bar on standard error: octets, rate, and messages done."""

    def __init__(self, verb: str, stream: TextIO) -> None:
        self.verb, self.stream = verb, stream
        self.bar: Any = None
        self.done = self.total = 0

    def start(self, messages: int, octets: int) -> None:
        from tqdm import tqdm  # type: ignore[import-untyped]

        self.total = messages
        self.bar = tqdm(
            total=octets,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=self.verb,
            file=self.stream,
            dynamic_ncols=True,
            mininterval=0.2,
        )
        self.bar.set_postfix_str(f"0/{messages} messages")

    def advance(self, octets: int, outcome: str) -> None:
        self.done += 1
        self.bar.set_postfix_str(f"{self.done}/{self.total} messages", refresh=False)
        self.bar.update(octets)

    def problem(self, text: str) -> None:
        self.bar.write(f"exchmail: {text}", file=self.stream)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.close()


class LineProgress:
    """Plain lines on standard error, every :data:`LINE_INTERVAL` seconds and at the end."""

    def __init__(self, verb: str, stream: TextIO) -> None:
        self.verb, self.stream = verb, stream
        self.done = self.total = self.octets = 0
        self.started = self.last = 0.0

    def start(self, messages: int, octets: int) -> None:
        self.total = messages
        self.started = self.last = time.monotonic()
        self._line(f"{self.verb}: {messages} messages, {octets} octets to go")

    def advance(self, octets: int, outcome: str) -> None:
        self.done += 1
        self.octets += octets
        if time.monotonic() - self.last >= LINE_INTERVAL:
            self.report()

    def report(self) -> None:
        self.last = time.monotonic()
        rate = self.done / max(self.last - self.started, 1e-6)
        self._line(
            f"{self.verb}: {self.done}/{self.total} messages, {self.octets} octets, {rate:.0f} messages/s"
        )

    def problem(self, text: str) -> None:
        self._line(text)

    def finish(self) -> None:
        self.report()

    def _line(self, text: str) -> None:
        print(f"exchmail: {text}", file=self.stream, flush=True)


def make_progress(choice: str, verb: str, stream: TextIO | None = None) -> Any:
    """The progress display for ``--progress`` (auto: a bar on a terminal), on
    ``stream`` (default: ``sys.stderr`` as it is when called, like the
    command's other messages, also where something replaced it after import)."""
    from exchmail.transfer.importer import QuietProgress

    if stream is None:
        stream = sys.stderr
    if choice == "none":
        return QuietProgress()
    if choice == "bar" or (choice == "auto" and stream.isatty()):
        return BarProgress(verb, stream)
    return LineProgress(verb, stream)


# -- the commands ------------------------------------------------------------------------


def _setup(args: argparse.Namespace) -> tuple[Config, str, Any]:
    """The configuration, the canonical account name and its store account."""
    from exchmail.lmtp.recipients import RecipientResolver
    from exchmail.service.backends import open_store

    try:
        config = load_config(args.config) if args.config else default_config(Path.cwd())
    except ConfigError as e:
        raise Failure(str(e), 2) from None
    if config.store.backend == "memory":
        raise Failure("the memory store lives inside the server; nothing to import into", 2)
    resolver = RecipientResolver(directory_for(config), "", ())
    recipient = wait(resolver.resolve(args.user))
    if recipient is None:
        raise Failure(f"no such user {args.user!r}", 1)
    store = open_store(config)
    return config, recipient.user, wait(store.account(recipient.user))


def open_source(text: str, folder: str | None, ca_file: str | None) -> Any:
    """The import source ``text`` names."""
    from exchmail.store.maildir import layout
    from exchmail.transfer.maildir import MaildirSource, tree_folders
    from exchmail.transfer.mbox import MboxSource

    if "://" in text:
        from exchmail.transfer.imap import IMAPSource, parse_imap_url

        try:
            location = parse_imap_url(text)
        except ValueError as e:
            raise Failure(str(e), 2) from None
        password = os.environ.get(PASSWORD_VARIABLE)
        if password is None:
            password = sys.stdin.readline().rstrip("\r\n")
        try:
            return IMAPSource(location, password, ca_file)
        except Exception as e:  # noqa: BLE001 - any connection or login failure: one line
            raise Failure(f"cannot log in to {location.host}: {e}", 1) from None
    path = Path(text)
    if not path.exists():
        raise Failure(f"{text}: no such file or folder", 2)
    if path.is_dir() and (layout.is_maildir(path) or tree_folders(path)):
        return MaildirSource(path)
    return MboxSource(path, folder if path.is_file() else None)


def run_import(args: argparse.Namespace) -> int:
    from exchmail.transfer.importer import Importer, ImportMap

    config, user, account = _setup(args)
    source = open_source(args.source, args.folder, args.ca_file)
    import_map = ImportMap(config.server.data_dir / "imports" / f"{user}.map")
    progress = make_progress(args.progress, "import")
    into = args.folder if "://" in args.source or Path(args.source).is_dir() else None
    try:
        report = wait(Importer(account, import_map, progress, into=into).run(source))
    finally:
        import_map.close()
        source.close()
    for label, reason in report.failed:
        print(f"exchmail: failed: {label}: {reason}", file=sys.stderr)
    print(f"exchmail: import into {user}: {report.summary()}", file=sys.stderr)
    return 1 if report.failed else 0


def run_export(args: argparse.Namespace) -> int:
    from exchmail.transfer.exporter import Exporter

    _, user, account = _setup(args)
    progress = make_progress(args.progress, "export")
    report = wait(Exporter(account, args.dest, args.format, progress, folders=args.folder).run())
    for label, reason in report.failed:
        print(f"exchmail: failed: {label}: {reason}", file=sys.stderr)
    print(f"exchmail: export of {user}: {report.summary()}", file=sys.stderr)
    return 1 if report.failed else 0
