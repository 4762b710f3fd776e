"""Start-up checks: dead ends refused or warned about before a server runs.

``twistd exchmail`` refuses to start, with one line, when

- a service listens but nobody can log in to it (:func:`login_path_problems`:
  ``login_type = "SecureLogin"``, no ``[tls]``, and no mechanism that keeps
  the password off the wire), or
- the accounts file cannot be read or parsed (:func:`accounts_file_problem`);

and it warns about files others may change or read
(:func:`unsafe_mode_warnings`: a world-writable accounts file, a private key
others can read or write).  ``exchmail config check`` reports all of these
and the other dead ends of :func:`dead_ends`.  Nothing here changes a file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from exchmail.auth.accounts import AccountsFile
from exchmail.errors import AccountError
from exchmail.profile.settings import LoginType

#: Per service: the services and the profile sections that configure them.
SERVICES = ("imap", "pop3")


def _listens(config: Any, name: str) -> bool:
    section = getattr(config, name)
    return bool(section.listen or section.tls_listen)


def login_path_problems(config: Any, mechanisms: Mapping[str, Mapping[str, bool]] | None = None) -> list[str]:
    """One line per service that listens but where no client can log in.

    :param mechanisms: per service, the SASL mechanisms it offers by name,
        each with whether it sends the password in the clear (from the built
        session contexts); ``None`` estimates them from the profile.
    """
    if mechanisms is None:
        mechanisms = {name: configured_mechanisms(config, name) for name in SERVICES}
    problems = []
    for name in SERVICES:
        if not _listens(config, name) or config.tls is not None:
            continue
        settings = getattr(config.profile, name)
        offered = mechanisms.get(name, {})
        login_type = settings.login_type
        if login_type is LoginType.PLAIN_TEXT_LOGIN:
            continue
        if login_type is LoginType.PLAIN_TEXT_AUTHENTICATION and offered:
            continue
        if any(not plaintext for plaintext in offered.values()):
            continue
        refused = "LOGIN" if name == "imap" else "USER/PASS"
        problems.append(
            f"{name}: nobody can log in: login_type is {login_type.value} and there is no "
            f"[tls] table, so {refused} and plaintext SASL are refused and "
            f"{'STARTTLS' if name == 'imap' else 'STLS'} is not offered (add [tls], e.g. "
            f"with 'exchmail cert selfsigned' or self_signed = \"localhost\", or offer "
            f"SCRAM-SHA-256 in {name}.sasl_mechanisms)"
        )
    return problems


def configured_mechanisms(config: Any, name: str) -> dict[str, bool]:
    """The SASL mechanisms the profile offers for service ``name`` that are known,
    with whether each is plaintext; SCRAM only with the accounts file (the
    one built-in checker that keeps SCRAM keys) or a custom checker."""
    from exchmail.auth.sasl import MECHANISMS
    from exchmail.auth.saslsetup import offered_mechanisms

    # Kerberos, NTLM and bearer tokens are offered only with their tables.
    unconfigured = {
        key
        for key, table in (
            ("GSSAPI", config.gssapi),
            ("NTLM", config.ntlm),
            ("XOAUTH2", config.oauth),
            ("OAUTHBEARER", config.oauth),
        )
        if table is None
    }
    found = {}
    for mechanism in offered_mechanisms(getattr(config.profile, name)):
        cls = MECHANISMS.get(mechanism.upper().encode("ascii", "replace"))
        if cls is None or mechanism.upper() in unconfigured:
            continue
        if cls.name == b"SCRAM-SHA-256" and config.auth.backend == "ldap":
            continue  # the directory keeps no SCRAM keys
        found[cls.name.decode("ascii")] = bool(cls.plaintext)
    return found


def accounts_file_problem(config: Any) -> str | None:
    """Why the accounts file cannot be used (``None``: it can, or it is not used)."""
    if config.auth.backend != "accounts":
        return None
    try:
        AccountsFile(config.auth.users_file).load()
    except AccountError as error:
        return f"auth.users_file: {error}"
    return None


def _mode(path: Path) -> int | None:
    try:
        return os.stat(path).st_mode
    except OSError:
        return None


def unsafe_mode_warnings(config: Any) -> list[str]:
    """Files that others may change (or, for private keys, read)."""
    warnings = []
    if config.auth.backend == "accounts":
        mode = _mode(config.auth.users_file)
        if mode is not None and mode & stat.S_IWOTH:
            warnings.append(
                f"auth.users_file: {config.auth.users_file} is world-writable: "
                f"anyone on this machine can add an account (chmod 600 it)"
            )
    if config.tls is not None:
        keys = [("tls.private_key", config.tls.identity.private_key)]
        keys += [
            (f'tls.sni."{name}".private_key', identity.private_key)
            for name, identity in config.tls.sni.items()
        ]
        for where, path in keys:
            mode = _mode(path)
            if mode is not None and mode & (stat.S_IROTH | stat.S_IWOTH):
                what = "world-writable" if mode & stat.S_IWOTH else "world-readable"
                warnings.append(
                    f"{where}: {path} is {what}: anyone on this machine can "
                    f"{'replace' if mode & stat.S_IWOTH else 'read'} the "
                    f"server's private key (chmod 600 it)"
                )
    return warnings


def dead_ends(config: Any) -> list[str]:
    """Configurations that start but do not do what their author likely wants."""
    found = []
    if not any(_listens(config, name) for name in SERVICES):
        found.append("imap.listen, pop3.listen: no listener at all: the server serves nothing")
    if config.ldap is not None:
        plain = [uri for uri in config.ldap.servers if uri.lower().startswith("ldap://")]
        if plain and not config.ldap.start_tls:
            found.append(
                f"ldap.servers: {', '.join(plain)} without start_tls: users' "
                f"passwords cross the network in the clear"
            )
    if config.auth.backend == "accounts" and accounts_file_problem(config) is None:
        accounts = AccountsFile(config.auth.users_file)
        accounts.load()
        if not accounts.users():
            found.append(
                f"auth.users_file: {config.auth.users_file} holds no account yet "
                f"(add one with 'exchmail user add NAME"
                f"{' --config ' + str(config.source) if config.source else ''}')"
            )
    quota = config.quota
    if quota.limit and quota.warning and quota.warning >= quota.limit:
        found.append("quota.warning: not below quota.limit, so no warning comes before the limit")
    for i, description in enumerate(config.metrics.listen):
        if "interface=" not in description and description.startswith("tcp:"):
            found.append(
                f"metrics.listen[{i}]: {description!r} listens on every address: "
                f"anyone who can reach it reads the metrics (add "
                f"interface=127.0.0.1)"
            )
    return found


__all__ = [
    "accounts_file_problem",
    "configured_mechanisms",
    "dead_ends",
    "login_path_problems",
    "unsafe_mode_warnings",
]
