"""The ``[gssapi]``, ``[ntlm]`` and ``[oauth]`` tables: what the mechanisms need.

Kept apart from the mechanisms so that reading a configuration never
imports the optional ``gssapi``, ``pyspnego`` or ``PyJWT`` packages; whether
they are installed and the set-up is usable is checked when the service is
built (:mod:`exchmail.auth.saslsetup`).  Every problem raises
:class:`~exchmail.errors.ConfigError` with one line naming the key.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exchmail.errors import ConfigError

#: Signature algorithms accepted by default: asymmetric only (no shared
#: secrets, never ``none``).
DEFAULT_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
#: The largest clock skew accepted for token times, in seconds.
MAX_LEEWAY = 300.0


@dataclass(frozen=True)
class GSSAPIConfig:
    """``[gssapi]``: Kerberos acceptor credentials and the principal -> account rule."""

    keytab: Path
    imap_principal: str
    pop3_principal: str
    #: Realms whose ``user@REALM`` principals log in as ``user``.
    realms: tuple[str, ...] = ()
    #: Principal -> account, for everything the realm rule does not cover.
    principals: Mapping[str, str] = field(default_factory=dict)
    #: Principal -> accounts it may act for (SASL authorization identity).
    authorize: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class NTLMConfig:
    """``[ntlm]``: NTLM against the NT hashes of the accounts file."""

    #: NTLM domains (and UPN suffixes) whose users log in by their bare name.
    domains: tuple[str, ...] = ()
    #: Accept NTLMv1 responses (weak: Exchange's LmCompatibilityLevel below 3).
    allow_ntlmv1: bool = False
    #: The NetBIOS domain name the server's challenge names.
    target_name: str = "WORKGROUP"


@dataclass(frozen=True)
class OAuthConfig:
    """``[oauth]``: who issues bearer tokens and how they are checked."""

    issuer: str
    audience: tuple[str, ...]
    jwks_file: Path | None = None
    issuer_key: Path | None = None
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway: float = 60.0
    #: The claim naming the account, mapped like a principal (domains, accounts).
    account_claim: str = "preferred_username"
    domains: tuple[str, ...] = ()
    accounts: Mapping[str, str] = field(default_factory=dict)
    #: Space-separated scopes a token must carry (``scope``/``scp`` claim).
    scope: str = ""
    #: Sent in the RFC 7628 error challenge.
    openid_configuration: str = ""
    introspection_url: str = ""
    introspection_client_id: str = ""
    introspection_client_secret: str = ""
    introspection_timeout: float = 5.0
    #: Seconds an introspection answer is reused (never past the token's expiry).
    introspection_cache_ttl: float = 60.0


KEYS = {
    "gssapi": ("keytab", "hostname", "imap_principal", "pop3_principal", "realms", "principals", "authorize"),
    "ntlm": ("domains", "allow_ntlmv1", "target_name"),
    "oauth": (
        "issuer",
        "audience",
        "jwks_file",
        "issuer_key",
        "algorithms",
        "leeway",
        "account_claim",
        "domains",
        "accounts",
        "scope",
        "openid_configuration",
        "introspection_url",
        "introspection_client_id",
        "introspection_client_secret",
        "introspection_client_secret_file",
        "introspection_timeout",
        "introspection_cache_ttl",
    ),
}


def _check_keys(table: Mapping[str, Any], where: str) -> None:
    for key in table:
        if key not in KEYS[where]:
            raise ConfigError(f"{where}.{key}: unknown key")


def _str(table: Mapping[str, Any], where: str, key: str, default: str = "") -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{key}: expected a string, got {value!r}")
    return value


def _strings(
    table: Mapping[str, Any], where: str, key: str, default: tuple[str, ...] = ()
) -> tuple[str, ...]:
    value = table.get(key, list(default))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}.{key}: expected a list of non-empty strings, got {value!r}")
    return tuple(value)


def _mapping(table: Mapping[str, Any], where: str, key: str) -> dict[str, str]:
    value = table.get(key, {})
    if not isinstance(value, Mapping) or not all(isinstance(v, str) and v for v in value.values()):
        raise ConfigError(f"{where}.{key}: expected a table of names, got {value!r}")
    return dict(value)


def _file(table: Mapping[str, Any], where: str, key: str, base: Path) -> Path | None:
    value = _str(table, where, key)
    return base / Path(value).expanduser() if value else None


def _seconds(table: Mapping[str, Any], where: str, key: str, default: float, top: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= top:
        raise ConfigError(f"{where}.{key}: expected seconds from 0 to {top:g}, got {value!r}")
    return float(value)


def parse_gssapi(table: Mapping[str, Any], base: Path) -> GSSAPIConfig:
    """``[gssapi]``; the keytab is checked when the service is built."""
    _check_keys(table, "gssapi")
    keytab = _file(table, "gssapi", "keytab", base)
    if keytab is None:
        raise ConfigError("gssapi.keytab: required (the acceptor's keytab file)")
    host = _str(table, "gssapi", "hostname") or socket.getfqdn()
    authorize_table = table.get("authorize", {})
    if not isinstance(authorize_table, Mapping):
        raise ConfigError(f"gssapi.authorize: expected a table, got {authorize_table!r}")
    authorize = {
        principal: _strings(authorize_table, "gssapi.authorize", principal) for principal in authorize_table
    }
    return GSSAPIConfig(
        keytab=keytab,
        imap_principal=_str(table, "gssapi", "imap_principal", f"imap/{host}"),
        pop3_principal=_str(table, "gssapi", "pop3_principal", f"pop/{host}"),
        realms=_strings(table, "gssapi", "realms"),
        principals=_mapping(table, "gssapi", "principals"),
        authorize=authorize,
    )


def parse_ntlm(table: Mapping[str, Any]) -> NTLMConfig:
    """``[ntlm]``."""
    _check_keys(table, "ntlm")
    legacy = table.get("allow_ntlmv1", False)
    if not isinstance(legacy, bool):
        raise ConfigError(f"ntlm.allow_ntlmv1: expected true or false, got {legacy!r}")
    domains = _strings(table, "ntlm", "domains")
    target = _str(table, "ntlm", "target_name", domains[0].split(".")[0].upper() if domains else "WORKGROUP")
    return NTLMConfig(domains=domains, allow_ntlmv1=legacy, target_name=target or "WORKGROUP")


def parse_oauth(table: Mapping[str, Any], base: Path) -> OAuthConfig:
    """``[oauth]``; key files are read when the service is built."""
    _check_keys(table, "oauth")
    issuer = _str(table, "oauth", "issuer")
    if not issuer:
        raise ConfigError("oauth.issuer: required (the tokens' 'iss' claim)")
    audience = _strings(table, "oauth", "audience")
    if not audience:
        raise ConfigError("oauth.audience: required (the tokens' 'aud' claim)")
    algorithms = _strings(table, "oauth", "algorithms", DEFAULT_ALGORITHMS)
    for name in algorithms:
        if name not in DEFAULT_ALGORITHMS:
            raise ConfigError(
                f"oauth.algorithms: {name!r} is not accepted (choose from {', '.join(DEFAULT_ALGORITHMS)})"
            )
    secret = _str(table, "oauth", "introspection_client_secret")
    secret_file = _file(table, "oauth", "introspection_client_secret_file", base)
    if secret_file is not None:
        try:
            secret = secret_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(
                f"oauth.introspection_client_secret_file: cannot read "
                f"{secret_file}: {getattr(e, 'strerror', None) or e}"
            ) from None
    config = OAuthConfig(
        issuer=issuer,
        audience=audience,
        jwks_file=_file(table, "oauth", "jwks_file", base),
        issuer_key=_file(table, "oauth", "issuer_key", base),
        algorithms=algorithms,
        leeway=_seconds(table, "oauth", "leeway", 60.0, MAX_LEEWAY),
        account_claim=_str(table, "oauth", "account_claim", "preferred_username"),
        domains=_strings(table, "oauth", "domains"),
        accounts=_mapping(table, "oauth", "accounts"),
        scope=_str(table, "oauth", "scope"),
        openid_configuration=_str(table, "oauth", "openid_configuration"),
        introspection_url=_str(table, "oauth", "introspection_url"),
        introspection_client_id=_str(table, "oauth", "introspection_client_id"),
        introspection_client_secret=secret,
        introspection_timeout=_seconds(table, "oauth", "introspection_timeout", 5.0, 60.0),
        introspection_cache_ttl=_seconds(table, "oauth", "introspection_cache_ttl", 60.0, 3600.0),
    )
    if not (config.jwks_file or config.issuer_key or config.introspection_url):
        raise ConfigError(
            "oauth.jwks_file: give jwks_file, issuer_key or introspection_url (how tokens are checked)"
        )
    if config.jwks_file and config.issuer_key:
        raise ConfigError("oauth.issuer_key: give jwks_file or issuer_key, not both")
    if config.introspection_url and not config.introspection_url.startswith(("https://", "http://")):
        raise ConfigError(
            f"oauth.introspection_url: expected an http(s) URL, got {config.introspection_url!r}"
        )
    if not config.account_claim:
        raise ConfigError("oauth.account_claim: must not be empty")
    return config
