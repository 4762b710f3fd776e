"""Message bodies: stored once per content (SHA-256), in chunks, streamed out.

A body is a row of ``bodies`` and its content in ``body_chunks`` rows of
:data:`CHUNK` octets.  COPY and a second delivery of the same content share
the row; nothing is ever loaded whole, neither to store (the source is read
twice, once to hash and once to write, chunk by chunk) nor to read
(:class:`ChunkReader` fetches one chunk per call).
"""

from __future__ import annotations

import hashlib
import io
from typing import Any, BinaryIO

from twisted.internet import defer
from zope.interface import implementer

from exchmail.interfaces import IMessageReader
from exchmail.store.runner import RunBlocking

#: Octets per body_chunks row (TOAST stores it out of line, uncompressed).
CHUNK = 256 * 1024
#: Seconds an unreferenced body stays, so that readers already streaming it finish.
ORPHAN_GRACE = 3600


def as_file(source: bytes | BinaryIO) -> BinaryIO:
    """A binary file over an append source (bytes, or a file at its position)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source))
    return source


def digest(source: BinaryIO) -> tuple[bytes, int]:
    """SHA-256 and size of ``source`` from its position to its end; rewinds to the position."""
    start = source.tell()
    sha = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK):
        sha.update(chunk)
        size += len(chunk)
    source.seek(start)
    return sha.digest(), size


def store_body(conn: Any, source: BinaryIO) -> tuple[int, int]:
    """(Thread, in ``conn``'s transaction) the id and size of the body holding
    ``source``: an existing one with the same content, or a new one."""
    sha, size = digest(source)
    row = conn.execute(
        "INSERT INTO bodies (sha256, size, chunk_size) VALUES (%s, %s, %s) "
        "ON CONFLICT (sha256) DO NOTHING RETURNING id",
        (sha, size, CHUNK),
    ).fetchone()
    if row is None:  # the same content is stored already: share it
        (body_id,) = conn.execute("SELECT id FROM bodies WHERE sha256 = %s", (sha,)).fetchone()
        conn.execute("DELETE FROM body_orphans WHERE body_id = %s", (body_id,))
        return int(body_id), size
    body_id = int(row[0])
    with conn.cursor() as cursor:
        seq = 0
        while chunk := source.read(CHUNK):
            cursor.execute(
                "INSERT INTO body_chunks (body_id, seq, data) VALUES (%s, %s, %s)", (body_id, seq, chunk)
            )
            seq += 1
    return body_id, size


def orphan_bodies(conn: Any, body_ids: list[int]) -> None:
    """(Thread, in a transaction) note the bodies that may have lost their
    last message, and delete those orphaned longer than the grace period."""
    if body_ids:
        conn.execute(
            "INSERT INTO body_orphans (body_id) SELECT b FROM unnest(%s::bigint[]) AS b "
            "WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.body_id = b) "
            "ON CONFLICT (body_id) DO NOTHING",
            (body_ids,),
        )
    conn.execute(
        "WITH old AS (DELETE FROM body_orphans o WHERE o.since < now() - make_interval(secs => %s) "
        "RETURNING o.body_id) "
        "DELETE FROM bodies b USING old WHERE b.id = old.body_id "
        "AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.body_id = b.id)",
        (ORPHAN_GRACE,),
    )


def read_body(db: Any, body_id: int) -> bytes:
    """(Thread) a whole body, for callers that hold messages in memory anyway."""
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT data FROM body_chunks WHERE body_id = %s ORDER BY seq", (body_id,)
        ).fetchall()
    return b"".join(bytes(data) for (data,) in rows)


def read_bodies(db: Any, body_ids: list[int]) -> dict[int, bytes]:
    """(Thread) several small bodies in one query: ``{id: content}``."""
    parts: dict[int, list[bytes]] = {body_id: [] for body_id in body_ids}
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT body_id, data FROM body_chunks WHERE body_id = ANY(%s) ORDER BY body_id, seq", (body_ids,)
        ).fetchall()
    for body_id, data in rows:
        parts[body_id].append(bytes(data))
    return {body_id: b"".join(chunks) for body_id, chunks in parts.items()}


def read_chunk(db: Any, body_id: int, seq: int) -> bytes:
    """(Thread) chunk ``seq`` of a body (``b""`` past the end)."""
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT data FROM body_chunks WHERE body_id = %s AND seq = %s", (body_id, seq)
        ).fetchone()
    return b"" if row is None else bytes(row[0])


@implementer(IMessageReader)
class ChunkReader:
    """Streams a body one stored chunk per database trip.

    :param size: the octets to deliver (the message's size, announced
        ahead as an IMAP literal's length).
    """

    def __init__(self, db: Any, run_blocking: RunBlocking, body_id: int, size: int) -> None:
        self.size = size
        self._db = db
        self._run = run_blocking
        self._body_id = body_id
        self._buffer = b""
        self._next_seq = 0
        self._delivered = 0
        self._closed = False

    def read(self, size: int) -> defer.Deferred[bytes]:
        if self._closed:
            return defer.fail(ValueError("read from a closed message reader"))
        size = min(max(size, 0), self.size - self._delivered)
        if size == 0:
            return defer.succeed(b"")
        if self._buffer:
            return defer.succeed(self._take(size))
        d = self._run(read_chunk, self._db, self._body_id, self._next_seq)
        return d.addCallback(self._fetched, size)

    def _fetched(self, chunk: bytes, size: int) -> bytes:
        self._next_seq += 1
        if not chunk:  # shorter than announced: pad, so the client stays in step
            chunk = b" " * (self.size - self._delivered)
        self._buffer = chunk
        return self._take(size)

    def _take(self, size: int) -> bytes:
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        self._delivered += len(out)
        return out

    def close(self) -> None:
        self._closed = True
        self._buffer = b""
