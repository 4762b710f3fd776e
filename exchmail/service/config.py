"""The configuration file: TOML in, a frozen :class:`Config` out.

Tables and keys (see ``examples/exchmail.toml``)::

    [server]  data_dir = "exchmail-data"    profile = "exchange2010"
    [imap]    listen = ["tcp:1143:interface=127.0.0.1"]
    [pop3]    listen = ["tcp:1110:interface=127.0.0.1"]
    [imap]/[pop3] tls_listen = [...]            (implicit TLS, needs [tls])
    [tls]     certificate, private_key, chain, min_version, ciphers, sni (exchmail.tls)
    [auth]    users_file = "<data_dir>/users"  login_type = "SecureLogin" (sets the
              profile's LoginType of both services)
              backend = "accounts" | "ldap" | custom   [auth.options] (custom)
              cache_ttl = 300  cache_size = 10000  hash_threads = 2   (accounts backend)
    [store]   backend = "maildir" | "memory" | "postgresql" (dsn, pool_size,
              statement_timeout, poll_interval) | custom  [store.options] (custom)
    [ldap]    servers, base_dn, user_filter, ... (see :class:`LDAPConfig`)
    [gssapi]  keytab, imap_principal, realms, ...; [ntlm] domains, allow_ntlmv1;
    [oauth]   issuer, audience, jwks_file, ... (see :mod:`exchmail.auth.saslconfig`)
    [lmtp]    listen = [] (off), domains, recipient_delimiter, ... (exchmail.lmtp.settings)
    [profile] any override accepted by :func:`exchmail.profile.load_profile`
    [metrics] listen = [] (off), health_timeout; [logging] format, access;
              [auth] password_min_length   (see :mod:`exchmail.service.opsconfig`)
    [quota] limit, warning, users; [retention] interval, folders;
    [throttle] window, ...   (see :mod:`exchmail.service.limitsconfig`)

Every key is optional.  Relative paths are relative to the folder of the
configuration file.  Any problem raises :class:`~exchmail.errors.ConfigError`
with a one-line message naming the key, e.g. ``server.data_dr: unknown key``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]

from exchmail.auth.cache import DEFAULT_MAX_ENTRIES, DEFAULT_TTL
from exchmail.auth.hashpool import DEFAULT_THREADS as DEFAULT_HASH_THREADS
from exchmail.auth.ldapconfig import LDAPConfig
from exchmail.auth.saslconfig import KEYS as SASL_KEYS
from exchmail.auth.saslconfig import (
    GSSAPIConfig,
    NTLMConfig,
    OAuthConfig,
    parse_gssapi,
    parse_ntlm,
    parse_oauth,
)
from exchmail.auth.throttle import ThrottleSettings
from exchmail.errors import ConfigError
from exchmail.lmtp.settings import KEYS as LMTP_KEYS
from exchmail.lmtp.settings import LMTPSettings, parse_lmtp_table
from exchmail.profile import PROFILE_NAMES, Profile, load_profile
from exchmail.service.limitsconfig import KEYS as LIMITS_KEYS
from exchmail.service.limitsconfig import (
    QuotaConfig,
    RetentionConfig,
    parse_quota_table,
    parse_retention_table,
    parse_throttle_table,
)
from exchmail.service.opsconfig import (
    DEFAULT_PASSWORD_MIN_LENGTH,
    LOGGING_KEYS,
    METRICS_KEYS,
    LoggingConfig,
    MetricsConfig,
    parse_logging_table,
    parse_metrics_table,
    parse_password_min_length,
)
from exchmail.store.postgresql.settings import KEYS as POSTGRESQL_KEYS
from exchmail.store.postgresql.settings import PostgreSQLSettings
from exchmail.tls.config import TLSConfig, newcomer_tls, parse_tls_table

#: The accepted ``auth.login_type`` values (Exchange's ``LoginType`` parameter).
LOGIN_TYPES = ("PlainTextLogin", "PlainTextAuthentication", "SecureLogin")

DEFAULT_PROFILE = "exchange2010"
DEFAULT_DATA_DIR = "exchmail-data"
DEFAULT_IMAP_LISTEN = ("tcp:1143:interface=127.0.0.1",)
DEFAULT_POP3_LISTEN = ("tcp:1110:interface=127.0.0.1",)
#: The newcomer's implicit TLS listeners (IMAPS/POP3S; 993/995 in production).
DEFAULT_IMAP_TLS_LISTEN = ("tcp:1993:interface=127.0.0.1",)
DEFAULT_POP3_TLS_LISTEN = ("tcp:1995:interface=127.0.0.1",)


@dataclass(frozen=True)
class ServerConfig:
    """The ``[server]`` table."""

    data_dir: Path
    profile: str


@dataclass(frozen=True)
class IMAPConfig:
    """The ``[imap]`` table: Twisted server endpoint strings to listen on."""

    listen: tuple[str, ...]
    #: Implicit TLS listeners (IMAPS), served with the ``[tls]`` certificates.
    tls_listen: tuple[str, ...] = ()


@dataclass(frozen=True)
class POP3Config:
    """The ``[pop3]`` table: Twisted server endpoint strings to listen on."""

    listen: tuple[str, ...]
    #: Implicit TLS listeners (POP3S), served with the ``[tls]`` certificates.
    tls_listen: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuthConfig:
    """The ``[auth]`` table."""

    users_file: Path
    #: "accounts" (the accounts file), "ldap" (see :class:`LDAPConfig`), or a
    #: custom checker factory (see :mod:`exchmail.service.backends`).
    backend: str = "accounts"
    #: The ``[auth.options]`` table, passed to a custom checker factory.
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Seconds a verified login is remembered (0: no cache); see :mod:`exchmail.auth.cache`.
    cache_ttl: float = DEFAULT_TTL
    #: Users remembered at most by that cache.
    cache_size: int = DEFAULT_MAX_ENTRIES
    #: Threads that hash passwords (:class:`exchmail.auth.hashpool.HashPool`).
    hash_threads: int = DEFAULT_HASH_THREADS
    #: Shortest password ``exchmail user add/passwd`` accept (0: no floor).
    password_min_length: int = DEFAULT_PASSWORD_MIN_LENGTH


@dataclass(frozen=True)
class StoreConfig:
    """The ``[store]`` table: which store backend serves the mail."""

    #: "maildir" (default), "memory", or a custom store factory (see
    #: :mod:`exchmail.service.backends`: ``python:package.module:factory`` or the
    #: name of an ``exchmail.stores`` entry point).
    backend: str = "maildir"
    #: The ``[store.options]`` table, passed to a custom store factory.
    options: Mapping[str, Any] = field(default_factory=dict)
    #: ``dsn``, ``pool_size``... of ``backend = "postgresql"`` (None for the others).
    postgresql: PostgreSQLSettings | None = field(default=None, metadata={"inline": True})


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
    store: StoreConfig = field(default_factory=StoreConfig)
    ldap: LDAPConfig | None = None
    quota: QuotaConfig = field(default_factory=lambda: QuotaConfig())
    retention: RetentionConfig = field(default_factory=lambda: RetentionConfig())
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)
    logging: LoggingConfig = field(default_factory=lambda: LoggingConfig())
    #: The ``[tls]`` table (see :mod:`exchmail.tls`); None: no STARTTLS/STLS, no TLS listeners.
    tls: TLSConfig | None = None
    #: ``[gssapi]``, ``[ntlm]``, ``[oauth]`` (see :mod:`exchmail.auth.saslconfig`): None: not offered.
    gssapi: GSSAPIConfig | None = None
    ntlm: NTLMConfig | None = None
    oauth: OAuthConfig | None = None
    #: The ``[lmtp]`` table (see :mod:`exchmail.lmtp.settings`); no listener by default.
    lmtp: LMTPSettings = field(default_factory=LMTPSettings)
    #: The ``[metrics]`` table (see :mod:`exchmail.service.opsconfig`); off by default.
    metrics: MetricsConfig = field(default_factory=MetricsConfig)


_KEYS: dict[str, tuple[str, ...]] = {
    "server": ("data_dir", "profile"),
    "imap": ("listen", "tls_listen"),
    "pop3": ("listen", "tls_listen"),
    "auth": (
        "users_file",
        "login_type",
        "backend",
        "options",
        "cache_ttl",
        "cache_size",
        "hash_threads",
        "password_min_length",
    ),
    "store": ("backend", "options", *POSTGRESQL_KEYS),
    "ldap": (
        "servers",
        "base_dn",
        "user_filter",
        "scope",
        "start_tls",
        "ca_file",
        "verify_hostname",
        "bind_dn",
        "bind_password",
        "bind_password_file",
        "login_attribute",
        "mail_attribute",
        "mailbox_attribute",
        "quota_attribute",
        "imap_group",
        "pop3_group",
        "group_member_attribute",
        "connect_timeout",
        "timeout",
        "pool_size",
        "cache_ttl",
        "principal_filter",
    ),
    **LIMITS_KEYS,
    "logging": LOGGING_KEYS,
    "profile": (),  # free-form: checked by load_profile
    "tls": ("certificate", "private_key", "chain", "min_version", "ciphers", "sni", "self_signed"),
    **SASL_KEYS,
    "lmtp": LMTP_KEYS,
    "metrics": METRICS_KEYS,
}


def default_config(base_dir: Path) -> Config:
    """The configuration of a newcomer without a configuration file.

    Data lives in ``base_dir / "exchmail-data"``; IMAP and POP3 listen on
    127.0.0.1 ports 1143 and 1110 (STARTTLS/STLS) and 1993 and 1995
    (implicit TLS) with a self-signed certificate for localhost made in
    ``<data_dir>/tls`` on first start; accounts are in ``<data_dir>/users``.
    """
    data_dir = Path(base_dir) / DEFAULT_DATA_DIR
    return Config(
        server=ServerConfig(data_dir=data_dir, profile=DEFAULT_PROFILE),
        imap=IMAPConfig(listen=DEFAULT_IMAP_LISTEN, tls_listen=DEFAULT_IMAP_TLS_LISTEN),
        pop3=POP3Config(listen=DEFAULT_POP3_LISTEN, tls_listen=DEFAULT_POP3_TLS_LISTEN),
        auth=AuthConfig(users_file=data_dir / "users"),
        profile=load_profile(DEFAULT_PROFILE),
        source=None,
        tls=newcomer_tls(data_dir),
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


def _listen(
    table: Mapping[str, Any], section: str, default: tuple[str, ...], reactor: Any, key: str = "listen"
) -> tuple[str, ...]:
    value = table.get(key, list(default))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{section}.{key}: expected a list of endpoint strings, got {value!r}")
    for i, description in enumerate(value):
        _check_endpoint(f"{section}.{key}[{i}]", description, reactor)
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
    profile_name = _choice(
        _string(server, "server", "profile", DEFAULT_PROFILE), "server.profile", PROFILE_NAMES, "profile"
    )
    users_file = _path(auth, "auth", "users_file", base) or data_dir / "users"
    profile_overrides = dict(tables.get("profile", {}))
    if "login_type" in auth:
        # [auth] login_type sets both services' LoginType; [profile] may still
        # override either (imap.login_type / pop3.login_type).
        login_type = _choice(
            _string(auth, "auth", "login_type", ""), "auth.login_type", LOGIN_TYPES, "login type"
        )
        profile_overrides = {"login_type": login_type, **profile_overrides}
    auth_backend = _backend(auth, "auth", "checker", AUTH_BACKENDS)
    if auth_backend == "ldap" and "ldap" not in tables:
        raise ConfigError("ldap: missing table (auth.backend is 'ldap')")
    return Config(
        server=ServerConfig(data_dir=data_dir, profile=profile_name),
        imap=IMAPConfig(
            listen=_listen(tables.get("imap", {}), "imap", DEFAULT_IMAP_LISTEN, reactor),
            tls_listen=_listen(tables.get("imap", {}), "imap", (), reactor, "tls_listen"),
        ),
        pop3=POP3Config(
            listen=_listen(tables.get("pop3", {}), "pop3", DEFAULT_POP3_LISTEN, reactor),
            tls_listen=_listen(tables.get("pop3", {}), "pop3", (), reactor, "tls_listen"),
        ),
        auth=AuthConfig(
            users_file=users_file,
            backend=auth_backend,
            options=_options(auth, "auth"),
            **_auth_cache(auth, auth_backend),
            password_min_length=parse_password_min_length(auth),
        ),
        profile=load_profile(profile_name, profile_overrides),
        source=path,
        store=_store(tables.get("store", {})),
        ldap=_ldap(tables["ldap"], base) if "ldap" in tables else None,
        quota=parse_quota_table(tables.get("quota", {})),
        retention=parse_retention_table(tables.get("retention", {})),
        throttle=parse_throttle_table(tables.get("throttle", {})),
        logging=parse_logging_table(
            tables.get("logging", {}), _path(tables.get("logging", {}), "logging", "protocol_log_dir", base)
        ),
        tls=_tls(tables, base),
        gssapi=parse_gssapi(tables["gssapi"], base) if "gssapi" in tables else None,
        ntlm=parse_ntlm(tables["ntlm"]) if "ntlm" in tables else None,
        oauth=parse_oauth(tables["oauth"], base) if "oauth" in tables else None,
        lmtp=parse_lmtp_table(tables.get("lmtp", {}), _listen(tables.get("lmtp", {}), "lmtp", (), reactor)),
        metrics=parse_metrics_table(
            tables.get("metrics", {}), lambda where, description: _check_endpoint(where, description, reactor)
        ),
    )


# -- [auth] cache, [store], [auth] backend and [ldap] ---------------------------


def _auth_cache(table: Mapping[str, Any], backend: str) -> dict[str, Any]:
    """``[auth] cache_ttl``, ``cache_size`` and ``hash_threads`` (the accounts backend's)."""
    if backend == "ldap":
        for key in ("cache_ttl", "cache_size", "hash_threads"):
            if key in table:
                raise ConfigError(
                    f"auth.{key}: not used with auth.backend 'ldap' (see ldap.cache_ttl and ldap.pool_size)"
                )
    ttl = table.get("cache_ttl", DEFAULT_TTL)
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or ttl < 0:
        raise ConfigError(
            f"auth.cache_ttl: expected a number of seconds (0 or more; 0 turns the cache off), got {ttl!r}"
        )
    values: dict[str, Any] = {"cache_ttl": float(ttl)}
    for key, default, top in (
        ("cache_size", DEFAULT_MAX_ENTRIES, 10_000_000),
        ("hash_threads", DEFAULT_HASH_THREADS, 64),
    ):
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise ConfigError(f"auth.{key}: expected an integer from 1 to {top}, got {value!r}")
        values[key] = value
    return values


#: Built-in ``auth.backend`` and ``store.backend`` names; anything else is a
#: custom factory resolved by :mod:`exchmail.service.backends`.
AUTH_BACKENDS = ("accounts", "ldap")
STORE_BACKENDS = ("maildir", "memory", "postgresql")
LDAP_SCOPES = ("subtree", "level", "base")


def _options(table: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    value = table.get("options", {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}.options: expected a table, got {value!r}")
    return dict(value)


def _backend(table: Mapping[str, Any], where: str, kind: str, builtin: tuple[str, ...]) -> str:
    value = _string(table, where, "backend", builtin[0])
    if value in builtin:
        if table.get("options"):
            raise ConfigError(f"{where}.options: the built-in backend {value!r} takes no options")
        return value
    # A custom factory is resolved (imported) when the service is built, not
    # while the file is read: reading a configuration has no side effects.
    return value


def _store(table: Mapping[str, Any]) -> StoreConfig:
    backend = _backend(table, "store", "store", STORE_BACKENDS)
    if backend == "postgresql":
        return StoreConfig(backend=backend, postgresql=PostgreSQLSettings.from_table(table))
    stray = [key for key in POSTGRESQL_KEYS if key in table]
    if stray:
        raise ConfigError(f"store.{stray[0]}: only the postgresql backend takes it")
    return StoreConfig(backend=backend, options=_options(table, "store"))


def _typed(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], default: Any, what: str) -> Any:
    value = table.get(key, default)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"ldap.{key}: expected {what}, got {value!r}")
    return value


def _ldap(table: Mapping[str, Any], base: Path) -> LDAPConfig:
    defaults = LDAPConfig(servers=(), base_dn="")
    servers = table.get("servers")
    if isinstance(servers, str):
        servers = [servers]
    if not servers or not isinstance(servers, list) or not all(isinstance(s, str) for s in servers):
        raise ConfigError(
            f"ldap.servers: expected a non-empty list of ldap:// or ldaps:// URIs, got {servers!r}"
        )
    for i, uri in enumerate(servers):
        if not uri.lower().startswith(("ldap://", "ldaps://")):
            raise ConfigError(f"ldap.servers[{i}]: expected an ldap:// or ldaps:// URI, got {uri!r}")
    base_dn = _string(table, "ldap", "base_dn", "")
    if not base_dn:
        raise ConfigError("ldap.base_dn: required (the subtree searched for users)")
    user_filter = _string(table, "ldap", "user_filter", defaults.user_filter)
    if "{user}" not in user_filter or not (user_filter.startswith("(") and user_filter.endswith(")")):
        raise ConfigError(
            f"ldap.user_filter: expected a parenthesised LDAP filter containing {{user}}, got {user_filter!r}"
        )
    password = _string(table, "ldap", "bind_password", "")
    password_file = _path(table, "ldap", "bind_password_file", base)
    if password_file is not None:
        if password:
            raise ConfigError("ldap.bind_password_file: give bind_password or bind_password_file, not both")
        try:
            password = password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(
                f"ldap.bind_password_file: cannot read {password_file}: {getattr(e, 'strerror', None) or e}"
            ) from None
    bind_dn = _string(table, "ldap", "bind_dn", "")
    if password and not bind_dn:
        raise ConfigError("ldap.bind_dn: required when a bind password is given")
    numbers = {}
    for key, minimum in (("connect_timeout", 0.1), ("timeout", 0.1), ("cache_ttl", 0.0)):
        value = _typed(table, key, (int, float), getattr(defaults, key), "a number of seconds")
        if value < minimum:
            raise ConfigError(f"ldap.{key}: must be at least {minimum}, got {value!r}")
        numbers[key] = float(value)
    pool_size = _typed(table, "pool_size", int, defaults.pool_size, "an integer")
    if not 1 <= pool_size <= 64:
        raise ConfigError(f"ldap.pool_size: must be between 1 and 64, got {pool_size!r}")
    return LDAPConfig(
        servers=tuple(servers),
        base_dn=base_dn,
        user_filter=user_filter,
        scope=_choice(_string(table, "ldap", "scope", defaults.scope), "ldap.scope", LDAP_SCOPES, "scope"),
        start_tls=_typed(table, "start_tls", bool, False, "true or false"),
        ca_file=_path(table, "ldap", "ca_file", base),
        verify_hostname=_typed(table, "verify_hostname", bool, True, "true or false"),
        bind_dn=bind_dn,
        bind_password=password,
        login_attribute=_string(table, "ldap", "login_attribute", defaults.login_attribute),
        mail_attribute=_string(table, "ldap", "mail_attribute", defaults.mail_attribute),
        mailbox_attribute=_string(table, "ldap", "mailbox_attribute", ""),
        quota_attribute=_string(table, "ldap", "quota_attribute", ""),
        imap_group=_string(table, "ldap", "imap_group", ""),
        pop3_group=_string(table, "ldap", "pop3_group", ""),
        group_member_attribute=_string(
            table, "ldap", "group_member_attribute", defaults.group_member_attribute
        ),
        principal_filter=_string(table, "ldap", "principal_filter", ""),
        pool_size=pool_size,
        **numbers,
    )


# -- [tls] ------------------------------------------------------------------------


def _tls(tables: Mapping[str, Mapping[str, Any]], base: Path) -> TLSConfig | None:
    """``[tls]`` (see :mod:`exchmail.tls`); TLS listeners need it."""
    config = parse_tls_table(tables["tls"], base) if "tls" in tables else None
    for section in ("imap", "pop3"):
        if tables.get(section, {}).get("tls_listen") and config is None:
            raise ConfigError(f"{section}.tls_listen: needs a [tls] table with a certificate")
    return config
