"""The IMAP URLs CATENATE accepts (RFC 4469 §3, RFC 5092 syntax).

Only URLs of this session's own messages: relative URLs without scheme or
server, either an absolute path naming a mailbox::

    /INBOX;UIDVALIDITY=385759045/;UID=20/;SECTION=1.MIME/;PARTIAL=0.1024

or, in the selected state, a path relative to the selected mailbox::

    ;UID=20/;SECTION=HEADER

Parameter names are case-insensitive; the mailbox and the section are
%-decoded (the mailbox as UTF-8, RFC 5092 §3.3).  Anything else (a scheme,
a server, URLAUTH, a search or a list URL) is :class:`BadURL`, answered
``NO [BADURL url]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from exchmail.imap.fetchatt import parse_section
from exchmail.imap.parsing import ParseError

_UID_MARKER = re.compile(rb"/;UID=", re.I)
_UID = re.compile(rb"^;UID=([1-9][0-9]{0,9})$", re.I)
_UIDVALIDITY = re.compile(rb"^(.*?);UIDVALIDITY=([1-9][0-9]{0,9})$", re.I | re.S)
_SECTION = re.compile(rb"^;SECTION=(.+)$", re.I | re.S)
_PARTIAL = re.compile(rb"^;PARTIAL=([0-9]{1,10})(?:\.([1-9][0-9]{0,9}))?$", re.I)
#: Octets a URL may hold (RFC 3986 characters; the rest must be %-encoded).
_URL_CHARS = re.compile(rb"^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]+$")


class BadURL(Exception):
    """A URL CATENATE cannot use; ``url`` is the URL as the client sent it."""

    def __init__(self, url: bytes, reason: str) -> None:
        super().__init__(reason)
        self.url = url


@dataclass(frozen=True)
class MessageURL:
    """A message or part of this user's: ``mailbox`` None means the selected one."""

    mailbox: str | None
    uidvalidity: int | None
    uid: int
    path: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[bytes, ...] = ()
    partial: tuple[int, int | None] | None = None


def parse_url(url: bytes) -> MessageURL:
    """Parse a CATENATE URL (see the module docstring); raises :class:`BadURL`."""
    if not url or not _URL_CHARS.match(url):
        raise BadURL(url, "not a relative IMAP message URL")
    if url.startswith(b"//") or re.match(rb"^[A-Za-z][A-Za-z0-9+.-]*:", url):
        raise BadURL(url, "only URLs of this session's own messages are supported")
    mailbox: str | None = None
    uidvalidity = None
    if url.startswith(b"/"):
        # The mailbox may hold the hierarchy delimiter: it runs up to "/;UID=".
        marker = _UID_MARKER.search(url)
        if marker is None or marker.start() <= 1:
            raise BadURL(url, "the URL names no message")
        box = url[1 : marker.start()]
        found = _UIDVALIDITY.match(box)
        if found:
            box, uidvalidity = found.group(1), int(found.group(2))
        mailbox = _decode_mailbox(url, box)
        rest = url[marker.start() + 1 :].split(b"/")
    else:
        rest = url.split(b"/")
    if not rest:
        raise BadURL(url, "the URL names no message")
    uid_match = _UID.match(rest[0])
    if not uid_match:
        raise BadURL(url, "the URL names no message UID")
    return _with_options(url, MessageURL(mailbox, uidvalidity, int(uid_match.group(1))), rest[1:])


def _with_options(url: bytes, base: MessageURL, rest: list[bytes]) -> MessageURL:
    path: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[bytes, ...] = ()
    partial: tuple[int, int | None] | None = None
    for index, segment in enumerate(rest):
        section = _SECTION.match(segment)
        if section and index == 0:
            try:
                path, text, fields = parse_section(unquote_to_bytes(section.group(1)))
            except ParseError as error:
                raise BadURL(url, str(error)) from None
            continue
        found = _PARTIAL.match(segment)
        if found and index == len(rest) - 1:
            length = int(found.group(2)) if found.group(2) else None
            partial = (int(found.group(1)), length)
            continue
        raise BadURL(url, "unsupported URL component")
    return MessageURL(base.mailbox, base.uidvalidity, base.uid, path, text, fields, partial)


def _decode_mailbox(url: bytes, raw: bytes) -> str:
    try:
        name = unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise BadURL(url, "the mailbox name is not UTF-8") from None
    if not name or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise BadURL(url, "invalid mailbox name")
    return name
