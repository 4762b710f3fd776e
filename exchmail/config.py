"""The configuration file: TOML in, a frozen :class:`Config` out.

Tables and keys (see ``examples/exchmail.toml``)::

    [server]  data_dir = "exchmail-data"    profile = "exchange2010"
    [imap]    listen = ["tcp:1143:interface=127.0.0.1"]
    [pop3]    listen = ["tcp:1110:interface=127.0.0.1"]
    [auth]    users_file = "<data_dir>/users"  login_type = "PlainTextLogin"
    [profile] any override accepted by :func:`exchmail.profile.load_profile`

Every key is optional.  Relative paths are relative to the folder of the
configuration file.  Any problem raises :class:`~exchmail.errors.ConfigError`
with a one-line message naming the key, e.g. ``server.data_dr: unknown key``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]

from exchmail.errors import ConfigError
from exchmail.profile import PROFILE_NAMES, Profile, load_profile

#: The accepted ``auth.login_type`` values (Exchange's ``LoginType`` parameter).
LOGIN_TYPES = ("PlainTextLogin", "PlainTextAuthentication", "SecureLogin")

DEFAULT_PROFILE = "exchange2010"
DEFAULT_DATA_DIR = "exchmail-data"
DEFAULT_IMAP_LISTEN = ("tcp:1143:interface=127.0.0.1",)
DEFAULT_POP3_LISTEN = ("tcp:1110:interface=127.0.0.1",)
DEFAULT_LOGIN_TYPE = "PlainTextLogin"


@dataclass(frozen=True)
class ServerConfig:
    """The ``[server]`` table."""

    data_dir: Path
    profile: str


@dataclass(frozen=True)
class IMAPConfig:
    """The ``[imap]`` table: Twisted server endpoint strings to listen on."""

    listen: tuple[str, ...]


@dataclass(frozen=True)
class POP3Config:
    """The ``[pop3]`` table: Twisted server endpoint strings to listen on."""

    listen: tuple[str, ...]


@dataclass(frozen=True)
class AuthConfig:
    """The ``[auth]`` table."""

    users_file: Path
    login_type: str


@dataclass(frozen=True)
class Config:
    """A complete, validated configuration.

    ``profile`` is the loaded profile with the ``[profile]`` overrides
    applied; ``source`` is the file it was read from (``None`` for
    :func:`default_config`).
    """

    server: ServerConfig
    imap: IMAPConfig
    pop3: POP3Config
    auth: AuthConfig
    profile: Profile
    source: Path | None


_KEYS: dict[str, tuple[str, ...]] = {
    "server": ("data_dir", "profile"),
    "imap": ("listen",),
    "pop3": ("listen",),
    "auth": ("users_file", "login_type"),
    "profile": (),  # free-form: checked by load_profile
}


def default_config(base_dir: Path) -> Config:
    """The configuration of a newcomer without a configuration file.

    Data lives in ``base_dir / "exchmail-data"``; IMAP and POP3 listen on
    127.0.0.1 ports 1143 and 1110; accounts are in ``<data_dir>/users``.
    """
    data_dir = Path(base_dir) / DEFAULT_DATA_DIR
    return Config(
        server=ServerConfig(data_dir=data_dir, profile=DEFAULT_PROFILE),
        imap=IMAPConfig(listen=DEFAULT_IMAP_LISTEN),
        pop3=POP3Config(listen=DEFAULT_POP3_LISTEN),
        auth=AuthConfig(users_file=data_dir / "users", login_type=DEFAULT_LOGIN_TYPE),
        profile=load_profile(DEFAULT_PROFILE),
        source=None,
    )


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed TOML document at ``path``.

    :raises ConfigError: naming the file if it cannot be read or parsed.
    """
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 ({e.reason})") from None


def _tables(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    tables: dict[str, Mapping[str, Any]] = {}
    for name, table in doc.items():
        if name not in _KEYS:
            raise ConfigError(f"{name}: unknown table (expected one of {', '.join(_KEYS)})")
        if not isinstance(table, Mapping):
            raise ConfigError(f"{name}: expected a table, got {table!r}")
        if name != "profile":
            for key in table:
                if key not in _KEYS[name]:
                    raise ConfigError(f"{name}.{key}: unknown key")
        tables[name] = table
    return tables


def _string(table: Mapping[str, Any], where: str, key: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{key}: expected a string, got {value!r}")
    return value


def _path(table: Mapping[str, Any], where: str, key: str, base: Path) -> Path | None:
    if key not in table:
        return None
    value = _string(table, where, key, "")
    if not value:
        raise ConfigError(f"{where}.{key}: must not be empty")
    return base / Path(value).expanduser()


def _check_endpoint(where: str, description: str, reactor: Any) -> None:
    from twisted.internet.endpoints import serverFromString

    if reactor is None:
        from twisted.internet import reactor as global_reactor
        reactor = global_reactor
    try:
        serverFromString(reactor, description)
    except Exception as e:  # noqa: BLE001 - any failure means the string is unusable
        reason = str(e) or type(e).__name__
        raise ConfigError(f"{where}: bad endpoint {description!r}: {reason}") from None


def _listen(table: Mapping[str, Any], section: str, default: tuple[str, ...],
            reactor: Any) -> tuple[str, ...]:
    value = table.get("listen", list(default))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{section}.listen: expected a list of endpoint strings, got {value!r}")
    for i, description in enumerate(value):
        _check_endpoint(f"{section}.listen[{i}]", description, reactor)
    return tuple(value)


def _choice(value: str, where: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ConfigError(f"{where}: unknown {what} {value!r} (choose {', '.join(choices)})")
    return value


def load_config(path: Path, *, reactor: Any = None) -> Config:
    """Read and validate the configuration file at ``path``.

    :param reactor: used only to validate endpoint strings; the global
        reactor is imported lazily when omitted.
    :raises ConfigError: with a one-line message naming the file or key.
    """
    path = Path(path)
    doc = read_toml(path)
    tables = _tables(doc)
    base = path.resolve().parent
    server = tables.get("server", {})
    auth = tables.get("auth", {})

    data_dir = _path(server, "server", "data_dir", base) or base / DEFAULT_DATA_DIR
    profile_name = _choice(_string(server, "server", "profile", DEFAULT_PROFILE),
                           "server.profile", PROFILE_NAMES, "profile")
    users_file = _path(auth, "auth", "users_file", base) or data_dir / "users"
    login_type = _choice(_string(auth, "auth", "login_type", DEFAULT_LOGIN_TYPE),
                         "auth.login_type", LOGIN_TYPES, "login type")
    return Config(
        server=ServerConfig(data_dir=data_dir, profile=profile_name),
        imap=IMAPConfig(listen=_listen(tables.get("imap", {}), "imap",
                                       DEFAULT_IMAP_LISTEN, reactor)),
        pop3=POP3Config(listen=_listen(tables.get("pop3", {}), "pop3",
                                       DEFAULT_POP3_LISTEN, reactor)),
        auth=AuthConfig(users_file=users_file, login_type=login_type),
        profile=load_profile(profile_name, tables.get("profile", {})),
        source=path,
    )
