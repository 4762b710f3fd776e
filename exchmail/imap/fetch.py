"""Rendering of FETCH data items: ENVELOPE, BODY/BODYSTRUCTURE, BODY[section].

All functions take a :class:`~exchmail.mime.message.ParsedMessage` and
return bytes in IMAP wire syntax (RFC 3501 sections 6.4.5, 7.4.2 and 9).
Sizes and section contents are computed on the message's raw octets.

BODYSTRUCTURE follows Dovecot's conventions where RFC 3501 leaves a choice:
media types, subtypes, encodings, disposition types and parameter names
are upper case quoted strings; ``text/*`` parts without a charset get
``("CHARSET" "us-ascii")``; absent optional fields are ``NIL``.
"""

from __future__ import annotations

from email.utils import getaddresses, unquote

from exchmail.imap.wire import NIL, nstring, plist, string
from exchmail.mime.message import MimePart, ParsedMessage

__all__ = [
    "address_list",
    "body_lines",
    "bodystructure",
    "envelope",
    "partial",
    "section",
]

_SECTION_TEXTS = frozenset(
    {"HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME"}
)
_WSP = b" \t"
_NIL_ADDRESS = b"(NIL NIL NIL NIL)"

# ---------------------------------------------------------------------------
# ENVELOPE


def _split_address_header(text: str) -> list[tuple[str, str]]:
    """Split an address header at top-level commas, colons and semicolons.

    Returns ``("addr", text)``, ``("group", name)`` and ``("end", "")``
    items.  Quoted strings, comments and angle brackets are respected.
    """
    items: list[tuple[str, str]] = []
    buf: list[str] = []
    comment = 0
    in_quote = in_angle = in_group = False

    def flush() -> None:
        chunk = "".join(buf).strip()
        buf.clear()
        if chunk:
            items.append(("addr", chunk))

    i = 0
    while i < len(text):
        c = text[i]
        if in_quote or comment:
            buf.append(c)
            if c == "\\" and i + 1 < len(text):
                i += 1
                buf.append(text[i])
            elif in_quote and c == '"':
                in_quote = False
            elif comment and c == "(":
                comment += 1
            elif comment and c == ")":
                comment -= 1
        elif c == '"':
            in_quote = True
            buf.append(c)
        elif c == "(":
            comment = 1
            buf.append(c)
        elif c == "<":
            in_angle = True
            buf.append(c)
        elif c == ">":
            in_angle = False
            buf.append(c)
        elif in_angle:
            buf.append(c)
        elif c == ",":
            flush()
        elif c == ":" and not in_group:
            name = "".join(buf).strip()
            buf.clear()
            if len(name) >= 2 and name[0] == name[-1] == '"':
                name = unquote(name)
            items.append(("group", name))
            in_group = True
        elif c == ";" and in_group:
            flush()
            items.append(("end", ""))
            in_group = False
        else:
            buf.append(c)
        i += 1
    flush()
    if in_group:
        items.append(("end", ""))
    return items


def _address(name: str, address: str) -> bytes:
    mailbox, at, host = address.rpartition("@")
    if not at:
        mailbox, host = address, ""
    return b"(%s NIL %s %s)" % (
        nstring(name.encode("latin-1")) if name else NIL,
        string(mailbox.encode("latin-1")),
        string(host.encode("latin-1")),
    )


def address_list(values: list[bytes]) -> bytes:
    """Render the values of address header(s) as an IMAP address list.

    Display names are sent as they appear in the header (encoded-words are
    not decoded, RFC 3501 7.4.2); RFC 2822 groups become the
    ``(NIL NIL "name" NIL)`` ... ``(NIL NIL NIL NIL)`` markers.  Returns
    ``NIL`` when there is no address at all.
    """
    text = ",".join(v.decode("latin-1") for v in values)
    out: list[bytes] = []
    for kind, chunk in _split_address_header(text):
        if kind == "group":
            out.append(b"(NIL NIL %s NIL)" % string(chunk.encode("latin-1")))
        elif kind == "end":
            out.append(_NIL_ADDRESS)
        else:
            for name, addr in getaddresses([chunk]):
                if name or addr:
                    out.append(_address(name, addr))
    if not out:
        return NIL
    return b"(" + b"".join(out) + b")"


def envelope(msg: ParsedMessage, empty_as_nil: bool = False) -> bytes:
    """The ENVELOPE of *msg* (RFC 3501 7.4.2).

    Absent Date, Subject, In-Reply-To and Message-ID fields are ``NIL``;
    present but empty ones are ``""`` (RFC 3501), or ``NIL`` when
    *empty_as_nil* is true (Exchange behaviour).  Sender and Reply-To
    default to From when absent or empty.
    """

    def text_field(name: str) -> bytes:
        value = msg.get(name)
        if value is None:
            return NIL
        value = value.rstrip(_WSP)
        if not value and empty_as_nil:
            return NIL
        return string(value)

    def addresses(name: str) -> bytes:
        return address_list(msg.get_all(name))

    from_ = addresses("from")
    sender = addresses("sender")
    reply_to = addresses("reply-to")
    items = [
        text_field("date"),
        text_field("subject"),
        from_,
        from_ if sender == NIL else sender,
        from_ if reply_to == NIL else reply_to,
        addresses("to"),
        addresses("cc"),
        addresses("bcc"),
        text_field("in-reply-to"),
        text_field("message-id"),
    ]
    return plist(items)


# ---------------------------------------------------------------------------
# BODY / BODYSTRUCTURE


def body_lines(data: bytes) -> int:
    """Number of text lines in *data*; an unterminated last line counts."""
    lines = data.count(b"\n")
    if data and not data.endswith(b"\n"):
        lines += 1
    return lines


def _field(part: MimePart, name: str) -> bytes | None:
    value = part.get(name)
    return None if value is None else value.strip(_WSP)


def _params(params: list[tuple[str, bytes]]) -> bytes:
    if not params:
        return NIL
    items = []
    for name, value in params:
        items.append(string(name.upper().encode("utf-8", "surrogateescape")))
        items.append(string(value))
    return plist(items)


def _body_params(part: MimePart) -> bytes:
    params = list(part.params)
    if part.maintype == "text" and part.param("charset") is None:
        params.insert(0, ("charset", b"us-ascii"))
    return _params(params)


def _disposition(part: MimePart) -> bytes:
    kind, params = part.header_params("content-disposition")
    if not kind:
        return NIL
    return b"(%s %s)" % (
        string(kind.upper().encode("utf-8", "surrogateescape")),
        _params(params),
    )


def _language(part: MimePart) -> bytes:
    value = part.get("content-language")
    if value is None:
        return NIL
    tags = [tag.strip(b" \t") for tag in value.split(b",")]
    tags = [tag for tag in tags if tag]
    return plist(string(tag) for tag in tags) if tags else NIL


def _extension_tail(part: MimePart) -> list[bytes]:
    return [
        _disposition(part),
        _language(part),
        nstring(_field(part, "content-location")),
    ]


def _body(part: MimePart, extensible: bool, empty_as_nil: bool) -> bytes:
    if part.is_multipart:
        children = b"".join(
            _body(child, extensible, empty_as_nil) for child in part.children
        )
        items = [
            children,
            string(part.subtype.upper().encode("utf-8", "surrogateescape")),
        ]
        if extensible:
            items.append(_params(part.params))
            items.extend(_extension_tail(part))
        return b"(" + b" ".join(items) + b")"

    maintype, subtype = part.maintype, part.subtype
    if maintype == "multipart" or (
        part.content_type == "message/rfc822" and not part.is_message
    ):
        maintype, subtype = "application", "octet-stream"  # nested too deeply
    encoding = _field(part, "content-transfer-encoding")
    items = [
        string(maintype.upper().encode("utf-8", "surrogateescape")),
        string(subtype.upper().encode("utf-8", "surrogateescape")),
        _body_params(part),
        nstring(_field(part, "content-id")),
        nstring(_field(part, "content-description")),
        string(encoding.upper() if encoding else b"7BIT"),
        b"%d" % part.body_size,
    ]
    if maintype == "text":
        items.append(b"%d" % body_lines(part.body))
    elif part.is_message:
        inner = part.message
        assert inner is not None
        items.append(envelope(inner, empty_as_nil))
        items.append(_body(inner.root, extensible, empty_as_nil))
        items.append(b"%d" % body_lines(part.body))
    if extensible:
        items.append(nstring(_field(part, "content-md5")))
        items.extend(_extension_tail(part))
    return b"(" + b" ".join(items) + b")"


def bodystructure(
    msg: ParsedMessage, extensible: bool = True, *, empty_as_nil: bool = False
) -> bytes:
    """BODYSTRUCTURE (*extensible* true) or BODY (false) of *msg*.

    *empty_as_nil* is passed on to the envelopes of encapsulated
    ``message/rfc822`` parts (see :func:`envelope`).
    """
    return _body(msg.root, extensible, empty_as_nil)


# ---------------------------------------------------------------------------
# BODY[section] and partial fetches


def _header_fields(
    msg: ParsedMessage, names: tuple[bytes, ...], exclude: bool
) -> bytes:
    wanted = {name.decode("ascii", "replace").strip().lower() for name in names}
    out = []
    for field in msg.fields:
        selected = field.name.lower() in wanted if field.name else False
        if selected != exclude:
            raw = field.raw
            if not raw.endswith(b"\n"):
                raw += b"\r\n"
            out.append(raw)
    out.append(b"\r\n")
    return b"".join(out)


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

    :raises ValueError: for an unknown *text* specifier.
    """
    spec = text.upper() if text is not None else None
    if spec is not None and spec not in _SECTION_TEXTS:
        raise ValueError(f"unknown section text specifier: {text!r}")
    target: ParsedMessage | None = msg
    if not path:
        if spec is None:
            return msg.raw
        if spec == "MIME":
            return b""
    else:
        part = msg.part(path)
        if part is None:
            return b""
        if spec is None:
            return part.body
        if spec == "MIME":
            return part.header
        target = part.message
    if target is None:
        return b""
    if spec == "HEADER":
        return target.header_bytes()
    if spec == "TEXT":
        return target.body_bytes()
    return _header_fields(target, fields, exclude=spec == "HEADER.FIELDS.NOT")


def partial(data: bytes, start: int, length: int | None) -> bytes:
    """``data<start.length>`` (RFC 3501 6.4.5): empty if *start* is past the end.

    :raises ValueError: for a negative *start* or *length*.
    """
    if start < 0 or (length is not None and length < 0):
        raise ValueError("partial start and length must not be negative")
    if length is None:
        return data[start:]
    return data[start : start + length]
