"""IMAP command tokens: bytes in, values out, no protocol state.

A command arrives as *segments*: the text of each line (without CRLF) and
the literals between them.  :func:`tokenize` turns the segments into
tokens:

- :class:`Atom` (a ``bytes`` subclass) for atoms, including ``NIL``; with
  ``sections``, a fetch attribute's ``[section]<partial>`` stays part of
  its atom (spaces and parentheses inside the brackets are kept);
- ``bytes`` for quoted strings and small literals;
- :class:`Spool` (the session reader's
  :class:`~exchmail.session.reader.SpooledLiteral`) for literals kept in the
  command's temporary file;
- ``list`` for parenthesised lists, nested at most :data:`MAX_DEPTH` deep;
- :class:`Literal8` for a literal announced as ``~{n}`` (RFC 3516); only
  the arguments that take one (APPEND's message, CATENATE's TEXT) accept
  it, everywhere else it is a syntax error.

Whitespace between tokens may be any run of SP and TAB (MS-STANXIMAP
2.1.7 / V0003) when ``liberal_whitespace`` is true; quoted strings and
literals are never touched by that rule.

``[`` and ``}`` are ordinary atom characters and ``]`` may appear in an
astring (RFC 3501 section 9: ATOM-CHAR, ASTRING-CHAR); brackets pair up
only in a fetch attribute (``BODY[...]``, ``BODY.PEEK[...]``,
``BINARY[...]``, ``BINARY.PEEK[...]``, ``BINARY.SIZE[...]``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Union

from exchmail.session.reader import LiteralSegment
from exchmail.session.reader import SpooledLiteral as Spool

LITERAL_AT_END = re.compile(rb"\{(\d{1,20})(\+?)\}$")
#: Deepest nesting of parentheses (and, in SEARCH, of parentheses, NOT and
#: OR together) that any command may use, in every profile.
MAX_DEPTH = 32
#: Most literals one command may carry.
MAX_LITERALS = 100
#: Atoms that take a bracketed section when ``sections`` is on (upper case).
SECTION_ATOMS = frozenset({b"BODY", b"BODY.PEEK", b"BINARY", b"BINARY.PEEK", b"BINARY.SIZE"})
# An atom runs up to SP, TAB and the other CTLs, DEL, "(", ")" or '"'.
_ATOM_RUN = re.compile(rb'[^ ()"\x00-\x1f\x7f]*')
# A quoted string's body: up to the closing quote, a bad escape or the end.
_QUOTED_BODY = re.compile(rb'[^"\\]*(?:\\["\\][^"\\]*)*')
_ESCAPE = re.compile(rb'\\(["\\])')


class ParseError(Exception):
    """The command is malformed; the message is shown to the client.

    ``status`` is the answer (``"BAD"`` unless a limit calls for ``"NO"``)
    and ``code`` an optional response code such as ``b"LIMIT"``.
    """

    def __init__(
        self, message: str, *, code: bytes | None = None, status: Literal["BAD", "NO"] = "BAD"
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class Atom(bytes):
    """An unquoted atom (``NIL`` as an atom differs from the string ``"NIL"``)."""


@dataclass(frozen=True, slots=True)
class Literal8:
    """A ``literal8`` (``~{n}``, RFC 3516): octets that may hold NUL.

    It is not a string: :func:`as_bytes` refuses it, so it is BAD wherever
    the grammar has no place for it.
    """

    data: bytes | Spool

    @property
    def size(self) -> int:
        """The literal's length in octets."""
        return len(self.data)


Token = Union[Atom, bytes, Spool, Literal8, list]  # noqa: UP007 - a runtime alias, 3.10-compatible


def skip_space(text: bytes, pos: int, liberal: bool) -> int:
    """The position after the separator at ``pos``: any run of SP/TAB when
    ``liberal``, else at most one SP."""
    if liberal:
        while pos < len(text) and text[pos] in b" \t":
            pos += 1
    elif pos < len(text) and text[pos] == 0x20:
        pos += 1
    return pos


def _quoted(text: bytes, pos: int) -> tuple[bytes, int]:
    """Parse a quoted string starting after the opening quote."""
    body = _QUOTED_BODY.match(text, pos)
    assert body is not None  # the pattern matches the empty string
    end = body.end()
    if end >= len(text):
        raise ParseError("unterminated quoted string")
    if text[end] == 0x5C:  # a backslash not followed by \\ or \": only those escapes exist
        raise ParseError("invalid escape in quoted string")
    value = body.group()
    if 0x5C in value:
        value = _ESCAPE.sub(_unescape, value)
    return value, end + 1


def _unescape(match: re.Match[bytes]) -> bytes:
    return match.group(1)


def scan_atom(text: bytes, pos: int, sections: bool = False) -> tuple[Atom, int]:
    """The atom starting at ``pos`` and the position after it.

    With ``sections``, a ``[`` right after one of :data:`SECTION_ATOMS`
    runs to the next ``]`` (a fetch attribute's section); otherwise
    brackets are ordinary atom characters.
    """
    start = pos
    pos = _atom_end(text, pos)
    if sections:
        bracket = text.find(b"[", start, pos)
        if bracket >= 0 and text[start:bracket].upper() in SECTION_ATOMS:
            close = text.find(b"]", bracket)
            if close < 0:
                raise ParseError("unbalanced '[' in fetch attribute")
            pos = _atom_end(text, close + 1)
    if pos == start:
        raise ParseError(f"unexpected character {text[pos : pos + 1]!r}")
    return Atom(text[start:pos]), pos


def _atom_end(text: bytes, pos: int) -> int:
    run = _ATOM_RUN.match(text, pos)
    assert run is not None  # the pattern matches the empty string
    return run.end()


def tokenize(
    segments: list[bytes | LiteralSegment],
    liberal_whitespace: bool = True,
    *,
    sections: bool = True,
    max_depth: int = MAX_DEPTH,
    max_literals: int = MAX_LITERALS,
    utf8: bool = False,
) -> list[Token]:
    """Turn a command's segments into a token tree (see the module docstring).

    Raises :class:`ParseError` for malformed input, lists nested deeper than
    ``max_depth`` and more than ``max_literals`` literals.  With ``utf8``
    (the client enabled UTF8=ACCEPT, RFC 6855 §3) a quoted string with
    8-bit octets must be valid UTF-8.  The work is linear in the input and
    never recursive.
    """
    literal_count = sum(isinstance(seg, LiteralSegment) for seg in segments)
    if literal_count > max_literals:
        raise ParseError(f"too many literals in one command (at most {max_literals})")
    root: list[Token] = []
    stack: list[list[Token]] = [root]
    literals = iter(seg for seg in segments if isinstance(seg, LiteralSegment))
    for segment in segments:
        if isinstance(segment, LiteralSegment):
            continue
        text, pos = segment, 0
        literal_match = LITERAL_AT_END.search(text)
        binary = False
        if literal_match:
            text = text[: literal_match.start()]
            binary = _ends_with_literal8_marker(text)
            if binary:
                text = text[:-1]
        while True:
            pos = skip_space(text, pos, liberal_whitespace)
            if pos >= len(text):
                break
            char = text[pos]
            if char == 0x28:
                if len(stack) > max_depth:
                    raise ParseError(f"parentheses nested too deeply (at most {max_depth} levels)")
                new: list[Token] = []
                stack[-1].append(new)
                stack.append(new)
                pos += 1
            elif char == 0x29:
                if len(stack) == 1:
                    raise ParseError("unbalanced ')'")
                stack.pop()
                pos += 1
            elif char == 0x22:
                value, pos = _quoted(text, pos + 1)
                if utf8 and not value.isascii():
                    _check_utf8(value)
                stack[-1].append(value)
            else:
                atom, pos = scan_atom(text, pos, sections)
                stack[-1].append(atom)
        if literal_match:
            literal = next(literals, None)
            if literal is None:
                raise ParseError("literal data missing")
            stack[-1].append(Literal8(literal.data) if binary else literal.data)
    if len(stack) != 1:
        raise ParseError("unbalanced '('")
    return root


def _ends_with_literal8_marker(text: bytes) -> bool:
    """Whether the text before a ``{n}`` announcement ends in the ``~`` of
    ``~{n}``, standing alone (after a separator or ``(``, or at the start)."""
    return text.endswith(b"~") and (len(text) == 1 or text[-2:-1] in (b" ", b"\t", b"("))


def _check_utf8(value: bytes) -> None:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("quoted string is not valid UTF-8") from None


def literal_request(line: bytes) -> tuple[int, bool] | None:
    """``(size, synchronizing)`` if ``line`` ends with a literal announcement."""
    match = LITERAL_AT_END.search(line)
    if not match:
        return None
    return int(match.group(1)), match.group(2) != b"+"


# -- sequence sets ----------------------------------------------------------
_SEQ_NUMBER = rb"(?:\*|[1-9][0-9]{0,9})"
_SEQ_RANGE = re.compile(rb"(" + _SEQ_NUMBER + rb")(?::(" + _SEQ_NUMBER + rb"))?")
_SEQ_SET = re.compile(
    _SEQ_NUMBER + rb"(?::" + _SEQ_NUMBER + rb")?(?:," + _SEQ_NUMBER + rb"(?::" + _SEQ_NUMBER + rb")?)*"
)
Range = tuple[int | None, int | None]


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A parsed sequence-set (RFC 3501 section 9): ranges as written, with
    ``None`` for ``*``; a single number ``n`` is the range ``(n, n)``."""

    ranges: tuple[Range, ...]

    @classmethod
    def parse(cls, text: bytes) -> SequenceSet:
        """Parse ``1:3,5,7:*``; :class:`ParseError` for anything that is not
        a sequence-set (zero, empty ranges, junk, numbers above 2**32-1)."""
        return cls(tuple(parse_sequence_set(text)))

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """The ranges with ``*`` replaced by ``largest``, each ordered low..high."""
        return resolve_sequence_set(list(self.ranges), largest)

    def __bytes__(self) -> bytes:
        def number(value: int | None) -> bytes:
            return b"*" if value is None else b"%d" % value

        return b",".join(
            number(low) if low == high else number(low) + b":" + number(high) for low, high in self.ranges
        )


def parse_sequence_set(text: bytes) -> list[Range]:
    """Parse ``1:3,5,7:*`` into ranges; ``None`` stands for ``*``.

    Raises :class:`ParseError` for anything that is not a valid
    sequence-set (zero, empty ranges, junk, numbers above 2**32-1).
    """
    if not text:
        raise ParseError("empty sequence set")
    if not _SEQ_SET.fullmatch(text):
        raise ParseError(f"invalid sequence set {text[:50]!r}")
    ranges: list[Range] = []
    for low, high in _SEQ_RANGE.findall(text):
        first = None if low == b"*" else int(low)
        last = first if not high else None if high == b"*" else int(high)
        if (first or 0) > 0xFFFFFFFF or (last or 0) > 0xFFFFFFFF:
            raise ParseError("sequence number out of range")
        ranges.append((first, last))
    return ranges


def resolve_sequence_set(ranges: list[Range], largest: int) -> list[tuple[int, int]]:
    """Replace ``*`` by ``largest`` and order each range low..high."""
    resolved = []
    for low, high in ranges:
        a = largest if low is None else low
        b = largest if high is None else high
        resolved.append((min(a, b), max(a, b)))
    return resolved


# -- argument helpers ---------------------------------------------------------
MAX_STRING_ARGUMENT = 64 * 1024


def as_bytes(token: Token) -> bytes:
    """The value of an atom, string or (bounded) literal argument."""
    if isinstance(token, Spool):
        if token.size > MAX_STRING_ARGUMENT:
            raise ParseError("literal too large for this argument")
        return token.read_all()
    if isinstance(token, list):
        raise ParseError("expected a string, got a list")
    if isinstance(token, Literal8):
        raise ParseError("literal8 (~{n}) is not allowed here")
    return bytes(token)


def as_atom(token: Token) -> bytes:
    """The upper-cased value of an atom argument."""
    if not isinstance(token, Atom):
        raise ParseError("expected an atom")
    return bytes(token).upper()


def as_number(token: Token) -> int:
    """A non-negative 32-bit number argument."""
    if not isinstance(token, Atom) or not token.isdigit() or len(token) > 10:
        raise ParseError("expected a number")
    value = int(token)
    if value > 0xFFFFFFFF:
        raise ParseError("number out of range")
    return value


def expect_count(args: list[Token], low: int, high: int | None = None) -> None:
    """Raise :class:`ParseError` unless ``low <= len(args) <= high``."""
    high = low if high is None else high
    if len(args) < low:
        raise ParseError("missing argument")
    if len(args) > high:
        raise ParseError("too many arguments")
