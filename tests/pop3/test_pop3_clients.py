"""Real POP3 clients against the server: curl (``pop3://``) and fetchmail.

Both must retrieve a message appended over IMAP byte for byte (fetchmail
hands its MDA bare-LF lines, so it is compared in that form).
"""

from __future__ import annotations

import imaplib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSWORD, start_server

MESSAGE = (
    b"From: a@example.com\r\nTo: alice@example.com\r\nSubject: clients\r\n"
    b"Message-ID: <clients@example.com>\r\n\r\n"
    b"first\r\n.dot line\r\n..two\r\n.\r\nlast line\r\n"
)


@pytest.fixture
def server(reactor_thread: Any, tmp_path: Path):
    running = start_server(tmp_path)
    client = imaplib.IMAP4("127.0.0.1", running.imap_port, timeout=10)
    client.login("alice", PASSWORD)
    assert client.append("INBOX", None, None, MESSAGE)[0] == "OK"
    client.logout()
    yield running
    running.stop()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_C0011_curl_retrieves_byte_exact(server):
    url = f"pop3://127.0.0.1:{server.pop3_port}/1"
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "--user", f"alice:{PASSWORD}", url],
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout
    assert out == MESSAGE
    listing = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "20",
            "--user",
            f"alice:{PASSWORD}",
            f"pop3://127.0.0.1:{server.pop3_port}/",
        ],
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout
    assert listing.split() == [b"1", b"%d" % len(MESSAGE.replace(b"\r\n", b"\n"))]


@pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail is not installed")
def test_C0011_fetchmail_retrieves_and_deletes(server, tmp_path):
    out_dir = tmp_path / "delivered"
    out_dir.mkdir()
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set invisible\n"
        f"poll 127.0.0.1 protocol POP3 port {server.pop3_port} auth password timeout 20\n"
        f'  user alice password "{PASSWORD}" is alice here\n'
        f"  mda \"cat > {out_dir}/msg-$$\" no rewrite sslproto '' fetchall\n"
    )
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
    result = subprocess.run(
        [
            "fetchmail",
            "--nodetach",
            "-f",
            str(rc),
            "--pidfile",
            str(tmp_path / "fetchmail.pid"),
            "--nosyslog",
        ],
        capture_output=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr.decode()
    delivered = [p.read_bytes() for p in out_dir.iterdir()]
    assert delivered == [MESSAGE.replace(b"\r\n", b"\n")]
    # fetchmail deleted it (DELE + QUIT): the maildrop is empty now.
    import poplib

    p = poplib.POP3("127.0.0.1", server.pop3_port, timeout=10)
    p.user("alice")
    p.pass_(PASSWORD)
    assert p.stat() == (0, 0)
    p.quit()
