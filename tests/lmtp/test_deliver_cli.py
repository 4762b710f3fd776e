"""``exchmail deliver``: exit codes, folders, quota, and delivery beside a running server."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSWORD, add_accounts, start_server

from exchmail import cli

#: The ``exchmail`` command, as a process.
EXCHMAIL = [sys.executable, "-c", "import sys; from exchmail.cli import main; sys.exit(main())"]
MESSAGE = b"From: a@example.com\nSubject: by deliver\n\nHello from procmail.\n"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    add_accounts(data / "users", ("alice", "bob"), "pw")
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
