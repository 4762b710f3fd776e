"""SORT and THREAD keys (RFC 5256, RFC 5957), computed from a header block.

Pure functions, no I/O: :func:`sort_fields` turns a message's header block
into a :class:`SortFields` once (the handlers keep it in the shared
:class:`~exchmail.mailbox.cache.MessageCache`, so a second SORT or THREAD
reads and parses nothing), :func:`sort_uids` orders messages by SORT's
criteria, and :mod:`exchmail.imap.threads` builds threads from the same
fields.

Strings compare with the ``i;unicode-casemap`` collation of RFC 5051
(:func:`casemap`), and
subjects by their RFC 5256 §2.1 base subject (:func:`base_subject`).
"""

from __future__ import annotations

import calendar
import datetime
import email.utils
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from exchmail.mime.address import parse_addresses
from exchmail.mime.decode import decode_words

_SPACES = re.compile(r"[ \t\r\n]+")
_TRAILER = re.compile(r"(?:\(fwd\)| )$", re.IGNORECASE)
_BLOB = r"\[[^\[\]]*\] *"
_LEADER = re.compile(rf"^(?:(?:{_BLOB})*(?:re|fwd?) *(?:{_BLOB})?:| +)", re.IGNORECASE)
_BLOB_PREFIX = re.compile(rf"^{_BLOB}")
_MSGID = re.compile(rb"<([^<>\s]+)>")
_FIELD = re.compile(
    rb"^(date|subject|from|to|cc|message-id|references|in-reply-to)[ \t]*:"
    rb"([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)",
    re.IGNORECASE | re.MULTILINE,
)
_FOLD = re.compile(rb"\r?\n(?=[ \t])")
# The common single address, "Name <a@b>" or "a@b", read without the full
# RFC 5322 parser (anything else -- groups, comments, quotes, encoded words,
# several addresses -- goes to it).
_SIMPLE_ADDRESS = re.compile(
    rb"^[ \t]*(?:([A-Za-z0-9 .\-_']*?)[ \t]*<)?([^<>@\s(),;:\"]+)@"
    rb"([^<>@\s(),;:\"]+)(?(1)>|>?)[ \t]*$"
)


class SortFields(NamedTuple):
    """What SORT and THREAD compare, for one message (collated strings)."""

    date: float | None  #: the Date header in seconds (UTC), None if missing/invalid
    subject: str  #: base subject, casemapped
    reply: bool  #: the subject was a reply or forward (RFC 5256 §2.1 steps removed one)
    from_: str
    to: str
    cc: str
    display_from: str
    display_to: str
    message_id: str | None
    references: tuple[str, ...]  #: References, or the first In-Reply-To id


def casemap(text: str) -> str:
    """The ``i;unicode-casemap`` key of ``text`` (RFC 5051): each character's
    titlecase -- approximated by its uppercase, which differs only for a few
    digraphs -- then the NFKD decomposition; compared by code point, as
    UTF-8 octets are (so ``[`` sorts after ``Z``)."""
    return unicodedata.normalize("NFKD", text.upper())


def base_subject(subject: str) -> tuple[str, bool]:
    """RFC 5256 §2.1: the base subject of a decoded subject, and whether it was
    a reply or forward (a ``Re:``/``Fw:``/``Fwd:`` leader, a ``(fwd)``
    trailer or a ``[fwd: ...]`` wrapper was removed)."""
    text = _SPACES.sub(" ", subject)  # step 1 (decoding was the caller's)
    reply = False
    while True:
        while True:  # step 2: trailers
            stripped = _TRAILER.sub("", text)
            if stripped == text:
                break
            reply |= not text.endswith(" ")
            text = stripped
        while True:  # steps 3-5: leaders and blobs
            match = _LEADER.match(text)
            if match and match.end():
                reply |= match.group().strip() != ""
                text = text[match.end() :]
                continue
            blob = _BLOB_PREFIX.match(text)
            if blob and text[blob.end() :]:
                text = text[blob.end() :]
                continue
            break
        if text[:5].lower() == "[fwd:" and text.endswith("]"):  # step 6
            text, reply = text[5:-1], True
            continue
        return text, reply


_MONTHS = {
    m: n
    for n, m in enumerate(
        (b"JAN", b"FEB", b"MAR", b"APR", b"MAY", b"JUN", b"JUL", b"AUG", b"SEP", b"OCT", b"NOV", b"DEC"), 1
    )
}
_COMMON_DATE = re.compile(
    rb"^[ \t]*(?:[A-Za-z]{3},[ \t]*)?(\d{1,2})[ \t]+([A-Za-z]{3})[ \t]+(\d{4})"
    rb"[ \t]+(\d{2}):(\d{2})(?::(\d{2}))?[ \t]+([+-])(\d{2})(\d{2})[ \t]*$"
)


def _date(value: bytes | None) -> float | None:
    if value is None:
        return None
    common = _COMMON_DATE.match(value)  # the usual RFC 5322 form, without email.utils
    if common is not None and common.group(2).upper() in _MONTHS:
        day, month, year, hour, minute, second, sign, zh, zm = common.groups()
        number = _MONTHS[month.upper()]
        if not (
            int(year) >= 1  # (timegm knows no year 0)
            and 1 <= int(day) <= calendar.monthrange(int(year), number)[1]
            and int(hour) < 24
            and int(minute) < 60
            and int(second or 0) < 61
        ):
            return None  # as email.utils: an impossible date is no date
        stamp = calendar.timegm(
            (int(year), number, int(day), int(hour), int(minute), int(second or 0), 0, 0, 0)
        )
        offset = (int(zh) * 60 + int(zm)) * 60
        return float(stamp - offset if sign == b"+" else stamp + offset)
    try:
        parsed = email.utils.parsedate_to_datetime(value.decode("latin-1").strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=datetime.timezone.utc).timestamp()
    return parsed.timestamp()


def _first_address(value: bytes | None) -> tuple[str, str]:
    """``(addr-mailbox, display form)`` of the first address (RFC 5256, 5957)."""
    if value is None:
        return "", ""
    simple = _SIMPLE_ADDRESS.match(value)
    if simple is not None:
        name, mailbox, domain = (part.decode("latin-1") if part else "" for part in simple.groups())
        name = name.strip()
        return casemap(mailbox), casemap(name or f"{mailbox}@{domain}")
    for address in parse_addresses(value, fill_missing=False):
        if address.is_group_end:
            continue
        if address.is_group_start:  # as ENVELOPE gives it: the group's name is the mailbox
            name = decode_words(address.mailbox or b"").strip()
            return casemap(name), casemap(name)
        mailbox = (address.mailbox or b"").decode("utf-8", "replace")
        domain = (address.domain or b"").decode("utf-8", "replace")
        name = decode_words(address.name).strip() if address.name else ""
        display = name or (f"{mailbox}@{domain}" if domain else mailbox)
        return casemap(mailbox), casemap(display)
    return "", ""


def _ids(value: bytes | None) -> list[str]:
    return [m.decode("latin-1") for m in _MSGID.findall(value)] if value else []


def sort_fields(header: bytes) -> SortFields:
    """The :class:`SortFields` of a message's header block."""
    found: dict[str, bytes] = {}
    end = header.find(b"\r\n\r\n")
    block = header if end < 0 else header[: end + 2]
    # One C-speed scan for the few fields wanted (the first of each counts),
    # unfolded as parse_header would: SORT parses every message of a mailbox.
    for match in _FIELD.finditer(block):
        name = match.group(1).decode("ascii").lower()
        if name not in found:
            found[name] = _FOLD.sub(b"", match.group(2)).strip(b" \t")
    subject, reply = base_subject(decode_words(found.get("subject", b"")))
    from_, display_from = _first_address(found.get("from"))
    to, display_to = _first_address(found.get("to"))
    cc, _ = _first_address(found.get("cc"))
    ids = _ids(found.get("message-id"))
    references = _ids(found.get("references")) or _ids(found.get("in-reply-to"))[:1]
    return SortFields(
        _date(found.get("date")),
        casemap(subject),
        reply,
        from_,
        to,
        cc,
        display_from,
        display_to,
        ids[0] if ids else None,
        tuple(references),
    )


#: One message as SORT sees it: ``(seq, uid, internal date, size, fields)``.
SortRow = tuple[int, int, float, int, SortFields]

_KEYS: dict[bytes, Callable[[SortRow], Any]] = {
    b"ARRIVAL": lambda r: r[2],
    b"DATE": lambda r: r[4].date if r[4].date is not None else r[2],
    b"SIZE": lambda r: r[3],
    b"SUBJECT": lambda r: r[4].subject,
    b"FROM": lambda r: r[4].from_,
    b"TO": lambda r: r[4].to,
    b"CC": lambda r: r[4].cc,
    b"DISPLAYFROM": lambda r: r[4].display_from,
    b"DISPLAYTO": lambda r: r[4].display_to,
}


def sent_date(row: SortRow) -> float:
    """The sent date SORT DATE and THREAD use: the Date header, else the internal date."""
    return row[4].date if row[4].date is not None else row[2]


def sort_rows(rows: Sequence[SortRow], keys: Sequence[tuple[bytes, bool]]) -> list[SortRow]:
    """``rows`` in SORT order: by each key (``(name, reverse)``) in turn, ties
    by sequence number (RFC 5256 §3: REVERSE reverses one key only)."""
    ordered = sorted(rows, key=lambda r: r[0])
    for name, reverse in reversed(keys):  # stable sorts, least significant key first
        ordered.sort(key=_KEYS[name], reverse=reverse)
    return ordered
