"""examples/embed.py runs under twistd and serves both its web site and IMAP."""

import imaplib
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"port {port} did not open")


@pytest.mark.slow
def test_embedded_application_serves_web_and_imap(tmp_path):
    web_port, imap_port = free_port(), free_port()
    env = dict(
        os.environ,
        EMBED_DATA_DIR=str(tmp_path / "data"),
        EMBED_WEB=f"tcp:{web_port}:interface=127.0.0.1",
        EMBED_IMAP=f"tcp:{imap_port}:interface=127.0.0.1",
    )
    log = tmp_path / "twistd.log"
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "twistd"),
            "-n",
            "--logfile",
            str(log),
            "--pidfile",
            "",
            "-y",
            str(ROOT / "examples" / "embed.py"),
        ],
        cwd=tmp_path,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        wait_for_port(web_port, deadline)
        wait_for_port(imap_port, deadline)
        page = urllib.request.urlopen(f"http://127.0.0.1:{web_port}/", timeout=10).read()
        assert b"served over IMAP by exchmail" in page
        match = None
        while match is None and time.monotonic() < deadline:
            match = re.search(r"user '(\w+)', password '([^']+)'", log.read_text())
            time.sleep(0.1)
        assert match, log.read_text()
        client = imaplib.IMAP4("127.0.0.1", imap_port)
        cert = tmp_path / "data" / "tls" / "cert.pem"
        assert client.starttls(ssl.create_default_context(cafile=str(cert)))[0] == "OK"
        assert client.login(match.group(1), match.group(2))[0] == "OK"
        assert client.select("INBOX")[0] == "OK"
        client.logout()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
