"""BINARY (RFC 3516) content: decoded sections for FETCH, storable messages for APPEND.

Pure functions on message octets (wire form); callers run them off the
reactor thread for large messages.

FETCH ``BINARY[part]`` is the part with its Content-Transfer-Encoding
undone: base64 decoded exactly; quoted-printable decoded by RFC 2045 §6.7
(trailing white space dropped, soft line breaks joined, hard line breaks
sent as CRLF); 7bit, 8bit and binary parts as they are.  A section that is
not a leaf part (the whole message, a ``message/rfc822`` part, a
multipart) is its octets with every encoded leaf inside decoded and that
leaf's ``Content-Transfer-Encoding`` field rewritten to ``binary`` (what
Dovecot sends).  An encoding not in :data:`KNOWN_ENCODINGS` fails with
:class:`UnknownCTE` (``NO [UNKNOWN-CTE]``).

APPEND with ``literal8`` (``~{n}``) may carry octets no store keeps in wire
form (NUL, bare CR or LF).  :func:`storable` returns a lossless equivalent
(RFC 3516 §4.4 allows changing the CTE): a leaf whose body holds NUL, or
whose CTE is ``binary`` and that holds a bare CR or LF, is re-encoded as
base64; other line ends become CRLF.  A NUL in a header has no lossless
form: :class:`NotStorable`.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator

from exchmail.mime.decode import decode_transfer
from exchmail.mime.message import MimePart, ParsedMessage

__all__ = [
    "KNOWN_ENCODINGS",
    "NotStorable",
    "UnknownCTE",
    "binary_literal",
    "binary_section",
    "decode_quoted_printable",
    "storable",
]

#: Content-Transfer-Encodings BINARY can undo (None: no field, i.e. 7bit).
KNOWN_ENCODINGS = frozenset({None, "7bit", "8bit", "binary", "base64", "quoted-printable"})
_ENCODED = frozenset({"base64", "quoted-printable"})
_CTE = "content-transfer-encoding"
_TRAILING_SPACE = re.compile(rb"[ \t]+(?=\r?\n|\Z)")
_SOFT_BREAK = re.compile(rb"=\r?\n")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_BARE_CR = re.compile(rb"\r(?!\n)")
_B64_LINE = 57  # raw octets per 76-character base64 line


class UnknownCTE(Exception):
    """A part's Content-Transfer-Encoding is not one BINARY can decode."""


class NotStorable(Exception):
    """A literal8 message that cannot be kept losslessly (NUL in a header)."""


# -- FETCH BINARY ----------------------------------------------------------------------
def decode_quoted_printable(data: bytes) -> bytes:
    """Quoted-printable decoded (RFC 2045 §6.7), hard line breaks as CRLF."""
    data = _TRAILING_SPACE.sub(b"", data)
    data = _SOFT_BREAK.sub(b"", data)
    if data.endswith(b"="):
        data = data[:-1]
    data = _BARE_LF.sub(b"\r\n", data)
    return binascii.a2b_qp(data)


def _decode_body(part: MimePart) -> bytes:
    encoding = part.transfer_encoding
    if encoding not in KNOWN_ENCODINGS:
        raise UnknownCTE(encoding or "")
    body = part.data[part.body_start : part.end]
    if encoding == "base64":
        return decode_transfer(body, "base64")
    if encoding == "quoted-printable":
        return decode_quoted_printable(body)
    return body


def _leaves(part: MimePart) -> Iterator[MimePart]:
    """The leaf parts under ``part`` (itself if it is one), in document order."""
    stack = [part]
    while stack:
        node = stack.pop()
        if node.is_multipart:
            stack.extend(reversed(node.children))
        elif node.is_message and node.message is not None:
            stack.append(node.message)
        else:
            yield node


def _is_leaf(part: MimePart) -> bool:
    return not part.is_multipart and not (part.is_message and part.message is not None)


def _header_with_encoding(part: MimePart, encoding: bytes) -> bytes:
    """The part's header with its Content-Transfer-Encoding field set to ``encoding``
    (added before the empty line when it has none)."""
    data, start, end = part.data, part.start, part.body_start
    pieces, pos, done = [], start, False
    for field in part.fields:
        size = len(field.raw)
        if data[pos : pos + size] != field.raw:  # not contiguous: give up rewriting in place
            break
        if not done and field.name.lower() == _CTE:
            line_end = b"\r\n" if field.raw.endswith(b"\r\n") else b"\n"
            pieces.append(data[start:pos] + b"Content-Transfer-Encoding: " + encoding + line_end)
            start, done = pos + size, True
        pos += size
    if done:
        return b"".join(pieces) + data[start:end]
    # No such field: add one where the fields end (before the empty line).
    header = data[part.start : end]
    tail = b"\r\n" if header.endswith(b"\r\n") else b"\n" if header.endswith(b"\n") else b""
    head = header[: len(header) - len(tail)]
    if head and not head.endswith(b"\n"):
        head += b"\r\n"
    return head + b"Content-Transfer-Encoding: " + encoding + b"\r\n" + tail


def _rebuild(container: MimePart, start: int, end: int) -> bytes:
    """``data[start:end]`` with every encoded leaf under ``container`` decoded."""
    data = container.data
    out, pos = [], start
    for leaf in _leaves(container):
        encoding = leaf.transfer_encoding
        if encoding not in KNOWN_ENCODINGS:
            raise UnknownCTE(encoding or "")
        if encoding not in _ENCODED or leaf.start < start or leaf.end > end:
            continue
        out.append(data[pos : leaf.start])
        out.append(_header_with_encoding(leaf, b"binary"))
        out.append(_decode_body(leaf))
        pos = leaf.end
    out.append(data[pos:end])
    return b"".join(out)


def binary_section(message: ParsedMessage, path: tuple[int, ...]) -> bytes:
    """The octets of ``BINARY[path]`` (``()``: the whole message); ``b""`` for
    a part that does not exist.  Raises :class:`UnknownCTE`."""
    if not path:
        return _rebuild(message, message.start, message.end)
    part = message.part(path)
    if part is None:
        return b""
    if _is_leaf(part):
        return _decode_body(part)
    return _rebuild(part, part.body_start, part.end)


def binary_literal(data: bytes) -> bytes:
    """``data`` as a literal: ``~{n}`` (literal8) when it holds NUL, else ``{n}``."""
    prefix = b"~{%d}\r\n" if b"\x00" in data else b"{%d}\r\n"
    return prefix % len(data) + data


# -- APPEND literal8 --------------------------------------------------------------------
def _needs_base64(leaf: MimePart) -> bool:
    body = leaf.data[leaf.body_start : leaf.end]
    if b"\x00" in body:
        return True
    if leaf.transfer_encoding == "binary":
        return _BARE_LF.search(body) is not None or _BARE_CR.search(body) is not None
    return False


def _base64_body(body: bytes) -> bytes:
    lines = (
        binascii.b2a_base64(body[i : i + _B64_LINE], newline=False) for i in range(0, len(body), _B64_LINE)
    )
    return b"\r\n".join(lines)


def _to_crlf(data: bytes) -> bytes:
    return _BARE_LF.sub(b"\r\n", data)


def storable(data: bytes) -> bytes:
    """A literal8 message in a form every store keeps losslessly (see the
    module docstring); ``data`` itself when it already is one."""
    if b"\x00" not in data and not _BARE_LF.search(data) and not _BARE_CR.search(data):
        return data
    message = ParsedMessage(data)
    out, pos = [], 0
    for leaf in _leaves(message):
        if not _needs_base64(leaf):
            continue
        out.append(_to_crlf(data[pos : leaf.start]))
        if leaf.transfer_encoding in _ENCODED:
            raise NotStorable("NUL octets in a base64 or quoted-printable body")
        out.append(_to_crlf(_header_with_encoding(leaf, b"base64")))
        out.append(_base64_body(data[leaf.body_start : leaf.end]))
        if leaf.end == len(data):
            out.append(b"\r\n")
        pos = leaf.end
    out.append(_to_crlf(data[pos:]))
    result = b"".join(out)
    if b"\x00" in result:
        raise NotStorable("NUL octets outside a body part")
    return result
