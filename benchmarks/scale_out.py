"""Scale-out: 1, 2 and 3 exchmail frontends on one PostgreSQL, and Maildir, side by side.

::

    .venv/bin/python benchmarks/scale_out.py [--frontends 1,2,3] [--secs 15] [--out DIR]
        [--sections imap,pop3,latency,burst]

Every configuration runs behind HAProxy (round robin, TCP), as operators
run frontends; Maildir is one frontend behind the same HAProxy.  The
PostgreSQL cluster is private (``exchmail.testing.postgres``, durable:
fsync on), one fresh database per configuration; users user1..user100 with
password ``pass`` and the 1-iteration PBKDF2 hash (logins cost next to
nothing, so the store is what is measured).

Sections:

``imap``
    imaptest's default mixed workload (``load/imap-measure`` with
    ``IMAP_MEASURE_ONLY=bench``, 10 clients, ``--secs``): commands/s, and
    CPU milliseconds per command in the frontends (sum) and in PostgreSQL
    (postmaster, its live children and the reaped ones), from /proc.
``pop3``
    ``load/pop3-measure``: 50 maildrops of 20 messages seeded over IMAP,
    20 clients looping USER/PASS, STAT, UIDL, LIST, RETR all, QUIT:
    sessions/s and CPU per session as above.
``latency``
    (2+ frontends) an IDLE session on the last frontend, APPENDs on the
    first, one at a time: the time from sending APPEND to the IDLE session
    reading EXISTS, p50/p99 over ``--samples`` appends.  For Maildir, both
    sessions are on the one frontend.
``burst``
    (2+ frontends) ``--burst-connections`` (8) on the first frontend STORE flags as fast
    as they can for ``--burst-secs``; the IDLE session on the last frontend
    counts the FETCH responses: changes/s made, changes/s seen, and the lag
    of the last change.

Bounds: each load tool run is limited by its own duration (+ timeouts);
everything listens on 127.0.0.1; every process started is stopped at the
end (also on errors).  Output: a Markdown table on stdout and
``OUT/results.json`` (with the load tools' output); the servers' own
folders are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from loadtools import load_dir  # noqa: E402
from peer_server import _ACCOUNTS_SNIPPET, PASSWORD, ExchmailPeer, wait_for_port  # noqa: E402

from exchmail.testing.postgres import PostgresCluster, free_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
USERS = 100


def log(text: str) -> None:
    print(time.strftime("%H:%M:%S ") + text, file=sys.stderr, flush=True)


# -- CPU accounting from /proc ----------------------------------------------------------
def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int, reaped: bool = True) -> float:
    """utime+stime of ``pid`` (+ its reaped children's) in seconds; 0 if it is gone."""
    try:
        fields = _stat(pid)
    except (OSError, ValueError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat(int(entry.name))[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


def postgres_cpu(cluster: PostgresCluster) -> float:
    """CPU seconds of the whole PostgreSQL server so far (live and reaped processes)."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    return cpu_seconds(postmaster) + sum(cpu_seconds(child, reaped=False) for child in children(postmaster))


# -- servers ----------------------------------------------------------------------------
class PGPeer(ExchmailPeer):
    """An exchmail frontend whose store is the PostgreSQL database ``dsn``."""

    def __init__(self, venv: Path, workdir: Path, dsn: str, users_file: Path, **kwargs: Any) -> None:
        super().__init__(venv, workdir, **kwargs)
        self.dsn, self.users_file = dsn, users_file

    def prepare(self, fresh: bool = True) -> None:
        super().prepare(fresh)
        config = self.workdir / "exchmail.toml"
        text = config.read_text().replace(
            f'users_file = "{self.data / "users"}"', f'users_file = "{self.users_file}"'
        )
        config.write_text(text + f'[store]\nbackend = "postgresql"\ndsn = "{self.dsn}"\npool_size = 8\n')


class HAProxy:
    """Round-robin TCP balancing of IMAP and POP3 over the frontends."""

    def __init__(self, workdir: Path, frontends: list[ExchmailPeer]) -> None:
        self.imap_port, self.pop3_port = free_port(), free_port()
        lines = [
            "global",
            "    maxconn 4000",
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client 300s",
            "    timeout server 300s",
            "    balance roundrobin",
        ]
        for name, port, attr in (
            ("imap", self.imap_port, "imap_port"),
            ("pop3", self.pop3_port, "pop3_port"),
        ):
            lines += [f"listen {name}", f"    bind 127.0.0.1:{port}"]
            lines += [f"    server f{n} 127.0.0.1:{getattr(f, attr)}" for n, f in enumerate(frontends)]
        self.config = workdir / "haproxy.cfg"
        self.config.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(
            [shutil.which("haproxy") or "haproxy", "-db", "-f", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not (wait_for_port(self.imap_port, 20) and wait_for_port(self.pop3_port, 20)):
            self.stop()
            raise RuntimeError("haproxy did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


class Setup:
    """One configuration: its frontends, HAProxy and (PostgreSQL) its database."""

    def __init__(
        self, label: str, frontends: list[ExchmailPeer], cluster: PostgresCluster | None, work: Path
    ) -> None:
        self.label, self.frontends, self.cluster = label, frontends, cluster
        try:
            for frontend in frontends:
                frontend.start()
            self.proxy = HAProxy(work, frontends)
        except BaseException:
            for frontend in frontends:
                frontend.stop()
            raise

    def cpu(self) -> tuple[float, float]:
        front = sum(cpu_seconds(f.pid) for f in self.frontends if f.pid)
        return front, postgres_cpu(self.cluster) if self.cluster else 0.0

    def stop(self) -> None:
        self.proxy.stop()
        for frontend in self.frontends:
            frontend.stop()


def users_file(venv: Path, path: Path) -> Path:
    lines = subprocess.run(
        [str(venv / "bin" / "python"), "-c", _ACCOUNTS_SNIPPET, "pbkdf2", str(USERS), PASSWORD],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path.write_text(lines)
    path.chmod(0o600)
    return path


def new_database(cluster: PostgresCluster, name: str) -> str:
    import psycopg

    from exchmail.store.postgresql import schema

    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = cluster.dsn.replace("dbname=exchmail", f"dbname={name}")
    with psycopg.connect(dsn) as conn:
        schema.init(conn)
    return dsn


# -- the loads --------------------------------------------------------------------------
def run_imap(setup: Setup, args: argparse.Namespace, load: Path, out: Path) -> dict[str, Any]:
    env = dict(
        os.environ,
        IMAP_MEASURE_ONLY="bench",
        IMAP_MEASURE_SECS=str(args.secs),
        IMAP_MEASURE_OUT=str(out / f"imap-{setup.label}"),
    )
    before = setup.cpu()
    result = subprocess.run(
        [
            str(load / "imap-measure"),
            "127.0.0.1",
            str(setup.proxy.imap_port),
            "user1",
            "pass",
            "user%d",
            "pass",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=args.secs + 400,
    )
    after = setup.cpu()
    (out / f"imap-{setup.label}.out").write_text(result.stdout + result.stderr)
    match = re.search(r"benchmark: ([\d.]+) cmds/s, (\d+) errors", result.stdout)
    if not match:
        return {"error": result.stdout[-300:] + result.stderr[-300:]}
    rate = float(match.group(1))
    # Setting up the box for 100 users runs before the timed part: CPU is
    # divided by every command of the run, a slight overestimate per command.
    commands = rate * args.secs
    return {
        "cmds_per_s": rate,
        "errors": int(match.group(2)),
        "frontend_cpu_ms_per_cmd": 1000 * (after[0] - before[0]) / commands,
        "postgres_cpu_ms_per_cmd": 1000 * (after[1] - before[1]) / commands,
    }


def run_pop3(setup: Setup, args: argparse.Namespace, load: Path, out: Path) -> dict[str, Any]:
    jfile = out / f"pop3-{setup.label}.jsonl"
    seed = [
        sys.executable,
        str(load / "pop3-measure"),
        "127.0.0.1",
        str(setup.proxy.pop3_port),
        "user{}",
        "pass",
        "--users",
        "1-50",
        "--messages",
        "20",
        "--clients",
        "20",
        "--duration",
        "1",
        "--runs",
        "1",
        "--imap-port",
        str(setup.proxy.imap_port),
        "--label",
        setup.label,
    ]
    subprocess.run(seed, capture_output=True, text=True, timeout=900)
    before = setup.cpu()
    cmd = [
        sys.executable,
        str(load / "pop3-measure"),
        "127.0.0.1",
        str(setup.proxy.pop3_port),
        "user{}",
        "pass",
        "--users",
        "1-50",
        "--messages",
        "20",
        "--clients",
        "20",
        "--duration",
        str(args.secs),
        "--runs",
        "1",
        "--seed-mode",
        "none",
        "--json-out",
        str(jfile),
        "--label",
        setup.label,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=args.secs + 300)
    after = setup.cpu()
    (out / f"pop3-{setup.label}.out").write_text(result.stdout + result.stderr)
    try:
        summary = json.loads(jfile.read_text().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return {"error": result.stdout[-300:] + result.stderr[-300:]}
    sessions = summary["sessions_per_s"] * args.secs
    return {
        "sessions_per_s": summary["sessions_per_s"],
        "errors": summary["errors"],
        "frontend_cpu_ms_per_session": 1000 * (after[0] - before[0]) / max(sessions, 1),
        "postgres_cpu_ms_per_session": 1000 * (after[1] - before[1]) / max(sessions, 1),
    }


class Session:
    """A raw IMAP connection (tagged commands, untagged lines collected by a thread when idling)."""

    def __init__(self, port: int, user: str = "user77") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rb")
        self.file.readline()
        self.tag = 0
        self.command(f"LOGIN {user} pass".encode())
        self.command(b"SELECT INBOX")

    def command(self, line: bytes, literal: bytes | None = None) -> bytes:
        self.tag += 1
        tag = b"t%d" % self.tag
        if literal is None:
            self.sock.sendall(tag + b" " + line + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + line + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        while not (answer := self.file.readline()).startswith(tag + b" "):
            if not answer:
                raise ConnectionError("closed")
        if b" OK" not in answer:
            raise RuntimeError(answer)
        return answer

    def idle(self, on_line: Any) -> None:
        self.sock.sendall(b"i IDLE\r\n")
        assert self.file.readline().startswith(b"+")

        def read() -> None:
            try:
                while line := self.file.readline():
                    on_line(time.monotonic(), line)
            except OSError:
                pass

        threading.Thread(target=read, daemon=True).start()

    def close(self) -> None:
        self.sock.close()


def run_latency(setup: Setup, args: argparse.Namespace) -> dict[str, Any]:
    seen: list[float] = []
    event = threading.Event()

    def on_line(when: float, line: bytes) -> None:
        if line.endswith(b"EXISTS\r\n"):
            seen.append(when)
            event.set()

    watcher = Session(setup.frontends[-1].imap_port)
    watcher.idle(on_line)
    writer = Session(setup.frontends[0].imap_port)
    samples = []
    try:
        for n in range(args.samples):
            event.clear()
            sent = time.monotonic()
            writer.command(b"APPEND INBOX", b"Subject: latency %d\r\n\r\nx\r\n" % n)
            if event.wait(5):
                samples.append(1000 * (seen[-1] - sent))
    finally:
        watcher.close()
        writer.close()
    samples.sort()
    return {
        "samples": len(samples),
        "missed": args.samples - len(samples),
        "exists_p50_ms": statistics.median(samples) if samples else None,
        "exists_p99_ms": samples[int(0.99 * (len(samples) - 1))] if samples else None,
    }


def run_burst(setup: Setup, args: argparse.Namespace) -> dict[str, Any]:
    """Flag changes from several connections on the first frontend, watched from the last."""
    fetches: list[float] = []
    watcher = Session(setup.frontends[-1].imap_port, "user78")
    writer = Session(setup.frontends[0].imap_port, "user78")
    for n in range(50):
        writer.command(b"APPEND INBOX", b"Subject: burst %d\r\n\r\nx\r\n" % n)
    writer.close()
    watcher.command(b"NOOP")
    watcher.idle(lambda when, line: fetches.append(when) if b" FETCH " in line else None)
    made = [0]
    stop = time.monotonic() + args.burst_secs
    lock = threading.Lock()

    def storm(k: int) -> None:
        """Toggle \\Flagged on this thread's own messages: every STORE is a change."""
        session = Session(setup.frontends[0].imap_port, "user78")
        mine = {number: False for number in range(1 + k, 51, args.burst_connections)}
        while time.monotonic() < stop:
            for number, flagged in mine.items():
                session.command(b"STORE %d %sFLAGS (\\Flagged)" % (number, b"-" if flagged else b"+"))
                mine[number] = not flagged
                with lock:
                    made[0] += 1
                if time.monotonic() >= stop:
                    break
        session.close()

    started = time.monotonic()
    threads = [threading.Thread(target=storm, args=(k,)) for k in range(args.burst_connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(args.burst_secs + 60)
    ended = time.monotonic()
    deadline = ended + 10
    while len(fetches) < made[0] and time.monotonic() < deadline:
        time.sleep(0.05)
    watcher.close()
    return {
        "changes": made[0],
        "made_per_s": made[0] / (ended - started),
        "seen": len(fetches),
        "seen_per_s": len(fetches) / (ended - started),
        "last_seen_after_end_ms": 1000 * (fetches[-1] - ended) if fetches else None,
    }


# -- main ---------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", type=Path, default=Path(sys.executable).parent.parent)
    parser.add_argument("--frontends", default="1,2,3")
    parser.add_argument("--secs", type=int, default=15)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--burst-secs", type=float, default=5.0)
    parser.add_argument("--burst-connections", type=int, default=8, help="1 to 50")
    parser.add_argument("--sections", default="imap,pop3,latency,burst")
    parser.add_argument("--no-maildir", action="store_true", help="skip the Maildir baseline")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sections = args.sections.split(",")
    work = Path(tempfile.mkdtemp(prefix="scale-out-"))
    out = args.out or Path(tempfile.mkdtemp(prefix="scale-out-results-"))
    out.mkdir(parents=True, exist_ok=True)
    load, note = load_dir(work)
    log(note)
    cluster = PostgresCluster(durable=True)
    users = users_file(args.venv, work / "users")
    results: dict[str, dict[str, Any]] = {}
    plans = [] if args.no_maildir else [("maildir-1", None, 1)]
    plans += [(f"postgresql-{n}", "pg", n) for n in map(int, args.frontends.split(","))]
    try:
        for number, (label, kind, count) in enumerate(plans):
            log(f"== {label}")
            folder = work / label
            if kind is None:
                peers: list[ExchmailPeer] = [
                    ExchmailPeer(args.venv, folder / "f0", free_port(), free_port(), users=USERS)
                ]
            else:
                dsn = new_database(cluster, f"bench{number}")
                peers = [
                    PGPeer(
                        args.venv,
                        folder / f"f{n}",
                        dsn,
                        users,
                        imap_port=free_port(),
                        pop3_port=free_port(),
                        users=USERS,
                    )
                    for n in range(count)
                ]
            setup = Setup(label, peers, cluster if kind else None, folder)
            row: dict[str, Any] = {}
            try:
                if "imap" in sections:
                    row["imap"] = run_imap(setup, args, load, out)
                    log(f"   imap {row['imap']}")
                if "pop3" in sections:
                    row["pop3"] = run_pop3(setup, args, load, out)
                    log(f"   pop3 {row['pop3']}")
                if "latency" in sections and (count > 1 or kind is None):
                    row["latency"] = run_latency(setup, args)
                    log(f"   latency {row['latency']}")
                if "burst" in sections and (count > 1 or kind is None):
                    row["burst"] = run_burst(setup, args)
                    log(f"   burst {row['burst']}")
            finally:
                setup.stop()
            results[label] = row
            (out / "results.json").write_text(json.dumps(results, indent=2))
    finally:
        cluster.destroy()
        shutil.rmtree(work, ignore_errors=True)  # servers' data and logs; results stay in OUT
    print(render(results))
    log(f"results: {out / 'results.json'}")
    return 0


def _fmt(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def render(results: dict[str, dict[str, Any]]) -> str:
    head = (
        "| setup | IMAP cmds/s | frontend ms/cmd | PostgreSQL ms/cmd | POP3 sessions/s | frontend ms/session "
        "| PostgreSQL ms/session | EXISTS p50/p99 ms | burst made/seen per s |"
    )
    lines = [head, "|" + "---|" * 9]
    for label, row in results.items():
        imap, pop3 = row.get("imap", {}), row.get("pop3", {})
        lat, burst = row.get("latency", {}), row.get("burst", {})
        lines.append(
            f"| {label} | {_fmt(imap.get('cmds_per_s'), 0)} | {_fmt(imap.get('frontend_cpu_ms_per_cmd'), 3)} "
            f"| {_fmt(imap.get('postgres_cpu_ms_per_cmd'), 3)} | {_fmt(pop3.get('sessions_per_s'), 1)} "
            f"| {_fmt(pop3.get('frontend_cpu_ms_per_session'))} "
            f"| {_fmt(pop3.get('postgres_cpu_ms_per_session'))} "
            f"| {_fmt(lat.get('exists_p50_ms'), 1)}/{_fmt(lat.get('exists_p99_ms'), 1)} "
            f"| {_fmt(burst.get('made_per_s'), 0)}/{_fmt(burst.get('seen_per_s'), 0)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
