"""Tests of the ``exchmail`` command (exchmail.cli.main)."""

from __future__ import annotations

import io
import os
import stat

import pytest

from exchmail import cli
from exchmail.auth.accounts import AccountsFile, verify_password


@pytest.fixture
def users(tmp_path):
    return tmp_path / "users"


def run(monkeypatch, capsys, *argv: str, stdin: str = ""):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def hash_of(path, name):
    f = AccountsFile(path)
    f.load()
    return f.password_hash(name)


def test_user_add_list_passwd_del(monkeypatch, capsys, users):
    where = ("--users-file", str(users))
    status, out, err = run(
        monkeypatch, capsys, "user", "add", "alice", "--password-stdin", *where, stdin="secret one\n"
    )
    assert (status, err) == (0, "")
    assert "added user alice" in out
    assert verify_password("secret one", hash_of(users, "alice"))
    assert stat.S_IMODE(os.stat(users).st_mode) == 0o600

    run(monkeypatch, capsys, "user", "add", "bob", "--password-stdin", *where, stdin="bob's pw\r\n")
    assert verify_password("bob's pw", hash_of(users, "bob"))
    status, out, _ = run(monkeypatch, capsys, "user", "list", *where)
    assert (status, out) == (0, "alice\nbob\n")

    status, _, _ = run(
        monkeypatch, capsys, "user", "passwd", "alice", "--password-stdin", *where, stdin="secret two\n"
    )
    assert status == 0
    assert verify_password("secret two", hash_of(users, "alice"))

    status, out, _ = run(monkeypatch, capsys, "user", "del", "alice", *where)
    assert status == 0 and "deleted user alice" in out
    assert run(monkeypatch, capsys, "user", "list", *where)[1] == "bob\n"


def test_add_duplicate(monkeypatch, capsys, users):
    AccountsFile(users).add("alice", "pw")
    status, _, err = run(
        monkeypatch,
        capsys,
        "user",
        "add",
        "alice",
        "--password-stdin",
        "--users-file",
        str(users),
        stdin="x\n",
    )
    assert status == 1
    assert err == "exchmail: error: user 'alice' already exists\n"


def test_add_invalid_name(monkeypatch, capsys, users):
    status, _, err = run(
        monkeypatch,
        capsys,
        "user",
        "add",
        "../x",
        "--password-stdin",
        "--users-file",
        str(users),
        stdin="x\n",
    )
    assert status == 1
    assert err == "exchmail: error: invalid user name '../x'\n"


def test_empty_password_refused(monkeypatch, capsys, users):
    status, _, err = run(
        monkeypatch,
        capsys,
        "user",
        "add",
        "alice",
        "--password-stdin",
        "--users-file",
        str(users),
        stdin="\n",
    )
    assert status == 1
    assert err == "exchmail: error: the password must not be empty\n"
    assert not users.exists()


@pytest.mark.parametrize("argv", [("passwd", "bob", "--password-stdin"), ("del", "bob")])
def test_unknown_user(monkeypatch, capsys, users, argv):
    AccountsFile(users).add("alice", "pw")
    status, _, err = run(monkeypatch, capsys, "user", *argv, "--users-file", str(users), stdin="x\n")
    assert status == 1
    assert err == "exchmail: error: no such user 'bob'\n"


def test_prompted_password(monkeypatch, capsys, users):
    answers = iter(["typed in", "typed in"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    status, _, _ = run(monkeypatch, capsys, "user", "add", "alice", "--users-file", str(users))
    assert status == 0
    assert verify_password("typed in", hash_of(users, "alice"))


def test_prompted_password_mismatch(monkeypatch, capsys, users):
    answers = iter(["typed", "typo"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    status, _, err = run(monkeypatch, capsys, "user", "add", "alice", "--users-file", str(users))
    assert status == 1
    assert err == "exchmail: error: the passwords do not match\n"
    assert not users.exists()


def test_default_users_file_is_newcomer_default(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    status, _, _ = run(monkeypatch, capsys, "user", "add", "alice", "--password-stdin", stdin="long enough\n")
    assert status == 0
    assert (tmp_path / "exchmail-data" / "users").exists()


def test_users_file_from_config(monkeypatch, capsys, tmp_path):
    config = tmp_path / "exchmail.toml"
    config.write_text('[auth]\nusers_file = "accounts"\n')
    status, _, _ = run(
        monkeypatch,
        capsys,
        "user",
        "add",
        "alice",
        "--password-stdin",
        "--config",
        str(config),
        stdin="long enough\n",
    )
    assert status == 0
    assert verify_password("long enough", hash_of(tmp_path / "accounts", "alice"))


def test_bad_config(monkeypatch, capsys, tmp_path):
    config = tmp_path / "exchmail.toml"
    config.write_text('[server]\ndata_dr = "x"\n')
    status, _, err = run(monkeypatch, capsys, "user", "list", "--config", str(config))
    assert status == 2
    assert err == "exchmail: error: server.data_dr: unknown key\n"


def test_unreadable_users_file(monkeypatch, capsys, tmp_path):
    status, _, err = run(monkeypatch, capsys, "user", "list", "--users-file", str(tmp_path))
    assert status == 1
    assert err.startswith(f"exchmail: error: cannot read accounts file {tmp_path}")


def test_config_and_users_file_are_exclusive(monkeypatch, capsys, tmp_path):
    status, _, err = run(monkeypatch, capsys, "user", "list", "--config", "a", "--users-file", "b")
    assert status == 2
    assert "not allowed with argument" in err


def test_usage_error(monkeypatch, capsys):
    status, _, err = run(monkeypatch, capsys, "frobnicate")
    assert status == 2
    assert "exchmail: error:" in err


def test_help(monkeypatch, capsys):
    status, out, _ = run(monkeypatch, capsys, "--help")
    assert status == 0
    assert "user" in out and "profile" in out


def test_profile_show_default(monkeypatch, capsys):
    status, out, _ = run(monkeypatch, capsys, "profile", "show")
    assert status == 0
    assert out.splitlines()[0] == "profile exchange2010"
    assert "imap.exact_rfc822_size" in out and "EnableExactRFC822Size" in out


def test_profile_show_named(monkeypatch, capsys):
    status, out, _ = run(monkeypatch, capsys, "profile", "show", "rfc3501")
    assert status == 0
    assert out.splitlines()[0] == "profile rfc3501"


def test_profile_show_unknown(monkeypatch, capsys):
    status, _, err = run(monkeypatch, capsys, "profile", "show", "exchange2013")
    assert status == 2
    assert err == (
        "exchmail: error: unknown profile 'exchange2013' "
        "(choose exchange2010, exchange2007, rfc3501, modern, exchange2016)\n"
    )


def test_profile_show_with_config(monkeypatch, capsys, tmp_path):
    config = tmp_path / "exchmail.toml"
    config.write_text('[server]\nprofile = "exchange2007"\n[profile]\nexact_rfc822_size = true\n')
    status, out, _ = run(monkeypatch, capsys, "profile", "show", "--config", str(config))
    assert status == 0
    assert out.startswith("profile exchange2007 (* = overridden)")
    status, out, _ = run(monkeypatch, capsys, "profile", "show", "exchange2010", "--config", str(config))
    assert out.startswith("profile exchange2010 (* = overridden)")
    row = next(line for line in out.splitlines() if line.startswith("pop3.exact_rfc822_size"))
    assert "true *" in row


def test_profile_show_bad_override(monkeypatch, capsys, tmp_path):
    config = tmp_path / "exchmail.toml"
    config.write_text('[profile]\nmax_command_size = "abc"\n')
    status, _, err = run(monkeypatch, capsys, "profile", "show", "--config", str(config))
    assert status == 2
    assert err == ("exchmail: error: profile.max_command_size: expected an integer, got 'abc'\n")
