"""Choosing backends in the configuration: [store] backend, [auth] backend, [ldap]."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from twisted.internet.testing import MemoryReactorClock

from exchmail.errors import ConfigError
from exchmail.interfaces import IStore
from exchmail.service.backends import BackendContext, build, resolve_factory
from exchmail.service.build import make_service
from exchmail.service.config import load_config
from exchmail.store.memory import MemoryStore


def memory_factory(context: BackendContext) -> Any:
    return MemoryStore()


def not_a_store(context: BackendContext) -> Any:
    return object()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exchmail.toml"
    path.write_text(text)
    return path


def test_reading_a_config_imports_no_backend(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[store]\nbackend = "python:no_such_module_x:f"'))
    assert config.store.backend == "python:no_such_module_x:f"


def test_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.store.backend == "maildir" and config.auth.backend == "accounts"
    assert config.ldap is None


def test_python_factory(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            f"""
[store]
backend = "python:{__name__}:memory_factory"
[store.options]
anything = 1
""",
        )
    )
    assert config.store.options == {"anything": 1}
    assert resolve_factory(config.store.backend, "store", "store.backend") is memory_factory


@pytest.mark.parametrize(
    "text, message",
    [
        ('[store]\nbackend = "python:no_such_module_x:f"', "store.backend: cannot load"),
        ('[store]\nbackend = "python:no_colon"', "store.backend: expected 'python:"),
        ('[store]\nbackend = "appdb"', "store.backend: unknown backend 'appdb'"),
        ('[auth]\nbackend = "python:os:sep"', "auth.backend: 'python:os:sep' is not callable"),
        ('[store]\nbackend = "maildir"\n[store.options]\nx = 1', "store.options: the built-in"),
        ("[store]\nbackend = 3", "store.backend: expected a string"),
        ('[store]\nbakend = "x"', "store.bakend: unknown key"),
        ('[auth]\nbackend = "ldap"', "ldap: missing table"),
        ('[ldap]\nbase_dn = "dc=x"', "ldap.servers: expected a non-empty list"),
        ('[ldap]\nservers = ["http://x"]\nbase_dn = "dc=x"', "ldap.servers[0]: expected an ldap://"),
        ('[ldap]\nservers = ["ldap://x"]', "ldap.base_dn: required"),
        (
            '[ldap]\nservers = ["ldap://x"]\nbase_dn = "dc=x"\nuser_filter = "(uid=%s)"',
            "ldap.user_filter: expected",
        ),
        ('[ldap]\nservers = ["ldap://x"]\nbase_dn = "dc=x"\npool_size = 0', "ldap.pool_size"),
        ('[ldap]\nservers = ["ldap://x"]\nbase_dn = "dc=x"\ntimeout = "1"', "ldap.timeout"),
        ('[ldap]\nservers = ["ldap://x"]\nbase_dn = "dc=x"\nstart_tls = 1', "ldap.start_tls"),
        ('[ldap]\nservers = ["ldap://x"]\nbase_dn = "dc=x"\nscope = "deep"', "ldap.scope"),
        ('[ldap]\nservers = ["ldap://x"]\nbase_dn = "dc=x"\nbind_password = "p"', "ldap.bind_dn"),
        (
            '[ldap]\nservers = ["ldap://x"]\nbase_dn = "dc=x"\nbind_dn = "cn=a"\n'
            'bind_password_file = "missing"',
            "ldap.bind_password_file: cannot read",
        ),
        ('[ldap]\nservers = ["ldap://x"]\nbase_dn = "dc=x"\nport = 1', "ldap.port: unknown key"),
        (
            '[profile]\n"imap.sasl_mechanisms" = ["PLAIN", "CRAM-MD5"]',
            "profile.imap.sasl_mechanisms: unknown SASL mechanism 'CRAM-MD5' (choose SCRAM-SHA-256, PLAIN",
        ),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    # Reading the file checks its syntax; backends are resolved when the
    # service is built, so either step may be the one that refuses.
    with pytest.raises(ConfigError) as info:
        make_service(load_config(write(tmp_path, text)), reactor=MemoryReactorClock())
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_ldap_table(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("s3cret\n")
    config = load_config(
        write(
            tmp_path,
            """
[auth]
backend = "ldap"
[ldap]
servers = ["ldaps://ldap1.example.org", "ldap://ldap2.example.org"]
start_tls = true
ca_file = "ca.pem"
base_dn = "ou=people,dc=example,dc=org"
bind_dn = "cn=exchmail,dc=example,dc=org"
bind_password_file = "secret"
imap_group = "cn=imap,dc=example,dc=org"
timeout = 3
pool_size = 8
cache_ttl = 30
""",
        )
    )
    ldap = config.ldap
    assert ldap is not None and config.auth.backend == "ldap"
    assert ldap.servers == ("ldaps://ldap1.example.org", "ldap://ldap2.example.org")
    assert ldap.ca_file == tmp_path / "ca.pem" and ldap.bind_password == "s3cret"
    assert (ldap.timeout, ldap.pool_size, ldap.cache_ttl) == (3.0, 8, 30.0)
    assert ldap.user_filter == "(&(objectClass=inetOrgPerson)(uid={user}))"
    assert ldap.verify_hostname and ldap.pop3_group == ""


def test_build_checks_the_interface(tmp_path: Path) -> None:
    context = BackendContext(None, {}, tmp_path, None, lambda f, *a: f(*a))
    assert isinstance(
        build(f"python:{__name__}:memory_factory", "store", "store.backend", context, IStore), MemoryStore
    )
    with pytest.raises(ConfigError, match="store.backend: .* does not provide IStore"):
        build(f"python:{__name__}:not_a_store", "store", "store.backend", context, IStore)


def test_tls_listener_of_a_programmatic_config_needs_tls(tmp_path: Path) -> None:
    """Embedders build Configs in code: a TLS listener without [tls] is refused
    when the service is built (a configuration file is refused when read)."""
    from dataclasses import replace

    config = load_config(write(tmp_path, "[imap]\nlisten = []\n[pop3]\nlisten = []\n"))
    config = replace(config, pop3=replace(config.pop3, tls_listen=("tcp:0:interface=127.0.0.1",)))
    with pytest.raises(ConfigError, match=r"^pop3\.tls_listen: needs a \[tls\] table$"):
        make_service(config, reactor=MemoryReactorClock(), store=MemoryStore())


def test_first_account_is_created_and_announced_once(tmp_path: Path) -> None:
    from twisted.logger import globalLogPublisher

    from exchmail.auth.accounts import AccountsFile

    config = load_config(write(tmp_path, "[imap]\nlisten = []\n[pop3]\nlisten = []\n"))
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        for _ in range(2):  # the second start finds the account
            make_service(config, reactor=MemoryReactorClock(), store=MemoryStore(), create_first_account=True)
    finally:
        globalLogPublisher.removeObserver(events.append)
    announced = [e for e in events if e.get("log_format", "").startswith("Created the first account")]
    assert len(announced) == 1
    accounts = AccountsFile(config.auth.users_file)
    accounts.load()
    assert accounts.users() == [announced[0]["name"]]
