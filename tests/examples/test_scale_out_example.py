"""examples/scale-out: start.sh brings up PostgreSQL, two frontends and HAProxy;
a message appended on one frontend is read on the other and through the
balancer, over IMAP (imaplib, curl) and POP3; stop.sh stops everything."""

from __future__ import annotations

import imaplib
import os
import poplib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exchmail.testing import postgres

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scale-out"
PORTS = ("PGPORT", "LB_IMAP", "LB_POP3", "IMAP1", "IMAP2", "POP31", "POP32")
MESSAGE = b"From: a@example.org\r\nSubject: scale out\r\n\r\nhello from frontend 1\r\n"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(postgres.unavailable_reason() is not None, reason=str(postgres.unavailable_reason())),
]


@pytest.fixture
def running() -> Iterator[dict[str, str]]:
    # Outside pytest's private temporary folder: as root, PostgreSQL runs as
    # the postgres user, who must be able to reach its data folder.
    data = Path(tempfile.mkdtemp(prefix="exchmail-scale-out-"))
    data.chmod(0o755)
    env = dict(os.environ, SCALE_OUT_DATA=str(data), EXCHMAIL_VENV=str(Path(sys.executable).parent.parent))
    env.update({name: str(postgres.free_port()) for name in PORTS})
    try:
        started = subprocess.run(
            [str(EXAMPLE / "start.sh")], env=env, capture_output=True, text=True, timeout=180
        )
        assert started.returncode == 0, started.stdout + started.stderr
        assert "account: demo / demo password" in started.stdout
        yield env
    finally:
        subprocess.run([str(EXAMPLE / "stop.sh")], env=env, capture_output=True, timeout=120)
        shutil.rmtree(data, ignore_errors=True)


def imap(port: str) -> imaplib.IMAP4:
    """A logged-in client.  A frontend that has just started may still be
    opening its first database connection and answer LOGIN with NO
    [UNAVAILABLE] ("try again later"), as it did once on a loaded machine;
    it is asked again, for up to 30 s, as a client would."""
    deadline = time.monotonic() + 30
    while True:
        client = imaplib.IMAP4("127.0.0.1", int(port), timeout=20)
        try:
            assert client.login("demo", "demo password")[0] == "OK"
            return client
        except imaplib.IMAP4.error as error:
            client.logout()
            if "[UNAVAILABLE]" not in str(error) or time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def test_two_frontends_and_the_balancer(running: dict[str, str]) -> None:
    one = imap(running["IMAP1"])
    assert one.append("INBOX", None, None, MESSAGE)[0] == "OK"
    one.logout()
    two = imap(running["IMAP2"])
    two.select("INBOX")
    typ, data = two.fetch("1", "(BODY.PEEK[])")
    assert typ == "OK" and data[0][1] == MESSAGE
    two.logout()
    if shutil.which("curl"):
        out = subprocess.run(
            [
                "curl",
                "-sS",
                "--max-time",
                "20",
                "--user",
                "demo:demo password",
                f"imap://127.0.0.1:{running['IMAP2']}/INBOX;UID=1",
            ],
            capture_output=True,
            timeout=30,
            check=True,
        ).stdout
        assert out == MESSAGE
    if shutil.which("haproxy"):
        for _ in range(2):  # round robin: both frontends answer through the balancer
            pop = poplib.POP3("127.0.0.1", int(running["LB_POP3"]), timeout=20)
            pop.user("demo")
            pop.pass_("demo password")
            _, lines, _ = pop.retr(1)
            assert b"".join(line + b"\r\n" for line in lines) == MESSAGE
            pop.quit()
