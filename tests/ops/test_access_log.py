"""The access log (one line per session start/end and per login) and fail2ban reading it.

In memory for the exact lines; then a real ``twistd exchmail`` with real
clients over STARTTLS, whose log ``fail2ban-regex`` reads with the shipped
filter (text and JSON formats).
"""

from __future__ import annotations

import imaplib
import json
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher

from exchmail.auth.throttle import LoginThrottle, ThrottleSettings
from exchmail.service.logs import json_line
from exchmail.session.access import AccessLogObserver

ROOT = Path(__file__).resolve().parents[2]
FILTER = ROOT / "examples" / "fail2ban" / "filter.d" / "exchmail.conf"
TWISTD = str(Path(sys.executable).parent / "twistd")


@pytest.fixture
def access() -> Any:
    events: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_namespace") == "exchmail.access":
            events.append(event)

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


def harness(**context: Any) -> Any:
    from harness import Harness

    clock = Clock()
    return Harness(clock=clock, observers=(AccessLogObserver(clock),), **context)


def lines(events: list[dict[str, Any]]) -> list[str]:
    return [formatEvent(e) for e in events]


def test_session_and_login_lines(access):
    h = harness()
    c = h.imap("192.0.2.7")
    c.line('a LOGIN alice "wrong"')
    c.login()
    h.clock.advance(12.5)
    c.line("z LOGOUT")
    c.close()
    start, failed, ok, end = lines(access)
    sid = re.escape(access[0]["access"]["session"])
    assert re.fullmatch(
        rf"session-start proto=imap session={sid} client=192\.0\.2\.7 "
        r"port=50000 local=\S* tls=no",
        start,
    ), start
    assert failed == (
        f"login-failed proto=imap session={access[0]['access']['session']} "
        f"client=192.0.2.7 port=50000 reason=credentials mechanism=LOGIN tls=no "
        f'user="alice"'
    )
    assert ok.startswith("login-ok proto=imap") and ok.endswith('mechanism=LOGIN tls=no user="alice"')
    assert re.fullmatch(
        rf"session-end proto=imap session={sid} client=192\.0\.2\.7 port=50000 "
        r'tls=no duration=12\.500 in=\d+ out=\d+ user="alice"',
        end,
    ), end
    assert [e["log_level"].name for e in access] == ["info", "warn", "info", "info"]
    assert access[1]["access"] == {
        "event": "login-failed",
        "proto": "imap",
        "session": access[0]["access"]["session"],
        "client": "192.0.2.7",
        "port": "50000",
        "reason": "credentials",
        "mechanism": "LOGIN",
        "tls": "no",
        "user": "alice",
    }


def test_a_user_name_cannot_forge_fields(access):
    h = harness()
    c = h.imap("192.0.2.9")
    c.line('a LOGIN "x\\" client=6.6.6.6 reason=credentials\x7f" nope')
    failed = lines(access)[1]
    assert failed.endswith(' user="x\\" client=6.6.6.6 reason=credentials\\u007f"'), failed
    assert failed.index("client=192.0.2.9") < failed.index("user=")


def test_blocked_and_unknown_mechanism_reasons(access):
    clock = Clock()
    settings = ThrottleSettings(pair_delay_after=0, pair_block_after=2, max_delay=1.0)
    h = harness(throttle=LoginThrottle(settings, clock))
    h.clock = clock
    c = h.imap("192.0.2.5")
    for tag in ("a", "b", "c"):
        c.line(f"{tag} LOGIN bob wrong")
        clock.advance(1.0)
    reasons = [e["access"].get("reason") for e in access if e["access"]["event"] == "login-failed"]
    assert reasons == ["credentials", "credentials", "blocked"]


def test_json_line_keys_are_stable():
    h = harness()
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        h.imap("192.0.2.1").line('a LOGIN "x\\"y" wrong')
    finally:
        globalLogPublisher.removeObserver(events.append)
    failed = [e for e in events if e.get("access", {}).get("event") == "login-failed"][0]
    record = json.loads(json_line(failed))
    assert list(record)[:5] == ["time", "level", "namespace", "message", "event"]
    assert record["level"] == "warn" and record["namespace"] == "exchmail.access"
    assert record["user"] == 'x"y' and record["client"] == "192.0.2.1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["time"])


# -- a real twistd, real clients, fail2ban-regex ----------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_server(tmp_path: Path, log_format: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    (tmp_path / "exchmail.toml").write_text(f"""
[imap]
listen = ["tcp:{port}:interface=127.0.0.1"]
[pop3]
listen = []
[tls]
certificate = "tls/cert.pem"
private_key = "tls/key.pem"
self_signed = "localhost"
[logging]
format = "{log_format}"
""")
    from exchmail.auth.accounts import AccountsFile

    AccountsFile(tmp_path / "exchmail-data" / "users").add("alice", "alice's pw")
    proc = subprocess.Popen(
        [
            TWISTD,
            "-n",
            "--pidfile=",
            "--logfile",
            str(tmp_path / "server.log"),
            "exchmail",
            "--config",
            "exchmail.toml",
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("twistd did not start listening")


def clients(tmp_path: Path, port: int) -> None:
    """Two wrong passwords, one forged user name, one success, over STARTTLS."""
    tls = ssl.create_default_context(cafile=str(tmp_path / "tls" / "cert.pem"))
    with imaplib.IMAP4("127.0.0.1", port, timeout=15) as imap:
        imap.starttls(ssl_context=tls)
        for user in ("alice", "mallory", '"x client=6.6.6.6 port=1 reason=credentials"'):
            with pytest.raises(imaplib.IMAP4.error):
                imap.login(user, "wrong password")
        assert imap.login("alice", "alice's pw")[0] == "OK"
        imap.logout()


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def fail2ban(log: Path) -> list[str]:
    out = subprocess.run(
        ["fail2ban-regex", "-o", "ip", str(log), str(FILTER)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return out.split()


needs_fail2ban = pytest.mark.skipif(
    shutil.which("fail2ban-regex") is None, reason="fail2ban-regex not installed (apt-get install fail2ban)"
)


@pytest.mark.slow
@needs_fail2ban
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_fail2ban_matches_the_failures_of_a_real_server(tmp_path, log_format):
    proc, port = run_server(tmp_path, log_format)
    try:
        clients(tmp_path, port)
        time.sleep(0.5)  # the session-end line follows the client's close
    finally:
        stop(proc)
    log = tmp_path / "server.log"
    text = log.read_text()
    assert fail2ban(log) == ["127.0.0.1"] * 3, text  # the failures, not the forged address
    if log_format == "text":
        end = [line for line in text.splitlines() if "session-end" in line]
        assert end and re.search(
            r"\[exchmail\.access#info\] session-end proto=imap session=\S+ "
            r"client=127\.0\.0\.1 port=\d+ tls=TLSv1\.[23] duration=\d+\.\d{3} "
            r'in=\d+ out=\d+ user="alice"$',
            end[-1],
        ), end
    else:
        records = [json.loads(line) for line in text.splitlines()]
        ends = [r for r in records if r.get("event") == "session-end"]
        assert ends and ends[-1]["user"] == "alice" and ends[-1]["tls"].startswith("TLSv1.")
        assert all(list(r)[:4] == ["time", "level", "namespace", "message"] for r in records)
