"""A private PostgreSQL cluster in a temporary folder, for tests and benchmarks.

``initdb`` refuses to run as root, so when the caller is root the cluster
belongs to the ``postgres`` system user (or ``nobody``) and its programs
run as that user; the folder is made outside the caller's private temporary
folders, which that user could not enter.  The server listens on
127.0.0.1 on a free port and on a socket in the folder, trusts local
connections (it is reachable from this machine only, for the life of a
test) and is removed with its folder by :meth:`PostgresCluster.destroy`.

Programs are looked up in :data:`BIN_DIRS` (Debian's ``postgresql``
package) and on ``PATH``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

BIN_DIRS = (
    tuple(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True))
    if Path("/usr/lib/postgresql").is_dir()
    else ()
)
#: Seconds pg_ctl waits for the server to start or stop.
START_TIMEOUT = 60


def program(name: str) -> str | None:
    """The path of PostgreSQL program ``name`` (newest Debian version first), or None."""
    for folder in BIN_DIRS:
        if os.access(folder / name, os.X_OK):
            return str(folder / name)
    return shutil.which(name)


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged user that runs the cluster when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    return None


def unavailable_reason() -> str | None:
    """Why a cluster cannot be started here, or ``None`` if it can."""
    for name in ("initdb", "pg_ctl", "postgres"):
        if program(name) is None:
            return f"PostgreSQL's {name} is not installed (apt-get install postgresql)"
    if os.geteuid() == 0 and _run_as() is None:
        return "running as root and there is no 'postgres' or 'nobody' user to run PostgreSQL as"
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        return "psycopg 3 and psycopg-pool are not installed (pip install '.[postgresql]')"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    """A running private PostgreSQL server and its database ``exchmail``.

    :param durable: ``False`` turns fsync off (faster tests; a crash of the
        machine would lose the data, a crash of a client never does).
    """

    def __init__(self, durable: bool = False) -> None:
        self.user = _run_as()
        self.folder = Path(tempfile.mkdtemp(prefix="exchmail-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.log = self.folder / "server.log"
        if self.user is not None:
            os.chown(self.folder, self.user.pw_uid, self.user.pw_gid)
        self._run(
            program("initdb"),
            "-D",
            self.data,
            "-A",
            "trust",
            "-U",
            "exchmail",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-instructions",
        )
        settings = [
            f"port = {self.port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.folder}'",
            "max_connections = 200",
            # Small: pytest-xdist starts one cluster per worker.
            f"shared_buffers = {'64MB' if durable else '16MB'}",
            "log_min_messages = warning",
        ]
        if not durable:
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n".join(settings) + "\n")
        self.start()
        self._run(program("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "exchmail", "exchmail")

    @property
    def dsn(self) -> str:
        """The libpq connection string of the ``exchmail`` database."""
        return f"host=127.0.0.1 port={self.port} dbname=exchmail user=exchmail connect_timeout=5"

    def _run(self, *argv: object) -> None:
        kwargs = {}
        if self.user is not None:
            kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        result = subprocess.run(
            [str(a) for a in argv],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.folder,
            timeout=START_TIMEOUT + 30,
            **kwargs,
        )  # type: ignore[call-overload]
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({result.returncode}): {result.stderr.strip()}")

    def start(self) -> None:
        """Start the server (again) and wait until it accepts connections."""
        self._run(program("pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", START_TIMEOUT, "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back open transactions; ``immediate``: like a crash)."""
        self._run(program("pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", START_TIMEOUT, "stop")

    def destroy(self) -> None:
        """Stop the server if it runs and remove the folder."""
        try:
            self.stop("immediate")
        except (RuntimeError, OSError):
            pass  # not running, or its folder is gone already
        shutil.rmtree(self.folder, ignore_errors=True)
