"""Dovecot's imaptest compliance scripts against exchmail (profile ``modern`` by default).

Builds imaptest if needed (``/work/shared/tools/imaptest/build``, or the
build script named by ``--imaptest-build`` / ``$IMAPTEST_BUILD``; it needs
root for ``apt-get install dovecot-dev`` and a C toolchain, about a minute
on 2 cores), starts exchmail from ``--exchmail-venv`` as a real ``twistd``
process (:class:`peer_server.ExchmailPeer`, Maildir in a temporary folder,
``PlainTextLogin``, no connection limits), runs every one of imaptest's 71
scripts, one at a time with a timeout (a script needing a capability the
profile lacks -- URLAUTH -- is skipped), and prints::

    imaptest: 68 passed, 0 failed, 3 skipped (profile modern; 71 scripts; base commands failed 0/457, ...)
    skipped (missing capability): urlauth(urlauth) ...
    FAIL <script> <what failed>

The exit status is 1 if a script failed (or, with ``--require-all``, was
skipped, or with ``--min-passed N`` fewer than N passed), 2 if imaptest is
not available.  Used by ``tox -e imaptest`` and
``.ci/run``::

    python benchmarks/imaptest_compliance.py --exchmail-venv .venv
    python benchmarks/imaptest_compliance.py --exchmail-venv .venv --only select,listext --keep-logs /tmp/it
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from peer_server import ExchmailPeer

DEFAULT_BUILD = Path(os.environ.get("IMAPTEST_BUILD", "/work/shared/tools/imaptest/build"))
DEFAULT_HOME = Path(os.environ.get("IMAPTEST_HOME", Path.home() / ".cache" / "imaptest"))
#: Scripts needing these capabilities are left out (none since issue 14: the
#: URLAUTH scripts run and are reported as skipped for the missing capability).
LATER: tuple[str, ...] = ()
SCRIPT_TIMEOUT = 30


@dataclass
class Outcome:
    name: str
    state: str  # "passed", "failed", "skipped"
    detail: str = ""
    base: tuple[int, int] = (0, 0)
    ext: tuple[int, int] = (0, 0)


def required_capabilities(script: Path) -> list[str]:
    """The ``capabilities:`` header of a script (its lines up to the first empty one)."""
    for line in script.read_text(errors="replace").splitlines():
        if not line.strip():
            break
        if line.lower().startswith("capabilities:"):
            return line.split(":", 1)[1].split()
    return []


def selected_scripts(tests: Path, only: set[str] | None) -> list[Path]:
    """The scripts to run: those none of whose capabilities starts with a LATER name."""
    out = []
    for script in sorted(tests.iterdir()):
        if not script.is_file() or script.suffix == ".mbox" or script.name.startswith("."):
            continue
        needs = [cap.upper() for cap in required_capabilities(script)]
        if any(cap.startswith(later) for cap in needs for later in LATER):
            continue
        if only is None or script.name in only:
            out.append(script)
    return out


def ensure_imaptest(build: Path, home: Path) -> Path | None:
    """The imaptest binary, built first if needed; None if it cannot be had."""
    binary = home / "bin" / "imaptest"
    if binary.exists() and (home / "tests").is_dir():
        return binary
    if not build.exists():
        return None
    if not Path("/usr/lib/dovecot/libdovecot.so").exists() and shutil.which("apt-get"):
        # imaptest links against Dovecot's own library (Debian's dovecot-core).
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "dovecot-core"],
            check=False,
            capture_output=True,
            timeout=600,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    proc = subprocess.run([str(build), str(home)], capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        print(proc.stdout[-2000:] + proc.stderr[-2000:], file=sys.stderr)
        return None
    return binary if binary.exists() else None


def capabilities(port: int, user: str, password: str) -> set[str]:
    """The post-login CAPABILITY of the server (imaptest skips scripts on it)."""
    import imaplib

    client = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        client.login(user, password)
        _, data = client.capability()
        return {cap.upper() for cap in data[0].decode().split()}
    finally:
        client.logout()


def run_script(
    binary: Path, script: Path, port: int, user: str, password: str, caps: set[str], logs: Path
) -> Outcome:
    missing = [c for c in required_capabilities(script) if c.upper() not in caps]
    try:
        proc = subprocess.run(
            [
                str(binary),
                "host=127.0.0.1",
                f"port={port}",
                f"user={user}",
                f"pass={password}",
                f"test={script}",
            ],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=SCRIPT_TIMEOUT,
        )
        text, code = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as timeout:
        text, code = str(timeout.stdout or "") + str(timeout.stderr or ""), None
    (logs / f"{script.name}.log").write_text(text)
    groups = re.search(r"(\d+) test groups: (\d+) failed, (\d+) skipped", text)
    base = re.search(r"base protocol: (\d+)/(\d+) individual", text)
    ext = re.search(r"extensions: (\d+)/(\d+) individual", text)
    counts = tuple((int(m.group(1)), int(m.group(2))) if m else (0, 0) for m in (base, ext))
    outcome = Outcome(script.name, "passed", base=counts[0], ext=counts[1])
    if code is None:
        outcome.state, outcome.detail = "failed", f"timeout after {SCRIPT_TIMEOUT} s"
    elif groups is None:
        first = next((line for line in text.splitlines() if line.strip()), "no output")
        outcome.state, outcome.detail = "failed", f"imaptest error {code}: {first[:150]}"
    elif int(groups.group(2)):
        failed, total = outcome.ext if outcome.ext[1] else outcome.base
        reason = next((line.strip() for line in text.splitlines() if "failed:" in line), "")
        outcome.state = "failed"
        outcome.detail = f"{failed}/{total} commands: {reason[:150]}"
    elif int(groups.group(3)) or (sum(outcome.base) + sum(outcome.ext) == 0 and missing):
        # imaptest 2.3 does not count its capability skips in single-script runs
        outcome.state, outcome.detail = "skipped", ",".join(missing) or "?"
    return outcome


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def report(outcomes: list[Outcome], profile: str) -> str:
    count = {state: [o for o in outcomes if o.state == state] for state in ("passed", "failed", "skipped")}
    base = [sum(o.base[i] for o in outcomes) for i in (0, 1)]
    ext = [sum(o.ext[i] for o in outcomes) for i in (0, 1)]
    lines = [
        f"imaptest: {len(count['passed'])} passed, {len(count['failed'])} failed, "
        f"{len(count['skipped'])} skipped (profile {profile}; {len(outcomes)} scripts; "
        f"base commands failed {base[0]}/{base[1]}, extension commands failed {ext[0]}/{ext[1]})"
    ]
    if count["skipped"]:
        lines.append(
            "skipped (missing capability): " + " ".join(f"{o.name}({o.detail})" for o in count["skipped"])
        )
    lines += [f"FAIL {o.name} {o.detail}" for o in count["failed"]]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--exchmail-venv",
        default=str(Path(sys.prefix)),
        help="venv with exchmail and twistd (default: this Python's)",
    )
    ap.add_argument("--profile", default="modern")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a [profile] override, TOML value (repeatable)",
    )
    ap.add_argument("--imaptest-build", type=Path, default=DEFAULT_BUILD)
    ap.add_argument("--imaptest-home", type=Path, default=DEFAULT_HOME)
    ap.add_argument("--only", help="comma-separated script names")
    ap.add_argument("--require-all", action="store_true", help="a skipped script fails the run too")
    ap.add_argument("--min-passed", type=int, default=0, help="fail unless at least this many pass")
    ap.add_argument("--keep-logs", type=Path, help="folder for imaptest's output per script")
    args = ap.parse_args()
    binary = ensure_imaptest(args.imaptest_build, args.imaptest_home)
    if binary is None:
        print(
            f"imaptest: not available (no {args.imaptest_home}/bin/imaptest and no build script "
            f"at {args.imaptest_build})",
            file=sys.stderr,
        )
        return 2
    only = set(args.only.split(",")) if args.only else None
    scripts = selected_scripts(args.imaptest_home / "tests", only)
    overrides = dict(item.split("=", 1) for item in args.set)
    work = Path(tempfile.mkdtemp(prefix="exchmail-imaptest-"))
    logs = args.keep_logs or work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    peer = ExchmailPeer(
        args.exchmail_venv,
        work,
        imap_port=free_port(),
        pop3_port=0,
        users=1,
        profile=args.profile,
        overrides=overrides,
    )
    try:
        with peer:
            caps = capabilities(peer.imap_port, "user1", "pass")
            outcomes = [
                run_script(binary, script, peer.imap_port, "user1", "pass", caps, logs) for script in scripts
            ]
    finally:
        if args.keep_logs is None:
            shutil.rmtree(work, ignore_errors=True)
    print(report(outcomes, args.profile))
    print(f"({time.monotonic() - started:.0f} s; logs: {logs if args.keep_logs else 'removed'})")
    failed = any(o.state == "failed" for o in outcomes)
    skipped = any(o.state == "skipped" for o in outcomes)
    too_few = sum(o.state == "passed" for o in outcomes) < args.min_passed
    return 1 if failed or too_few or (args.require_all and skipped) else 0


if __name__ == "__main__":
    sys.exit(main())
