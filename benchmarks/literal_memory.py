"""Server memory around big literals (prints figures; asserts nothing).

Starts exchmail in-process on 127.0.0.1 (port 0) over a Maildir store in a
temporary folder and, over a raw socket (sending generated 64 KiB chunks,
so the client holds no big buffer), measures the process's RSS:

- before and after an oversized LITERAL+ literal (``--oversized-mb``,
  above ``max_literal_size``): the server discards it as it arrives;
- before and after an oversized synchronizing literal: refused at once;
- before and after a large APPEND (``--append-mb``) that is accepted: the
  literal is spooled to a temporary file, not kept in memory.

Flat figures mean memory does not grow with literal size.  Usage::

    python benchmarks/literal_memory.py [--oversized-mb 80] [--append-mb 40]
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path

from benchserver import PASSWORD, USER, rss_mb, run_reactor, start_imap
from twisted.internet import reactor

CHUNK = 64 * 1024


class Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.reader = self.sock.makefile("rb")
        self.reader.readline()

    def command(self, tag: bytes, line: bytes) -> bytes:
        self.sock.sendall(tag + b" " + line + b"\r\n")
        return self.until(tag)

    def until(self, tag: bytes) -> bytes:
        while True:
            reply = self.reader.readline()
            if not reply or reply.startswith(tag + b" "):
                return reply.strip()

    def send_octets(self, size: int) -> None:
        chunk = (b"x" * 78 + b"\r\n") * (CHUNK // 80)
        left = size
        while left > 0:
            piece = chunk[:left]
            self.sock.sendall(piece)
            left -= len(piece)


def report(label: str, before: float, after: float, seconds: float, reply: bytes) -> None:
    print(
        f"{label:<40} RSS {before:8.1f} -> {after:8.1f} MiB  ({after - before:+6.1f})"
        f"  {seconds:6.2f} s  {reply.decode(errors='replace')[:50]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--oversized-mb", type=int, default=80)
    parser.add_argument("--append-mb", type=int, default=40)
    args = parser.parse_args()

    run_reactor()
    with tempfile.TemporaryDirectory() as tmp:
        port = start_imap(Path(tmp))
        client = Client(port)
        print(f"exchmail on 127.0.0.1:{port}; RSS {rss_mb():.1f} MiB")
        print(client.command(b"a", b"LOGIN " + USER.encode() + b" " + PASSWORD.encode()).decode())

        size = args.oversized_mb * 1024 * 1024
        before, t0 = rss_mb(), time.perf_counter()
        client.sock.sendall(b"b APPEND INBOX {%d+}\r\n" % size)
        client.send_octets(size)
        client.sock.sendall(b"\r\n")
        reply = client.until(b"b")
        report(
            f"oversized LITERAL+ ({args.oversized_mb} MiB)", before, rss_mb(), time.perf_counter() - t0, reply
        )

        before, t0 = rss_mb(), time.perf_counter()
        reply = client.command(b"c", b"APPEND INBOX {%d}" % size)
        report(
            f"oversized sync literal ({args.oversized_mb} MiB)",
            before,
            rss_mb(),
            time.perf_counter() - t0,
            reply,
        )

        size = args.append_mb * 1024 * 1024
        header = b"From: bench@example.org\r\nSubject: big\r\n\r\n"
        before, t0 = rss_mb(), time.perf_counter()
        client.sock.sendall(b"d APPEND INBOX {%d+}\r\n" % (len(header) + size) + header)
        client.send_octets(size)
        client.sock.sendall(b"\r\n")
        reply = client.until(b"d")
        report(f"large APPEND ({args.append_mb} MiB)", before, rss_mb(), time.perf_counter() - t0, reply)
        client.command(b"e", b"LOGOUT")
    reactor.callFromThread(reactor.stop)


if __name__ == "__main__":
    main()
