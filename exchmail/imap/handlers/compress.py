"""COMPRESS DEFLATE (RFC 4978).

The tagged OK goes out uncompressed; from the octet after it, both
directions are raw DEFLATE (:mod:`exchmail.session.deflate`), below the
protocol log (which still sees plain commands and responses) and above TLS.
Input the client pipelined before the OK is discarded, as after STARTTLS:
RFC 4978 §3 forbids sending anything before the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchmail.imap import commands as syntax
from exchmail.imap.responses import CommandBad

if TYPE_CHECKING:
    from exchmail.imap.session import IMAPSession


def compress(command: syntax.Compress, session: IMAPSession) -> None:
    if command.algorithm != b"DEFLATE":
        raise CommandBad(b"Unknown compression algorithm; only DEFLATE is supported")
    if session.compression is not None:
        raise CommandBad(b"COMPRESS is already active")
    session.tagged(command.tag, b"OK", b"DEFLATE active")
    session.start_compression()
