"""``exchmail config check [--config FILE]``: load everything, print what differs.

Like ``doveconf -n``: the file is read and validated as ``twistd exchmail``
would (the TLS files are loaded, custom backends imported, the accounts
file parsed), then the *effective* settings that differ from the defaults
are printed in TOML syntax (paths absolute, passwords as ``****``, profile
settings that differ from the chosen profile under ``[profile]``).  Dead
ends follow on standard error as ``exchmail: warning: ...``, and those
``twistd exchmail`` refuses as ``exchmail: error: ...``.

Exit status: 0 (maybe with warnings), 1 when the server would refuse to
start, 2 for a configuration error (one line, as at start-up).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from exchmail import __version__
from exchmail.cli.common import PROG
from exchmail.errors import ConfigError
from exchmail.profile import load_profile
from exchmail.profile.loader import format_value
from exchmail.profile.settings import SECTIONS
from exchmail.service import preflight
from exchmail.service.config import Config, default_config, load_config

#: Values never printed.
SECRETS = ("ldap.bind_password", "store.dsn")  # a libpq string may hold a password
#: Config fields that are not tables of their own.
_SKIP = ("profile", "source")


def add_commands(commands: Any) -> None:
    """Add ``config check`` to the ``exchmail`` command."""
    group = commands.add_parser("config", help="check a configuration file")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="load everything as the server would, print the non-default settings and warn about dead ends",
    )
    check.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="the configuration file (default: the newcomer set-up of "
        "'twistd exchmail' without one, in this folder)",
    )
    group.set_defaults(run=run)


def _flat(prefix: str, value: Any, base: Path | None) -> Iterator[tuple[str, Any]]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            # "inline": the field's own keys sit in the table itself ([store] dsn).
            name = prefix if f.metadata.get("inline") else f"{prefix}.{f.name}"
            yield from _flat(name, getattr(value, f.name), base)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            name = f'"{key}"' if not str(key).isidentifier() else str(key)
            yield from _flat(f"{prefix}.{name}", item, base)
    elif isinstance(value, Path) and base is not None:
        try:  # compared relative to the file's folder, printed absolute
            yield prefix, ("path", value.relative_to(base).as_posix(), value)
        except ValueError:
            yield prefix, ("path", value.as_posix(), value)
    else:
        yield prefix, value


def settings(config: Config) -> dict[str, Any]:
    """``"table.key"`` -> value for every setting of ``config`` but the profile."""
    base = config.source.resolve().parent if config.source is not None else Path.cwd()
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        if f.name not in _SKIP:
            out.update(_flat(f.name, getattr(config, f.name), base))
    return out


def _defaults() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        empty = Path(folder) / "empty.toml"
        empty.write_text("")
        return settings(load_config(empty))


def _shown(key: str, value: Any) -> str:
    if key in SECRETS:
        return '"****"'
    if isinstance(value, tuple) and len(value) == 3 and value[0] == "path":
        return format_value(str(value[2]))
    if isinstance(value, float):
        return repr(value)
    if value is None:
        return '""'
    return format_value(value)


def non_default_lines(config: Config) -> list[str]:
    """The effective settings that differ from the defaults, as TOML lines by table."""
    defaults = _defaults()
    tables: dict[str, list[str]] = {}
    for key, value in settings(config).items():
        if key in defaults and defaults[key] == value:
            continue
        table, _, name = key.partition(".")
        tables.setdefault(table, []).append(f"{name} = {_shown(key, value)}")
    builtin = load_profile(config.profile.name)
    for section in SECTIONS:
        mine, base = getattr(config.profile, section), getattr(builtin, section)
        for f in dataclasses.fields(mine):
            if getattr(mine, f.name) != getattr(base, f.name):
                tables.setdefault("profile", []).append(
                    f"{section}.{f.name} = {format_value(getattr(mine, f.name))}"
                )
    lines = []
    for table, entries in tables.items():
        lines += [f"[{table}]", *entries, ""]
    return lines


def _tls_problem(config: Config) -> str | None:
    if config.tls is None:
        return None
    if config.tls.self_signed and not config.tls.identity.certificate.exists():
        return None  # made at the first start
    from exchmail.tls.context import build_context

    try:
        build_context(config.tls)
    except ConfigError as error:
        return str(error)
    return None


def _backend_problems(config: Config) -> list[str]:
    from exchmail.service.backends import resolve_factory
    from exchmail.service.config import AUTH_BACKENDS, STORE_BACKENDS

    problems = []
    for where, spec, builtin, kind in (
        ("store.backend", config.store.backend, STORE_BACKENDS, "store"),
        ("auth.backend", config.auth.backend, AUTH_BACKENDS, "checker"),
    ):
        if spec not in builtin:
            try:
                resolve_factory(spec, kind, where)
            except ConfigError as error:
                problems.append(str(error))
    return problems


def run(args: argparse.Namespace) -> int:
    """Check the file; see the module docstring for the output and the status."""
    if args.config is not None:
        config = load_config(args.config)
    else:
        config = default_config(Path.cwd())
    errors = [p for p in (_tls_problem(config), preflight.accounts_file_problem(config)) if p]
    errors += _backend_problems(config)
    errors += preflight.login_path_problems(config)
    warnings = preflight.unsafe_mode_warnings(config) + preflight.dead_ends(config)
    source = config.source if config.source is not None else "(no file: the newcomer set-up)"
    print(f"# exchmail {__version__}: {source}")
    print(f"# profile {config.profile.name}; settings that differ from the defaults:")
    for line in non_default_lines(config):
        print(line)
    for warning in warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    for error in errors:
        print(f"{PROG}: error: {error}", file=sys.stderr)
    return 1 if errors else 0
