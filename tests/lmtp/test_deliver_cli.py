"""``exchmail deliver``: exit codes, folders, quota, and delivery beside a running server."""

from __future__ import annotations

import errno
import io
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSWORD, add_accounts, start_server
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from zope.interface import implementer

from exchmail import cli
from exchmail.errors import ConfigError, DirectoryUnavailable
from exchmail.interfaces import IDirectory
from exchmail.service.config import load_config

#: The ``exchmail`` command, as a process.
EXCHMAIL = [sys.executable, "-c", "import sys; from exchmail.cli import main; sys.exit(main())"]
MESSAGE = b"From: a@example.com\nSubject: by deliver\n\nHello from procmail.\n"


@pytest.fixture
def config(bare_config: Path) -> Path:
    add_accounts(bare_config.parent / "data" / "users", ("alice", "bob"), "pw")
    return bare_config


@pytest.fixture
def bare_config(tmp_path: Path) -> Path:
    """The configuration without accounts."""
    (tmp_path / "data").mkdir()
    path = tmp_path / "exchmail.toml"
    path.write_text('[server]\ndata_dir = "data"\n[quota.users.bob]\nlimit = 200\n')
    return path


def deliver(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    config: Path,
    *argv: str,
    stdin: bytes = MESSAGE,
) -> tuple[int, str]:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    status = cli.main(["deliver", "--config", str(config), *argv])
    return status, capsys.readouterr().err


def files(config: Path, user: str, folder: str = "") -> list[bytes]:
    path = config.parent / "data" / "mail" / user / folder / "new"
    return [(path / name).read_bytes() for name in sorted(os.listdir(path))]


def test_delivers_into_new_with_lf_and_without_the_envelope_line(monkeypatch, capsys, config) -> None:
    mbox_style = b"From a@example.com Sat Jan  1 00:00:00 2000\r\n" + MESSAGE.replace(b"\n", b"\r\n")
    assert deliver(monkeypatch, capsys, config, "alice", stdin=mbox_style) == (0, "")
    assert files(config, "alice") == [MESSAGE]


def test_exit_codes(monkeypatch, capsys, config) -> None:
    status, err = deliver(monkeypatch, capsys, config, "nobody@example.org")
    assert status == 67 and err == "exchmail: error: no such user 'nobody@example.org'\n"
    assert deliver(monkeypatch, capsys, config, "alice", stdin=b"")[0] == 65
    config.write_text("[server]\nno_such_key = 1\n")
    status, err = deliver(monkeypatch, capsys, config, "alice")
    assert status == 78 and "server.no_such_key: unknown key" in err


def test_folder_option_and_detail(monkeypatch, capsys, config) -> None:
    assert deliver(monkeypatch, capsys, config, "--folder", "Lists/Python", "alice")[0] == 0
    assert files(config, "alice", ".Lists.Python") == [MESSAGE]
    assert deliver(monkeypatch, capsys, config, "alice+lists/python@example.org")[0] == 0
    assert len(files(config, "alice", ".Lists.Python")) == 2  # an existing folder, any case
    assert deliver(monkeypatch, capsys, config, "alice+nothere")[0] == 0
    assert files(config, "alice") == [MESSAGE]  # no such folder: INBOX


def test_over_quota_is_73_or_75(monkeypatch, capsys, config) -> None:
    big = MESSAGE + b"x" * 300 + b"\n"
    status, err = deliver(monkeypatch, capsys, config, "bob", stdin=big)
    assert status == 73 and "mailbox full" in err
    config.write_text(config.read_text() + "[lmtp]\nover_quota = 452\n")
    assert deliver(monkeypatch, capsys, config, "bob", stdin=big)[0] == 75
    assert deliver(monkeypatch, capsys, config, "bob")[0] == 0  # a small one fits


def imap_line(sock: socket.socket, buffer: list[bytes]) -> bytes:
    while b"\r\n" not in buffer[0]:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        buffer[0] += chunk
    line, _, buffer[0] = buffer[0].partition(b"\r\n")
    return line


def test_beside_a_running_server_idle_hears_of_it(reactor_thread: Any, tmp_path: Path) -> None:
    running = start_server(tmp_path)
    try:
        config = tmp_path / "exchmail.toml"
        config.write_text(f'[server]\ndata_dir = "{running.data_dir}"\n')
        with socket.create_connection(("127.0.0.1", running.imap_port), timeout=20) as sock:
            buffer = [b""]
            imap_line(sock, buffer)
            sock.sendall(f'a LOGIN alice "{PASSWORD}"\r\nb SELECT INBOX\r\nc IDLE\r\n'.encode())
            while not imap_line(sock, buffer).startswith(b"+"):
                pass
            done = subprocess.run(
                [*EXCHMAIL, "deliver", "--config", str(config), "alice"],
                input=MESSAGE,
                capture_output=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            # The server's watcher adopts the file and tells the IDLE session.
            while imap_line(sock, buffer) != b"* 1 EXISTS":
                pass
            sock.sendall(b"DONE\r\nd UID FETCH 1:* (UID BODY.PEEK[])\r\ne LOGOUT\r\n")
            rest = b""
            while b"e OK" not in rest:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                rest += chunk
        assert b"Hello from procmail." in rest and b"UID 1 " in rest
    finally:
        running.stop()


# -- a custom [auth] backend as the directory ---------------------------------------------


@implementer(ICredentialsChecker, IDirectory)
class _Directory:
    """A custom checker that knows a fixed set of users (or fails to answer)."""

    credentialInterfaces = ()

    def __init__(self, users: tuple[str, ...], error: Exception | None = None) -> None:
        self.users = users
        self.error = error

    def requestAvatarId(self, credentials: Any) -> Any:
        return defer.fail(UnauthorizedLogin())

    def user_exists(self, name: str) -> defer.Deferred[bool]:
        return defer.fail(self.error) if self.error else defer.succeed(name in self.users)

    def canonical_name(self, name: str) -> str | None:
        return name if name in self.users else None


def directory_factory(context: Any) -> _Directory:
    return _Directory(tuple(context.options["users"]))


def unavailable_factory(context: Any) -> _Directory:
    return _Directory((), DirectoryUnavailable("the directory is down"))


def misconfigured_factory(context: Any) -> _Directory:
    raise ConfigError("auth.options.users: required")


def with_auth(config: Path, factory: str, users: str = '["carol"]') -> Path:
    config.write_text(
        config.read_text()
        + f'[auth]\nbackend = "python:{__name__}:{factory}"\n[auth.options]\nusers = {users}\n'
    )
    return config


def test_custom_directory_knows_the_recipients(monkeypatch, capsys, bare_config) -> None:
    with_auth(bare_config, "directory_factory")
    assert deliver(monkeypatch, capsys, bare_config, "carol@example.org") == (0, "")
    assert files(bare_config, "carol") == [MESSAGE]
    status, err = deliver(monkeypatch, capsys, bare_config, "alice")  # not in this directory
    assert status == 67 and "no such user 'alice'" in err


def test_directory_that_does_not_answer_is_a_temporary_failure(monkeypatch, capsys, bare_config) -> None:
    with_auth(bare_config, "unavailable_factory")
    status, err = deliver(monkeypatch, capsys, bare_config, "alice")
    assert status == 75 and err == "exchmail: error: cannot look 'alice' up: the directory is down\n"


def test_directory_misconfigured_is_78(monkeypatch, capsys, bare_config) -> None:
    with_auth(bare_config, "misconfigured_factory")
    status, err = deliver(monkeypatch, capsys, bare_config, "alice")
    assert status == 78 and "auth.options.users: required" in err


def test_user_name_the_store_cannot_take_is_67(monkeypatch, capsys, bare_config) -> None:
    with_auth(bare_config, "directory_factory", users='["../escape"]')
    status, err = deliver(monkeypatch, capsys, bare_config, "../escape")
    assert status == 67 and "no such mailbox" in err
    assert not (bare_config.parent / "data" / "escape").exists()


def test_ldap_backend_is_the_ldap_directory(tmp_path: Path) -> None:
    from exchmail.auth.ldap import LDAPChecker
    from exchmail.cli.delivery import directory_for

    path = tmp_path / "exchmail.toml"
    path.write_text('[auth]\nbackend = "ldap"\n[ldap]\nservers = ["ldap://127.0.0.1:1"]\nbase_dn = "dc=x"\n')
    assert isinstance(directory_for(load_config(path)), LDAPChecker)  # built without connecting


# -- failures of the message, the store and the disk --------------------------------------


class _Unreadable:
    class buffer:  # noqa: N801 - stands in for sys.stdin.buffer
        @staticmethod
        def read(size: int = -1) -> bytes:
            raise OSError(errno.EIO, "Input/output error")


def test_unreadable_standard_input_is_74(monkeypatch, capsys, bare_config) -> None:
    monkeypatch.setattr("sys.stdin", _Unreadable())
    status = cli.main(["deliver", "--config", str(bare_config), "alice"])
    assert status == 74 and capsys.readouterr().err == (
        "exchmail: error: cannot read the message: Input/output error\n"
    )


def test_memory_store_refuses_local_delivery(monkeypatch, capsys, config) -> None:
    config.write_text(config.read_text() + '[store]\nbackend = "memory"\n')
    status, err = deliver(monkeypatch, capsys, config, "alice")
    assert status == 78 and "deliver through LMTP" in err


def test_unwritable_mail_folder_is_a_temporary_failure(monkeypatch, capsys, config) -> None:
    (config.parent / "data" / "mail").write_text("not a folder")
    status, err = deliver(monkeypatch, capsys, config, "alice")
    assert status == 75 and "cannot store the message" in err


def test_quota_counts_the_files_already_delivered(monkeypatch, capsys, config) -> None:
    # bob's limit is 200 octets.  On disk a message keeps bare LFs (62 octets);
    # the one offered is measured in wire form (66).  In any folder, new or cur.
    assert deliver(monkeypatch, capsys, config, "bob")[0] == 0
    assert deliver(monkeypatch, capsys, config, "--folder", "Archive", "bob")[0] == 0
    new = config.parent / "data" / "mail" / "bob" / "new"
    (new / os.listdir(new)[0]).rename(new.parent / "cur" / (os.listdir(new)[0] + ":2,S"))
    assert deliver(monkeypatch, capsys, config, "bob")[0] == 0
    status, err = deliver(monkeypatch, capsys, config, "bob")
    assert status == 73 and "186 of 200 octets used, the message has 66" in err


class _Trickle(io.RawIOBase):
    """Standard input that answers in small reads, as a pipe may."""

    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size = data, size

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk, self.data = self.data[: self.size], self.data[self.size :]
        return chunk


def test_envelope_line_spanning_reads_is_dropped() -> None:
    from exchmail.cli.delivery import read_message

    envelope = b"From a@example.com Sat Jan  1 00:00:00 2000\n"
    spool = read_message(_Trickle(envelope + MESSAGE, 8))  # type: ignore[arg-type]
    assert spool.read() == MESSAGE.replace(b"\n", b"\r\n")
    assert read_message(_Trickle(b"From nobody", 8)).read() == b""  # type: ignore[arg-type]


def test_exit_status_of_replies() -> None:
    from exchmail.cli.delivery import exit_status
    from exchmail.lmtp.delivery import Reply

    assert exit_status(Reply(250, "2.0.0", "delivered")) == 0
    assert exit_status(Reply(451, "4.3.0", "try later")) == 75
    assert exit_status(Reply(550, "5.1.1", "no such mailbox")) == 67
    assert exit_status(Reply(552, "5.2.2", "mailbox full")) == 73
