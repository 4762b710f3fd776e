"""COMPRESS=DEFLATE (RFC 4978) in memory: the client side is Python's zlib.

The harness reads the real StringTransport under the deflate layer, so what
the tests see is exactly what goes on the wire.
"""

from __future__ import annotations

import zlib

import pytest
from harness import Harness
from twisted.internet import defer

from exchmail.session.core import INPUT_HIGH_WATER
from exchmail.session.deflate import INFLATE_CHUNK
from exchmail.session.observe import SessionObserver

ON = {"compress_deflate": True}


class Transcript(SessionObserver):
    transcript = True

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def received(self, session, text):
        self.lines.append(("<", text))

    def sent(self, session, text):
        self.lines.append((">", text))


class Client:
    """Compresses what it sends and inflates what it reads, like a COMPRESS client."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inflate = zlib.decompressobj(-15)

    def send(self, data: bytes) -> bytes:
        wire = self.deflate.compress(data) + self.deflate.flush(zlib.Z_SYNC_FLUSH)
        return self.inflate.decompress(self.conn.send(wire))

    def line(self, text: str | bytes) -> bytes:
        return self.send((text.encode() if isinstance(text, str) else text) + b"\r\n")

    def read(self) -> bytes:
        return self.inflate.decompress(self.conn.send())


def compressed(overrides: dict | None = None, **kwargs):
    harness = Harness("rfc3501", {**ON, **(overrides or {})}, **kwargs)
    conn = harness.imap()
    conn.login()
    out = conn.line("c COMPRESS DEFLATE")
    assert out == b"c OK DEFLATE active\r\n"  # the OK itself is not compressed
    return harness, conn, Client(conn)


def test_capability_and_a_compressed_session():
    harness, conn, client = compressed()
    assert b"COMPRESS=DEFLATE" in client.line("a CAPABILITY")
    out = client.line("b SELECT INBOX")
    assert out.endswith(b"b OK [READ-WRITE] SELECT completed.\r\n"), out
    assert client.line("z LOGOUT").endswith(b"z OK LOGOUT completed.\r\n")
    assert conn.closed


def test_output_is_really_compressed():
    harness, conn, client = compressed()
    harness.deliver(b"Subject: s\r\n\r\n" + b"the same line again\r\n" * 2000)
    client.line("s SELECT INBOX")
    wire = conn.send(
        client.deflate.compress(b"f FETCH 1 BODY.PEEK[]\r\n") + client.deflate.flush(zlib.Z_SYNC_FLUSH)
    )
    plain = client.inflate.decompress(wire)
    assert plain.endswith(b"f OK FETCH completed.\r\n")
    assert len(wire) * 10 < len(plain)


def test_pipelined_commands_and_a_large_literal():
    harness, conn, client = compressed()
    message = b"Subject: big\r\n\r\n" + bytes(range(256)).replace(b"\x00", b"") * 20000
    out = client.send(b"a APPEND INBOX {%d+}\r\n" % len(message) + message + b"\r\nb NOOP\r\n")
    assert b"a OK [APPENDUID" in out and out.endswith(b"b OK NOOP completed.\r\n"), out
    client.line("s SELECT INBOX")
    out = client.line("f FETCH 1 BODY.PEEK[]")
    assert message in out


def test_idle_updates_are_compressed():
    harness, conn, client = compressed()
    client.line("s SELECT INBOX")
    assert client.line("i IDLE") == b"+ idling\r\n"
    harness.deliver(b"Subject: new\r\n\r\nhi\r\n")
    assert client.read() == b"* 1 EXISTS\r\n* 1 RECENT\r\n"
    assert client.line("DONE") == b"i OK IDLE completed.\r\n"


def test_inflating_stops_while_the_session_pauses_input():
    """A small compressed input that inflates to a lot is never inflated at once:
    pieces of at most INFLATE_CHUNK, and none while the session pauses reading
    (a command is running and its pipelined successors fill the buffer)."""
    harness, conn, client = compressed()
    box = harness.mailbox()
    held: list[defer.Deferred] = []
    box.append = lambda *args: held.append(defer.Deferred()) or held[-1]
    command = b'l LIST "" ' + b"x" * 9000 + b"\r\n"
    count = 3 * INPUT_HIGH_WATER // len(command)
    wire = client.deflate.compress(b"a APPEND INBOX {1+}\r\nx\r\n" + command * count) + client.deflate.flush(
        zlib.Z_SYNC_FLUSH
    )
    assert len(wire) < INPUT_HIGH_WATER // 100
    layer = conn.session.compression
    delivered: list[int] = []
    original = layer._deliver
    layer._deliver = lambda data: (delivered.append(len(data)), original(data))
    assert conn.send(wire) == b""  # APPEND is waiting for the store
    assert max(delivered) <= INFLATE_CHUNK
    assert sum(delivered) <= INPUT_HIGH_WATER + 2 * INFLATE_CHUNK
    assert conn.transport.producerState == "paused"
    held[0].callback(7)
    out = client.inflate.decompress(conn.send())
    for _ in range(count):  # bounded: every LIST needs a few turns of the clock
        if out.count(b"l OK") == count:
            break
        out += client.inflate.decompress(conn.send())
    assert out.startswith(b"a OK [APPENDUID") and out.count(b"l OK LIST completed") == count
    assert sum(delivered) == len(b"a APPEND INBOX {1+}\r\nx\r\n" + command * count)
    assert conn.transport.producerState == "producing"


def test_deflate_layer_waits_for_resume():
    from twisted.internet.task import Clock
    from twisted.internet.testing import StringTransport

    from exchmail.session.deflate import DeflateTransport

    clock, got = Clock(), []
    layer = DeflateTransport(StringTransport(), got.append, clock.callLater, lambda: None)
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    layer.received(squeeze.compress(b"a" * (5 * INFLATE_CHUNK)) + squeeze.flush(zlib.Z_SYNC_FLUSH))
    assert len(got) == 5
    layer.pauseProducing()
    layer.received(squeeze.compress(b"b" * (3 * INFLATE_CHUNK)) + squeeze.flush(zlib.Z_SYNC_FLUSH))
    assert len(got) == 5
    layer.resumeProducing()
    assert len(got) == 5  # in a later turn of the reactor, not inside resumeProducing
    clock.advance(0)
    assert b"".join(got) == b"a" * (5 * INFLATE_CHUNK) + b"b" * (3 * INFLATE_CHUNK)


def test_corrupt_input_ends_the_session():
    harness, conn, client = compressed()
    out = conn.send(b"\xff\xff\xff\xff garbage")
    assert client.inflate.decompress(out) == b"* BYE Corrupt compressed input\r\n"
    assert conn.closed


def test_compress_twice_is_bad_and_compression_goes_on():
    harness, conn, client = compressed()
    assert client.line("d COMPRESS DEFLATE") == b"d BAD COMPRESS is already active\r\n"
    assert client.line("z NOOP") == b"z OK NOOP completed.\r\n"


@pytest.mark.parametrize(
    "command, answer",
    [
        (b"c COMPRESS GZIP", b"c BAD Unknown compression algorithm; only DEFLATE is supported\r\n"),
        (b"c COMPRESS", b"c BAD missing argument\r\n"),
        (b"c COMPRESS DEFLATE X", b"c BAD too many arguments\r\n"),
        (b'c COMPRESS "DEFLATE"', b"c BAD COMPRESS takes an algorithm name\r\n"),
    ],
)
def test_bad_compress_commands_leave_the_session_uncompressed(command, answer):
    harness = Harness("rfc3501", ON)
    conn = harness.imap()
    conn.login()
    assert conn.send(command + b"\r\n") == answer
    assert conn.line("z NOOP") == b"z OK NOOP completed.\r\n"


def test_compress_before_login_is_bad():
    conn = Harness("rfc3501", ON).imap()
    out = conn.line("c COMPRESS DEFLATE")
    assert out.startswith(b"c BAD") and b"not authenticated" in out, out
    assert conn.line("z NOOP") == b"z OK NOOP completed.\r\n"


def test_compress_off_is_an_unknown_command():
    for profile in ("exchange2010", "exchange2007", "rfc3501"):
        conn = Harness(profile).imap()
        conn.login()
        assert b"COMPRESS" not in conn.line("a CAPABILITY")
        assert conn.line("c COMPRESS DEFLATE") == b"c BAD Unsupported command\r\n"
        assert conn.line("z NOOP") == b"z OK NOOP completed.\r\n"


def test_pipelined_plaintext_after_compress_is_discarded():
    harness = Harness("rfc3501", ON)
    conn = harness.imap()
    conn.login()
    out = conn.send(b"c COMPRESS DEFLATE\r\nx NOOP\r\n")
    assert out == b"c OK DEFLATE active\r\n"
    client = Client(conn)
    assert client.line("z NOOP") == b"z OK NOOP completed.\r\n"


def test_protocol_log_sees_plain_text():
    observer = Transcript()
    harness = Harness("rfc3501", ON, observers=(observer,))
    conn = harness.imap()
    conn.login()
    conn.line("c COMPRESS DEFLATE")
    Client(conn).line("n NOOP")
    assert ("<", "n NOOP") in observer.lines
    assert (">", "n OK NOOP completed.") in observer.lines
