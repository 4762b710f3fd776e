"""IMAP speed and memory figures for exchmail (prints numbers; asserts nothing).

Starts exchmail in-process on 127.0.0.1 (port 0) over a Maildir store in a
temporary folder, then measures with stdlib imaplib:

- APPEND rate (messages/s) for ``--messages`` messages;
- SELECT time of the resulting mailbox, cold (first open: directory scan)
  and warm (shared index);
- ``FETCH 1:* (UID FLAGS RFC822.SIZE)`` time and rate;
- ``FETCH n BODY[]`` of a ``--big-mb`` message (streamed) and the server's
  RSS before and after;
- round-trip latency of NOOP (shows that TCP_NODELAY is set: without it
  multi-line replies wait ~40 ms for delayed ACKs);
- ``--idle-sessions`` concurrent logged-in sessions and the RSS they cost.

Every loop is bounded by a count.  Usage::

    python benchmarks/imap_bench.py [--messages 2000] [--big-mb 20] [--idle-sessions 500]
"""

from __future__ import annotations

import argparse
import imaplib
import socket
import sys
import tempfile
import time
from pathlib import Path

from benchserver import PASSWORD, USER, rss_mb, run_reactor, start_imap
from twisted.internet import reactor


def client(port: int) -> imaplib.IMAP4:
    """A logged-in imaplib client."""
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login(USER, PASSWORD)
    return c


def timed(label: str, f, count: int = 1, unit: str = "ops"):  # type: ignore[no-untyped-def]
    """Run ``f`` once, print elapsed time and rate, return its result."""
    t0 = time.perf_counter()
    result = f()
    elapsed = time.perf_counter() - t0
    rate = f"  ({count / elapsed:,.0f} {unit}/s)" if count > 1 else ""
    print(f"{label:<48} {elapsed * 1000:10.1f} ms{rate}")
    return result


def message(i: int) -> bytes:
    body = b"line of text for the benchmark message body\r\n" * 20
    return (
        b"From: bench@example.org\r\nTo: you@example.org\r\nSubject: benchmark message %d\r\n\r\n" % i
    ) + body


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--big-mb", type=int, default=20)
    parser.add_argument("--idle-sessions", type=int, default=500)
    args = parser.parse_args()

    run_reactor()
    with tempfile.TemporaryDirectory() as tmp:
        port = start_imap(Path(tmp))
        print(f"exchmail on 127.0.0.1:{port}; RSS {rss_mb():.1f} MiB\n")
        c = client(port)

        # imaplib sends a literal and its CRLF in two writes, so its own Nagle
        # delay (~40 ms) would dominate; append over a raw socket instead.
        raw = socket.create_connection(("127.0.0.1", port))
        reader = raw.makefile("rb")
        reader.readline()
        raw.sendall(b'l LOGIN %s "%s"\r\n' % (USER.encode(), PASSWORD.encode()))
        reader.readline()

        def appends() -> None:
            for i in range(args.messages):
                data = message(i)
                raw.sendall(b"a APPEND INBOX {%d}\r\n" % len(data))
                reader.readline()
                raw.sendall(data + b"\r\n")
                while not reader.readline().startswith(b"a "):
                    pass

        timed(f"APPEND x{args.messages} (fsync each)", appends, args.messages, "msg")
        raw.close()
        timed("SELECT INBOX (first open: scan)", lambda: c.select("INBOX"))
        c2 = client(port)
        timed("SELECT INBOX (second session: shared index)", lambda: c2.select("INBOX"))
        timed(
            "FETCH 1:* (UID FLAGS RFC822.SIZE)",
            lambda: c.fetch("1:*", "(UID FLAGS RFC822.SIZE)"),
            args.messages,
            "msg",
        )
        timed(
            "SEARCH SUBJECT (parses every message)",
            lambda: c.search(None, "SUBJECT", '"message 7"'),
            args.messages,
            "msg",
        )

        def noops() -> None:
            for _ in range(200):
                c.noop()

        timed("NOOP x200 (round trips)", noops, 200, "rtt")

        big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * (args.big_mb * 1024)
        c.append("INBOX", None, None, big)
        c.select("INBOX")
        before = rss_mb()
        data = timed(
            f"FETCH BODY[] of a {args.big_mb} MiB message (streamed)",
            lambda: c.fetch(str(args.messages + 1), "(BODY.PEEK[])"),
        )
        assert len(data[1][0][1]) == len(big)
        print(f"{'RSS before/after the big FETCH':<48} {before:10.1f} / {rss_mb():.1f} MiB")

        base = rss_mb()
        sessions = timed(
            f"{args.idle_sessions} sessions: connect + LOGIN + SELECT",
            lambda: [client(port) for _ in range(args.idle_sessions)],
            args.idle_sessions,
            "sessions",
        )
        for s in sessions:
            s.select("INBOX")
        grown = rss_mb() - base
        print(
            f"{'RSS per idle selected session':<48} {grown * 1024 / args.idle_sessions:10.1f} KiB "
            "(client sockets included: same process)"
        )
        for s in sessions:
            s.logout()
        c.logout()
        c2.logout()
    reactor.callFromThread(reactor.stop)


if __name__ == "__main__":
    sys.exit(main())
