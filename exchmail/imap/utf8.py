"""UTF8=ACCEPT (RFC 6855) beyond names and quoted strings: the APPEND header rule.

After ``ENABLE UTF8=ACCEPT`` (:mod:`exchmail.imap.handlers.enable`) the
session's ``utf8`` is true: mailbox names are UTF-8 both ways
(:func:`exchmail.imap.responses.decode_mailbox`/``encode_mailbox``),
quoted strings must be valid UTF-8 and SEARCH takes no CHARSET (the
parser, through ``ParseOptions.utf8``).

RFC 6855 §4: a server that advertises UTF8=ACCEPT refuses an APPEND with
8-bit octets in the header from a client that has not enabled it.  That is
the setting ``utf8_append_needs_enable`` (off by default: Dovecot and most
servers store such messages, and clients send them without ENABLE).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from exchmail.imap.responses import CommandFailed
from exchmail.mailbox.content import offload
from exchmail.session.reader import SpooledLiteral

if TYPE_CHECKING:
    from exchmail.imap.session import IMAPSession

#: The header is looked for in this many first octets of a message.
HEADER_SCAN = 256 * 1024


def header_has_8bit(data: bytes) -> bool:
    """Whether the header of ``data`` (up to the first empty line) has an octet >= 0x80."""
    ends = [i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if i >= 0]
    header = data[: min(ends)] if ends else data
    return not header.isascii()


def _spooled_header_has_8bit(literal: SpooledLiteral) -> bool:
    reader = literal.reader()
    return header_has_8bit(reader.read(HEADER_SCAN))


def check_append_headers(session: IMAPSession, source: Any) -> defer.Deferred[None]:
    """NO for a message with an 8-bit header when the RFC 6855 §4 rule applies."""
    settings = session.context.profile.imap
    if not (settings.utf8_accept and settings.utf8_append_needs_enable) or session.utf8:
        return defer.succeed(None)
    if isinstance(source, SpooledLiteral):
        d = offload(session.context.run_blocking, HEADER_SCAN + 1, _spooled_header_has_8bit, source)
    else:
        d = defer.succeed(header_has_8bit(bytes(source[:HEADER_SCAN])))

    def judged(eight_bit: bool) -> None:
        if eight_bit:
            raise CommandFailed(b"8-bit header octets need ENABLE UTF8=ACCEPT first (RFC 6855)")

    return d.addCallback(judged)
