"""What a password-hashed LOGIN costs, and what it costs the other sessions.

For every server (each ``--exchmail-venv [LABEL=]VENV`` with exchmail's
default scrypt hash, unless ``--exchmail-hash pbkdf2``; then the Dovecot
peer once per ``--dovecot-scheme``, default ARGON2ID (Dovecot has no
scrypt; ARGON2ID is its memory-hard scheme) and PLAIN), in ``--runs``
interleaved rounds, against a freshly started server process:

- ``first LOGIN``: the very first LOGIN after start (user1), then the
  median first LOGIN of ``--first-users`` other users who have not logged
  in yet (each on a new connection);
- ``repeated LOGIN``: median (and p90) of ``--repeats`` (50) LOGINs of
  user1, each on a new connection, one after another;
- ``APPEND``: one session (user200) APPENDs a 2 KB message to INBOX every
  ``--append-interval`` s; median/p90/worst latency alone (quiet), then
  while ``--storm-clients`` (10) other clients keep logging in and out
  (new connection, LOGIN, LOGOUT; users user2..user101) for
  ``--storm-secs`` s; also the storm's logins/s and LOGIN median.

Times run from command sent to tagged reply (``rawimap.py``).  The storm
runs in a separate process so the APPEND timer does not share its GIL.

Bounds: counts and durations above; every read waits at most 60 s.
Loopback only.  Usage::

    /work/tools-venv/bin/python benchmarks/login_cost.py \\
        --exchmail-venv baseline=/work/bench-baseline/.venv [--runs 3]
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_server import HASHES, PASSWORD, PROFILES, DovecotPeer, ExchmailPeer  # noqa: E402
from rawimap import RawIMAP, percentile  # noqa: E402

TIMEOUT = 60.0
APPENDER = "user200"
MESSAGE = (
    b"From: bench <bench@example.org>\r\nTo: user200@example.org\r\n"
    b"Subject: login_cost append probe\r\nMessage-ID: <probe@example.org>\r\n\r\n"
    + (b"y" * 76 + b"\r\n")
    * 24
)  # about 2 KB


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S ") + msg, file=sys.stderr, flush=True)


def login_once(port: int, user: str) -> float:
    """Seconds of one LOGIN on a new connection (connect and LOGOUT not counted)."""
    client = RawIMAP(port, timeout=TIMEOUT)
    try:
        return client.login(user, PASSWORD).seconds
    finally:
        client.close()


def storm(port: int, clients: int, seconds: float, ready, results) -> None:
    """``clients`` threads logging in and out for ``seconds``; sends (logins, login latencies, errors)."""
    latencies: list[float] = []
    errors = [0]
    users = itertools.cycle([f"user{i}" for i in range(2, 102)])
    lock = threading.Lock()
    start = time.monotonic()
    deadline = start + seconds

    def loop() -> None:
        while time.monotonic() < deadline:
            with lock:
                user = next(users)
            try:
                latencies.append(login_once(port, user))
            except Exception:  # count it and go on
                errors[0] += 1
                time.sleep(0.05)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
    ready.set()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + TIMEOUT + 5)
    results.send((len(latencies), latencies, errors[0], time.monotonic() - start))


def appends(client: RawIMAP, interval: float, seconds: float, limit: int = 10_000) -> list[float]:
    """APPEND every ``interval`` s for ``seconds``; the latencies (at most ``limit``)."""
    out: list[float] = []
    deadline = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < deadline and len(out) < limit:
        reply = client.append("INBOX", MESSAGE)
        if not reply.ok:
            raise RuntimeError(f"APPEND failed: {reply.status!r}")
        out.append(reply.seconds)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    return out


def stats(values: list[float]) -> dict:
    ms = [1000 * v for v in values]
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms) if ms else None,
        "p90_ms": percentile(ms, 0.9),
        "max_ms": max(ms, default=None),
    }


def measure(server, args: argparse.Namespace) -> dict:
    port = server.imap_port
    res: dict = {"very_first_login_ms": 1000 * login_once(port, "user1")}
    firsts = [login_once(port, f"user{150 + i}") for i in range(args.first_users)]
    res["first_login"] = stats(firsts)
    res["repeated_login"] = stats([login_once(port, "user1") for _ in range(args.repeats)])
    appender = RawIMAP(port, timeout=TIMEOUT)
    appender.login(APPENDER, PASSWORD)
    try:
        res["append_quiet"] = stats(appends(appender, args.append_interval, args.quiet_secs))
        ctx = multiprocessing.get_context("fork")
        ready = ctx.Event()
        receive, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=storm, args=(port, args.storm_clients, args.storm_secs, ready, send))
        proc.start()
        ready.wait(30)
        time.sleep(1.0)  # let the storm ramp up
        res["append_storm"] = stats(appends(appender, args.append_interval, args.storm_secs - 2.0))
        logins, latencies, errors, elapsed = (
            receive.recv() if receive.poll(args.storm_secs + 120) else (0, [], -1, 1.0)
        )
        proc.join(30)
        if proc.is_alive():
            proc.kill()
        res["storm"] = {
            "clients": args.storm_clients,
            "logins_per_s": logins / elapsed,
            "errors": errors,
            **{f"login_{k}": v for k, v in stats(latencies).items()},
        }
    finally:
        appender.close()
    return res


def render(results: dict[str, list[dict]]) -> str:
    labels = list(results)
    rows = [
        ("very first LOGIN after start (ms)", ".1f", lambda r: r["very_first_login_ms"]),
        ("first LOGIN of a user, median (ms)", ".1f", lambda r: r["first_login"]["median_ms"]),
        ("repeated LOGIN of one user, median (ms)", ".1f", lambda r: r["repeated_login"]["median_ms"]),
        ("repeated LOGIN p90 (ms)", ".1f", lambda r: r["repeated_login"]["p90_ms"]),
        ("APPEND alone, median (ms)", ".1f", lambda r: r["append_quiet"]["median_ms"]),
        ("APPEND during login storm, median (ms)", ".1f", lambda r: r["append_storm"]["median_ms"]),
        ("APPEND during login storm, p90 (ms)", ".1f", lambda r: r["append_storm"]["p90_ms"]),
        ("APPEND during login storm, worst (ms)", ".1f", lambda r: r["append_storm"]["max_ms"]),
        ("storm logins/s", ".1f", lambda r: r["storm"]["logins_per_s"]),
        ("storm LOGIN median (ms)", ".1f", lambda r: r["storm"]["login_median_ms"]),
        ("storm errors", "d", lambda r: r["storm"]["errors"]),
    ]

    def cell(label: str, get, fmt: str) -> str:
        vals = [v for v in (get(r) for r in results[label]) if v is not None]
        return format(statistics.median(vals), fmt) if vals else "-"

    lines = ["| metric (median of rounds) | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    lines += [
        f"| {name} | " + " | ".join(cell(lab, get, fmt) for lab in labels) + " |" for name, fmt, get in rows
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exchmail-venv", action="append", default=[], metavar="[LABEL=]VENV")
    ap.add_argument("--exchmail-hash", choices=HASHES, default="scrypt")
    ap.add_argument("--profile", choices=PROFILES, default="rfc3501")
    ap.add_argument(
        "--dovecot-scheme",
        action="append",
        default=None,
        help="Dovecot password scheme(s) (default ARGON2ID and PLAIN); 'none' skips Dovecot",
    )
    ap.add_argument("--dovecot-dir", default="/tmp/dovecot-peer")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--first-users", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--storm-clients", type=int, default=10)
    ap.add_argument("--storm-secs", type=float, default=12.0)
    ap.add_argument("--quiet-secs", type=float, default=5.0)
    ap.add_argument("--append-interval", type=float, default=0.1)
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    schemes = [s for s in (args.dovecot_scheme or ["ARGON2ID", "PLAIN"]) if s.lower() != "none"]
    if args.runs > 20 or args.repeats > 1000 or args.storm_secs > 60 or args.first_users > 40:
        ap.error("keep it bounded: --runs <= 20, --repeats <= 1000, --storm-secs <= 60, --first-users <= 40")

    work = Path(tempfile.mkdtemp(prefix="login-cost."))
    servers: list = []
    for i, spec in enumerate(args.exchmail_venv):
        label, _, venv = spec.rpartition("=")
        s = ExchmailPeer(
            venv,
            work / f"exchmail{i}",
            12143 + 10 * i,
            12110 + 10 * i,
            users=200,
            hash=args.exchmail_hash,
            profile=args.profile,
        )
        s.label = f"{label or f'exchmail{i + 1}'} ({args.exchmail_hash})"
        servers.append(s)
    for scheme in schemes:
        d = DovecotPeer(args.dovecot_dir, 11143, 11110, users=200, scheme=scheme)
        d.label = f"dovecot ({scheme})"
        servers.append(d)
    results: dict[str, list[dict]] = {s.label: [] for s in servers}
    try:
        for round_ in range(args.runs):
            for s in servers:
                log(f"round {round_ + 1}/{args.runs}: starting {s.describe()}")
                s.start(fresh=True)
                try:
                    res = measure(s, args)
                finally:
                    s.stop()
                log(f"  -> {json.dumps(res)[:300]}")
                results[s.label].append(res)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1))
    print(
        f"login cost: {args.runs} round(s), fresh server each; storm {args.storm_clients} clients "
        f"for {args.storm_secs:g} s; APPEND every {args.append_interval:g} s"
    )
    print(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
