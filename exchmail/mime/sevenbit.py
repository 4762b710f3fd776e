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
- everything else (7-bit parts, header order, the MIME tree) is kept.

Pure functions, bytes in and out, CRLF line ends.
"""

from __future__ import annotations

import email.header
import email.policy
import email.utils
import quopri
from email import encoders
from email.message import Message
from email.parser import BytesParser

_CRLF_POLICY = email.policy.compat32.clone(linesep="\r\n")


def has_8bit(data: bytes) -> bool:
    """Whether any octet of ``data`` is 0x80 or above."""
    return not data.isascii()


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
    return email.header.Header(text.strip(), charset, header_name=name).encode()


def _encode_headers(part: Message) -> None:
    # compat32 keeps undecodable header octets as surrogate escapes.
    headers = part._headers  # type: ignore[attr-defined]  # compat32 keeps raw values here
    for index, (name, value) in enumerate(list(headers)):
        if not isinstance(value, str) or value.isascii():
            continue
        text, charset = _text_of(value.encode("utf-8", "surrogateescape"))
        headers[index] = (name, _encode_header(name, text, charset))


def _encode_body(part: Message) -> None:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return
    raw = part.get_payload()
    if isinstance(raw, str) and raw.isascii():
        return  # already 7-bit (e.g. base64 of binary data)
    del part["Content-Transfer-Encoding"]
    if part.get_content_maintype() == "text":
        # quopri keeps spaces readable; line ends are the serializer's business.
        text = quopri.encodestring(payload.replace(b"\r\n", b"\n"), quotetabs=False)
        part.set_payload(text.decode("ascii"))
        part["Content-Transfer-Encoding"] = "quoted-printable"
    else:
        part.set_payload(payload)
        encoders.encode_base64(part)


def to_seven_bit(data: bytes) -> bytes:
    """``data`` itself if it is 7-bit, else its re-encoded 7-bit equivalent."""
    if not has_8bit(data):
        return data
    message = BytesParser(policy=email.policy.compat32).parsebytes(data)
    for part in message.walk():
        _encode_headers(part)
        if not part.is_multipart():
            _encode_body(part)
    out = message.as_bytes(policy=_CRLF_POLICY)
    if has_8bit(out):  # e.g. an 8-bit preamble: drop what cannot be sent
        out = out.decode("ascii", "replace").replace("\ufffd", "?").encode("ascii")
    return out


__all__ = ["has_8bit", "to_seven_bit"]
