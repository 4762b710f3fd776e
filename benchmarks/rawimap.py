"""A minimal blocking IMAP client for timing: wall time from command sent to tagged reply.

imaplib parses every response line in Python; this client only looks for
the tagged line, so a 100,000-line FETCH response costs the client almost
nothing and the time measured is the server's.  It handles the commands the
benchmarks send (no literals in responses we wait for, except that APPEND
sends one with a synchronizing ``{n}`` literal).
"""

from __future__ import annotations

import socket
import time

READ_CHUNK = 1 << 20


class IMAPError(Exception):
    pass


def quote(text: str) -> bytes:
    return b'"' + text.replace("\\", "\\\\").replace('"', '\\"').encode() + b'"'


class Reply:
    """One command's outcome: ``seconds`` from send to tagged line, ``status`` line, ``size``."""

    __slots__ = ("seconds", "status", "size", "body", "sent_at")

    def __init__(self, seconds: float, status: bytes, size: int, body: bytes, sent_at: float) -> None:
        self.seconds, self.status, self.size, self.body, self.sent_at = seconds, status, size, body, sent_at

    @property
    def ok(self) -> bool:
        return self.status.split(b" ", 2)[1:2] == [b"OK"]


class RawIMAP:
    """One connection to 127.0.0.1:``port``; every read waits at most ``timeout`` s."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 600.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.counter = 0
        self.greeting = self._read_line()

    def _fill(self) -> None:
        data = self.sock.recv(READ_CHUNK)
        if not data:
            raise IMAPError("connection closed by the server")
        self.buf += data

    def _read_line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return line

    def command(self, text: bytes | str, keep: bool = False) -> Reply:
        """Send ``TAG text`` and wait for the tagged reply (``keep``: also return the untagged data)."""
        if isinstance(text, str):
            text = text.encode()
        self.counter += 1
        tag = b"T%05d" % self.counter
        sent_at = time.monotonic()
        t0 = time.perf_counter()
        self.sock.sendall(tag + b" " + text + b"\r\n")
        return self._wait(tag, t0, sent_at, keep)

    def _wait(self, tag: bytes, t0: float, sent_at: float, keep: bool) -> Reply:
        needle = b"\r\n" + tag + b" "
        scanned = 0
        start = -1
        while True:
            if start < 0:
                if self.buf.startswith(tag + b" "):
                    start = 0
                elif (found := self.buf.find(needle, max(0, scanned - len(needle)))) >= 0:
                    start = found + 2
                else:
                    scanned = len(self.buf)
            if start >= 0 and (end := self.buf.find(b"\r\n", start)) >= 0:
                seconds = time.perf_counter() - t0
                status = bytes(self.buf[start:end])
                body = bytes(self.buf[:start]) if keep else b""
                del self.buf[: end + 2]
                return Reply(seconds, status, start, body, sent_at)
            self._fill()

    def login(self, user: str, password: str) -> Reply:
        reply = self.command(b"LOGIN " + quote(user) + b" " + quote(password))
        if not reply.ok:
            raise IMAPError(f"LOGIN {user}: {reply.status!r}")
        return reply

    def append(self, mailbox: str, message: bytes) -> Reply:
        """APPEND with a synchronizing literal; the time covers the whole exchange."""
        self.counter += 1
        tag = b"T%05d" % self.counter
        sent_at = time.monotonic()
        t0 = time.perf_counter()
        self.sock.sendall(tag + b" APPEND " + quote(mailbox) + b" {%d}\r\n" % len(message))
        line = self._read_line()
        if not line.startswith(b"+"):
            raise IMAPError(f"APPEND: no continuation: {line!r}")
        self.sock.sendall(message + b"\r\n")
        return self._wait(tag, t0, sent_at, False)

    def close(self) -> None:
        try:
            self.sock.sendall(b"Z LOGOUT\r\n")
            self.sock.settimeout(5)
            self.sock.recv(4096)
        except OSError:
            pass
        self.sock.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
