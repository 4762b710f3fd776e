"""The operator's CLI: --version, config check, the password floor, user del and --purge;
the deployment files (systemd unit, LICENSE)."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exchmail import __version__
from exchmail.auth.accounts import AccountsFile
from exchmail.cli import main

ROOT = Path(__file__).resolve().parents[2]


def run(monkeypatch, capsys, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_version(monkeypatch, capsys):
    status, out, _ = run(monkeypatch, capsys, "--version")
    assert (status, out) == (0, f"exchmail {__version__}\n")
    installed = subprocess.run(
        [str(Path(sys.executable).parent / "exchmail"), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert installed.stdout == f"exchmail {__version__}\n"


# -- the password floor -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password, message",
    [
        ("short", "the password is too short: at least 8 characters ([auth] password_min_length)"),
        ("long enough", None),
        ("ALICEalice", "the password must not be the user name"),
        ("xxxxxxxxxx", "the password must not be one character repeated"),
    ],
)
def test_password_floor(monkeypatch, capsys, tmp_path, password, message):
    users = tmp_path / "users"
    status, _, err = run(
        monkeypatch,
        capsys,
        "user",
        "add",
        "alicealice",
        "--password-stdin",
        "--users-file",
        str(users),
        stdin=password + "\n",
    )
    if message is None:
        assert status == 0, err
    else:
        assert (status, err) == (1, f"exchmail: error: {message}\n")
        assert not users.exists()


def test_password_floor_is_configurable(monkeypatch, capsys, tmp_path):
    config = tmp_path / "exchmail.toml"
    config.write_text("[auth]\npassword_min_length = 12\n")
    status, _, err = run(
        monkeypatch,
        capsys,
        "user",
        "add",
        "alice",
        "--password-stdin",
        "--config",
        str(config),
        stdin="eleven char\n",
    )
    assert (status, err) == (
        1,
        "exchmail: error: the password is too short: at least 12 characters ([auth] password_min_length)\n",
    )
    config.write_text("[auth]\npassword_min_length = 0\n")
    assert (
        run(
            monkeypatch,
            capsys,
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--config",
            str(config),
            stdin="pw\n",
        )[0]
        == 0
    )
    status, _, err = run(
        monkeypatch,
        capsys,
        "user",
        "passwd",
        "alice",
        "--password-stdin",
        "--users-file",
        str(tmp_path / "exchmail-data" / "users"),
        stdin="pw2\n",
    )
    assert status == 1 and "too short" in err  # the default floor for a bare accounts file


# -- user del keeps the mailbox, --purge removes it ----------------------------------------


def test_user_del_keeps_the_mailbox_and_says_where(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "exchmail-data"
    AccountsFile(data / "users").add("Alice", "alice's pw")
    (data / "mail" / "Alice" / "cur").mkdir(parents=True)
    status, out, _ = run(monkeypatch, capsys, "user", "del", "alice")
    assert status == 0
    assert out == (
        f"deleted user Alice; the mailbox {data / 'mail' / 'Alice'} is kept "
        f"(remove it with 'exchmail user del --purge', or add the user again "
        f"to use it)\n"
    )
    assert (data / "mail" / "Alice" / "cur").is_dir()


def test_user_del_purge_removes_the_mailbox(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "exchmail-data"
    AccountsFile(data / "users").add("bob", "bob's pw")
    (data / "mail" / "bob" / "cur").mkdir(parents=True)
    status, out, _ = run(monkeypatch, capsys, "user", "del", "bob", "--purge")
    assert (status, out) == (0, f"deleted user bob and removed the mailbox {data / 'mail' / 'bob'}\n")
    assert not (data / "mail" / "bob").exists()
    accounts = AccountsFile(data / "users")
    accounts.load()
    assert accounts.users() == []


def test_user_del_purge_needs_a_maildir_store(monkeypatch, capsys, tmp_path):
    users = tmp_path / "users"
    AccountsFile(users).add("bob", "bob's pw")
    status, _, err = run(monkeypatch, capsys, "user", "del", "bob", "--purge", "--users-file", str(users))
    assert status == 2 and err.startswith("exchmail: error: --purge removes Maildir folders")
    accounts = AccountsFile(users)
    accounts.load()
    assert accounts.users() == ["bob"]  # nothing was done


# -- config check ---------------------------------------------------------------------------------


def test_config_check_prints_the_non_default_settings(monkeypatch, capsys, tmp_path):
    config = tmp_path / "exchmail.toml"
    config.write_text("""
[imap]
listen = ["tcp:143"]
[auth]
login_type = "PlainTextLogin"
[profile]
exact_rfc822_size = true
[metrics]
listen = ["tcp:9143:interface=127.0.0.1"]
""")
    AccountsFile(tmp_path / "exchmail-data" / "users").add("alice", "alice's pw")
    status, out, err = run(monkeypatch, capsys, "config", "check", "--config", str(config))
    assert (status, err) == (0, "")
    assert out.splitlines()[0] == f"# exchmail {__version__}: {config}"
    assert '[imap]\nlisten = ["tcp:143"]\n' in out
    assert '[metrics]\nlisten = ["tcp:9143:interface=127.0.0.1"]\n' in out
    assert "imap.exact_rfc822_size = true" in out and "pop3.exact_rfc822_size = true" in out
    assert 'imap.login_type = "plain_text_login"' in out  # as [profile] accepts it
    assert "[throttle]" not in out and "[pop3]" not in out  # defaults are not printed


def test_config_check_warns_about_dead_ends(monkeypatch, capsys, tmp_path):
    config = tmp_path / "exchmail.toml"
    config.write_text("""
[imap]
listen = []
[pop3]
listen = []
[auth]
backend = "ldap"
[ldap]
servers = ["ldap://ldap.example.org"]
base_dn = "dc=example,dc=org"
bind_dn = "cn=x"
bind_password = "very secret"
[metrics]
listen = ["tcp:9143"]
""")
    status, out, err = run(monkeypatch, capsys, "config", "check", "--config", str(config))
    assert status == 0
    assert "very secret" not in out and 'bind_password = "****"' in out
    warnings = err.splitlines()
    assert all(line.startswith("exchmail: warning: ") for line in warnings), err
    assert any("no listener at all" in line for line in warnings)
    assert any("ldap://ldap.example.org without start_tls" in line for line in warnings)
    assert any("metrics.listen[0]" in line for line in warnings)


def test_config_check_errors_are_what_twistd_refuses(monkeypatch, capsys, tmp_path):
    config = tmp_path / "exchmail.toml"
    config.write_text('[imap]\nlisten = ["tcp:1143"]\n')  # SecureLogin without [tls]
    (tmp_path / "exchmail-data").mkdir()
    (tmp_path / "exchmail-data" / "users").write_text("broken line\n")
    status, _, err = run(monkeypatch, capsys, "config", "check", "--config", str(config))
    assert status == 1
    errors = [line for line in err.splitlines() if line.startswith("exchmail: error: ")]
    assert any("auth.users_file:" in line and "expected 'name:$scheme$...'" in line for line in errors), err
    assert any("imap: nobody can log in" in line for line in errors), err
    config.write_text('[server]\nprofile = "nope"\n')
    status, _, err = run(monkeypatch, capsys, "config", "check", "--config", str(config))
    assert status == 2 and err.startswith("exchmail: error: server.profile: unknown profile")


def test_config_check_of_the_shipped_example(monkeypatch, capsys, tmp_path):
    shutil.copy(ROOT / "examples" / "exchmail.toml", tmp_path)
    status, out, err = run(
        monkeypatch, capsys, "config", "check", "--config", str(tmp_path / "exchmail.toml")
    )
    assert status == 0, err
    assert 'self_signed = "localhost"' in out
    assert "holds no account yet" in err  # the next step of its header


# -- deployment ------------------------------------------------------------------------------------


def test_systemd_unit():
    unit = (ROOT / "deploy" / "exchmail.service").read_text()
    for line in (
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "User=exchmail",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "NoNewPrivileges=yes",
    ):
        assert f"\n{line}\n" in unit
    assert "--uid" not in unit.split("[Service]")[1]  # never started as root


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_unit_verifies(tmp_path):
    twistd = Path(sys.executable).parent / "twistd"
    unit = (ROOT / "deploy" / "exchmail.service").read_text()
    (tmp_path / "exchmail.service").write_text(unit.replace("/opt/exchmail/bin/twistd", str(twistd)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "exchmail.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_license_matches_setup_cfg():
    assert "license = MIT" in (ROOT / "setup.cfg").read_text()
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
