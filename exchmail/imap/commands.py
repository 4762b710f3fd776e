"""The IMAP command parser: a command's segments in, a frozen command out.

:func:`parse_command` takes the segments of one command (its first line,
tag included, then literals and further lines: see
:mod:`exchmail.imap.parsing`) and the :class:`ParseOptions` read from the
profile, and returns one of the command types of
:mod:`exchmail.imap.commands_types` (re-exported here).  Every error is a
:class:`CommandSyntaxError` carrying the tag, the reason and the status to
answer with (BAD, or NO for a limit such as V0041's ``[LIMIT]``).  Nothing
here depends on the session: whether a command is allowed in the current
state is the dispatcher's question (:func:`parse_head` answers the
command's name cheaply, before its arguments are parsed).

Limits are enforced while parsing, in every profile: lists nest at most
:data:`~exchmail.imap.parsing.MAX_DEPTH` deep (and SEARCH's lists, NOT and
OR together as deep), a command carries at most
:data:`~exchmail.imap.parsing.MAX_LITERALS` literals, a string argument at
most 64 KiB, and SEARCH at most ``max_search_keys`` keys.

New commands (extensions) add a command type and one :func:`register` call.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from exchmail.imap import commands_modern, commands_sync
from exchmail.imap.commands_args import (
    ParseOptions,
    astring,
    flag_list,
    sequence_set,
    status_items,
)
from exchmail.imap.commands_ext import (
    AppendMessage,
    CatenateText,
    CatenateUrl,
    Compress,
    Enable,
    ExtendedAppend,
    parse_append,
    parse_compress,
    parse_enable,
)
from exchmail.imap.commands_types import (
    Append,
    Authenticate,
    Capability,
    Check,
    Close,
    Command,
    Copy,
    Create,
    Delete,
    Expunge,
    Fetch,
    Idle,
    List,
    Login,
    Logout,
    Lsub,
    Namespace,
    Noop,
    Rename,
    Search,
    Select,
    StartTLS,
    Status,
    Store,
    StoreMode,
    Subscribe,
    Unsubscribe,
)
from exchmail.imap.fetchatt import FetchItem, parse_fetch_items
from exchmail.imap.parsing import (
    LITERAL_AT_END,
    Atom,
    LiteralSegment,
    ParseError,
    Token,
    as_atom,
    as_bytes,
    expect_count,
    scan_atom,
    skip_space,
    tokenize,
)
from exchmail.imap.searchkeys import CODECS, parse_search
from exchmail.profile.settings import TagSyntax

__all__ = [
    "Append",
    "AppendMessage",
    "CatenateText",
    "CatenateUrl",
    "Compress",
    "Enable",
    "ExtendedAppend",
    "Arguments",
    "Authenticate",
    "Capability",
    "Check",
    "Close",
    "Command",
    "CommandHead",
    "CommandSpec",
    "CommandSyntaxError",
    "Copy",
    "Create",
    "Delete",
    "Expunge",
    "Fetch",
    "Idle",
    "List",
    "Login",
    "Logout",
    "Lsub",
    "Namespace",
    "Noop",
    "ParseOptions",
    "REGISTRY",
    "Rename",
    "Search",
    "Select",
    "StartTLS",
    "Status",
    "Store",
    "StoreMode",
    "Subscribe",
    "TAG_PATTERNS",
    "Unsubscribe",
    "parse_command",
    "parse_head",
    "register",
    "split_tag",
]

# Tags by profile (C0001): RFC 3501's ASTRING-CHARs but "+", or (Exchange
# enforces no format) any printable ASCII not starting with "+" or "*",
# which a client would take for a continuation request or untagged data.
TAG_PATTERNS = {
    TagSyntax.RFC3501: re.compile(rb"^[\x21\x23\x24\x26\x27\x2c-\x5b\x5d-\x7a\x7c-\x7e]{1,64}$"),
    TagSyntax.ANY_PRINTABLE: re.compile(rb"^[^+*\x00-\x20\x7f-\xff][\x21-\x7e]{0,63}$"),
}


class CommandSyntaxError(Exception):
    """A command the parser refuses.

    :param tag: the command's tag, or ``b"*"`` when the tag itself is invalid.
    :param text: the reason, shown to the client.
    :param code: a response code without brackets (``b"LIMIT"``), or None.
    :param status: ``"BAD"``, or ``"NO"`` for a well-formed command over a limit.
    """

    def __init__(
        self, tag: bytes, text: str, code: bytes | None = None, status: Literal["BAD", "NO"] = "BAD"
    ) -> None:
        super().__init__(text)
        self.tag = tag
        self.text = text
        self.code = code
        self.status = status

    def response(self) -> bytes:
        """The response line (without CRLF): ``tag BAD [code] text``."""
        code = b"[" + self.code + b"] " if self.code else b""
        return b"%s %s %s%s" % (
            self.tag,
            self.status.encode("ascii"),
            code,
            self.text.encode("utf-8", "replace"),
        )


@dataclass(frozen=True, slots=True)
class Arguments:
    """What a command's parse function gets: the head and the argument tokens."""

    tag: bytes
    name: bytes
    uid: bool
    tokens: Sequence[Token]
    options: ParseOptions

    def expect(self, low: int, high: int | None = None) -> None:
        """BAD unless there are ``low`` to ``high`` (default ``low``) arguments."""
        expect_count(list(self.tokens), low, high)


Parser = Callable[[Arguments], Command]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A registered command: its parse function, whether ``UID`` may precede
    it, whether its atoms may carry fetch sections (``BODY[...]``), and the
    extension (capability name) without which it is unknown, if any."""

    parse: Parser
    uid: bool = False
    sections: bool = False
    extension: str = ""


#: Command name (upper case) -> how to parse it.
REGISTRY: dict[bytes, CommandSpec] = {}


def register(
    name: bytes, parse: Parser, *, uid: bool = False, sections: bool = False, extension: str = ""
) -> None:
    """Make ``name`` a command parsed by ``parse`` (replacing an earlier entry);
    with ``extension``, the command exists only where ``ParseOptions.extensions``
    holds that capability name."""
    REGISTRY[name.upper()] = CommandSpec(parse, uid, sections, extension)


@dataclass(frozen=True, slots=True)
class CommandHead:
    """A command's tag and name, for decisions before its arguments are parsed."""

    tag: bytes
    name: bytes  #: upper case, without ``UID``
    uid: bool


def split_tag(line: bytes, options: ParseOptions) -> tuple[bytes, bytes]:
    """``(tag, rest of the line after one separator)``; the tag is ``b"*"``
    when the profile does not accept it (e.g. for a ``BAD [TOOBIG]``)."""
    tag, rest, _ = _split_tag(line, options)
    return tag, rest


def _split_tag(line: bytes, options: ParseOptions) -> tuple[bytes, bytes, int]:
    separators = b" \t" if options.liberal_whitespace else b" "
    end = next((i for i, c in enumerate(line) if c in separators), len(line))
    tag = line[:end]
    start = min(end + 1, len(line))
    valid = TAG_PATTERNS[options.tag_syntax].match(tag)
    return (tag if valid else b"*"), line[start:], start


def parse_head(line: bytes, options: ParseOptions) -> CommandHead:
    """The tag and command name of a command's first line.

    Raises :class:`CommandSyntaxError` for an empty line, an invalid tag,
    a missing or unknown command, and ``UID`` before a command that has no
    UID form.
    """
    return _head(line, options)[0]


def _head(line: bytes, options: ParseOptions) -> tuple[CommandHead, int]:
    """The head and the position in ``line`` where the arguments start."""
    if not line.strip(b" \t"):
        raise CommandSyntaxError(b"*", "Null command")
    tag, _, pos = _split_tag(line, options)
    if tag == b"*":
        raise CommandSyntaxError(b"*", "invalid or missing tag")
    literal = LITERAL_AT_END.search(line)
    text = line[: literal.start()] if literal else line
    if options.liberal_whitespace:
        pos = skip_space(text, pos, True)
    elif text[pos : pos + 1] == b" ":
        raise CommandSyntaxError(tag, "expected a single space after the tag")
    name, pos = _word(tag, text, pos, "missing command")
    uid = name == b"UID"
    if uid:
        after = skip_space(text, pos, options.liberal_whitespace)
        name, pos = _word(tag, text, after, "") if after > pos else (b"", pos)
        spec = REGISTRY.get(name)
        if spec is None or not spec.uid or not _known(spec, options):
            allowed = sorted(n.decode("ascii") for n, s in REGISTRY.items() if s.uid and _known(s, options))
            raise CommandSyntaxError(
                tag, "UID must be followed by " + ", ".join(allowed[:-1]) + " or " + allowed[-1]
            )
    spec = REGISTRY.get(name)
    if spec is None or not _known(spec, options):
        raise CommandSyntaxError(tag, "Unsupported command")
    return CommandHead(tag, name, uid), pos


def _known(spec: CommandSpec, options: ParseOptions) -> bool:
    """Whether the profile has the command (its extension, if any, is on)."""
    return not spec.extension or spec.extension in options.extensions


def _word(tag: bytes, text: bytes, pos: int, missing: str) -> tuple[bytes, int]:
    """The upper-cased atom at ``pos`` (a command name) and the position after it."""
    if pos >= len(text) or text[pos] in b'()"':
        if missing:
            raise CommandSyntaxError(tag, missing)
        return b"", pos
    try:
        atom, end = scan_atom(text, pos)
    except ParseError as error:
        raise CommandSyntaxError(tag, str(error)) from None
    return bytes(atom).upper(), end


def parse_command(segments: Sequence[bytes | LiteralSegment], options: ParseOptions) -> Command:
    """Parse one command: its first line (tag included), then literals and lines.

    Raises :class:`CommandSyntaxError` and nothing else, whatever the input
    (registered parse functions report errors as
    :class:`~exchmail.imap.parsing.ParseError`).
    """
    first = segments[0] if segments else b""
    if not isinstance(first, bytes):
        raise CommandSyntaxError(b"*", "Null command")
    head, pos = _head(first, options)
    spec = REGISTRY[head.name]
    try:
        tokens = tokenize(
            [first[pos:], *segments[1:]],
            options.liberal_whitespace,
            sections=spec.sections,
            max_depth=options.max_depth,
            max_literals=options.max_literals,
            utf8=options.utf8,
        )
        return spec.parse(Arguments(head.tag, head.name, head.uid, tokens, options))
    except ParseError as error:
        raise CommandSyntaxError(head.tag, str(error), error.code, error.status) from None


# -- any state and not authenticated ----------------------------------------------------
def _no_arguments(kind: Callable[[bytes], Command]) -> Parser:
    def parse(args: Arguments) -> Command:
        args.expect(0)
        return kind(args.tag)

    return parse


def _login(args: Arguments) -> Command:
    args.expect(2)
    return Login(args.tag, astring(args.tokens[0]), astring(args.tokens[1]))


def _authenticate(args: Arguments) -> Command:
    args.expect(1, 2)
    initial = astring(args.tokens[1]) if len(args.tokens) == 2 else None
    return Authenticate(args.tag, as_atom(args.tokens[0]), initial)


# -- authenticated --------------------------------------------------------------------------
def _condstore(args: Arguments) -> int:
    """How many more arguments RFC 7162's modifiers allow (none without CONDSTORE)."""
    return 1 if "CONDSTORE" in args.options.extensions else 0


def _select(args: Arguments) -> Command:
    args.expect(1, 1 + _condstore(args))
    condstore, resync = False, None
    if len(args.tokens) == 2:  # RFC 7162: (CONDSTORE) / (QRESYNC (...))
        condstore, resync = commands_sync.select_parameters(args.tokens[1:], args.options.extensions)
    return Select(args.tag, astring(args.tokens[0]), args.name == b"EXAMINE", condstore, resync)


def _one_mailbox(kind: Callable[[bytes, bytes], Command]) -> Parser:
    def parse(args: Arguments) -> Command:
        args.expect(1)
        return kind(args.tag, astring(args.tokens[0]))

    return parse


def _two_strings(kind: Callable[[bytes, bytes, bytes], Command]) -> Parser:
    def parse(args: Arguments) -> Command:
        args.expect(2)
        return kind(args.tag, astring(args.tokens[0]), astring(args.tokens[1]))

    return parse


def _status(args: Arguments) -> Command:
    args.expect(2)
    mailbox = astring(args.tokens[0])
    items = status_items(
        args.tokens[1], args.options.ignore_invalid_parameters, commands_modern.status_extra(args.options)
    )
    return Status(args.tag, mailbox, items)


# -- selected ---------------------------------------------------------------------------------
def _expunge(args: Arguments) -> Command:
    if not args.uid:
        args.expect(0)
        return Expunge(args.tag)
    args.expect(1)
    return Expunge(args.tag, sequence_set(args.tokens[0]))


def _search(args: Arguments) -> Command:
    returns, tokens = commands_sync.search_return(args.tokens, args.options.extensions)
    # After ENABLE UTF8=ACCEPT strings are UTF-8 and CHARSET is refused (RFC 6855 §3).
    charset = "UTF-8" if args.options.utf8 else "US-ASCII"
    first = tokens[0] if tokens else None
    if len(tokens) >= 2 and isinstance(first, Atom) and first.upper() == b"CHARSET":
        if args.options.utf8:  # RFC 6855 §3: conflicting charset labels
            raise ParseError("SEARCH CHARSET is not allowed after ENABLE UTF8=ACCEPT")
        charset = as_bytes(tokens[1]).decode("ascii", "replace").upper()
        tokens = tokens[2:]
        supported = args.options.search_charsets
        if charset not in supported or charset not in CODECS:
            names = " ".join(supported).encode("ascii", "replace")
            raise ParseError("Unsupported charset", code=b"BADCHARSET (" + names + b")", status="NO")
    criteria = parse_search(
        tokens, charset, args.options.max_search_keys, args.options.max_depth, args.options.extensions
    )
    return Search(args.tag, charset, criteria, args.uid, returns)


def _fetch(args: Arguments) -> Command:
    args.expect(2, 2 + _condstore(args))
    numbers = sequence_set(args.tokens[0])
    extensions = args.options.extensions
    items = parse_fetch_items(
        [args.tokens[1]],
        binary="BINARY" in extensions,
        modseq="CONDSTORE" in extensions,
        preview="PREVIEW" in extensions,
    )
    changed, vanished = None, False
    if len(args.tokens) == 3:  # RFC 7162: (CHANGEDSINCE n [VANISHED])
        changed, vanished = commands_sync.fetch_modifiers(args.tokens[2:], extensions, args.uid)
    if args.uid and not any(item.name == b"UID" for item in items):
        items.insert(0, FetchItem(b"UID"))  # RFC 3501 6.4.8: UID FETCH always answers UID
    return Fetch(args.tag, numbers, tuple(items), args.uid, changed, vanished)


STORE_MODES: dict[bytes, StoreMode] = {b"FLAGS": "replace", b"+FLAGS": "add", b"-FLAGS": "remove"}


def _store(args: Arguments) -> Command:
    args.expect(3, 3 + _condstore(args))
    numbers = sequence_set(args.tokens[0])
    tokens, unchanged = list(args.tokens), None
    if len(tokens) == 4:  # RFC 7162: (UNCHANGEDSINCE n) before the item
        unchanged = commands_sync.store_modifier(tokens.pop(1), args.options.extensions)
    item = as_atom(tokens[1])
    silent = item.endswith(b".SILENT")
    mode = STORE_MODES.get(item[:-7] if silent else item)
    if mode is None:
        raise ParseError("STORE needs FLAGS, +FLAGS or -FLAGS")
    flags = flag_list(tokens[2])
    if "\\Recent" in flags:
        raise ParseError("\\Recent cannot be stored")
    return Store(args.tag, numbers, mode, silent, flags, args.uid, unchanged)


def _copy(args: Arguments) -> Command:
    args.expect(2)
    return Copy(args.tag, sequence_set(args.tokens[0]), astring(args.tokens[1]), args.uid)


register(b"CAPABILITY", _no_arguments(Capability))
register(b"NOOP", _no_arguments(Noop))
register(b"LOGOUT", _no_arguments(Logout))
register(b"STARTTLS", _no_arguments(StartTLS))
register(b"LOGIN", _login)
register(b"AUTHENTICATE", _authenticate)
register(b"SELECT", _select)
register(b"EXAMINE", _select)
register(b"CREATE", commands_modern.parse_create)  # CREATE-SPECIAL-USE
register(b"DELETE", _one_mailbox(Delete))
register(b"RENAME", _two_strings(Rename))
register(b"SUBSCRIBE", _one_mailbox(Subscribe))
register(b"UNSUBSCRIBE", _one_mailbox(Unsubscribe))
register(b"LIST", commands_modern.parse_list)  # LIST-EXTENDED, LIST-STATUS
register(b"LSUB", _two_strings(Lsub))
register(b"STATUS", _status)
register(b"APPEND", parse_append)
register(b"NAMESPACE", _no_arguments(Namespace))
register(b"IDLE", _no_arguments(Idle))
register(b"CHECK", _no_arguments(Check))
register(b"CLOSE", _no_arguments(Close))
register(b"EXPUNGE", _expunge, uid=True)
register(b"SEARCH", _search, uid=True)
register(b"FETCH", _fetch, uid=True, sections=True)
register(b"STORE", _store, uid=True)
register(b"COPY", _copy, uid=True)
register(b"ENABLE", parse_enable, extension="ENABLE")
register(b"COMPRESS", parse_compress, extension="COMPRESS=DEFLATE")
for _name, (_parse, _uid, _extension) in (commands_modern.PARSERS | commands_sync.PARSERS).items():
    register(_name, _parse, uid=_uid, extension=_extension)
