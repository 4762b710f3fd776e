"""Helpers for the MS-STANXIMAP conformance tests: whole profiles, a raw wire client.

Every test of ``tests/conformance`` runs a real exchmail over loopback (or,
for timers, an :class:`~exchmail.imap.server.IMAPServer` on a
StringTransport with a Clock).  A profile is started as the default
profile plus the overrides that turn it into the named built-in profile
(:func:`profile_overrides`), so a test parametrized over
:data:`PROFILES` exercises the complete ``exchange2010`` and ``rfc3501``
behaviour sets.  Every socket wait is bounded (at most 10 seconds).
"""

from __future__ import annotations

import dataclasses
import enum
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conftest import PASSWORD, in_reactor, start_server

from exchmail.profile.builtin import EXCHANGE2010
from exchmail.profile.builtin import PROFILES as BUILTIN
from exchmail.profile.settings import IMAPSettings

TIMEOUT = 10
#: The two profiles every setting is checked under.
PROFILES = ("exchange2010", "rfc3501")

EXCHANGE_GREETING = b"* OK The Microsoft Exchange IMAP4 service is ready."
SYSTEM_FLAGS = {b"\\Answered", b"\\Flagged", b"\\Deleted", b"\\Seen", b"\\Draft"}

PLAIN = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"Subject: Hello world\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    b"Message-ID: <1@example.com>\r\n"
    b"\r\n"
    b"Hello body text\r\n"
    b"second line about pineapples\r\n"
)

MULTIPART = (
    b"From: Carol <carol@example.com>\r\n"
    b"To: Dave <dave@example.net>\r\n"
    b"Subject: Report attached\r\n"
    b"Date: Tue, 02 Jan 2024 11:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XYZ"\r\n'
    b"\r\n"
    b"--XYZ\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"See attachment.\r\n"
    b"--XYZ\r\n"
    b'Content-Type: application/octet-stream; name="data.bin"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQFBgcICQ==\r\n"
    b"--XYZ--\r\n"
)


def profile_overrides(name: str, **extra: Any) -> dict[str, Any]:
    """Overrides turning the default profile into the built-in profile ``name``.

    ``extra`` adds (or replaces) single IMAP settings, by field name.
    """
    target = BUILTIN[name].imap
    out: dict[str, Any] = {}
    for f in dataclasses.fields(IMAPSettings):
        value = getattr(target, f.name)
        if f.name in extra:
            continue
        if value != getattr(EXCHANGE2010.imap, f.name):
            out["imap." + f.name] = _plain(value)
    for key, value in extra.items():
        out["imap." + key] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def settings(name: str) -> IMAPSettings:
    """The IMAP settings of the built-in profile ``name``."""
    return BUILTIN[name].imap


@contextmanager
def running(tmp_path: Path, profile: str, login_type: str | None = None, **extra: Any) -> Iterator[Any]:
    """A server running the whole built-in ``profile`` (plus ``extra`` settings)."""
    server = start_server(
        tmp_path / profile,
        profile_overrides=profile_overrides(profile, **extra) or None,
        login_type=login_type,
    )
    try:
        yield server
    finally:
        server.stop()


class Raw:
    """A minimal IMAP client on a socket, for exact wire checks.

    Lines are returned without CRLF; a line ending in a literal ``{n}``
    is returned with the literal and the rest of the line appended, as
    ``b"... {n}\\r\\n<n octets>rest"``.
    """

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buffer = b""
        self.tags = 0
        self.transcript: list[bytes] = []
        self.greeting = self.readline()

    def _fill(self, deadline: float) -> None:
        """Receive more octets into the buffer; EOFError at end, TimeoutError at ``deadline``."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data from the server")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        finally:
            self.sock.settimeout(TIMEOUT)
        if not data:
            raise EOFError("connection closed")
        self.buffer += data

    def _take_line(self, deadline: float) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill(deadline)
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def readline(self, timeout: float = TIMEOUT) -> bytes:
        """One response line (raises TimeoutError after ``timeout`` s, EOFError at close)."""
        deadline = time.monotonic() + timeout
        line = self._take_line(deadline)
        while m := re.search(rb"\{(\d+)\}$", line):
            size = int(m.group(1))
            while len(self.buffer) < size:
                self._fill(deadline)
            literal, self.buffer = self.buffer[:size], self.buffer[size:]
            line += b"\r\n" + literal + self._take_line(deadline)
        self.transcript.append(b"S: " + line)
        return line

    def send(self, data: bytes) -> None:
        self.transcript.append(b"C: " + data.rstrip(b"\r\n"))
        self.sock.sendall(data)

    def next_tag(self) -> bytes:
        self.tags += 1
        return b"r%d" % self.tags

    def read_until_tag(self, tag: bytes) -> tuple[list[bytes], bytes]:
        untagged = []
        while True:
            line = self.readline()
            if line.startswith(tag + b" "):
                return untagged, line[len(tag) + 1 :]
            untagged.append(line)

    def finish(self, tag: bytes) -> tuple[list[bytes], bytes]:
        """Completion of a command whose tag the server may refuse: tagged, or ``* BAD``."""
        untagged = []
        while True:
            line = self.readline()
            if line.startswith(tag + b" "):
                return untagged, line[len(tag) + 1 :]
            if line.startswith(b"* BAD"):
                return untagged, line[2:]
            untagged.append(line)

    def command(self, text: bytes, tag: bytes | None = None) -> tuple[list[bytes], bytes]:
        """Send a command; return (untagged lines, tagged completion without the tag)."""
        tag = tag or self.next_tag()
        self.send(tag + b" " + text + b"\r\n")
        return self.read_until_tag(tag)

    def ok(self, text: bytes) -> list[bytes]:
        untagged, done = self.command(text)
        assert done.startswith(b"OK"), (text, done)
        return untagged

    def login(self, user: str = "alice") -> bytes:
        _, done = self.command(b'LOGIN %s "%s"' % (user.encode(), PASSWORD.encode()))
        return done

    def silent_for(self, seconds: float) -> list[bytes]:
        """Lines that arrive within ``seconds`` without sending anything."""
        lines = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                lines.append(self.readline(timeout=left))
            except TimeoutError:
                break
        return lines

    def wait_for(self, pattern: bytes, seconds: float) -> list[bytes]:
        """Read lines without sending until one matches ``pattern`` (regex, full line)."""
        lines: list[bytes] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.readline(timeout=left)
            except TimeoutError:
                break
            lines.append(line)
            if re.fullmatch(pattern, line):
                return lines
        raise AssertionError(f"nothing matching {pattern!r} within {seconds}s; got {lines!r}")

    def read_to_eof(self, seconds: float = TIMEOUT) -> list[bytes]:
        """Lines until the server closes the connection (fails after ``seconds``)."""
        lines = []
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"connection still open after {seconds}s: {lines!r}"
            try:
                lines.append(self.readline(timeout=left))
            except EOFError:
                return lines
            except TimeoutError:
                raise AssertionError(f"connection still open after {seconds}s: {lines!r}") from None

    def close(self) -> None:
        try:
            self.sock.settimeout(2)
            self.command(b"LOGOUT")
        except (OSError, EOFError, AssertionError):
            pass
        self.sock.close()


@contextmanager
def raw(server: Any, user: str | None = "alice") -> Iterator[Raw]:
    """A Raw client, logged in as ``user`` unless ``user`` is None."""
    client = Raw(server.imap_port)
    try:
        if user is not None:
            done = client.login(user)
            assert done.startswith(b"OK"), done
        yield client
    finally:
        client.close()


def append(client: Raw, message: bytes, mailbox: bytes = b"INBOX", flags: bytes = b"") -> bytes:
    """APPEND with a synchronizing literal; return the tagged completion."""
    tag = client.next_tag()
    flags = flags + b" " if flags else b""
    client.send(tag + b" APPEND " + mailbox + b" " + flags + b"{%d}\r\n" % len(message))
    line = client.readline()
    if not line.startswith(b"+"):
        assert line.startswith(tag + b" "), line
        return line[len(tag) + 1 :]
    client.send(message + b"\r\n")
    _, done = client.read_until_tag(tag)
    return done


def literal_of(line: bytes) -> bytes:
    """The octets of the (first) literal of a response line read by :class:`Raw`."""
    m = re.search(rb"\{(\d+)\}\r\n", line)
    assert m, line
    return line[m.end() : m.end() + int(m.group(1))]


def list_lines(client: Raw, ref: bytes = b'""', pattern: bytes = b'"*"', cmd: bytes = b"LIST") -> list[bytes]:
    return client.ok(cmd + b" " + ref + b" " + pattern)


def store_mailbox(server: Any, name: str = "INBOX", user: str = "alice") -> Any:
    """The live store mailbox ``name`` of ``user`` (use it through ``in_reactor``)."""
    return in_reactor(lambda: server.store.account(user).addCallback(lambda a: a.mailbox(name)))


def capability_line(client: Raw) -> bytes:
    (line,) = [u for u in client.ok(b"CAPABILITY") if u.startswith(b"* CAPABILITY ")]
    return line
