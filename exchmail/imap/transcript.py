"""What the protocol log shows of IMAP traffic: secrets hidden, message data as its size.

LOGIN's password, AUTHENTICATE's initial response and every SASL
challenge and response are written as ``****``; literals (APPEND's
message, FETCH's data) as ``{n}<n octets>``.
"""

from __future__ import annotations

import re

from exchmail.session.reader import Command, LiteralSegment

REDACTED = "****"
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n")


def text(data: bytes) -> str:
    """Printable text for a log field: CR/LF and other controls escaped."""
    decoded = data.decode("utf-8", "backslashreplace")
    return "".join(c if c >= " " or c == "\t" else f"\\x{ord(c):02x}" for c in decoded).replace(
        "\\x0d\\x0a", "\\r\\n"
    )


def summarize_literals(data: bytes) -> str:
    """``data`` with the octets of every literal ``{n}CRLF...`` replaced by ``<n octets>``."""
    out, pos = [], 0
    for match in _LITERAL.finditer(data):
        if match.start() < pos:
            continue
        size = int(match.group(1))
        out.append(text(data[pos : match.start()]) + f"{{{size}}}<{size} octets>")
        pos = match.end() + size
    out.append(text(data[pos:]))
    joined = "".join(out)
    return joined[:-4] if joined.endswith("\\r\\n") else joined


def describe_command(command: Command, options: object = None) -> str:
    """An IMAP command as logged: literals by size, LOGIN's password and SASL-IR hidden."""
    segments = command.segments
    first = segments[0] if segments and isinstance(segments[0], bytes) else b""
    words = first.split(None, 3)
    name = words[1].upper() if len(words) > 1 else b""
    if name == b"LOGIN":
        user = "" if len(words) < 3 else text(words[2])
        second = segments[1] if len(segments) > 1 else None
        if user.endswith("}") and isinstance(second, LiteralSegment) and isinstance(second.data, bytes):
            user = text(second.data)  # the user name was a literal
        return f"{text(words[0])} LOGIN {user} {REDACTED}"
    if name == b"AUTHENTICATE":
        head = text(b" ".join(words[:3]))
        return head + (f" {REDACTED}" if len(words) > 3 or len(segments) > 1 else "")
    parts = []
    for segment in segments:
        if isinstance(segment, LiteralSegment):
            parts.append(f"<{len(segment.data)} octets>")
        else:
            parts.append(text(segment))
    return "".join(parts)


def describe_output(data: bytes, sasl_active: bool) -> str:
    """Response octets as logged (SASL challenges hidden while an exchange runs)."""
    if sasl_active and data.startswith(b"+ ") and data != b"+ \r\n":
        return "+ " + REDACTED
    return summarize_literals(data)
