"""CPU profile of an exchmail checkout under the POP3 load and imaptest's default mix (py-spy).

Starts exchmail from ``--exchmail-venv`` (``peer_server.py``: profile
``rfc3501``, 1-iteration PBKDF2 hash, user1..user200/pass), then for each
workload (``--workloads pop3,imap``):

- ``pop3``: ``load/pop3-measure`` (20 clients, users 101-150 with 20
  messages each, seeded over IMAP first) for ``--load-secs`` s;
- ``imap``: ``load/imap-measure`` with ``IMAP_MEASURE_ONLY=bench``
  (imaptest's default mix, 10 clients, user1..user100) for ``--load-secs`` s;

and while the load runs, ``py-spy record --pid PID -d --secs --format raw
--nolineno`` samples the server (after a 3 s ramp-up).  py-spy comes from
``--py-spy`` (default: next to the Python running this script; install it
with ``pip install py-spy`` into the tool venv).  Root (or ptrace rights)
is needed to attach.

The load tools run from the copy made by ``loadtools.py`` (pop3load.py's
client race fixed; ``--stock-load-tools`` for the shared copy).

Output in ``--out``: ``WORKLOAD.raw`` (collapsed stacks: load it in
speedscope.app or flamegraph.pl), ``WORKLOAD.load.txt`` (the load tool's
output) and ``hotspots.md``: for each workload the top ``--top``
functions by self time (the sampled leaf frame) and by inclusive time
(on the stack), in % of the samples.  ``--summarize FILE.raw`` prints the
tables of an existing recording without running anything.

Bounds: load <= 30 s, py-spy for ``--secs`` s, every subprocess has a timeout.
Usage::

    /work/tools-venv/bin/python benchmarks/profile_cpu.py \\
        --exchmail-venv /work/bench-baseline/.venv --out /tmp/profile-baseline
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadtools import load_dir  # noqa: E402
from peer_server import ExchmailPeer  # noqa: E402

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*)\)$")
# Leaf frames that mean "waiting", not running: idle pool workers, the reactor's epoll_wait.
WAIT_LEAVES = ("Condition.wait (", "EPollReactor.doPoll (", "Event.wait (", "Queue.get (")


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S ") + msg, file=sys.stderr, flush=True)


def short_frame(frame: str) -> str:
    """``func (…/site-packages/twisted/x.py)`` -> ``func (twisted/x.py)``."""
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m.group("file")
    if "site-packages/" in path:
        path = path.rsplit("site-packages/", 1)[1]
    elif (i := path.rfind("/exchmail/")) >= 0:
        path = path[i + 1 :]
    elif (i := path.find("/lib/python3")) >= 0:
        path = "stdlib/" + path[i:].split("/", 3)[-1]
    return f"{m.group('func')} ({path})"


def summarize(raw: Path, top: int) -> str:
    """Markdown tables of a raw recording: top functions by self time, and exchmail's by inclusive time.

    Samples whose leaf is a wait (idle thread-pool workers in ``Condition.wait``,
    the reactor in ``epoll_wait``) are not CPU: they are counted apart and left out.
    """
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = waiting = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [short_frame(f) for f in stack.split(";")]
        if frames[-1].startswith(WAIT_LEAVES):
            waiting += n
            continue
        total += n
        pool = frames[0].startswith("Thread._bootstrap")
        threads["worker threads" if pool else "main (reactor) thread"] += n
        own[frames[-1]] += n
        for f in set(frames):
            if f.endswith(".py)") and "(exchmail/" in f:
                inclusive[f] += n
    if not total:
        return f"{raw.name}: no busy samples ({waiting} waiting)\n"
    split = ", ".join(f"{name} {100 * n / total:.0f}%" for name, n in threads.most_common())
    out = [
        f"{raw.name}: {total} busy samples (+{waiting} waiting samples left out); {split}",
        "",
        "| # | self % | function (self time: the sampled frame) |",
        "|---|---|---|",
    ]
    out += [f"| {i} | {100 * n / total:.1f} | `{f}` |" for i, (f, n) in enumerate(own.most_common(top), 1)]
    out += ["", "| # | inclusive % | exchmail function (on the stack) |", "|---|---|---|"]
    out += [
        f"| {i} | {100 * n / total:.1f} | `{f}` |" for i, (f, n) in enumerate(inclusive.most_common(top), 1)
    ]
    return "\n".join(out) + "\n"


def run_with_profile(
    cmd: list[str], env: dict[str, str], pid: int, args: argparse.Namespace, raw: Path, load_out: Path
) -> None:
    """Run the load ``cmd``; record the server with py-spy while it runs."""
    log("load: " + " ".join(cmd))
    with open(load_out, "w") as out:
        load = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            time.sleep(args.ramp)
            spy = [
                args.py_spy,
                "record",
                "--pid",
                str(pid),
                "-d",
                str(args.secs),
                "--rate",
                str(args.rate),
                "--format",
                "raw",
                "--nolineno",
                "-o",
                str(raw),
            ]
            log("profile: " + " ".join(spy))
            r = subprocess.run(spy, capture_output=True, text=True, timeout=args.secs + 60)
            if r.returncode != 0:
                raise RuntimeError(f"py-spy failed: {r.stderr.strip()[-500:]}")
            load.wait(timeout=args.load_secs + 400)
        finally:
            if load.poll() is None:
                load.kill()
                load.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exchmail-venv", help="venv of the exchmail checkout to profile")
    ap.add_argument("--workloads", default="pop3,imap")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--load-secs", type=int, default=25)
    ap.add_argument("--secs", type=int, default=20, help="py-spy recording length")
    ap.add_argument("--ramp", type=float, default=3.0, help="seconds of load before recording")
    ap.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--py-spy", default=str(Path(sys.executable).parent / "py-spy"))
    ap.add_argument(
        "--imaptest-home",
        type=Path,
        default=Path(os.environ.get("IMAPTEST_HOME", Path.home() / ".cache/imaptest")),
    )
    ap.add_argument(
        "--stock-load-tools",
        action="store_true",
        help="run /work/shared/tools/load as it is (see loadtools.py)",
    )
    ap.add_argument("--summarize", type=Path, metavar="FILE.raw", help="only print the tables of FILE")
    args = ap.parse_args()
    if args.summarize:
        print(summarize(args.summarize, args.top))
        return 0
    if not args.exchmail_venv:
        ap.error("--exchmail-venv is required")
    if args.load_secs > 30 or args.secs + args.ramp > args.load_secs:
        ap.error("--load-secs <= 30 and --ramp + --secs <= --load-secs")
    if not shutil.which(args.py_spy):
        ap.error(f"py-spy not found at {args.py_spy} (pip install py-spy, or --py-spy PATH)")
    out = args.out or Path(tempfile.mkdtemp(prefix="profile."))
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="profile-server."))
    load, load_note = load_dir(work, stock=args.stock_load_tools)
    log(f"load tools: {load_note}")
    server = ExchmailPeer(args.exchmail_venv, work / "server", 12143, 12110, users=200)
    env = dict(os.environ, IMAPTEST_HOME=str(args.imaptest_home))
    report = [
        f"# py-spy hot spots: {args.exchmail_venv}",
        "",
        f"{args.secs} s at {args.rate} Hz, after {args.ramp:g} s of load; self = the sampled frame, "
        "inclusive = anywhere on the stack.",
        "",
    ]
    try:
        server.start()
        log(f"started {server.describe()} pid {server.pid}")
        for workload in [w for w in args.workloads.split(",") if w]:
            if workload == "pop3":
                seed = [
                    sys.executable,
                    str(load / "seed-mail.py"),
                    "--port",
                    str(server.imap_port),
                    "--users",
                    "101-150",
                    "--count",
                    "20",
                    "--sizes",
                    "mix",
                    "--seed",
                    "1",
                    "--reset",
                    "--password",
                    "pass",
                ]
                subprocess.run(seed, check=True, timeout=600, stdout=subprocess.DEVNULL)
                cmd = [
                    sys.executable,
                    str(load / "pop3-measure"),
                    "127.0.0.1",
                    str(server.pop3_port),
                    "user{}",
                    "pass",
                    "--seed-mode",
                    "none",
                    "--users",
                    "101-150",
                    "--messages",
                    "20",
                    "--clients",
                    "20",
                    "--duration",
                    str(args.load_secs),
                    "--warmup",
                    "0",
                    "--server-pidfile",
                    str(server.pidfile),
                ]
                wenv = env
            elif workload == "imap":
                cmd = [
                    str(load / "imap-measure"),
                    "127.0.0.1",
                    str(server.imap_port),
                    "user1",
                    "pass",
                    "user%d",
                    "pass",
                ]
                wenv = dict(env, IMAP_MEASURE_ONLY="bench", IMAP_MEASURE_SECS=str(args.load_secs))
            else:
                ap.error(f"unknown workload {workload!r}")
            raw = out / f"{workload}.raw"
            run_with_profile(cmd, wenv, server.pid, args, raw, out / f"{workload}.load.txt")
            table = summarize(raw, args.top)
            report += [f"## {workload}", "", table]
            print(f"== {workload}\n{table}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    (out / "hotspots.md").write_text("\n".join(report))
    print(f"recordings and hotspots.md in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
