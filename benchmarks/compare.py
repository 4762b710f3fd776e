"""exchmail side by side with Dovecot: interleaved runs (A B A B ...), medians printed.

Run it with a Python that has ``uvloop`` (the load generators use it when
they can), e.g. the tool venv::

    /work/tools-venv/bin/python benchmarks/compare.py \\
        --exchmail-venv baseline=/work/bench-baseline/.venv [--exchmail-venv after=/work/x/.venv] \\
        --runs 3 --out /tmp/compare-baseline

Each ``--exchmail-venv [LABEL=]VENV`` is one exchmail checkout (started by
``peer_server.py`` as its own ``twistd`` process, profile ``rfc3501``); they
and the Dovecot peer (``dovecot-peer/start --scheme PLAIN``, users
user1..user200/pass) are measured in turn in every round, so two checkouts
given together are compared under the same background load.

Sections (``--sections``, default all, in this order):

``pop3``
    ``load/pop3-measure``: 20 clients for ``--pop3-secs`` seconds, users
    101-150 with 20 messages each (seeded once per server over IMAP
    APPEND); sessions/s and the server's CPU milliseconds per session.
    exchmail uses the 1-iteration PBKDF2 hash (as cheap as Dovecot's {PLAIN}).
``imap``
    ``load/imap-measure`` with ``IMAP_MEASURE_ONLY=bench``: imaptest's
    default command mix, 10 clients, users user1..user100, ``--bench-secs``
    seconds; cmds/s and errors (grouped by kind).  Cheap hash.
``imap-scrypt``
    The same with exchmail's default scrypt hash (Dovecot stays {PLAIN}).
``compliance``
    ``load/imap-measure`` with ``IMAP_MEASURE_ONLY=compliance``: imaptest's
    71 scripts; passed/failed/skipped and the failing scripts
    (``--compliance-runs``, default 1: the counts are not timings).
``idle``
    ``load/conn-measure``: ``--idle-sessions`` sessions (default 10,000,
    users 1-200) each in IDLE on INBOX, against a freshly started server
    (``--idle-runs`` rounds).  PSS per session, EXISTS latency p50/p99,
    time to establish all sessions, and the idle CPU: the server's CPU
    (whole process tree, from /proc/PID/stat) over ``--idle-window``
    seconds while every session idles, as % of one core.  Raises
    ``fs.inotify.max_user_instances`` (Dovecot's IDLE needs one inotify
    instance per session) for the section and puts the old value back.

The POP3 load runs from a copy of the load tools whose ``pop3load.py`` has
a client race fixed (``loadtools.py``; ``--stock-load-tools`` runs the
shared copy as it is).

Bounds: every load run is limited by its tool (<= 30 s, imaptest killed
after its time + 60 s); each subprocess has a timeout; all servers run on
127.0.0.1 and are stopped at the end (also on errors or Ctrl-C).

Output: one table of medians on stdout; ``OUT/results.json`` (every run)
and ``OUT/summary.md`` (the table); raw tool logs under ``OUT``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadtools import import_procstat, load_dir  # noqa: E402
from peer_server import DovecotPeer, ExchmailPeer  # noqa: E402

procstat = import_procstat()

SECTIONS = ("pop3", "imap", "imap-scrypt", "compliance", "idle")
INOTIFY = Path("/proc/sys/fs/inotify/max_user_instances")


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S ") + msg, file=sys.stderr, flush=True)


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def median(values: list[float]) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


class Runner:
    """Runs the shared load tools against one server and parses their output."""

    def __init__(self, args: argparse.Namespace, out: Path, load: Path) -> None:
        self.args = args
        self.out = out
        self.load = load
        self.env = dict(os.environ, IMAPTEST_HOME=str(args.imaptest_home))

    def _run(
        self, cmd: list[str], env: dict[str, str] | None = None, timeout: float = 600, name: str = "run"
    ) -> str:
        log(f"  $ {' '.join(cmd)}")
        r = subprocess.run(cmd, env=env or self.env, capture_output=True, text=True, timeout=timeout)
        stamp = f"{name}-{time.strftime('%H%M%S')}"
        (self.out / f"{stamp}.out").write_text(r.stdout + "\n--- stderr ---\n" + r.stderr)
        return r.stdout

    def pop3(self, server, seed: bool) -> dict:
        a = self.args
        jfile = self.out / f"pop3-{server.label}.jsonl"
        cmd = [
            a.client_python,
            str(self.load / "pop3-measure"),
            "127.0.0.1",
            str(server.pop3_port),
            "user{}",
            "pass",
            "--users",
            "101-150",
            "--messages",
            "20",
            "--clients",
            "20",
            "--duration",
            str(a.pop3_secs),
            "--runs",
            "1",
            "--server-pidfile",
            str(server.pidfile),
            "--json-out",
            str(jfile),
            "--label",
            server.label,
        ]
        cmd += ["--imap-port", str(server.imap_port)] if seed else ["--seed-mode", "none"]
        self._run(cmd, name=f"pop3-{server.label}")
        s = json.loads(jfile.read_text().splitlines()[-1])
        return {
            k: s[k]
            for k in (
                "sessions_per_s",
                "server_cpu_ms_per_session",
                "server_cpu_pct",
                "errors",
                "lat_p50_ms",
                "lat_p99_ms",
                "client_cpu_pct",
                "sys_busy_pct",
            )
        }

    def imap_bench(self, server, section: str = "imap") -> dict:
        env = dict(self.env, IMAP_MEASURE_ONLY="bench", IMAP_MEASURE_SECS=str(self.args.bench_secs))
        la0 = loadavg()
        out = self._run(
            [
                str(self.load / "imap-measure"),
                "127.0.0.1",
                str(server.imap_port),
                "user1",
                "pass",
                "user%d",
                "pass",
            ],
            env=env,
            timeout=self.args.bench_secs + 400,
            name=f"{section}-{server.label}",
        )
        m = re.search(r"benchmark: ([\d.]+) cmds/s, (\d+) errors", out)
        res = {
            "cmds_per_s": float(m.group(1)) if m else None,
            "errors": int(m.group(2)) if m else None,
            "loadavg": f"{la0}->{loadavg()}",
        }
        lat = re.search(r"bench-latency-ms \(last 10s window avg\): (.*)", out)
        res["latency_ms"] = lat.group(1) if lat else ""
        logs = re.search(r"^logs: (\S+)", out, re.M)
        res["error_kinds"] = error_kinds(Path(logs.group(1)) / "bench-default.log") if logs else {}
        if not m:
            res["raw"] = out[-500:]
        return res

    def compliance(self, server) -> dict:
        env = dict(self.env, IMAP_MEASURE_ONLY="compliance")
        out = self._run(
            [str(self.load / "imap-measure"), "127.0.0.1", str(server.imap_port), "user1", "pass"],
            env=env,
            timeout=71 * 40 + 60,
            name=f"compliance-{server.label}",
        )
        m = re.search(r"compliance: (\d+) passed, (\d+) failed \((\d+) skipped", out)
        return {
            "passed": int(m.group(1)) if m else None,
            "failed": int(m.group(2)) if m else None,
            "skipped": int(m.group(3)) if m else None,
            "failures": re.findall(r"^FAIL (.*)$", out, re.M),
            "skipped_list": (re.findall(r"^skipped: (.*)$", out, re.M) or [""])[0],
        }

    def idle(self, server) -> dict:
        """conn-measure with a long hold; the idle CPU is sampled while every session idles."""
        a = self.args
        settle = 2.0 + 10 * 0.1 + 5.0 + 1.0  # notify-at + sample appends + deadline + margin
        hold = settle + a.idle_window + 3.0
        jfile = self.out / f"idle-{server.label}.jsonl"
        cmd = [
            a.client_python,
            str(self.load / "conn-measure"),
            "127.0.0.1",
            str(server.imap_port),
            "user{}",
            "pass",
            str(a.idle_sessions),
            "--users",
            "1-200",
            "--server-pidfile",
            str(server.pidfile),
            "--hold",
            str(hold),
            "--json-out",
            str(jfile),
            "--label",
            server.label,
        ]
        log(f"  $ {' '.join(cmd)}")
        errlog = open(self.out / f"idle-{server.label}-{time.strftime('%H%M%S')}.err", "w")
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        cpu = None
        try:
            deadline = time.monotonic() + 900  # establishing 10k Dovecot sessions took ~150 s
            for line in p.stderr:
                errlog.write(line)
                if line.startswith("established"):
                    time.sleep(settle)
                    cpu = idle_cpu(server.pid, a.idle_window)
                    break
                if time.monotonic() > deadline:
                    break
            out, err = p.communicate(timeout=hold + 300)
            errlog.write(err)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            errlog.close()
        (self.out / f"idle-{server.label}.out").write_text(out)
        r = json.loads(jfile.read_text().splitlines()[-1])
        return {
            "established": r["established"],
            "failures": r["failures"],
            "establish_s": r["establish_s"],
            "pss_per_conn_kb": r["pss_per_conn_kb"],
            "rss_per_conn_kb": r["rss_per_conn_kb"],
            "notify_p50_ms": r["notify_p50_ms"],
            "notify_p99_ms": r["notify_p99_ms"],
            "missed": r["missed"],
            "server_pss_hold_mb": r["server_pss_hold_mb"],
            "procs": r["server_procs_hold"],
            "idle_cpu_pct": cpu,
        }


def idle_cpu(root: int, window: float) -> float:
    """CPU of ``root``'s process tree over ``window`` seconds, in % of one core."""
    pids = procstat.tree(root)
    t0, w0 = procstat.cpu_ticks(pids, root), time.monotonic()
    time.sleep(window)
    t1, w1 = procstat.cpu_ticks(pids, root), time.monotonic()
    return 100.0 * (t1 - t0) / procstat.CLK / (w1 - w0)


def error_kinds(path: Path) -> dict[str, int]:
    """imaptest's 'Error: user[n]: KIND: details' lines counted by KIND."""
    kinds: dict[str, int] = {}
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return kinds
    for line in text.splitlines():
        if line.startswith("Error:"):
            parts = line.split(": ", 3)
            kind = re.sub(r"\d+", "N", parts[2] if len(parts) > 2 else line)[:80]
            kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def make_servers(args: argparse.Namespace, work: Path, hash: str) -> list:
    servers = []
    for i, spec in enumerate(args.exchmail_venv):
        label, _, venv = spec.rpartition("=")
        label = label or ("exchmail" if len(args.exchmail_venv) == 1 else f"exchmail{i + 1}")
        s = ExchmailPeer(
            venv,
            work / f"{label}-{hash}",
            12143 + 10 * i,
            12110 + 10 * i,
            users=200,
            hash=hash,
            profile=args.profile,
        )
        s.label = label
        servers.append(s)
    d = DovecotPeer(args.dovecot_dir, 11143, 11110, users=200, scheme="PLAIN")
    d.label = "dovecot"
    servers.append(d)
    return servers


def interleave(runner_fn, servers: list, rounds: int, what: str, results: dict) -> None:
    for r in range(rounds):
        for s in servers:
            log(f"{what} round {r + 1}/{rounds}: {s.label}")
            res = runner_fn(s, r)
            log(f"  -> {json.dumps(res)[:300]}")
            results.setdefault(what, {}).setdefault(s.label, []).append(res)


def summarize(results: dict, labels: list[str]) -> list[tuple[str, list[str]]]:
    """Rows (metric, [value per label]) of medians."""
    rows: list[tuple[str, list[str]]] = []

    def med(section: str, key: str, fmt: str) -> None:
        if section not in results:
            return
        cells = []
        for lab in labels:
            runs = results[section].get(lab, [])
            vals = [r[key] for r in runs if r.get(key) is not None]
            cells.append(
                (fmt % median(vals)) + (f" (n={len(vals)})" if len(vals) != 1 else "") if vals else "-"
            )
        rows.append((f"{section}: {key}", cells))

    med("pop3", "sessions_per_s", "%.1f")
    med("pop3", "server_cpu_ms_per_session", "%.2f")
    med("pop3", "errors", "%d")
    med("pop3", "sys_busy_pct", "%.0f")
    for sec in ("imap", "imap-scrypt"):
        med(sec, "cmds_per_s", "%.1f")
        med(sec, "errors", "%d")
    if "compliance" in results:
        cells = []
        for lab in labels:
            runs = results["compliance"].get(lab, [])
            cells.append(" / ".join(f"{r['passed']}/{r['failed']}/{r['skipped']}" for r in runs) or "-")
        rows.append(("compliance: passed/failed/skipped", cells))
    for key, fmt in (
        ("established", "%d"),
        ("establish_s", "%.1f"),
        ("pss_per_conn_kb", "%.1f"),
        ("notify_p50_ms", "%.0f"),
        ("notify_p99_ms", "%.0f"),
        ("idle_cpu_pct", "%.2f"),
    ):
        med("idle", key, fmt)
    return rows


def render(rows: list[tuple[str, list[str]]], labels: list[str]) -> str:
    head = "| metric (median) | " + " | ".join(labels) + " |"
    sep = "|---|" + "---|" * len(labels)
    return "\n".join([head, sep] + [f"| {m} | " + " | ".join(c) + " |" for m, c in rows])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--exchmail-venv",
        action="append",
        required=True,
        metavar="[LABEL=]VENV",
        help="venv of an exchmail checkout (repeat to interleave several)",
    )
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma list of " + ",".join(SECTIONS))
    ap.add_argument("--runs", type=int, default=3, help="rounds for pop3, imap, imap-scrypt")
    ap.add_argument("--compliance-runs", type=int, default=1)
    ap.add_argument("--idle-runs", type=int, default=1)
    ap.add_argument("--idle-sessions", type=int, default=10000)
    ap.add_argument("--idle-window", type=float, default=30.0)
    ap.add_argument("--pop3-secs", type=float, default=20.0)
    ap.add_argument("--bench-secs", type=int, default=20)
    ap.add_argument("--profile", default="rfc3501", help="exchmail profile (default rfc3501)")
    ap.add_argument("--dovecot-dir", default="/tmp/dovecot-peer")
    ap.add_argument(
        "--imaptest-home",
        type=Path,
        default=Path(os.environ.get("IMAPTEST_HOME", Path.home() / ".cache/imaptest")),
    )
    ap.add_argument("--client-python", default=sys.executable, help="Python for the load tools (uvloop)")
    ap.add_argument("--out", type=Path, help="results folder (default: a new /tmp/compare.*)")
    ap.add_argument(
        "--stock-load-tools",
        action="store_true",
        help="run /work/shared/tools/load as it is (see loadtools.py for the pop3load fix)",
    )
    args = ap.parse_args()
    sections = [s for s in args.sections.split(",") if s]
    if bad := set(sections) - set(SECTIONS):
        ap.error(f"unknown sections {sorted(bad)}")
    if args.pop3_secs > 30 or args.bench_secs > 30 or args.idle_window > 120:
        ap.error("keep runs short: --pop3-secs/--bench-secs <= 30, --idle-window <= 120")
    if not (args.imaptest_home / "bin" / "imaptest").exists():
        ap.error(f"no imaptest in {args.imaptest_home}: run /work/shared/tools/imaptest/build")
    out = args.out or Path(tempfile.mkdtemp(prefix="compare."))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="compare-servers."))
    load, load_note = load_dir(work, stock=args.stock_load_tools)
    log(f"load tools: {load_note}")
    runner = Runner(args, out, load)
    results: dict = {
        "meta": {
            "args": vars(args) | {"imaptest_home": str(args.imaptest_home), "out": str(out)},
            "load_tools": load_note,
            "start": time.strftime("%Y-%m-%d %H:%M:%S"),
            "loadavg_start": loadavg(),
        }
    }
    cheap = make_servers(args, work, "pbkdf2")
    labels = [s.label for s in cheap]
    running: list = []
    old_inotify = None
    try:
        if {"pop3", "imap", "compliance"} & set(sections):
            for s in cheap:
                log(f"starting {s.describe()}")
                running.append(s.start())
            if "pop3" in sections:
                interleave(lambda s, r: runner.pop3(s, seed=(r == 0)), cheap, args.runs, "pop3", results)
            if "imap" in sections:
                interleave(lambda s, r: runner.imap_bench(s), cheap, args.runs, "imap", results)
            if "compliance" in sections:
                interleave(
                    lambda s, r: runner.compliance(s), cheap, args.compliance_runs, "compliance", results
                )
            for s in running:
                if s.name == "exchmail":
                    s.stop()
            running = [s for s in running if s.name != "exchmail"]
        if "imap-scrypt" in sections:
            scrypt = make_servers(args, work, "scrypt")[:-1] + [cheap[-1]]
            for s in scrypt:
                if s not in running:
                    log(f"starting {s.describe()}")
                    running.append(s.start())
            interleave(
                lambda s, r: runner.imap_bench(s, "imap-scrypt"), scrypt, args.runs, "imap-scrypt", results
            )
            for s in scrypt:
                s.stop()
            running = []
        if "idle" in sections:
            for s in running:
                s.stop()
            running = []
            need = args.idle_sessions + 1000
            if int(INOTIFY.read_text()) < need and os.geteuid() == 0:
                old_inotify = INOTIFY.read_text().strip()
                log(f"fs.inotify.max_user_instances {old_inotify} -> {need} for this section")
                INOTIFY.write_text(str(need))

            def one_idle(s, r):
                log(f"starting fresh {s.describe()}")
                s.start()
                try:
                    return runner.idle(s)
                finally:
                    s.stop()

            interleave(one_idle, cheap, args.idle_runs, "idle", results)
    finally:
        for s in cheap + running:
            try:
                s.stop()
            except Exception as e:  # keep stopping the others
                log(f"stopping {s.label}: {e}")
        if old_inotify is not None:
            INOTIFY.write_text(old_inotify)
            log(f"fs.inotify.max_user_instances back to {old_inotify}")
        shutil.rmtree(work, ignore_errors=True)
        results["meta"]["end"] = time.strftime("%Y-%m-%d %H:%M:%S")
        results["meta"]["loadavg_end"] = loadavg()
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    table = render(summarize(results, labels), labels)
    (out / "summary.md").write_text(table + "\n")
    print(table)
    for sec in ("imap", "imap-scrypt"):
        for lab, runs in results.get(sec, {}).items():
            kinds: dict[str, int] = {}
            for r in runs:
                for k, v in r.get("error_kinds", {}).items():
                    kinds[k] = kinds.get(k, 0) + v
            if kinds:
                print(f"{sec} {lab} error kinds (all runs): {kinds}")
    for lab, runs in results.get("compliance", {}).items():
        for r in runs:
            for f in r["failures"]:
                print(f"compliance {lab} FAIL {f}")
    print(f"results: {out}/results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
