"""Tests of exchmail.service.config: TOML in, frozen Config out, one-line errors."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from exchmail.errors import ConfigError
from exchmail.profile.settings import LoginType
from exchmail.service.config import Config, default_config, load_config

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "exchmail.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exchmail.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_default_config(tmp_path):
    config = default_config(tmp_path)
    assert config.server.data_dir == tmp_path / "exchmail-data"
    assert config.server.profile == "exchange2010"
    assert config.imap.listen == ("tcp:1143:interface=127.0.0.1",)
    assert config.pop3.listen == ("tcp:1110:interface=127.0.0.1",)
    assert config.auth.users_file == tmp_path / "exchmail-data" / "users"
    # Exchange's default (V0022/V0010), in the profile of both services
    assert config.profile.imap.login_type is LoginType.SECURE_LOGIN
    assert config.profile.pop3.login_type is LoginType.SECURE_LOGIN
    assert config.profile.name == "exchange2010"
    assert config.source is None


def test_config_is_frozen(tmp_path):
    config = default_config(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.source = tmp_path  # type: ignore[misc]


def test_example_file_loads():
    config = load_config(EXAMPLE)
    assert isinstance(config, Config)
    assert config.source == EXAMPLE
    assert config.server.data_dir == EXAMPLE.parent / "exchmail-data"
    # The example documents the override but leaves the Exchange default on.
    assert config.profile.imap.exact_rfc822_size is False


def test_empty_file_gives_defaults_relative_to_file(tmp_path):
    config = load_config(write(tmp_path, ""))
    base = tmp_path.resolve()
    assert config.server.data_dir == base / "exchmail-data"
    assert config.auth.users_file == base / "exchmail-data" / "users"
    assert config.imap.listen == ("tcp:1143:interface=127.0.0.1",)
    assert config.profile == default_config(tmp_path).profile


def test_full_file(tmp_path):
    config = load_config(
        write(
            tmp_path,
            """
[server]
data_dir = "mail"
profile = "rfc3501"
[imap]
listen = ["tcp:143", "tcp:1143:interface=0.0.0.0"]
[pop3]
listen = []
[auth]
users_file = "/etc/exchmail/users"
login_type = "SecureLogin"
[profile]
"pop3.max_command_size" = 1000
[profile.imap]
capabilities = ["IDLE"]
""",
        )
    )
    assert config.server.data_dir == tmp_path.resolve() / "mail"
    assert config.server.profile == "rfc3501"
    assert config.imap.listen == ("tcp:143", "tcp:1143:interface=0.0.0.0")
    assert config.pop3.listen == ()
    assert config.auth.users_file == Path("/etc/exchmail/users")
    assert config.profile.imap.login_type is LoginType.SECURE_LOGIN
    assert config.profile.name == "rfc3501"
    assert config.profile.pop3.max_command_size == 1000
    assert config.profile.imap.capabilities == ("IDLE",)
    assert config.profile.imap.exact_rfc822_size is True


def test_users_file_follows_data_dir(tmp_path):
    config = load_config(write(tmp_path, '[server]\ndata_dir = "/srv/mail"\n'))
    assert config.auth.users_file == Path("/srv/mail/users")


def test_relative_users_file(tmp_path):
    config = load_config(write(tmp_path, '[auth]\nusers_file = "etc/users"\n'))
    assert config.auth.users_file == tmp_path.resolve() / "etc" / "users"


def test_listen_accepts_single_string(tmp_path):
    config = load_config(write(tmp_path, '[imap]\nlisten = "tcp:143"\n'))
    assert config.imap.listen == ("tcp:143",)


@pytest.mark.parametrize(
    "text,message",
    [
        ('[server]\ndata_dr = "x"\n', "server.data_dr: unknown key"),
        ("[imap]\nport = 143\n", "imap.port: unknown key"),
        ('[pop3]\nlisten = ["tcp:110"]\nfoo = 1\n', "pop3.foo: unknown key"),
        ('[auth]\nusers = "x"\n', "auth.users: unknown key"),
        ("[smtp]\nlisten = []\n", "smtp: unknown table"),
        ('server = "x"\n', "server: expected a table"),
        ("[server]\ndata_dir = 5\n", "server.data_dir: expected a string, got 5"),
        ('[server]\ndata_dir = ""\n', "server.data_dir: must not be empty"),
        (
            '[server]\nprofile = "x"\n',
            "server.profile: unknown profile 'x' (choose exchange2010, exchange2007, rfc3501, modern, "
            "exchange2016)",
        ),
        ("[server]\nprofile = true\n", "server.profile: expected a string, got True"),
        (
            '[auth]\nlogin_type = "Basic"\n',
            (
                "auth.login_type: unknown login type 'Basic' "
                "(choose PlainTextLogin, PlainTextAuthentication, SecureLogin)"
            ),
        ),
        ("[auth]\nusers_file = 1\n", "auth.users_file: expected a string, got 1"),
        ('[imap]\nlisten = ["xyz"]\n', "imap.listen[0]: bad endpoint 'xyz': "),
        ('[pop3]\nlisten = ["tcp:110", "tcp:abc"]\n', "pop3.listen[1]: bad endpoint 'tcp:abc': "),
        ("[imap]\nlisten = [143]\n", "imap.listen: expected a list of endpoint strings"),
        ("[profile]\nexact_rfc822_sise = true\n", "profile.exact_rfc822_sise: unknown setting"),
        ('[profile]\nmax_command_size = "abc"\n', "profile.max_command_size: expected an integer, got 'abc'"),
    ],
)
def test_errors_name_the_key(tmp_path, text, message):
    assert error_of(write(tmp_path, text)).startswith(message)


def test_bad_endpoint_reason(tmp_path):
    message = error_of(write(tmp_path, '[imap]\nlisten = ["xyz"]\n'))
    assert message == "imap.listen[0]: bad endpoint 'xyz': Unknown endpoint type: 'xyz'"


def test_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    message = error_of(path)
    assert message.startswith(f"{path}: cannot read: ")


def test_toml_syntax_error(tmp_path):
    path = write(tmp_path, "[server\n")
    message = error_of(path)
    assert message.startswith(f"{path}: invalid TOML: ")


def test_not_utf8(tmp_path):
    path = tmp_path / "exchmail.toml"
    path.write_bytes(b'[server]\ndata_dir = "\xff"\n')
    assert error_of(path).startswith(f"{path}: invalid TOML")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file(tmp_path):
    path = write(tmp_path, "")
    path.chmod(0)
    assert error_of(path).startswith(f"{path}: cannot read: ")


def test_injected_reactor_is_used(tmp_path):
    from twisted.internet.testing import MemoryReactor

    config = load_config(write(tmp_path, '[imap]\nlisten = ["tcp:143"]\n'), reactor=MemoryReactor())
    assert config.imap.listen == ("tcp:143",)


def test_directory_instead_of_file(tmp_path):
    assert error_of(tmp_path).startswith(f"{tmp_path}: cannot read: ")
