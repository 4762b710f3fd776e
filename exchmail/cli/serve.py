"""``exchmail serve --ephemeral`` and ``exchmail control``: a throw-away server for tests.

::

    exchmail serve --ephemeral [--user NAME:PASSWORD]... [--profile P] [--tls]
                   [--login-type T] [--seed FILE.mbox]... [--setting KEY=VALUE]...
                   [--store memory|maildir] [--host ADDR] [--port-file F] [--verbose]
    exchmail control SOCKET [REQUEST]...

``serve --ephemeral`` starts an IMAP and POP3 server on loopback ports
chosen by the system, prints them (with the CA file and the control
socket) as one line of JSON, and runs until SIGTERM or SIGINT, keeping
everything in memory or in a temporary folder removed on exit.  The server
itself is :mod:`exchmail.testing.standalone` (imported when the command
runs, so that the other commands start without the test kit).  ``control`` sends
JSON requests to its control socket (:mod:`exchmail.testing.control`), one
per argument (or per line of standard input), and prints the answers.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]

from exchmail.cli.common import Failure
from exchmail.errors import ConfigError
from exchmail.profile import PROFILE_NAMES, load_profile
from exchmail.service.config import LOGIN_TYPES

#: Seconds ``exchmail control`` waits for an answer.
CONTROL_TIMEOUT = 30.0


def add_commands(commands: Any) -> None:
    """Add ``serve`` and ``control`` to the ``exchmail`` command."""
    serve = commands.add_parser(
        "serve",
        help="run a throw-away server for client tests (--ephemeral)",
        description="Run an IMAP and POP3 server for a client's tests on loopback ports "
        "chosen by the system; print its ports as JSON; keep everything in "
        "memory or a temporary folder removed on exit (SIGTERM/SIGINT).",
    )
    serve.add_argument(
        "--ephemeral",
        action="store_true",
        help="required: the only mode (run a lasting server with twistd exchmail)",
    )
    serve.add_argument(
        "--user", action="append", default=[], metavar="NAME:PASSWORD", help="an account (repeatable)"
    )
    serve.add_argument(
        "--profile",
        default="exchange2010",
        choices=PROFILE_NAMES,
        help="the conformance profile (default: exchange2010)",
    )
    serve.add_argument(
        "--login-type",
        default="PlainTextLogin",
        choices=LOGIN_TYPES,
        help="Exchange's LoginType (default here: PlainTextLogin)",
    )
    serve.add_argument(
        "--tls", action="store_true", help="offer STARTTLS/STLS and implicit TLS ports, with a generated CA"
    )
    serve.add_argument(
        "--seed",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="an mbox file whose messages go into every user's INBOX (repeatable)",
    )
    serve.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a profile setting, as in [profile] (value in TOML syntax, or a bare string); repeatable",
    )
    serve.add_argument(
        "--store",
        default="memory",
        choices=("memory", "maildir"),
        help="keep mail in memory (default) or in a temporary Maildir",
    )
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    serve.add_argument(
        "--port-file",
        type=Path,
        metavar="FILE",
        help="also write the JSON line to FILE (atomically; removed on exit)",
    )
    serve.add_argument("--verbose", action="store_true", help="log sessions to standard error")
    serve.set_defaults(run=_serve)

    control = commands.add_parser(
        "control",
        help="send requests to a test server's control socket",
        description="Send JSON requests to the control socket of 'exchmail serve "
        "--ephemeral' and print the answers, one per line.",
    )
    control.add_argument(
        "socket", type=Path, metavar="SOCKET", help='the "control_socket" that serve printed'
    )
    control.add_argument(
        "requests",
        nargs="*",
        metavar="REQUEST",
        help='JSON objects such as \'{"op": "describe"}\' (default: one per line of standard input)',
    )
    control.set_defaults(run=_control)


def _users(specs: list[str]) -> dict[str, str]:
    users = {}
    for spec in specs:
        name, sep, password = spec.partition(":")
        if not sep or not name or not password:
            raise Failure(f"--user {spec!r}: expected NAME:PASSWORD", 2)
        users[name] = password
    return users


def _settings(specs: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key.strip():
            raise Failure(f"--setting {spec!r}: expected KEY=VALUE", 2)
        try:
            settings[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            settings[key.strip()] = value  # a bare string
    return settings


def _serve(args: argparse.Namespace) -> int:
    if not args.ephemeral:
        raise Failure("only 'serve --ephemeral' exists; run a lasting server with 'twistd exchmail'", 2)
    settings = _settings(args.setting)
    load_profile(args.profile, {"login_type": args.login_type, **settings})  # ConfigError now
    for path in args.seed:
        if not path.is_file():
            raise Failure(f"--seed {path}: no such file", 2)
    from exchmail.testing.standalone import Options, run

    options = Options(
        users=_users(args.user),
        profile=args.profile,
        login_type=args.login_type,
        tls=args.tls,
        store=args.store,
        host=args.host,
        seeds=tuple(args.seed),
        settings=settings,
        port_file=args.port_file,
        verbose=args.verbose,
    )
    return run(options)


def _control(args: argparse.Namespace) -> int:
    requests = args.requests or [line for line in sys.stdin.read().splitlines() if line.strip()]
    lines = []
    for request in requests:
        try:  # one line each, whatever the layout of the argument
            lines.append(json.dumps(json.loads(request)).encode("utf-8") + b"\n")
        except ValueError as e:
            raise ConfigError(f"not a JSON request: {request!r} ({e})") from None
    status = 0
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(CONTROL_TIMEOUT)
            connection.connect(str(args.socket))
            reader = connection.makefile("rb")
            for line in lines:
                connection.sendall(line)
                answer = reader.readline()
                if not answer:
                    raise Failure("the server closed the control connection", 1)
                sys.stdout.write(answer.decode("utf-8"))
                if not json.loads(answer).get("ok"):
                    status = 1
    except OSError as e:
        raise Failure(f"{args.socket}: {e.strerror or e}", 1) from None
    return status
