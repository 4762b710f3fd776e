"""Rendering of FETCH data items: ENVELOPE, BODY/BODYSTRUCTURE, BODY[section].

All functions take a :class:`~exchmail.mime.message.ParsedMessage` and
return bytes in IMAP wire syntax (RFC 3501 sections 6.4.5, 7.4.2 and 9).
Sizes and section contents are computed on the message's raw octets.

The content follows Dovecot's rules where RFC 3501 leaves a choice (they
are what imaptest's expected responses encode): the MIME structure of
:mod:`exchmail.mime.structure`; address lists as Dovecot's parser sees them
(source routes kept, a trailing comment naming a bare address, missing
parts filled with ``MISSING_MAILBOX``/``MISSING_DOMAIN``); display names
and subjects with their white space runs collapsed; parameters as written,
RFC 2231 sections merged but not decoded (``"NAME*" "utf-8''..."``);
``text/*`` parts without a charset get ``"CHARSET" "us-ascii"`` last; a
multipart without parts shows one empty text/plain part.  Unlike Dovecot,
media types, subtypes, encodings, parameter names and disposition types are
upper case (as Exchange sends them); IMAP compares them case-insensitively.

Section octets are the stored octets (byte-exact, so bare LF line ends stay
as they are; Dovecot would send CRLF), NUL sent as 0x80.  :func:`section`
returns a copy; :func:`section_view` a memoryview of the message, to write a
large literal in pieces without copying it.
"""

from __future__ import annotations

from typing import TypeVar

from exchmail.imap.wire import NIL, nstring, plist, string
from exchmail.mime.address import Address, parse_addresses
from exchmail.mime.headers import ends_with_blank_line
from exchmail.mime.message import MimePart, ParsedMessage
from exchmail.mime.scan import find
from exchmail.mime.structure import MESSAGE, MULTIPART

__all__ = [
    "address_list",
    "body_lines",
    "bodystructure",
    "envelope",
    "partial",
    "nul_safe",
    "section",
    "section_view",
]

_SECTION_TEXTS = frozenset({"HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"})
_LWSP = b" \t\r\n"
_REPLACEMENT = "\ufffd".encode()

# ---------------------------------------------------------------------------
# Strings


def _for_humans(value: bytes) -> bytes:
    """White space runs (CR and LF included) as one space, none at the ends
    (Dovecot's ``imap_append_string_for_humans``); NUL as U+FFFD."""
    return b" ".join(value.replace(b"\x00", _REPLACEMENT).split())


def _nolf(value: bytes) -> bytes:
    """CR and LF removed (a space kept between words); NUL as U+FFFD."""
    value = value.replace(b"\x00", _REPLACEMENT)
    if b"\r" not in value and b"\n" not in value:
        return value
    out = bytearray()
    for i, c in enumerate(value):
        if c in (0x0D, 0x0A):
            nxt = value[i + 1 : i + 2]
            if nxt and nxt not in b" \t\r\n":
                out.append(0x20)
        else:
            out.append(c)
    return bytes(out)


def _upper(value: bytes) -> bytes:
    return string(value.upper())


def _nstring_nolf(value: bytes | None) -> bytes:
    return NIL if value is None else string(_nolf(value))


# ---------------------------------------------------------------------------
# ENVELOPE


def _address(addr: Address) -> bytes:
    name = NIL if addr.name is None else string(_for_humans(addr.name))
    return b"(%s %s %s %s)" % (name, nstring(addr.route), nstring(addr.mailbox), nstring(addr.domain))


def _addresses(values: list[bytes]) -> list[Address]:
    # Several fields count as one comma-separated list (Dovecot merges them).
    return [addr for value in values for addr in parse_addresses(value)]


def _render_addresses(addresses: list[Address]) -> bytes:
    if not addresses:
        return NIL
    return b"(" + b"".join(_address(addr) for addr in addresses) + b")"


def address_list(values: list[bytes]) -> bytes:
    """Render the values of address field(s) as an IMAP address list.

    Display names are sent as they appear in the header (encoded-words are
    not decoded, RFC 3501 7.4.2), white space collapsed; groups become the
    ``(NIL NIL "name" NIL)`` ... ``(NIL NIL NIL NIL)`` markers and source
    routes the second item.  ``NIL`` when there is no address at all.
    """
    return _render_addresses(_addresses(values))


def envelope(msg: ParsedMessage, empty_as_nil: bool = False) -> bytes:
    """The ENVELOPE of *msg* (RFC 3501 7.4.2).

    Absent Date, Subject, In-Reply-To and Message-ID fields are ``NIL``;
    present but empty ones are ``""`` (RFC 3501), or ``NIL`` when
    *empty_as_nil* is true (Exchange behaviour).  Of repeated fields the
    last one counts (address fields: all of them).  Sender and Reply-To
    default to From when they hold no address.
    """

    def text_field(name: str, humans: bool = False) -> bytes:
        values = msg.get_all(name)
        if not values:
            return NIL
        value = _for_humans(values[-1]) if humans else _nolf(values[-1])
        if empty_as_nil and not value.strip(_LWSP):
            return NIL
        return string(value)

    from_ = _addresses(msg.get_all("from"))
    sender = _addresses(msg.get_all("sender")) or from_
    reply_to = _addresses(msg.get_all("reply-to")) or from_
    items = [
        text_field("date"),
        text_field("subject", humans=True),
        _render_addresses(from_),
        _render_addresses(sender),
        _render_addresses(reply_to),
        address_list(msg.get_all("to")),
        address_list(msg.get_all("cc")),
        address_list(msg.get_all("bcc")),
        text_field("in-reply-to"),
        text_field("message-id"),
    ]
    return plist(items)


# ---------------------------------------------------------------------------
# BODY / BODYSTRUCTURE

_EMPTY_BODY = b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 0 0'


def body_lines(data: bytes) -> int:
    """Number of line ends (LF) in *data*: BODYSTRUCTURE's line count (an
    unterminated last line does not count, as in Dovecot)."""
    return data.count(b"\n")


def _params(params: tuple[tuple[bytes, bytes], ...], charset: bool = False) -> bytes:
    items = []
    for name, value in params:
        items.append(_upper(name))
        items.append(string(value))
    if charset and not any(name.lower() == b"charset" for name, _ in params):
        items.append(b'"CHARSET" "us-ascii"')
    return plist(items) if items else NIL


def _extension_tail(part: MimePart) -> list[bytes]:
    content = part.content
    disposition = NIL
    if content.disposition is not None:
        kind, params = content.disposition
        disposition = b"(%s %s)" % (_upper(kind), _params(params))
    language = NIL
    if content.language:
        language = plist(string(tag) for tag in content.language)
    return [disposition, language, _nstring_nolf(content.location)]


def _is_truncated(part: MimePart) -> bool:
    """A part a limit kept from being parsed as multipart or message."""
    ctype = part.content.content_type
    if ctype is None:  # below multipart/digest it should have been a message
        return part.default_type == "message/rfc822"
    kind = ctype.maintype.lower()
    return (kind == b"message" and ctype.subtype.lower() == b"rfc822") or kind == b"multipart"


def _multipart(part: MimePart, extensible: bool, empty_as_nil: bool) -> bytes:
    children = [_body(child, extensible, empty_as_nil) for child in part.children]
    if not children:
        children = [_EMPTY_BODY + (b" NIL NIL NIL NIL)" if extensible else b")")]
    ctype = part.content.content_type
    items = [b"".join(children), _upper(ctype.subtype if ctype is not None else b"")]
    if extensible:
        items.append(_params(part.raw_params))
        items.extend(_extension_tail(part))
    return b"(" + b" ".join(items) + b")"


def _body(part: MimePart, extensible: bool, empty_as_nil: bool) -> bytes:
    flags = part.flags
    if flags & MULTIPART:
        return _multipart(part, extensible, empty_as_nil)
    content = part.content
    ctype = content.content_type
    text = False
    if flags & MESSAGE:
        kind = b'"MESSAGE" "RFC822"'
    elif _is_truncated(part):
        kind = b'"APPLICATION" "OCTET-STREAM"'
    elif ctype is None:
        kind, text = b'"TEXT" "PLAIN"', True
    else:
        kind = _upper(ctype.maintype) + b" " + _upper(ctype.subtype)
        text = ctype.maintype.lower() == b"text"
    items = [
        kind,
        _params(part.raw_params, charset=text),
        _nstring_nolf(content.id),
        _nstring_nolf(content.description),
        _upper(content.encoding) if content.encoding is not None else b'"7BIT"',
        b"%d" % part.body_size,
    ]
    if text:
        items.append(b"%d" % part.lines)
    elif flags & MESSAGE:
        inner = part.message
        assert inner is not None
        items.append(envelope(inner, empty_as_nil))
        items.append(_body(inner, extensible, empty_as_nil))
        items.append(b"%d" % part.lines)
    if extensible:
        items.append(_nstring_nolf(content.md5))
        items.extend(_extension_tail(part))
    return b"(" + b" ".join(items) + b")"


def bodystructure(msg: ParsedMessage, extensible: bool = True, *, empty_as_nil: bool = False) -> bytes:
    """BODYSTRUCTURE (*extensible* true) or BODY (false) of *msg*.

    *empty_as_nil* is passed on to the envelopes of encapsulated
    ``message/rfc822`` parts (see :func:`envelope`).
    """
    return _body(msg.root, extensible, empty_as_nil)


# ---------------------------------------------------------------------------
# BODY[section] and partial fetches


def _header_fields(msg: MimePart, names: tuple[bytes, ...], exclude: bool) -> bytes:
    """The fields chosen, as written, then the empty line -- unless the header
    has none, as a message with no body may not (RFC 3501 6.4.5)."""
    wanted = {name.decode("ascii", "replace").strip().lower() for name in names}
    out = []
    for field in msg.fields:
        selected = field.name.lower() in wanted if field.name else False
        if selected != exclude:
            out.append(field.raw)
    if ends_with_blank_line(msg.header_view()):
        out.append(b"\r\n")
    return b"".join(out)


def nul_safe(data: bytes) -> bytes:
    """*data* with NUL octets replaced by 0x80, as literals may not hold NUL
    (RFC 3501 9, ``CHAR8``; Dovecot does the same).  *data* itself when it
    has no NUL (checked by a bounded scan, see :mod:`exchmail.mime.scan`)."""
    if find(data, b"\x00", 0, len(data)) < 0:
        return data
    return data.replace(b"\x00", b"\x80")


def _span(
    msg: ParsedMessage, path: tuple[int, ...], text: str | None, fields: tuple[bytes, ...]
) -> tuple[int, int] | bytes:
    """Where ``BODY[section]`` lies in the message's octets, or its octets
    when they are not a slice of the message (HEADER.FIELDS)."""
    spec = text.upper() if text is not None else None
    if spec is not None and spec not in _SECTION_TEXTS:
        raise ValueError(f"unknown section text specifier: {text!r}")
    target: MimePart | None = msg
    if not path:
        if spec is None:
            return msg.start, msg.end
        if spec == "MIME":
            return b""
    else:
        part = msg.part(path)
        if part is None:
            return b""
        if spec is None:
            return part.body_start, part.end
        if spec == "MIME":
            return part.start, part.body_start
        target = part.message
    if target is None:
        return b""
    if spec == "HEADER":
        return target.start, target.body_start
    if spec == "TEXT":
        return target.body_start, target.end
    return _header_fields(target, fields, exclude=spec == "HEADER.FIELDS.NOT")


def section_view(
    msg: ParsedMessage,
    path: tuple[int, ...] = (),
    text: str | None = None,
    fields: tuple[bytes, ...] = (),
) -> memoryview:
    """:func:`section` as a memoryview: no copy of a large part is made
    (unless it holds NUL octets, which become 0x80)."""
    span = _span(msg, path, text, fields)
    if isinstance(span, bytes):
        return memoryview(nul_safe(span))
    start, end = span
    data = msg.data
    if find(data, b"\x00", start, end) >= 0:
        return memoryview(data[start:end].replace(b"\x00", b"\x80"))
    return memoryview(data)[start:end]


def section(
    msg: ParsedMessage,
    path: tuple[int, ...] = (),
    text: str | None = None,
    fields: tuple[bytes, ...] = (),
) -> bytes:
    """The octets of ``BODY[section]`` (RFC 3501 6.4.5).

    *path* is the part number list (empty for the message itself), *text*
    one of ``HEADER``, ``HEADER.FIELDS``, ``HEADER.FIELDS.NOT``, ``TEXT``,
    ``MIME`` (case-insensitive) or None, and *fields* the field names for
    the HEADER.FIELDS variants.  With a non-empty path, HEADER/TEXT refer
    to the message encapsulated in a message/rfc822 part.  A nonexistent
    part (or a HEADER/TEXT of a part that is not a message) gives ``b""``.
    NUL octets are sent as 0x80 (see :func:`nul_safe`).

    :raises ValueError: for an unknown *text* specifier.
    """
    span = _span(msg, path, text, fields)
    if isinstance(span, bytes):
        return nul_safe(span)
    start, end = span
    data = msg.data[start:end]
    if find(msg.data, b"\x00", start, end) >= 0:
        return data.replace(b"\x00", b"\x80")
    return data


_Octets = TypeVar("_Octets", bytes, memoryview)


def partial(data: _Octets, start: int, length: int | None) -> _Octets:
    """``data<start.length>`` (RFC 3501 6.4.5): empty if *start* is past the end.

    Works on a memoryview too (then returns a memoryview slice).

    :raises ValueError: for a negative *start* or *length*.
    """
    if start < 0 or (length is not None and length < 0):
        raise ValueError("partial start and length must not be negative")
    if length is None:
        return data[start:]
    return data[start : start + length]
