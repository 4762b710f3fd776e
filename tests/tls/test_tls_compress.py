"""COMPRESS=DEFLATE (RFC 4978) under TLS: STARTTLS, then COMPRESS (compression above TLS).

The client is Python's ssl and zlib over a real loopback socket; a large
literal goes both ways compressed and encrypted.
"""

from __future__ import annotations

import socket
import zlib

import pytest
from conftest import PASSWORD
from tls_support import (  # noqa: F401 - pki_fixture
    TIMEOUT,
    client_context,
    pki_fixture,
    start_tls_server,
    tls_config,
)


@pytest.fixture
def compress_server(reactor_thread, tmp_path, pki):
    server = start_tls_server(
        tmp_path, tls_config(pki), profile_overrides={"compress_deflate": True, "binary": True}
    )
    yield server
    server.stop()


class Stream:
    """Reads lines from a socket, through an optional inflater."""

    def __init__(self, sock) -> None:
        self.sock, self.buf, self.inflate, self.deflate = sock, b"", None, None

    def send(self, data: bytes) -> None:
        if self.deflate is not None:
            data = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)

    def until(self, marker: bytes) -> bytes:
        for _ in range(100000):  # bounded
            end = self.buf.find(marker)
            if end >= 0:
                out, self.buf = self.buf[: end + len(marker)], self.buf[end + len(marker) :]
                return out
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += self.inflate.decompress(chunk) if self.inflate else chunk
        raise AssertionError("no end of response")


def test_starttls_then_compress(compress_server, pki):
    raw = socket.create_connection(("127.0.0.1", compress_server.imap_port), timeout=TIMEOUT)
    plain = Stream(raw)
    assert plain.until(b"\r\n").startswith(b"* OK")
    plain.send(b"a STARTTLS\r\n")
    assert plain.until(b"\r\n") == b"a OK Begin TLS negotiation now.\r\n"
    tls = client_context(pki).wrap_socket(raw, server_hostname="localhost")
    stream = Stream(tls)
    stream.send(b'b LOGIN alice "%s"\r\n' % PASSWORD.encode())
    assert b"b OK" in stream.until(b"b OK")
    stream.until(b"\r\n")
    stream.send(b"c CAPABILITY\r\n")
    assert b"COMPRESS=DEFLATE" in stream.until(b"c OK CAPABILITY completed.\r\n")
    stream.send(b"d COMPRESS DEFLATE\r\n")
    assert stream.until(b"\r\n") == b"d OK DEFLATE active\r\n"
    stream.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    stream.inflate = zlib.decompressobj(-15)
    message = b"Subject: tls+deflate\r\n\r\n" + b"compressible text line\r\n" * 50000
    stream.send(b"e APPEND INBOX {%d}\r\n" % len(message))
    assert stream.until(b"\r\n").startswith(b"+ ")
    stream.send(message + b"\r\n")
    assert b"e OK [APPENDUID" in stream.until(b"APPEND completed.\r\n")
    stream.send(b"f SELECT INBOX\r\ng FETCH 1 (BODY.PEEK[] BINARY.SIZE[1])\r\n")
    out = stream.until(b"g OK FETCH completed.\r\n")
    assert message in out and b"BINARY.SIZE[1] %d" % (len(message) - 24) in out
    stream.send(b"z LOGOUT\r\n")
    assert stream.until(b"z OK LOGOUT completed.\r\n").startswith(b"* BYE")
    tls.close()
