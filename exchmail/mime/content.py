"""The Content-* fields of a MIME part, as IMAP's BODYSTRUCTURE reports them."""

from __future__ import annotations

from typing import NamedTuple

from exchmail.mime.headers import HeaderField
from exchmail.mime.rfc822 import (
    ContentType,
    decode_rfc2231,
    parse_content_type,
    parse_language,
    parse_token_value,
    parse_transfer_encoding,
)

__all__ = ["NO_CONTENT", "ContentFields", "Params", "content_fields", "decoded_params"]

Params = tuple[tuple[bytes, bytes], ...]


class ContentFields(NamedTuple):
    """The Content-* fields of a part as BODYSTRUCTURE reports them.

    All values are raw octets as written (unfolded); absent fields are
    None.  Only the first occurrence of each field counts (Content-
    Disposition: the first one with parameters).  For a part that is not
    MIME (no MIME-Version nor Content-Type) everything is None.
    """

    content_type: ContentType | None
    encoding: bytes | None
    id: bytes | None
    description: bytes | None
    md5: bytes | None
    disposition: tuple[bytes, Params] | None
    language: tuple[bytes, ...] | None
    location: bytes | None


NO_CONTENT = ContentFields(None, None, None, None, None, None, None, None)


def content_fields(fields: list[HeaderField]) -> ContentFields:
    """The :class:`ContentFields` of a header (its parsed *fields*)."""
    values: dict[str, object] = {}
    for field in fields:
        name = field.name.lower()
        if not name.startswith("content-"):
            continue
        key = name[8:]
        if key == "disposition":
            old = values.get(key)
            if old is None or not old[1]:  # type: ignore[index]
                token, params = parse_token_value(field.value)
                if token is not None:
                    values[key] = (token, params)
            continue
        if key not in _CONTENT_KEYS or key in values:
            continue
        if key == "type":
            values[key] = parse_content_type(field.value)
        elif key == "transfer-encoding":
            values[key] = parse_transfer_encoding(field.value)
        elif key == "language":
            values[key] = tuple(parse_language(field.value)) or None
        else:
            values[key] = field.value
    return ContentFields(
        values.get("type"),  # type: ignore[arg-type]
        values.get("transfer-encoding"),  # type: ignore[arg-type]
        values.get("id"),  # type: ignore[arg-type]
        values.get("description"),  # type: ignore[arg-type]
        values.get("md5"),  # type: ignore[arg-type]
        values.get("disposition"),  # type: ignore[arg-type]
        values.get("language"),  # type: ignore[arg-type]
        values.get("location"),  # type: ignore[arg-type]
    )


_CONTENT_KEYS = frozenset({"type", "transfer-encoding", "id", "description", "md5", "language", "location"})


def decoded_params(params: Params) -> list[tuple[str, bytes]]:
    """``(lower-case name, value)``; RFC 2231 ``name*`` values decoded to
    UTF-8 and listed under ``name``, before a plain ``name`` if both exist."""
    extended: list[tuple[str, bytes]] = []
    plain: list[tuple[str, bytes]] = []
    for key, value in params:
        name = key.decode("ascii", "replace").lower()
        if name.endswith("*"):
            extended.append((name[:-1], decode_rfc2231(value)))
        else:
            plain.append((name, value))
    return extended + plain
