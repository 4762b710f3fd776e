"""A 7-bit view of messages that contain 8-bit octets (MS-STANXIMAP V0007).

Exchange never sends 8-bit or multi-octet characters over IMAP.  exchmail
does the same when the profile's ``seven_bit_output`` is on: a message
whose octets are all below 0x80 is sent exactly as stored; any other
message is sent re-encoded, consistently for every FETCH item:

- a leaf body part with 8-bit octets gets ``Content-Transfer-Encoding:
  quoted-printable`` (``text/*``) or ``base64`` (anything else), and the
  decoded content is unchanged;
- a header field with 8-bit octets is rewritten as RFC 2047 encoded-words,
  reading the raw octets as UTF-8 (or Latin-1 where they are not UTF-8);
- everything else (7-bit parts and fields, delimiters, header order, the
  MIME tree) is copied octet for octet;
- 8-bit octets anywhere else (a preamble, a malformed header line) become
  ``?``.

The MIME tree is the one FETCH sees (:mod:`exchmail.mime.structure`); the
work is done in bounded chunks and 7-bit parts are not copied until the
result is joined.  Pure functions, bytes in and out.
"""

from __future__ import annotations

import binascii
import email.header
import email.utils
from collections.abc import Iterator

from exchmail.mime.decode import iter_transfer_decoded
from exchmail.mime.headers import HeaderField
from exchmail.mime.message import MimePart, ParsedMessage
from exchmail.mime.scan import WINDOW

__all__ = ["ADDRESS_HEADERS", "has_8bit", "to_seven_bit"]

_CRLF = b"\r\n"
# Raw octets per base64 step: whole 57-octet lines (76 characters).
_B64_STEP = 57 * 1024
_QP_STEP = 1 << 16


def has_8bit(data: bytes | memoryview) -> bool:
    """Whether any octet of ``data`` is 0x80 or above (checked window by window)."""
    view = memoryview(data)
    for pos in range(0, len(view), WINDOW):
        if not view[pos : pos + WINDOW].tobytes().isascii():
            return True
    return False


def _text_of(raw: bytes) -> tuple[str, str]:
    """Decode header or body octets: UTF-8 if valid, else Latin-1; and the charset."""
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "iso-8859-1"


ADDRESS_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "sender",
        "resent-from",
        "resent-to",
        "resent-cc",
        "resent-sender",
    }
)


def _encode_header(name: str, text: str, charset: str) -> str:
    """One header value as 7-bit text: address headers keep their addresses
    readable and encode only the display names."""
    if name.lower() in ADDRESS_HEADERS:
        pairs = email.utils.getaddresses([text])
        if pairs and all(address.isascii() for _, address in pairs):
            return ", ".join(
                email.utils.formataddr((display, address), charset=charset) for display, address in pairs
            )
    return email.header.Header(text.strip(), charset, header_name=name).encode(linesep="\r\n")


def _field(field: HeaderField) -> bytes:
    """A header field, rewritten as RFC 2047 words if it has 8-bit octets."""
    if field.raw.isascii() or not field.name:
        return field.raw
    text, charset = _text_of(field.value)
    return b"%s: %s\r\n" % (
        field.name.encode("ascii"),
        _encode_header(field.name, text, charset).encode("ascii"),
    )


def _header(part: MimePart, new_encoding: bytes | None) -> list[bytes]:
    """The part's header block; with *new_encoding*, its Content-Transfer-
    Encoding replaced by that."""
    fields = part.fields
    header = part.header
    kept = sum(len(f.raw) for f in fields)
    out = []
    for field in fields:
        if new_encoding is not None and field.name.lower() == "content-transfer-encoding":
            continue
        out.append(_field(field))
    if new_encoding is not None:
        if out and not out[-1].endswith(b"\n"):
            out.append(_CRLF)
        out.append(b"Content-Transfer-Encoding: " + new_encoding + _CRLF)
    out.append(header[kept:])  # the empty line, if any
    return out


def _base64(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Base64 in 76-character CRLF lines, from octet chunks of any size."""
    carry = b""
    for chunk in chunks:
        carry += chunk
        usable = len(carry) - len(carry) % 57
        for pos in range(0, usable, _B64_STEP):
            block = carry[pos : min(usable, pos + _B64_STEP)]
            yield b"".join(binascii.b2a_base64(block[i : i + 57]) for i in range(0, len(block), 57))
        carry = carry[usable:]
    if carry:
        yield binascii.b2a_base64(carry)


def _quoted_printable(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Quoted-printable of text: lines encoded whole, line ends kept as LF
    (turned into CRLF by the caller)."""
    carry = b""
    for chunk in chunks:
        carry = (carry + chunk).replace(b"\r\n", b"\n")
        cut = carry.rfind(b"\n") + 1
        if cut:
            yield binascii.b2a_qp(carry[:cut], quotetabs=False, istext=True)
            carry = carry[cut:]
        if len(carry) > _QP_STEP:  # a very long line: go on after a soft break
            yield binascii.b2a_qp(carry, quotetabs=False, istext=True) + b"=\n"
            carry = b""
    if carry:
        yield binascii.b2a_qp(carry, quotetabs=False, istext=True)


def _leaf(part: MimePart, out: list[bytes | memoryview]) -> None:
    body = part.body_view()
    if not has_8bit(body):
        out.extend(_header(part, None))
        out.append(body)
        return
    decoded = iter_transfer_decoded(part.data, part.body_start, part.end, part.transfer_encoding, _QP_STEP)
    if part.maintype == "text":
        out.extend(_header(part, b"quoted-printable"))
        out.extend(piece.replace(b"\n", _CRLF) for piece in _quoted_printable(decoded))
    else:
        out.extend(_header(part, b"base64"))
        out.extend(piece.replace(b"\n", _CRLF) for piece in _base64(decoded))


def _emit(part: MimePart, out: list[bytes | memoryview]) -> None:
    """Append the 7-bit form of *part* to *out* (bounded by the part count)."""
    if not (part.is_multipart or part.is_message):
        _leaf(part, out)
        return
    out.extend(_header(part, None))
    data = memoryview(part.data)
    pos = part.body_start
    kids = part.children if part.is_multipart else [m for m in (part.message,) if m is not None]
    for child in kids:
        out.append(data[pos : child.start])  # delimiters, preamble
        _emit(child, out)
        pos = child.end
    out.append(data[pos : part.end])


def to_seven_bit(data: bytes) -> bytes:
    """``data`` itself if it is 7-bit, else its re-encoded 7-bit equivalent."""
    if not has_8bit(data):
        return data
    pieces: list[bytes | memoryview] = []
    _emit(ParsedMessage(data), pieces)
    out = b"".join(pieces)
    if has_8bit(out):  # e.g. an 8-bit preamble: drop what cannot be sent
        out = out.decode("ascii", "replace").replace("\ufffd", "?").encode("ascii")
    return out
