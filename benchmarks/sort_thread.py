"""SORT, THREAD and a QRESYNC resynchronisation on a big mailbox, side by side with Dovecot.

For every server (each ``--exchmail-venv [LABEL=]VENV``, then the Dovecot
peer of ``/work/shared/tools/dovecot-peer`` unless ``--no-dovecot``), in
``--runs`` interleaved rounds:

1. stop the server, install a copy (hard links) of one seeded Maildir as
   user1's INBOX -- ``--messages`` messages made here once, deterministic:
   threaded conversations (``References``/``In-Reply-To`` to an earlier
   message and a ``Re:`` subject for about 60 %), 200 senders, dates spread
   over a year and not in arrival order -- and start a fresh server process;
2. connection A logs in and times, from command sent to tagged OK:
   ``SELECT INBOX`` (cold), then ``SORT (ARRIVAL)``, ``SORT (DATE)``,
   ``SORT (SUBJECT)``, ``SORT (FROM)`` and ``THREAD REFERENCES`` over ALL
   (the first header-based one parses the headers of every message; the
   others may use what the server kept), then ``SORT (SUBJECT)`` again
   (warm);
3. QRESYNC: connection C enables QRESYNC and notes HIGHESTMODSEQ;
   connection B changes the flags of ``--changes`` (1,000) random
   messages, one ``UID STORE`` each; C then reconnects and times
   ``SELECT INBOX (QRESYNC (uidvalidity modseq))`` and counts its FETCH
   responses (each changed message once).

Bounds: each reply waits at most ``--timeout`` s; loops are counted.
Loopback only.  Usage::

    /work/tools-venv/bin/python benchmarks/sort_thread.py \\
        --exchmail-venv .venv [--messages 100000] [--runs 1] [--no-dovecot]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from big_mailbox import install_mailbox, log  # noqa: E402
from peer_server import PASSWORD, DovecotPeer, ExchmailPeer  # noqa: E402
from rawimap import RawIMAP  # noqa: E402

USER = "user1"
SORTS = (
    "SORT (ARRIVAL) US-ASCII ALL",
    "SORT (DATE) US-ASCII ALL",
    "SORT (SUBJECT) US-ASCII ALL",
    "SORT (FROM) US-ASCII ALL",
    "THREAD REFERENCES US-ASCII ALL",
)
WARM = "SORT (SUBJECT) US-ASCII ALL"
WORDS = (
    "budget",
    "meeting",
    "report",
    "release",
    "holiday",
    "lunch",
    "invoice",
    "review",
    "draft",
    "plan",
    "server",
    "backup",
    "contract",
    "agenda",
    "travel",
    "launch",
)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def free_port() -> int:
    """A loopback port nobody listens on now (so parallel runs do not collide)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_template(folder: Path, count: int) -> Path:
    """user1's Maildir with ``count`` threaded messages in cur/ (made once)."""
    maildir = folder / "template" / "user1"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    subjects: list[str] = []
    for k in range(count):
        parent = rng.randrange(k) if k and rng.random() < 0.6 else None
        if parent is None:
            subject = " ".join(rng.choice(WORDS) for _ in range(3)) + f" {k}"
            refs = ""
        else:
            subject = "Re: " + subjects[parent].removeprefix("Re: ")
            refs = f"References: <m{parent}@bench.example>\nIn-Reply-To: <m{parent}@bench.example>\n"
        subjects.append(subject)
        day, month = rng.randint(1, 28), MONTHS[rng.randrange(12)]
        sender = rng.randrange(200)
        text = (
            f"From: Sender {sender} <sender{sender}@bench.example>\nTo: <user1@bench.example>\n"
            f"Subject: {subject}\nDate: Mon, {day:02d} {month} 2024 "
            f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:00 +0000\n"
            f"Message-ID: <m{k}@bench.example>\n{refs}\nbody of message {k}\n"
        )
        (maildir / "cur" / f"{1700000000 + k}.M{k}P1.bench:2,").write_text(text)
    return maildir


def command(client: RawIMAP, text: str, res: dict, keep: bool = False):
    reply = client.command(text, keep=keep)
    res[text] = {"seconds": round(reply.seconds, 4), "ok": reply.ok, "bytes": reply.size}
    log(f"  {text}: {reply.seconds:.3f} s ({reply.size} bytes) {reply.status[:60]!r}")
    return reply


def measure(server, args: argparse.Namespace) -> dict:
    res: dict = {"messages": args.messages}
    a = RawIMAP(server.imap_port, timeout=args.timeout)
    a.login(USER, PASSWORD)
    command(a, "SELECT INBOX", res)
    for text in SORTS:
        command(a, text, res)
    res["warm " + WARM] = command(a, WARM, {})
    res["warm " + WARM] = {"seconds": round(res["warm " + WARM].seconds, 4)}
    c = RawIMAP(server.imap_port, timeout=args.timeout)
    c.login(USER, PASSWORD)
    c.command("ENABLE QRESYNC")
    selected = c.command("SELECT INBOX", keep=True).body
    validity = int(re.search(rb"UIDVALIDITY (\d+)", selected).group(1))
    modseq = int(re.search(rb"HIGHESTMODSEQ (\d+)", selected).group(1))
    uids = [
        int(n)
        for n in re.findall(
            rb"(\d+)", a.command("UID SEARCH ALL", keep=True).body.split(b"SEARCH", 1)[1].split(b"\r\n", 1)[0]
        )
    ]
    c.close()
    rng = random.Random(2)
    started = time.perf_counter()
    for uid in rng.sample(uids, min(args.changes, len(uids))):
        a.command(f"UID STORE {uid} +FLAGS.SILENT (\\Flagged $Bench)")
    res["flag changes"] = {
        "count": min(args.changes, len(uids)),
        "seconds": round(time.perf_counter() - started, 3),
    }
    c = RawIMAP(server.imap_port, timeout=args.timeout)
    c.login(USER, PASSWORD)
    c.command("ENABLE QRESYNC")
    text = f"SELECT INBOX (QRESYNC ({validity} {modseq}))"
    reply = command(c, text, res, keep=True)
    res["qresync"] = {
        "seconds": res.pop(text)["seconds"],
        "fetches": len(re.findall(rb"\r\n\* \d+ FETCH ", b"\r\n" + reply.body)),
    }
    c.close()
    a.close()
    return res


def render(results: dict[str, list[dict]], messages: int) -> str:
    labels = list(results)
    rows = [(f"{t} (s)", lambda r, t=t: r[t]["seconds"]) for t in ("SELECT INBOX", *SORTS)]
    rows += [
        (f"{WARM}, warm (s)", lambda r: r["warm " + WARM]["seconds"]),
        ("QRESYNC SELECT after the changes (s)", lambda r: r["qresync"]["seconds"]),
        ("  its FETCH responses", lambda r: r["qresync"]["fetches"]),
        ("flag changes, one UID STORE each (s)", lambda r: r["flag changes"]["seconds"]),
    ]

    def cell(label: str, get) -> str:
        values = []
        for r in results[label]:
            try:
                values.append(get(r))
            except (KeyError, TypeError):
                pass
        return f"{statistics.median(values):.3f}".rstrip("0").rstrip(".") if values else "-"

    lines = [f"| {messages} messages (median) | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    lines += [f"| {name} | " + " | ".join(cell(label, get) for label in labels) + " |" for name, get in rows]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exchmail-venv", action="append", default=[], metavar="[LABEL=]VENV")
    ap.add_argument("--no-dovecot", action="store_true")
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--changes", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=900.0, help="longest wait for one reply (s)")
    ap.add_argument("--dovecot-dir", default="/tmp/dovecot-peer-sort")
    ap.add_argument("--workdir", type=Path, help="default: a new temporary folder, removed at the end")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    if not args.exchmail_venv and args.no_dovecot:
        ap.error("nothing to measure")
    if not 0 < args.messages <= 1_000_000 or args.runs > 20 or not 0 < args.changes <= 100_000:
        ap.error("--messages 1..1,000,000, --changes 1..100,000, --runs <= 20")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="sort-thread."))
    servers: list = []
    for i, spec in enumerate(args.exchmail_venv):
        label, _, venv = spec.rpartition("=")
        s = ExchmailPeer(venv, work / f"exchmail{i}", free_port(), free_port(), users=2, profile="modern")
        s.label = label or f"exchmail{i + 1}"
        servers.append(s)
    if not args.no_dovecot:
        d = DovecotPeer(args.dovecot_dir, free_port(), free_port(), users=2)
        d.label = "dovecot"
        servers.append(d)
    results: dict[str, list[dict]] = {s.label: [] for s in servers}
    try:
        log(f"making {args.messages} messages")
        template = make_template(work, args.messages)
        for round_ in range(args.runs):
            for s in servers:
                log(f"round {round_ + 1}/{args.runs}: {s.label}")
                if isinstance(s, ExchmailPeer):
                    s.prepare(fresh=True)
                    install_mailbox(template, s.maildir(USER), None)
                    s.start(fresh=False)
                else:
                    if not s.started and round_ == 0:
                        s.start(fresh=True)  # the first start makes its mail user
                    s.stop(force=True)
                    shutil.rmtree(Path(s.workdir) / "mail", ignore_errors=True)
                    install_mailbox(template, s.maildir(USER), "peermail")
                    s.start(fresh=False)
                try:
                    results[s.label].append(measure(s, args))
                finally:
                    s.stop()
    finally:
        for s in servers:
            s.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1))
    print(
        f"sort/thread: {args.messages} threaded messages in user1's INBOX, {args.runs} round(s), "
        f"{args.changes} flag changes before the QRESYNC SELECT; cpus {os.cpu_count()}"
    )
    print(render(results, args.messages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
