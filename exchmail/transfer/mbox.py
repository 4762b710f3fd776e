"""mbox files in and out: one file per folder, flags in Status/X-Status/X-Keywords.

Reading (:class:`MboxSource`) takes a single mbox file (into INBOX, or a
given folder) or a folder of mbox files, one per mail folder (``Work.mbox``
or ``Work`` is the folder ``Work``; ``Work/Projects.mbox`` or Thunderbird's
``Work.sbd/Projects`` is ``Work/Projects``).  A message starts at a line
``From `` at the start of the file or after an empty line; its internal
date is the date on that line (read as UTC), else its ``Date:`` header.
Lines ``>From ``, ``>>From ``... lose one ``>`` (mboxrd, as Python's
``mailbox`` and mutt write them).  The metadata headers ``Status``,
``X-Status``, ``X-Keywords``, ``X-UID``, ``X-IMAP``, ``X-IMAPbase`` and
``Content-Length`` become flags or are dropped, as Dovecot does:

========  ==============================================
Status    ``R``: \\Seen  (``O``: old, no flag)
X-Status  ``A``: \\Answered, ``F``: \\Flagged, ``T``: \\Draft, ``D``: \\Deleted
X-Keywords keywords, separated by spaces or commas
========  ==============================================

Writing (:func:`write_mbox`) produces mboxrd with those headers, so a
folder written and read back keeps its flags, keywords and dates.
"""

from __future__ import annotations

import calendar
import email.utils
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from exchmail.store import names
from exchmail.store.crlf import to_crlf
from exchmail.transfer.importer import SourceMessage

METADATA = (b"status", b"x-status", b"x-keywords", b"x-uid", b"x-imap", b"x-imapbase", b"content-length")
X_STATUS = {"A": "\\Answered", "F": "\\Flagged", "T": "\\Draft", "D": "\\Deleted"}
_FROM_DATE = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    rb" +(\d{1,2}) +(\d{1,2}):(\d{2})(?::(\d{2}))?(?: +[A-Z]{1,5}| +[+-]\d{4})? +(\d{4})"
)
_MONTHS = {m.encode(): i for i, m in enumerate(calendar.month_abbr) if m}
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.M)
_SUFFIXES = (".mbox", ".mbx")


def from_line_date(line: bytes) -> float | None:
    """The date of an mbox ``From `` line, as seconds since the epoch (UTC)."""
    match = _FROM_DATE.search(line)
    if match is None:
        return None
    month, day, hour, minute, second, year = match.groups()
    try:
        return float(
            calendar.timegm((int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second or 0)))
        )
    except (ValueError, OverflowError):
        return None


def split_headers(message: bytes) -> tuple[list[bytes], bytes]:
    """The header fields (each with its continuation lines) and the rest."""
    head, sep, body = message.partition(b"\n\n")
    if not sep:
        head, body = message, b""
    fields: list[bytes] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\n" + line
        elif line:
            fields.append(line)
    return fields, body


def parse_metadata(fields: list[bytes]) -> tuple[list[bytes], frozenset[str], bytes | None]:
    """``(other fields, flags, Date: value)`` of a message's header fields."""
    flags: set[str] = set()
    kept: list[bytes] = []
    date = None
    for header in fields:
        name, _, value = header.partition(b":")
        key = name.strip().lower()
        text = value.decode("utf-8", "replace").strip()
        if key == b"status":
            flags.update({"\\Seen"} if "R" in text else set())
        elif key == b"x-status":
            flags.update(X_STATUS[c] for c in text if c in X_STATUS)
        elif key == b"x-keywords":
            flags.update(k for k in re.split(r"[\s,]+", text) if k and not k.startswith("\\"))
        if key in METADATA:
            continue
        if key == b"date":
            date = value.strip()
        kept.append(header)
    return kept, frozenset(flags), date


def _date(from_line: bytes, date_header: bytes | None) -> float | None:
    found = from_line_date(from_line)
    if found is None and date_header:
        try:
            parsed = email.utils.parsedate_to_datetime(date_header.decode("ascii", "replace"))
            found = parsed.timestamp()
        except (TypeError, ValueError, IndexError):
            found = None
    return found


def _raw_messages(stream: BinaryIO) -> Iterator[tuple[int, bytes, bytes]]:
    """``(number, From line, raw message with LF ends)`` for each message of an mbox."""
    from_line: bytes | None = None
    lines: list[bytes] = []
    previous_blank = True
    number = 0
    for raw in stream:
        line = raw.rstrip(b"\r\n")
        if line.startswith(b"From ") and previous_blank:
            if from_line is not None:
                number += 1
                yield number, from_line, _join(lines)
            from_line, lines = line, []
        elif from_line is not None:
            lines.append(line)
        previous_blank = line == b""
    if from_line is not None:
        number += 1
        yield number, from_line, _join(lines)


def _join(lines: list[bytes]) -> bytes:
    if lines and lines[-1] == b"":
        lines = lines[:-1]  # the empty line that separates messages
    return b"".join(line + b"\n" for line in lines)


def message_from_mbox(raw: bytes, from_line: bytes) -> tuple[bytes, frozenset[str], float | None]:
    """Content (wire form), flags and date of one raw mbox message."""
    raw = _QUOTED_FROM.sub(rb"\1", raw)
    fields, body = split_headers(raw)
    kept, flags, date_header = parse_metadata(fields)
    content = b"\n".join(kept) + b"\n\n" + body
    return to_crlf(content), flags, _date(from_line, date_header)


def mbox_folders(path: Path) -> list[tuple[str, Path]]:
    """``(folder name, file)`` for a file, or for every mbox file under a folder."""
    if path.is_file():
        return [(names.INBOX, path)]
    found = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        with open(file, "rb") as f:
            if not f.read(5) == b"From ":
                continue
        parts = list(file.relative_to(path).parts)
        parts = [p[:-4] if p.endswith(".sbd") else p for p in parts[:-1]] + [parts[-1]]
        for suffix in _SUFFIXES:
            if parts[-1].endswith(suffix):
                parts[-1] = parts[-1][: -len(suffix)]
        name = names.DELIMITER.join(parts)
        found.append((names.INBOX if name.upper() == names.INBOX else name, file))
    return found


class MboxSource:
    """An mbox file, or a folder of them (see the module docstring).

    :param folder: with a single file, the folder it goes into (default INBOX).
    """

    def __init__(self, path: Path, folder: str | None = None) -> None:
        self.path = Path(path)
        self.files = mbox_folders(self.path)
        if folder is not None and self.path.is_file():
            self.files = [(folder, self.path)]

    def totals(self) -> tuple[int, int]:
        count = size = 0
        for _, file in self.files:
            with open(file, "rb") as f:
                for _, _, raw in _raw_messages(f):
                    count += 1
                    size += len(raw)
        return count, size

    def messages(self) -> Iterator[SourceMessage]:
        for folder, file in self.files:
            with open(file, "rb") as stream:
                for number, from_line, raw in _raw_messages(stream):
                    yield parsed_message(folder, f"{file.name} message {number}", raw, from_line)

    def close(self) -> None:
        pass


def parsed_message(folder: str, label: str, raw: bytes, from_line: bytes) -> SourceMessage:
    """A :class:`SourceMessage` of one raw mbox message; a message that cannot
    be parsed fails when it is read, so that it is reported and skipped."""
    try:
        content, flags, date = message_from_mbox(raw, from_line)
    except Exception as e:  # noqa: BLE001 - reported by the importer
        problem = e

        def fail() -> bytes:
            raise ValueError(f"cannot parse the message: {problem}")

        return SourceMessage(folder, frozenset(), None, len(raw), label, fail)
    return SourceMessage(folder, flags, date, len(raw), label, lambda: content)


# -- writing -------------------------------------------------------------------------


def status_headers(flags: frozenset[str]) -> bytes:
    """The Status/X-Status/X-Keywords lines for ``flags`` (LF ends)."""
    lines = [b"Status: " + (b"RO" if "\\Seen" in flags else b"O")]
    x_status = "".join(letter for letter, flag in X_STATUS.items() if flag in flags)
    if x_status:
        lines.append(f"X-Status: {x_status}".encode())
    keywords = sorted(f for f in flags if not f.startswith("\\"))
    if keywords:
        lines.append(("X-Keywords: " + " ".join(keywords)).encode("utf-8"))
    return b"".join(line + b"\n" for line in lines)


def mbox_entry(
    content: bytes, flags: frozenset[str], internal_date: float, sender: str = "MAILER-DAEMON"
) -> bytes:
    """One message as an mboxrd entry: From line, status headers, quoted body, empty line."""
    lf = content.replace(b"\r\n", b"\n")
    head, sep, body = lf.partition(b"\n\n")
    if not sep:
        head, body = lf.rstrip(b"\n"), b""
    stamp = time.asctime(time.gmtime(internal_date)).encode()
    text = head + b"\n" + status_headers(flags) + b"\n" + body
    text = re.sub(rb"^(>*From )", rb">\1", text, flags=re.M)
    if not text.endswith(b"\n"):
        text += b"\n"
    return b"From " + sender.encode("ascii", "replace") + b" " + stamp + b"\n" + text + b"\n"
