"""Commands and syntax of the extensions in :mod:`exchmail.imap.extensions`.

- APPEND's full grammar (RFC 3501, 3502, 3516, 4469)::

      append = "APPEND" SP mailbox 1*append-message   ; >1 only with MULTIAPPEND
      append-message = [SP flag-list] [SP date-time] SP append-data
      append-data = literal / literal8                ; literal8 only with BINARY
                  / "CATENATE" SP "(" cat-part *(SP cat-part) ")"   ; CATENATE
      cat-part = "TEXT" SP (literal / literal8) / "URL" SP astring

  One message given as a plain literal is the RFC 3501 :class:`Append`;
  everything else is an :class:`ExtendedAppend`.
- ``ENABLE capability...`` (RFC 5161) and ``COMPRESS algorithm`` (RFC 4978).

The parse functions take the parser's ``Arguments`` (see
:mod:`exchmail.imap.commands`, which registers them) and raise
:class:`~exchmail.imap.parsing.ParseError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from exchmail.imap.commands_args import date_time, flag_list
from exchmail.imap.commands_types import Append, Command
from exchmail.imap.parsing import Atom, Literal8, ParseError, Spool, Token, as_bytes

if TYPE_CHECKING:
    from exchmail.imap.commands import Arguments

#: A string that is followed by more arguments and could be a date-time is
#: one (and must be a valid one): short and without a line end, which every
#: real message has.  (Quoted strings and small literals are both ``bytes``.)
MAX_DATE_TIME = 64


# -- types -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CatenateText:
    """Literal octets of a new message (APPEND's literal, or CATENATE's TEXT).

    ``binary``: sent as ``literal8`` (RFC 3516); ``data`` may then hold NUL.
    """

    data: bytes | Spool
    binary: bool = False


@dataclass(frozen=True, slots=True)
class CatenateUrl:
    """CATENATE's ``URL``: an IMAP URL of a message or part (RFC 4469 §3), raw."""

    url: bytes


AppendPart = CatenateText | CatenateUrl


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of an APPEND: its flags, internal date and parts, in order."""

    flags: frozenset[str]
    internal_date: float | None
    parts: tuple[AppendPart, ...]


@dataclass(frozen=True, slots=True)
class ExtendedAppend(Command):
    """APPEND with several messages (MULTIAPPEND), CATENATE or literal8: every
    message is stored, or none (RFC 3502 §6.3.11)."""

    NAME: ClassVar[bytes] = b"APPEND"
    mailbox: bytes
    messages: tuple[AppendMessage, ...]


@dataclass(frozen=True, slots=True)
class Enable(Command):
    """ENABLE capability... (RFC 5161): upper-case capability names."""

    NAME: ClassVar[bytes] = b"ENABLE"
    capabilities: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Compress(Command):
    """COMPRESS algorithm (RFC 4978): the upper-case algorithm name."""

    NAME: ClassVar[bytes] = b"COMPRESS"
    algorithm: bytes


# -- APPEND ---------------------------------------------------------------------------
def parse_append(args: Arguments) -> Command:
    """APPEND in every form the profile's extensions allow (see the module docstring)."""
    tokens = list(args.tokens)
    if len(tokens) < 2:
        raise ParseError("missing argument")
    mailbox = as_bytes(tokens[0])
    extensions = args.options.extensions
    messages: list[AppendMessage] = []
    pos = 1
    plain: bytes | Spool | None = None
    while pos < len(tokens):
        if messages and "MULTIAPPEND" not in extensions:
            raise ParseError("APPEND takes [(flags)] [date-time] before the message")
        flags, when, pos = _message_options(tokens, pos)
        if pos >= len(tokens):
            raise ParseError("APPEND needs the message as a literal")
        catenated = isinstance(tokens[pos], Atom)
        parts, pos = _message_data(tokens, pos, extensions)
        first = parts[0]
        if not messages and not catenated and isinstance(first, CatenateText) and not first.binary:
            plain = first.data
        messages.append(AppendMessage(flags, when, parts))
    if plain is not None and len(messages) == 1:
        only = messages[0]
        return Append(args.tag, mailbox, only.flags, only.internal_date, plain)
    return ExtendedAppend(args.tag, mailbox, tuple(messages))


def _message_options(tokens: list[Token], pos: int) -> tuple[frozenset[str], float | None, int]:
    """``[flag-list] [date-time]`` at ``pos``: flags, date and the position after them."""
    flags: frozenset[str] = frozenset()
    if isinstance(tokens[pos], list):
        flags = flag_list(tokens[pos])
        if "\\Recent" in flags:
            raise ParseError("\\Recent cannot be set")
        pos += 1
    when = None
    if pos + 1 < len(tokens) and _looks_like_date(tokens[pos]):
        when = date_time(tokens[pos])
        pos += 1
    return flags, when, pos


def _looks_like_date(token: Token) -> bool:
    if isinstance(token, Atom):  # a date-time is quoted; an atom here is a bad one
        return token.upper() != b"CATENATE"
    return isinstance(token, bytes) and len(token) <= MAX_DATE_TIME and b"\n" not in token


def _message_data(
    tokens: list[Token], pos: int, extensions: frozenset[str]
) -> tuple[tuple[AppendPart, ...], int]:
    """The message at ``pos`` (literal, literal8 or CATENATE list) and the position after it."""
    token = tokens[pos]
    if isinstance(token, Atom):
        if token.upper() != b"CATENATE" or "CATENATE" not in extensions:
            raise ParseError("APPEND needs the message as a literal")
        if pos + 1 >= len(tokens) or not isinstance(tokens[pos + 1], list):
            raise ParseError("CATENATE needs a parenthesised list of TEXT and URL parts")
        return _catenate_parts(tokens[pos + 1], extensions), pos + 2
    if isinstance(token, list) and pos == len(tokens) - 1:
        raise ParseError("APPEND needs the message as a literal")
    return (_text(token, extensions),), pos + 1


def _text(token: Token, extensions: frozenset[str]) -> CatenateText:
    """A message literal: bytes, a spooled literal, or (with BINARY) a literal8."""
    if isinstance(token, Literal8):
        if "BINARY" not in extensions:
            raise ParseError("literal8 (~{n}) needs the BINARY extension")
        return CatenateText(token.data, binary=True)
    if isinstance(token, list):
        raise ParseError("APPEND takes [(flags)] [date-time] before the message")
    if isinstance(token, Atom):
        raise ParseError("APPEND needs the message as a literal")
    return CatenateText(token)


def _catenate_parts(items: Token, extensions: frozenset[str]) -> tuple[AppendPart, ...]:
    assert isinstance(items, list)
    if not items:
        raise ParseError("CATENATE needs at least one part")
    if len(items) % 2:
        raise ParseError("CATENATE parts are TEXT literal or URL url pairs")
    parts: list[AppendPart] = []
    for kind, value in zip(items[::2], items[1::2], strict=True):
        name = kind.upper() if isinstance(kind, Atom) else b""
        if name == b"TEXT":
            parts.append(_text(value, extensions))
        elif name == b"URL":
            if isinstance(value, (list, Literal8)):
                raise ParseError("CATENATE URL needs a string")
            parts.append(CatenateUrl(as_bytes(value)))
        else:
            raise ParseError("CATENATE parts are TEXT literal or URL url pairs")
    return tuple(parts)


# -- ENABLE / COMPRESS ---------------------------------------------------------------------
def parse_enable(args: Arguments) -> Command:
    """ENABLE 1*(SP capability): atoms, upper-cased."""
    if not args.tokens:
        raise ParseError("ENABLE needs at least one capability name")
    names = []
    for token in args.tokens:
        if not isinstance(token, Atom):
            raise ParseError("ENABLE takes capability names (atoms)")
        names.append(bytes(token).upper())
    return Enable(args.tag, tuple(names))


def parse_compress(args: Arguments) -> Command:
    """COMPRESS algorithm (an atom)."""
    args.expect(1)
    token = args.tokens[0]
    if not isinstance(token, Atom):
        raise ParseError("COMPRESS takes an algorithm name")
    return Compress(args.tag, bytes(token).upper())
