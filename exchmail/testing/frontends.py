"""exchmail frontends as separate processes over one PostgreSQL database.

For tests and benchmarks of scale-out: :class:`Frontend` writes a
configuration (PostgreSQL store, plain-text logins on loopback ports, a
shared accounts file, no throttle) and runs ``twistd -n exchmail`` with
it, the way an operator runs each frontend machine.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from exchmail.testing.postgres import free_port

#: Seconds a frontend may take to start listening.
START_TIMEOUT = 60.0


def twistd() -> str:
    """The ``twistd`` of this Python environment."""
    return str(Path(sys.executable).parent / "twistd")


def config_text(
    data_dir: Path,
    dsn: str,
    users_file: Path,
    imap_port: int,
    pop3_port: int,
    profile: dict[str, object] | None = None,
) -> str:
    """A frontend's TOML configuration."""
    lines = [
        "[server]",
        f'data_dir = "{data_dir}"',
        "[imap]",
        f'listen = ["tcp:{imap_port}:interface=127.0.0.1"]',
        "[pop3]",
        f'listen = ["tcp:{pop3_port}:interface=127.0.0.1"]',
        "[auth]",
        f'users_file = "{users_file}"',
        'login_type = "PlainTextLogin"',
        "[throttle]",
        "enabled = false",
        "[store]",
        'backend = "postgresql"',
        f'dsn = "{dsn}"',
        "pool_size = 8",
    ]
    if profile:
        lines.append("[profile]")
        lines += [f"{key} = {_toml(value)}" for key, value in profile.items()]
    return "\n".join(lines) + "\n"


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


class Frontend:
    """One ``twistd exchmail`` process; :meth:`start` waits until it listens."""

    def __init__(
        self, folder: Path, dsn: str, users_file: Path, profile: dict[str, object] | None = None
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.imap_port, self.pop3_port = free_port(), free_port()
        self.config = folder / "exchmail.toml"
        self.config.write_text(
            config_text(folder / "data", dsn, users_file, self.imap_port, self.pop3_port, profile)
        )
        self.log = folder / "twistd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Frontend:
        self.process = subprocess.Popen(
            [
                twistd(),
                "-n",
                "--pidfile=",
                "--logfile",
                str(self.log),
                "exchmail",
                "--config",
                str(self.config),
            ],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the frontend exited ({self.process.returncode}): {self.log_text()}")
            if _accepts(self.imap_port) and _accepts(self.pop3_port):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"the frontend did not start listening: {self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: the process dies at once, mid-transaction if it was in one."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
