"""RFC 822/2045 lexical parsing of structured header values.

:class:`Lexer` reads atoms, quoted strings, comments, domains and MIME
tokens from one (unfolded) header value, the way Dovecot's
``rfc822-parser.c`` does, so that Content-Type parameters and addresses are
understood exactly as Dovecot understands them (imaptest's expected
responses encode that behaviour).  Every method returns ``1`` when more
input follows, ``0`` at the end of the input and ``-1`` for invalid input;
linear white space and comments after a token are skipped.

:func:`parse_content_type` and :func:`parse_parameters` build on it, the
latter merging RFC 2231 continuations (``name*0*=...; name*1=...``).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "ATEXT",
    "ContentType",
    "Lexer",
    "NUL_REPLACEMENT",
    "decode_rfc2231",
    "parse_content_type",
    "parse_language",
    "parse_parameters",
    "parse_token_value",
    "parse_transfer_encoding",
]

#: What NUL octets inside quoted strings and comments become (U+FFFD).
NUL_REPLACEMENT = "\ufffd".encode()

# RFC 5322 atext; the MIME token excludes the tspecials "/", "=" and "?" too.
ATEXT = frozenset(
    b"!#$%&'*+-/=?^_`{|}~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
) | frozenset(range(0x80, 0x100))
_TOKEN = ATEXT - frozenset(b"/=?")
_LWSP = frozenset(b" \t\r\n")
_DOT = 0x2E


class Lexer:
    """A cursor over one header value (see the module docstring)."""

    __slots__ = ("data", "pos", "end", "last_comment", "nul")

    def __init__(self, data: bytes, *, last_comment: bool = False, nul: bytes | None = None) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)
        #: The text of the last comment skipped, when asked for.
        self.last_comment: bytearray | None = bytearray() if last_comment else None
        self.nul = nul

    def peek(self) -> int:
        """The current octet, or 0 at the end (as C's terminating NUL)."""
        return self.data[self.pos] if self.pos < self.end else 0

    def more(self) -> int:
        """1 if input remains, else 0."""
        return 1 if self.pos < self.end else 0

    def skip_comment(self) -> int:
        """Skip a (nested) comment; the cursor is on its ``(``."""
        data, end = self.data, self.end
        keep = self.last_comment
        if keep is not None:
            keep.clear()
        level = 1
        self.pos += 1
        start = pos = self.pos
        while pos < end:
            c = data[pos]
            if c == 0x00:
                if keep is not None and self.nul is not None:
                    keep += data[start:pos] + self.nul
                    start = pos + 1
            elif c == 0x28:  # (
                level += 1
            elif c == 0x29:  # )
                level -= 1
                if level == 0:
                    if keep is not None:
                        keep += data[start:pos]
                    self.pos = pos + 1
                    return self.more()
            elif c == 0x0A:  # folding: drop the line end
                if keep is not None:
                    keep += data[start:pos].removesuffix(b"\r")
                    start = pos + 1
            elif c == 0x5C:  # quoted-pair
                pos += 1
                if pos >= end:
                    self.pos = pos
                    return -1
                if data[pos] in (0x0D, 0x0A, 0x00):
                    pos -= 1  # not a quoted-pair after all (obs-qp)
                else:
                    if keep is not None:
                        keep += data[start : pos - 1]
                    start = pos
            pos += 1
        self.pos = pos
        return -1  # missing ")"

    def skip_lwsp(self) -> int:
        """Skip white space and comments."""
        data, end = self.data, self.end
        while self.pos < end:
            c = data[self.pos]
            if c in _LWSP:
                self.pos += 1
            elif c == 0x28:
                if self.skip_comment() < 0:
                    return -1
            else:
                break
        return self.more()

    def _run(self, allowed: frozenset[int], out: bytearray) -> int:
        data, end = self.data, self.end
        start = pos = self.pos
        while pos < end and data[pos] in allowed:
            pos += 1
        out += data[start:pos]
        self.pos = pos
        return self.skip_lwsp() if pos < end else 0

    def atom(self, out: bytearray) -> int:
        """``1*atext``; at least one octet is required."""
        if self.pos >= self.end or self.data[self.pos] not in ATEXT:
            return -1
        return self._run(ATEXT, out)

    def mime_token(self, out: bytearray) -> int:
        """A MIME token (dots allowed); may be empty."""
        return self._run(_TOKEN_DOT, out)

    def _atom_or_dot(self, out: bytearray) -> int:
        return self._run(_ATEXT_DOT, out)

    def dot_atom(self, out: bytearray) -> int:
        """``atom *("." atom)``, white space allowed around the dots."""
        data, end = self.data, self.end
        if self.pos >= end or data[self.pos] not in ATEXT:
            return -1
        start = self.pos
        self.pos += 1
        while self.pos < end:
            if data[self.pos] in ATEXT:
                self.pos += 1
                continue
            if start == self.pos:
                return -1
            out += data[start : self.pos]
            ret = self.skip_lwsp()
            if ret <= 0:
                return ret
            if data[self.pos] != _DOT:
                return 1
            self.pos += 1
            out.append(_DOT)
            if self.skip_lwsp() <= 0:
                return -1
            start = self.pos
        out += data[start : self.pos]
        return 0

    def quoted_string(self, out: bytearray) -> int:
        """A quoted string; the cursor is on its opening quote."""
        data, end = self.data, self.end
        pos = self.pos + 1
        start = pos
        while pos < end:
            c = data[pos]
            if c == 0x00:
                if self.nul is not None:
                    out += data[start:pos] + self.nul
                    start = pos + 1
            elif c == 0x22:  # "
                out += data[start:pos]
                self.pos = pos + 1
                return self.skip_lwsp()
            elif c == 0x0A:
                out += data[start:pos].removesuffix(b"\r")
                start = pos + 1
            elif c == 0x5C:
                pos += 1
                if pos >= end:
                    self.pos = pos
                    return -1
                if data[pos] in (0x0D, 0x0A, 0x00):
                    pos -= 1
                else:
                    out += data[start : pos - 1]
                    start = pos
            pos += 1
        self.pos = pos
        return -1  # missing closing quote

    def phrase(self, out: bytearray) -> int:
        """``1*word`` (obs-phrase: dots allowed); words joined by one space."""
        if self.pos >= self.end:
            return 0
        if self.data[self.pos] == _DOT:
            return -1
        while True:
            if self.data[self.pos] == 0x22:
                ret = self.quoted_string(out)
            else:
                ret = self._atom_or_dot(out)
            if ret <= 0:
                return ret
            c = self.data[self.pos]
            if c not in ATEXT and c != 0x22 and c != _DOT:
                break
            out.append(0x20)
        return self.skip_lwsp()

    def _domain_literal(self, out: bytearray) -> int:
        data, end = self.data, self.end
        start = pos = self.pos
        pos += 1
        while pos < end:
            c = data[pos]
            if c == 0x00:
                if self.nul is not None:
                    out += data[start:pos] + self.nul
                    start = pos + 1
            elif c == 0x5B:  # [
                self.pos = pos
                return -1
            elif c == 0x5D:  # ]
                out += data[start : pos + 1]
                self.pos = pos + 1
                return self.skip_lwsp()
            elif c == 0x0A:
                out += data[start:pos].removesuffix(b"\r")
                start = pos + 1
            elif c == 0x5C:  # the backslash itself is kept
                pos += 1
                if pos >= end:
                    self.pos = pos
                    return -1
                if data[pos] in (0x0D, 0x0A, 0x00):
                    out += data[start:pos]
                    start = pos
                    pos -= 1
            pos += 1
        self.pos = pos
        return -1  # missing "]"

    def domain(self, out: bytearray) -> int:
        """``"@" (dot-atom / domain-literal)``; the cursor is on the ``@``."""
        self.pos += 1
        if self.skip_lwsp() <= 0:
            return -1
        if self.data[self.pos] == 0x5B:
            return self._domain_literal(out)
        return self.dot_atom(out)


_TOKEN_DOT = _TOKEN | {_DOT}
_ATEXT_DOT = ATEXT | {_DOT}


class ContentType(NamedTuple):
    """A parsed Content-Type value.

    ``maintype`` and ``subtype`` are as written (case kept; ``subtype`` is
    ``b""`` when there is no ``/``); ``params`` are the parameters in
    Dovecot's order, RFC 2231 continuations merged (see
    :func:`parse_parameters`); ``valid`` is false when the type itself did
    not parse, in which case no parameters are read.
    """

    maintype: bytes
    subtype: bytes
    params: tuple[tuple[bytes, bytes], ...]
    valid: bool


def _content_type(lex: Lexer, out: bytearray) -> int:
    if lex.skip_lwsp() <= 0:
        return -1
    mark = len(out)
    if lex.mime_token(out) <= 0 or len(out) == mark:
        return -1  # note: a lone "text" is kept, as Dovecot keeps it
    if lex.peek() != 0x2F:  # /
        del out[mark:]
        return -1
    lex.pos += 1
    if lex.skip_lwsp() <= 0:
        del out[mark:]
        return -1
    out.append(0x2F)
    sub = len(out)
    ret = lex.mime_token(out)
    if ret < 0 or len(out) == sub or (lex.pos != lex.end and lex.peek() != 0x3B):
        del out[mark:]
        return -1
    return ret


def parse_content_type(value: bytes) -> ContentType:
    """Parse a Content-Type field value (unfolded or not)."""
    lex = Lexer(value)
    lex.skip_lwsp()
    out = bytearray()
    ret = _content_type(lex, out)
    maintype, _, subtype = bytes(out).partition(b"/")
    if ret < 0:
        return ContentType(maintype, subtype, (), False)
    params, _ = parse_parameters(lex)
    return ContentType(maintype, subtype, tuple(params), True)


def parse_token_value(value: bytes) -> tuple[bytes | None, tuple[tuple[bytes, bytes], ...]]:
    """``token *(";" parameter)`` as in Content-Disposition: the token (None
    if it does not parse) and its parameters."""
    lex = Lexer(value)
    lex.skip_lwsp()
    out = bytearray()
    if lex.mime_token(out) < 0:
        return None, ()
    params, _ = parse_parameters(lex)
    return bytes(out), tuple(params)


def parse_transfer_encoding(value: bytes) -> bytes | None:
    """The Content-Transfer-Encoding token, or None unless the value is one
    token (comments aside)."""
    lex = Lexer(value)
    lex.skip_lwsp()
    out = bytearray()
    if lex.mime_token(out) < 0 or lex.skip_lwsp() != 0 or not out:
        return None
    return bytes(out)


def parse_language(value: bytes) -> list[bytes]:
    """The language tags of a Content-Language value (atoms split at commas)."""
    lex = Lexer(value)
    lex.skip_lwsp()
    tags: list[bytes] = []
    for _ in range(len(value) + 1):
        out = bytearray()
        if lex.atom(out) < 0:
            break
        tags.append(bytes(out))
        if lex.pos >= lex.end or lex.peek() != 0x2C:  # ,
            break
        lex.pos += 1
        lex.skip_lwsp()
    return tags


def _parameter(lex: Lexer, value: bytearray) -> tuple[int, bytes]:
    """One ``";" attribute "=" value``; ``(status, attribute)``."""
    del value[:]
    if lex.pos >= lex.end:
        return 0, b""
    if lex.peek() != 0x3B:  # ;
        return -1, b""
    lex.pos += 1
    if lex.skip_lwsp() <= 0:
        return -1, b""
    key = bytearray()
    if lex.mime_token(key) <= 0:
        return -1, b""
    if lex.peek() != 0x3D:  # =
        return -1, b""
    lex.pos += 1
    ret = lex.skip_lwsp()
    if ret <= 0:
        pass  # no value
    elif lex.peek() == 0x22:
        ret = lex.quoted_string(value)
    elif lex.peek() == 0x3D:
        # Broken input such as name==?utf-8?b?...?=: take it up to a separator.
        data, pos = lex.data, lex.pos
        while pos < lex.end and data[pos] not in b"; \t\r\n":
            pos += 1
        value += data[lex.pos : pos]
        lex.pos = pos
    else:
        ret = lex.mime_token(value)
    return (-1 if ret < 0 else 1), bytes(key)


class _Section(NamedTuple):
    key: bytes
    number: int
    extended: bool
    value: bytes


def _split_rfc2231(key: bytes, last_index: int) -> tuple[_Section | None, int]:
    """``name*N*`` -> a section of *name*, or None for a plain parameter.

    A bare ``name*`` reuses the previous section's index, as Dovecot does.
    """
    star = key.find(b"*")
    if star < 0:
        return None, last_index
    pos = star
    index = last_index
    if pos + 1 < len(key):
        pos += 1
        index = 0
        while pos < len(key) and 0x30 <= key[pos] <= 0x39:
            index = index * 10 + key[pos] - 0x30
            pos += 1
    extended = pos < len(key) and key[pos] == 0x2A
    if extended:
        pos += 1
    if pos < len(key):
        return None, index
    return _Section(key[:star], index, extended, b""), index


def _merge_rfc2231(sections: list[_Section]) -> list[tuple[bytes, bytes]]:
    """Join continuations; keys with missing indexes are kept as written."""
    sections.sort(key=lambda s: (s.key, s.number))
    out: list[tuple[bytes, bytes]] = []
    i = 0
    while i < len(sections):
        first = sections[i]
        j = i
        while j < len(sections) and sections[j].key.lower() == first.key.lower():
            j += 1
        group = sections[i:j]
        extended = any(s.extended for s in group)
        if any(s.number != n for n, s in enumerate(group)):
            for s in group:
                suffix = b"*%d*" if s.extended else b"*%d"
                out.append((s.key + suffix % s.number, s.value))
        else:
            value = b"''" if extended and not first.extended else b""
            for s in group:
                value += s.value.replace(b"%", b"%25") if extended and not s.extended else s.value
            out.append((first.key + (b"*" if extended else b""), value))
        i = j
    return out


def parse_parameters(lex: Lexer) -> tuple[list[tuple[bytes, bytes]], bool]:
    """Read ``*(";" parameter)`` from *lex*: ``(params, broken)``.

    Plain parameters come first, in order; RFC 2231 sections follow, merged
    per name (``name*`` when any section is extended, with its value still
    percent-encoded as ``charset'lang'text``).  Broken parameters are
    skipped, the rest is kept.
    """
    saved_nul = lex.nul
    lex.nul = NUL_REPLACEMENT
    plain: list[tuple[bytes, bytes]] = []
    sections: list[_Section] = []
    broken = False
    value = bytearray()
    last_index = 0
    for _ in range(lex.end + 1):  # each round consumes input
        ret, key = _parameter(lex, value)
        if ret == 0:
            break
        if ret < 0:
            broken = True
            if lex.pos >= lex.end:
                break
            lex.pos += 1
            continue
        section, last_index = _split_rfc2231(key, last_index)
        if section is None:
            plain.append((key, bytes(value)))
        else:
            sections.append(section._replace(value=bytes(value)))
    lex.nul = saved_nul
    if sections:
        plain.extend(_merge_rfc2231(sections))
    return plain, broken


def decode_rfc2231(value: bytes) -> bytes:
    """The octets of an extended (``name*``) value ``charset'lang'%XX...``,
    converted to UTF-8 when the charset is known (else left as they are)."""
    charset, sep, rest = value.partition(b"'")
    if not sep:
        return _unpercent(value)
    _, sep, text = rest.partition(b"'")
    if not sep:
        text = rest
    raw = _unpercent(text)
    name = charset.decode("ascii", "replace").strip()
    if not name:
        return raw
    try:
        return raw.decode(name, "replace").encode("utf-8")
    except LookupError:
        return raw


def _unpercent(text: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == 0x25 and _is_hex(text[i + 1 : i + 3]):
            out.append(int(text[i + 1 : i + 3], 16))
            i += 3
            continue
        out.append(c)
        i += 1
    return bytes(out)


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)
