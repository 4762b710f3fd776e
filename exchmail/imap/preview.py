"""PREVIEW (RFC 8970): a short plain-text preview of a message, for FETCH.

The first ``text/plain`` part (else the first ``text/html`` one, its tags
and entities removed) is decoded (transfer encoding and charset undone),
its white space collapsed, and cut at :data:`MAX_CHARS` characters (the
RFC's limit is 256) at a word boundary where there is one.  A message
without such a part has the empty preview.  Pure: it runs wherever FETCH
renders content (in the thread pool for large messages).
"""

from __future__ import annotations

import html
import re

from exchmail.mime.message import MimePart, ParsedMessage, text_leaves

MAX_CHARS = 200
#: Decoded characters looked at (a preview never needs the whole body).
SCAN_CHARS = 4096
_TAGS = re.compile(r"<(?:script|style)\b.*?</(?:script|style)\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")


def _text(part: MimePart) -> str:
    out, size = [], 0
    for chunk in part.iter_text():
        out.append(chunk)
        size += len(chunk)
        if size >= SCAN_CHARS:
            break
    return "".join(out)[:SCAN_CHARS]


def preview_text(message: ParsedMessage) -> str:
    """The preview of ``message`` (at most MAX_CHARS characters; may be empty)."""
    leaves = [leaf for leaf in text_leaves(message) if leaf.maintype == "text"]
    chosen = next((leaf for leaf in leaves if leaf.subtype == "plain"), None)
    if chosen is not None:
        text = _text(chosen)
    else:
        markup = next((leaf for leaf in leaves if leaf.subtype == "html"), None)
        text = html.unescape(_TAGS.sub(" ", _text(markup))) if markup is not None else ""
    text = _SPACE.sub(" ", text).strip()
    if len(text) <= MAX_CHARS:
        return text
    cut = text.rfind(" ", 0, MAX_CHARS + 1)
    return text[: cut if cut > MAX_CHARS // 2 else MAX_CHARS].rstrip()


def preview_value(message: ParsedMessage) -> bytes:
    """The FETCH value: a quoted string, or a literal for UTF-8 or quotes."""
    data = preview_text(message).encode("utf-8")
    if all(0x20 <= c < 0x7F and c not in b'"\\' for c in data):
        return b'"' + data + b'"'
    return b"{%d}\r\n" % len(data) + data
