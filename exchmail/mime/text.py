"""The text IMAP SEARCH matches in headers and bodies.

- :func:`header_search_text`: what ``SEARCH FROM/TO/CC/BCC`` (address
  fields) or ``SEARCH HEADER``/``SUBJECT`` match in one field value;
- :func:`contains_text`: case-insensitive substring search over a stream of
  text chunks without joining them.

The body side (which parts are text, their decoded chunks) lives with the
MIME tree: :func:`exchmail.mime.message.iter_body_text`,
:func:`~exchmail.mime.message.iter_text_parts` and
:func:`~exchmail.mime.message.body_contains`.
"""

from __future__ import annotations

from collections.abc import Iterable

from exchmail.mime.address import format_addresses, parse_addresses
from exchmail.mime.decode import decode_words

__all__ = ["ADDRESS_FIELDS", "contains_text", "header_search_text"]

#: Fields whose SEARCH text is their parsed addresses (RFC 5322 3.6.2/3.6.3/3.6.6).
ADDRESS_FIELDS = frozenset(
    {
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "resent-from",
        "resent-sender",
        "resent-to",
        "resent-cc",
        "resent-bcc",
    }
)


def header_search_text(name: str, value: bytes, *, addresses: bool | None = None) -> str:
    """The text SEARCH matches in one field *value* (unfolded raw octets).

    For an address field (*addresses* None: decided by *name*, see
    :data:`ADDRESS_FIELDS`) the addresses are parsed and written back as
    ``Display Name <local@domain>, group: member;`` with display names
    RFC 2047-decoded, comments dropped and source routes kept
    (``<@route:local@domain>``), as Dovecot matches ``SEARCH FROM`` and the
    like; so a substring of the addr-spec or of the decoded name matches,
    group names and members included.  For any other field: the value with
    its encoded-words decoded.
    """
    if addresses is None:
        addresses = name.lower() in ADDRESS_FIELDS
    if addresses:
        value = format_addresses(parse_addresses(value))
    return decode_words(value)


def contains_text(chunks: Iterable[str], needle: str) -> bool:
    """Whether the concatenation of *chunks* contains *needle*, ignoring case
    (Unicode case folding); matches across chunk edges are found."""
    folded = needle.casefold()
    if not folded:
        return True
    keep = len(folded) - 1
    tail = ""
    for chunk in chunks:
        text = tail + chunk.casefold()
        if folded in text:
            return True
        tail = text[-keep:] if keep else ""
    return False
