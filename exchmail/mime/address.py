"""Address headers (RFC 5322 3.4, with its obsolete syntax) as IMAP sees them.

:func:`parse_addresses` turns the value of From, To, Cc and the like into
:class:`Address` items the way Dovecot's ``message-address.c`` does, which
is what imaptest's ENVELOPE expectations encode: source routes are kept
(``<@route:user@domain>``), a comment after a bare address becomes its
display name, group syntax yields start and end markers, and (with
*fill_missing*) parts that are missing are filled with Dovecot's
``MISSING_MAILBOX`` / ``MISSING_DOMAIN`` placeholders rather than dropped.

:func:`format_addresses` writes a parsed list back in canonical form
(``Name <local@domain>, group: a@b;``); SEARCH FROM/TO/CC/BCC match against
that text.
"""

from __future__ import annotations

from typing import NamedTuple

from exchmail.mime.rfc822 import ATEXT, NUL_REPLACEMENT, Lexer

__all__ = ["Address", "format_addresses", "parse_addresses"]

_MISSING_MAILBOX = b"MISSING_MAILBOX"
_MISSING_DOMAIN = b"MISSING_DOMAIN"
_INVALID_ROUTE = b"INVALID_ROUTE"
_SYNTAX_ERROR = b"SYNTAX_ERROR"


class Address(NamedTuple):
    """One parsed address (all values raw octets, encoded-words kept).

    A group is a start marker ``Address(None, None, b"name", None)``, its
    members, and an end marker with every field None.  ``route`` keeps its
    ``@`` signs (``b"@a,@b"``).
    """

    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    domain: bytes | None
    invalid: bool = False

    @property
    def is_group_start(self) -> bool:
        """True for the marker that opens a group (``mailbox`` is its name)."""
        return self.domain is None and self.mailbox is not None

    @property
    def is_group_end(self) -> bool:
        """True for the marker that closes a group."""
        return self.domain is None and self.mailbox is None


class _Parser:
    """One pass over a header value; the methods follow RFC 5322's grammar."""

    def __init__(self, value: bytes, fill_missing: bool) -> None:
        self.lex = Lexer(value, last_comment=True, nul=NUL_REPLACEMENT)
        self.fill = fill_missing
        self.text = bytearray()  # scratch buffer shared like Dovecot's ctx->str
        self.out: list[Address] = []
        self._reset()

    def _reset(self) -> None:
        self.name: bytes | None = None
        self.route: bytes | None = None
        self.mailbox: bytes | None = None
        self.domain: bytes | None = None
        self.invalid = False

    def _c(self) -> int:
        return self.lex.peek()

    def _at_end(self) -> bool:
        return self.lex.pos >= self.lex.end

    def add(self) -> None:
        self.out.append(Address(self.name, self.route, self.mailbox, self.domain, self.invalid))
        self._reset()

    def add_fixed(self) -> None:
        if self.mailbox is None:
            self.mailbox = _MISSING_MAILBOX if self.fill else b""
            self.invalid = True
        if not self.domain:
            self.domain = _MISSING_DOMAIN if self.fill else b""
            self.invalid = True
        self.add()

    def _nonstrict_dot_atom(self) -> int:
        """A local part that tolerates leading, trailing and doubled dots."""
        lex, text = self.lex, self.text
        ret = -1
        for _ in range(lex.end + 1):
            while self._c() == 0x2E:
                text.append(0x2E)
                lex.pos += 1
                if self._at_end():
                    return 0
                ret = 1
            if self._c() == 0x40:  # @
                break
            ret = lex.atom(text)
            if not (ret > 0 and self._c() == 0x2E):
                break
        return ret

    def local_part(self) -> int:
        del self.text[:]
        if self._c() == 0x22:
            ret = self.lex.quoted_string(self.text)
        else:
            ret = self._nonstrict_dot_atom()
        if ret < 0:
            return -1
        self.mailbox = bytes(self.text)
        return ret

    def domain_part(self) -> int:
        del self.text[:]
        ret = self.lex.domain(self.text)
        if ret < 0:
            return -1
        self.domain = bytes(self.text)
        return ret

    def domain_list(self) -> int:
        """obs-route: ``"@" domain *("," ["@" domain])``."""
        lex, text = self.lex, self.text
        del text[:]
        for _ in range(lex.end + 1):
            if self._at_end():
                return 0
            if self._c() != 0x40:
                break
            if text:
                text.append(0x2C)
            text.append(0x40)
            ret = lex.domain(text)
            if ret <= 0:
                return ret
            while lex.skip_lwsp() > 0 and self._c() == 0x2C:
                lex.pos += 1
        self.route = bytes(text)
        return 1

    def angle_addr(self) -> int:
        lex = self.lex
        lex.pos += 1  # <
        if lex.skip_lwsp() <= 0:
            return -1
        if self._c() == 0x40:
            if self.domain_list() > 0 and self._c() == 0x3A:  # :
                lex.pos += 1
            else:
                if self.fill:
                    self.route = _INVALID_ROUTE
                if self._at_end():
                    return -1
            if lex.skip_lwsp() <= 0:
                return -1
        if self._c() != 0x3E:  # not the (invalid) <> address
            if self.local_part() <= 0:
                return -1
            if self._c() == 0x40 and self.domain_part() <= 0:
                return -1
        if self._c() != 0x3E:
            return -1
        lex.pos += 1
        return lex.skip_lwsp()

    def name_addr(self) -> int:
        del self.text[:]
        if self.lex.phrase(self.text) <= 0 or self._c() != 0x3C:
            return -1
        self.name = bytes(self.text) or None
        if self.angle_addr() < 0:
            if self.fill:
                self.domain = _SYNTAX_ERROR
            self.invalid = True
        return 0 if self._at_end() else 1

    def addr_spec(self) -> int:
        lex = self.lex
        comment = lex.last_comment
        assert comment is not None
        del comment[:]
        quoted = self._c() == 0x22
        ret = self.local_part()
        if ret <= 0:
            self.invalid = True
        ret2 = -2
        if ret != 0 and not self._at_end() and self._c() == 0x40:
            ret2 = self.domain_part()
            if ret2 <= 0:
                ret = ret2
        if comment:
            self.name = bytes(comment)
        elif ret2 == -2:
            # "user" alone is a mailbox; "user more words" is a display name.
            self.text.append(0x20)
            mark = len(self.text)
            lex.phrase(self.text)
            if len(self.text) != mark:
                self.mailbox = None
                self.name = bytes(self.text)
            elif not quoted:
                self.domain = b""
            self.invalid = True
            ret = -1
        return ret

    def mailbox_(self) -> int:
        start = self.lex.pos
        ret = self.name_addr()
        if ret < 0:
            self.lex.pos = start
            ret = self.addr_spec()
            if self.invalid and self.name is None and self.mailbox is not None and self.domain is None:
                self.name, self.mailbox = self.mailbox, None
        if ret < 0:
            self.invalid = True
        self.add_fixed()
        return ret

    def group(self) -> int:
        lex = self.lex
        del self.text[:]
        if lex.phrase(self.text) <= 0 or self._c() != 0x3A:
            return -1
        lex.pos += 1
        ret = lex.skip_lwsp()
        if ret <= 0:
            self.invalid = True
        self.mailbox = bytes(self.text)
        self.add()
        if ret > 0 and self._c() != 0x3B:  # ;
            for _ in range(lex.end + 1):
                self.mailbox_()
                if self._at_end() or self._c() != 0x2C:
                    break
                lex.pos += 1
                if lex.skip_lwsp() <= 0:
                    ret = -1
                    break
        if ret >= 0:
            if self._at_end() or self._c() != 0x3B:
                ret = -1
            else:
                lex.pos += 1
                ret = lex.skip_lwsp()
        if ret < 0:
            self.invalid = True
        self.add()
        return 0 if ret == 0 else 1

    def address(self) -> int:
        start = self.lex.pos
        ret = self.group()
        if ret < 0:
            self.lex.pos = start
            self._reset()
            ret = self.mailbox_()
        return ret

    def address_list(self) -> None:
        lex = self.lex
        if lex.skip_lwsp() <= 0:
            return
        for _ in range(lex.end + 1):
            if self.address() == 0:
                break
            if self._at_end() or self._c() != 0x2C:
                break
            lex.pos += 1
            ret = lex.skip_lwsp()
            if ret <= 0:
                if ret < 0:
                    self.add_fixed()  # garbage at the end
                break


def parse_addresses(value: bytes, *, fill_missing: bool = True) -> list[Address]:
    """Parse an address header value (unfolded or not) into addresses.

    Never raises: broken input yields addresses marked ``invalid`` (with the
    placeholders of *fill_missing*), as much of it as can be understood.
    """
    parser = _Parser(value, fill_missing)
    parser.address_list()
    return parser.out


_ESCAPED = frozenset(b"\"\\'")


def _maybe_quote(text: bytes, escape_dot: bool) -> bytes:
    if all(c in ATEXT or (c == 0x2E and not escape_dot) for c in text):
        return text
    if not any(c in _ESCAPED for c in text):
        return b'"' + text + b'"'
    return b'"' + bytes(_escape(text)) + b'"'


def _escape(text: bytes) -> bytearray:
    out = bytearray()
    for c in text:
        if c in _ESCAPED:
            out.append(0x5C)
        out.append(c)
    return out


def _phrase(text: bytes) -> bytes:
    # Encoded-words may not be quoted; obs-phrase allows them bare.
    return text if b"=?" in text else _maybe_quote(text, True)


def format_addresses(addresses: list[Address]) -> bytes:
    """Write *addresses* canonically: ``Name <route:local@domain>`` items
    separated by ``", "``, groups as ``name: member, member;``."""
    out = bytearray()
    first = True
    in_group = False
    for addr in addresses:
        if first:
            first = False
        else:
            out += b", "
        if addr.domain is None:
            if not in_group:
                out += _phrase(addr.mailbox) if addr.mailbox else b'""'
                out += b": "
                first = True
            else:
                if out.endswith(b", "):
                    del out[-2:]
                elif out.endswith(b": "):
                    del out[-1:]
                out += b";"
            in_group = not in_group
            continue
        mailbox = addr.mailbox or b""
        if addr.name is not None:
            out += _phrase(addr.name)
        if addr.route is not None or mailbox or addr.domain:
            if addr.name:
                out += b" "
            out += b"<"
            if addr.route is not None:
                out += addr.route + b":"
            out += _maybe_quote(mailbox, False) if mailbox else b'""'
            if addr.domain:
                out += b"@" + addr.domain
            out += b">"
    return bytes(out)
