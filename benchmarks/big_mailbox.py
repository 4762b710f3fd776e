"""One INBOX of 100,000 messages: cold SELECT, whole-mailbox FETCH/SEARCH, NOOP stalls, index memory.

For every server (each ``--exchmail-venv [LABEL=]VENV``, then the Dovecot
peer unless ``--no-dovecot``), in ``--runs`` interleaved rounds:

1. stop the server, put a copy of the seeded Maildir in place as user1's
   INBOX (hard links of one template made once by
   ``/work/shared/tools/load/seed-mail.py --maildir``: ``--messages``
   small messages (``--sizes``, default ``fixed:600``) in ``new/``), and
   start a fresh server process (exchmail with ``peer_server.py``, profile
   ``--profile``; Dovecot with ``dovecot-peer/start``, its Maildir owned by
   its mail user);
2. connection B logs in as user1 and, in a separate process, sends NOOP
   every ``--noop-interval`` (10 ms) until the sequence ends;
3. connection A logs in, and the server's RSS is read (sum of VmRSS over
   its process tree, from /proc/PID/status; PSS too);
4. A sends, timing each from command sent to tagged OK:
   ``SELECT INBOX`` (cold: first open since start), then the RSS again;
   ``UID FETCH 1:* (FLAGS)``; ``FETCH 1:* (UID RFC822.SIZE)``;
   ``UID SEARCH HEADER Subject x``; ``SEARCH UNSEEN``;
5. index memory per message = (RSS after SELECT - RSS before) / messages.

The NOOP latencies of B are reported overall (median, p99, worst) and the
worst one that overlapped each command, which shows whether one big
command stalls every other session of the server.

Bounds: every read waits at most ``--timeout`` s (default 900), the NOOP
process stops after the sequence or ``--timeout`` s, every loop is counted.
Loopback only.  Usage::

    /work/tools-venv/bin/python benchmarks/big_mailbox.py \\
        --exchmail-venv baseline=/work/bench-baseline/.venv [--messages 100000] [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadtools import LOAD, import_procstat  # noqa: E402
from peer_server import PASSWORD, PROFILES, DovecotPeer, ExchmailPeer  # noqa: E402
from rawimap import RawIMAP, percentile  # noqa: E402

procstat = import_procstat()

USER = "user1"
COMMANDS = (
    "SELECT INBOX",
    "UID FETCH 1:* (FLAGS)",
    "FETCH 1:* (UID RFC822.SIZE)",
    "UID SEARCH HEADER Subject x",
    "SEARCH UNSEEN",
)


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S ") + msg, file=sys.stderr, flush=True)


def tree_memory(root: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes summed over ``root`` and its descendants (VmRSS from /proc/PID/status)."""
    rss = 0
    pids = procstat.tree(root)
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1]) * 1024
        except OSError:
            pass
    return rss, procstat.mem(pids)[1]


def pinger(port: int, interval: float, max_seconds: float, ready, stop, results) -> None:
    """NOOP every ``interval`` s on its own connection until ``stop`` (or ``max_seconds``)."""
    client = RawIMAP(port, timeout=max_seconds)
    client.login(USER, PASSWORD)
    ready.set()
    samples = []
    deadline = time.monotonic() + max_seconds
    next_at = time.monotonic()
    while not stop.is_set() and time.monotonic() < deadline and len(samples) < 1_000_000:
        reply = client.command(b"NOOP")
        samples.append((reply.sent_at, reply.seconds))
        next_at += interval
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            next_at = time.monotonic()
    client.close()
    results.send(samples)


def seed_template(folder: Path, args: argparse.Namespace) -> Path:
    """user1's Maildir with ``--messages`` messages in new/ (made once, then hard-linked)."""
    template = folder / "template"
    cmd = [
        sys.executable,
        str(LOAD / "seed-mail.py"),
        "--maildir",
        str(template / "user{}"),
        "--users",
        "1-1",
        "--user-pattern",
        "user{}",
        "--count",
        str(args.messages),
        "--sizes",
        args.sizes,
        "--seed",
        "1",
        "--reset",
    ]
    log("seeding the template: " + " ".join(cmd))
    subprocess.run(cmd, check=True, timeout=3600)
    return template / "user1"


def install_mailbox(template: Path, maildir: Path, owner: str | None) -> None:
    if maildir.exists():
        shutil.rmtree(maildir)
    maildir.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-al", str(template), str(maildir)], check=True, timeout=600)
    if owner:
        # The peer's mail user is made by dovecot-peer/start; on a new machine
        # the mailbox is installed before the first start.
        if subprocess.run(["id", owner], capture_output=True).returncode:
            nologin = ["-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin"]
            subprocess.run(["useradd", *nologin, owner], check=True)
        subprocess.run(["chown", "-R", f"{owner}:{owner}", str(maildir)], check=True, timeout=600)


def measure(server, args: argparse.Namespace) -> dict:
    """The command sequence of the module docstring against a freshly started ``server``."""
    ctx = multiprocessing.get_context("fork")
    ready, stop = ctx.Event(), ctx.Event()
    receive, send = ctx.Pipe(duplex=False)
    ping = ctx.Process(
        target=pinger, args=(server.imap_port, args.noop_interval, args.timeout, ready, stop, send)
    )
    ping.start()
    if not ready.wait(60):
        ping.kill()
        raise RuntimeError("NOOP connection did not log in")
    client = RawIMAP(server.imap_port, timeout=args.timeout)
    client.login(USER, PASSWORD)
    time.sleep(0.5)
    res: dict = {"messages": args.messages}
    res["rss_before_mb"], res["pss_before_mb"] = (v / 1e6 for v in tree_memory(server.pid))
    spans = []
    for i, command in enumerate(COMMANDS):
        reply = client.command(command, keep=(i == 0))
        spans.append((command, reply.sent_at, reply.sent_at + reply.seconds))
        res[command] = {"seconds": round(reply.seconds, 4), "ok": reply.ok, "response_bytes": reply.size}
        if not reply.ok:
            res[command]["status"] = reply.status.decode(errors="replace")
        if i == 0:
            exists = [line for line in reply.body.split(b"\r\n") if line.endswith(b" EXISTS")]
            res["exists"] = int(exists[0].split()[1]) if exists else None
            res["rss_after_select_mb"], res["pss_after_select_mb"] = (
                v / 1e6 for v in tree_memory(server.pid)
            )
        log(f"  {command}: {reply.seconds:.3f} s ({reply.size} bytes) {reply.status[:60]!r}")
    res["rss_end_mb"], res["pss_end_mb"] = (v / 1e6 for v in tree_memory(server.pid))
    stop.set()
    samples = receive.recv() if receive.poll(60) else []
    ping.join(30)
    if ping.is_alive():
        ping.kill()
    client.close()
    start, end = spans[0][1], spans[-1][2]
    during = [lat for sent, lat in samples if sent + lat >= start and sent <= end]
    res["noop"] = {
        "count": len(during),
        "median_ms": 1000 * statistics.median(during) if during else None,
        "p99_ms": 1000 * percentile(during, 0.99),
        "max_ms": 1000 * max(during, default=0),
    }
    for command, t0, t1 in spans:
        overlapping = [lat for sent, lat in samples if sent + lat >= t0 and sent <= t1]
        res[command]["noop_max_ms"] = round(1000 * max(overlapping, default=0), 1)
        res[command]["noop_count"] = len(overlapping)
    res["index_bytes_per_message"] = (res["rss_after_select_mb"] - res["rss_before_mb"]) * 1e6 / args.messages
    res["index_pss_bytes_per_message"] = (
        (res["pss_after_select_mb"] - res["pss_before_mb"]) * 1e6 / args.messages
    )
    return res


def render(results: dict[str, list[dict]]) -> str:
    labels = list(results)

    def cell(label: str, get, fmt: str) -> str:
        vals = [get(r) for r in results[label]]
        vals = [v for v in vals if v is not None]
        return format(statistics.median(vals), fmt) if vals else "-"

    rows = [(f"{c} (s)", ".3f", lambda r, c=c: r[c]["seconds"]) for c in COMMANDS]
    rows += [(f"NOOP worst during {c} (ms)", ".1f", lambda r, c=c: r[c]["noop_max_ms"]) for c in COMMANDS]
    rows += [
        ("NOOP median over the sequence (ms)", ".2f", lambda r: r["noop"]["median_ms"]),
        ("NOOP p99 (ms)", ".1f", lambda r: r["noop"]["p99_ms"]),
        ("NOOP worst (ms)", ".1f", lambda r: r["noop"]["max_ms"]),
        ("RSS before SELECT (MB)", ".1f", lambda r: r["rss_before_mb"]),
        ("RSS after SELECT (MB)", ".1f", lambda r: r["rss_after_select_mb"]),
        ("RSS at the end (MB)", ".1f", lambda r: r["rss_end_mb"]),
        ("index RSS bytes/message", ".0f", lambda r: r["index_bytes_per_message"]),
        ("index PSS bytes/message", ".0f", lambda r: r["index_pss_bytes_per_message"]),
        ("EXISTS after SELECT", "d", lambda r: r["exists"]),
    ]
    lines = ["| metric (median) | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    lines += [
        f"| {name} | " + " | ".join(cell(lab, get, fmt) for lab in labels) + " |" for name, fmt, get in rows
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exchmail-venv", action="append", default=[], metavar="[LABEL=]VENV")
    ap.add_argument("--no-dovecot", action="store_true")
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--sizes", default="fixed:600", help="seed-mail.py --sizes (default fixed:600)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--profile", choices=PROFILES, default="rfc3501")
    ap.add_argument("--noop-interval", type=float, default=0.010)
    ap.add_argument("--timeout", type=float, default=900.0, help="longest wait for one reply (s)")
    ap.add_argument("--dovecot-dir", default="/tmp/dovecot-peer")
    ap.add_argument("--workdir", type=Path, help="default: a new temporary folder, removed at the end")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    if not args.exchmail_venv and args.no_dovecot:
        ap.error("nothing to measure")
    if not 0 < args.messages <= 1_000_000 or args.runs > 20:
        ap.error("--messages must be 1..1,000,000 and --runs <= 20")

    work = args.workdir or Path(tempfile.mkdtemp(prefix="big-mailbox."))
    servers: list = []
    for i, spec in enumerate(args.exchmail_venv):
        label, _, venv = spec.rpartition("=")
        s = ExchmailPeer(
            venv, work / f"exchmail{i}", 12143 + 10 * i, 12110 + 10 * i, users=2, profile=args.profile
        )
        s.label = label or f"exchmail{i + 1}"
        servers.append(s)
    if not args.no_dovecot:
        d = DovecotPeer(args.dovecot_dir, 11143, 11110, users=2)
        d.label = "dovecot"
        servers.append(d)
    results: dict[str, list[dict]] = {s.label: [] for s in servers}
    try:
        template = seed_template(work, args)
        for round_ in range(args.runs):
            for s in servers:
                log(f"round {round_ + 1}/{args.runs}: {s.label}: installing {args.messages} messages")
                if isinstance(s, ExchmailPeer):
                    s.prepare(fresh=True)
                    install_mailbox(template, s.maildir(USER), None)
                    s.start(fresh=False)
                else:
                    s.stop(force=True)
                    shutil.rmtree(Path(s.workdir) / "mail", ignore_errors=True)
                    install_mailbox(template, s.maildir(USER), "peermail")
                    s.start(fresh=False)
                try:
                    res = measure(s, args)
                finally:
                    s.stop()
                log(f"  -> {json.dumps(res)[:400]}")
                results[s.label].append(res)
    finally:
        for s in servers:
            s.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1))
    print(
        f"big mailbox: {args.messages} messages of {args.sizes} in user1's INBOX, "
        f"{args.runs} round(s), profile {args.profile}"
    )
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
