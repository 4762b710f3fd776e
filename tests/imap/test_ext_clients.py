"""The issue-13 extensions over loopback against a real exchmail, with real clients.

IMAPClient drives MULTIAPPEND (``multiappend``), BINARY (``fetch`` of
``BINARY[...]``) and ENABLE; Python's imaplib drives UTF8=ACCEPT (its
``enable`` switches it to UTF-8 mode); CATENATE, literal8 and COMPRESS
(Python's zlib) talk raw IMAP.  COMPRESS also runs with IDLE, a large
literal both ways and the protocol log; STARTTLS then COMPRESS is in
tests/tls/test_tls_compress.py.
"""

from __future__ import annotations

import imaplib
import socket
import zlib

import pytest
from conftest import FEATURES, PASSWORD, start_server
from imapclient import IMAPClient

from exchmail.service.config import LoggingConfig

TIMEOUT = 10
EXTENSIONS = {
    "multiappend": True,
    "binary": True,
    "catenate": True,
    "utf8_accept": True,
    "compress_deflate": True,
}
M1 = b"From: a@example.com\r\nSubject: one\r\n\r\nfirst\r\n"
M2 = b"From: a@example.com\r\nSubject: two\r\n\r\nsecond\r\n"
ATTACHMENT = (
    b"From: a@example.com\r\nSubject: att\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nsee\r\n"
    b"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"aGVsbG8gYmluYXJ5IHdvcmxk\r\n--B--\r\n"
)


@pytest.fixture
def profile_overrides() -> dict:
    return {**FEATURES, **EXTENSIONS}


def connect(server) -> IMAPClient:
    client = IMAPClient("127.0.0.1", port=server.imap_port, ssl=False, timeout=TIMEOUT)
    client.login("alice", PASSWORD)
    return client


class Raw:
    """A raw IMAP connection that can switch to COMPRESS=DEFLATE (Python's zlib)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""
        self.deflate: zlib._Compress | None = None
        self.inflate: zlib._Decompress | None = None
        assert self.until(b"\r\n").startswith(b"* OK")

    def send(self, data: bytes) -> None:
        if self.deflate is not None:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed; pending {self.buf[-200:]!r}")
        self.buf += self.inflate.decompress(chunk) if self.inflate is not None else chunk

    def until(self, marker: bytes) -> bytes:
        """Everything up to and including ``marker``."""
        for _ in range(100000):  # bounded: each round reads at least one octet or fails
            end = self.buf.find(marker)
            if end >= 0:
                out, self.buf = self.buf[: end + len(marker)], self.buf[end + len(marker) :]
                return out
            self._fill()
        raise AssertionError("no end of response")

    def command(self, tag: bytes, text: bytes) -> bytes:
        """Send one command; its responses up to the tagged one (or a continuation)."""
        self.send(tag + b" " + text + b"\r\n")
        return self.tagged(tag)

    def tagged(self, tag: bytes) -> bytes:
        """Responses up to the line that starts with ``tag`` (or ``+``), that line included."""
        for _ in range(100000):
            data = b"\r\n" + self.buf
            for marker in (b"\r\n" + tag + b" ", b"\r\n+ "):
                start = data.find(marker)
                end = data.find(b"\r\n", start + 2) if start >= 0 else -1
                if end >= 0:
                    out, self.buf = data[2 : end + 2], data[end + 2 :]
                    return out
            self._fill()
        raise AssertionError("no tagged response")

    def compress(self) -> None:
        assert self.command(b"c", b"COMPRESS DEFLATE") == b"c OK DEFLATE active\r\n"
        assert self.buf == b""
        self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflate = zlib.decompressobj(-15)

    def close(self) -> None:
        self.sock.close()


def login(server) -> Raw:
    raw = Raw(server.imap_port)
    assert b"a OK" in raw.command(b"a", b'LOGIN alice "%s"' % PASSWORD.encode())
    return raw


# -- MULTIAPPEND / BINARY / ENABLE with IMAPClient ----------------------------------------------
def test_imapclient_multiappend(server):
    client = connect(server)
    assert b"MULTIAPPEND" in client.capabilities()
    client.multiappend("INBOX", [M1, {"msg": M2, "flags": [b"\\Seen"]}])
    client.select_folder("INBOX")
    fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[]", "FLAGS"])
    assert [fetched[n][b"BODY[]"] for n in sorted(fetched)] == [M1, M2]
    assert b"\\Seen" in fetched[max(fetched)][b"FLAGS"]
    client.logout()


def test_imapclient_fetch_binary(server):
    client = connect(server)
    client.append("INBOX", ATTACHMENT)
    client.select_folder("INBOX", readonly=True)
    fetched = client.fetch([1], ["BINARY.PEEK[2]", "BINARY.SIZE[2]"])[1]
    assert fetched[b"BINARY[2]"] == b"hello binary world"
    assert fetched[b"BINARY.SIZE[2]"] == 18
    client.logout()


def test_imapclient_enable_utf8(server):
    client = connect(server)
    assert client.enable("UTF8=ACCEPT") == [b"UTF8=ACCEPT"]
    client.logout()


# -- UTF8=ACCEPT with imaplib ------------------------------------------------------------------
def test_imaplib_utf8_mode_mailbox_names(server):
    client = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=TIMEOUT)
    client.login("alice", PASSWORD)
    assert client.enable("UTF8=ACCEPT")[0] == "OK"
    assert client.create('"Größe"')[0] == "OK"
    typ, data = client.list('""', '"Gr*"')
    assert typ == "OK" and data == ['(\\HasNoChildren) "/" "Größe"'.encode()]
    assert client.select('"Größe"')[0] == "OK"
    client.logout()


# -- CATENATE and literal8, raw ---------------------------------------------------------------
def test_catenate_and_literal8_over_loopback(server):
    raw = login(server)
    assert b"b OK" in raw.command(b"b", b"APPEND INBOX {%d+}\r\n" % len(M1) + M1)
    out = raw.command(
        b"d", b'APPEND INBOX CATENATE (URL "/INBOX/;UID=1/;SECTION=HEADER" TEXT {9+}\r\nnew one\r\n)'
    )
    assert b"d OK [APPENDUID" in out, out
    blob = b"Content-Transfer-Encoding: binary\r\n\r\n\x00\xff\x00\r\n"
    assert b"e OK" in raw.command(b"e", b"APPEND INBOX ~{%d+}\r\n" % len(blob) + blob)
    out = raw.command(b"f", b'APPEND INBOX CATENATE (URL "/INBOX;UIDVALIDITY=1/;UID=1")')
    assert out.startswith(b"f NO [BADURL /INBOX;UIDVALIDITY=1/;UID=1]"), out
    raw.command(b"s", b"SELECT INBOX")
    out = raw.command(b"g", b"FETCH 2:3 (BODY.PEEK[] BINARY.PEEK[1])")
    assert b"BODY[] {46}\r\nFrom: a@example.com\r\nSubject: one\r\n\r\nnew one\r\n" in out
    assert b"BINARY[1] ~{5}\r\n\x00\xff\x00\r\n" in out, out
    assert raw.command(b"z", b"NOOP") == b"z OK NOOP completed.\r\n"
    raw.close()


# -- COMPRESS ------------------------------------------------------------------------------------------
def test_compress_session_with_idle_and_large_literals(server):
    raw = login(server)
    raw.compress()
    message = b"Subject: big\r\n\r\n" + b"".join(b"line %07d of a big message\r\n" % i for i in range(120000))
    out = raw.command(b"b", b"APPEND INBOX {%d}" % len(message))
    assert out == b"+ Ready for literal data\r\n", out
    raw.send(message + b"\r\n")
    assert b"b OK [APPENDUID" in raw.tagged(b"b")
    raw.command(b"s", b"SELECT INBOX")
    out = raw.command(b"f", b"FETCH 1 BODY.PEEK[]")
    assert message in out and out.endswith(b"f OK FETCH completed.\r\n")
    raw.send(b"i IDLE\r\n")
    assert raw.until(b"\r\n") == b"+ idling\r\n"
    other = connect(server)
    other.append("INBOX", M1)
    other.logout()
    assert raw.until(b"RECENT\r\n") == b"* 2 EXISTS\r\n* 2 RECENT\r\n"
    raw.send(b"DONE\r\n")
    assert raw.tagged(b"i") == b"i OK IDLE completed.\r\n"
    assert raw.command(b"z", b"LOGOUT").endswith(b"z OK LOGOUT completed.\r\n")
    raw.close()


def test_compress_with_the_protocol_log(reactor_thread, tmp_path):
    logs = tmp_path / "protocol-logs"
    running = start_server(
        tmp_path,
        profile_overrides={**FEATURES, **EXTENSIONS},
        config_changes={"logging": LoggingConfig(protocol_log=True, protocol_log_dir=logs)},
    )
    try:
        raw = login(running)
        raw.compress()
        assert raw.command(b"n", b"NOOP") == b"n OK NOOP completed.\r\n"
        assert raw.command(b"z", b"LOGOUT").endswith(b"z OK LOGOUT completed.\r\n")
        raw.close()
    finally:
        running.stop()
    text = "".join(p.read_text() for p in logs.glob("imap-*.log"))
    assert ",<,c COMPRESS DEFLATE" in text and ",>,c OK DEFLATE active" in text
    assert ",<,n NOOP" in text and ",>,n OK NOOP completed." in text


def test_extensions_off_by_default(reactor_thread, tmp_path):
    running = start_server(tmp_path)  # exchange2010
    try:
        raw = login(running)
        caps = raw.command(b"c", b"CAPABILITY")
        for name in (b"MULTIAPPEND", b"BINARY", b"CATENATE", b"UTF8=ACCEPT", b"COMPRESS", b"ENABLE"):
            assert name not in caps
        assert raw.command(b"d", b"COMPRESS DEFLATE") == b"d BAD Unsupported command\r\n"
        raw.close()
    finally:
        running.stop()
