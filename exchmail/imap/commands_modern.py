"""Commands and syntax of the IMAP extensions of issue 13 (part 1) that are
not MULTIAPPEND, BINARY, CATENATE, UTF8=ACCEPT or COMPRESS (those are
:mod:`exchmail.imap.commands_ext`).

MOVE (RFC 6851), UNSELECT (RFC 3691), ID (RFC 2971),
GETQUOTA/GETQUOTAROOT/SETQUOTA (RFC 9208), the extended LIST of RFC 5258
(with RFC 5819's ``RETURN (STATUS ...)`` and RFC 6154's ``SPECIAL-USE``
options) and RFC 6154's ``CREATE ... (USE (...))``.

Each parse function takes the :class:`~exchmail.imap.commands.Arguments`
of a command (duck-typed here, so that this module does not import the
registry) and returns a frozen command; :data:`PARSERS` lists them for
:mod:`exchmail.imap.commands` to register, each with the capability
(:mod:`exchmail.imap.extensions`) whose setting must be on for the command
to exist at all.  Syntax that extends a base command (LIST, CREATE,
STATUS) is refused with BAD when the profile has the extension off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from exchmail.imap.commands_args import astring, sequence_set, status_items
from exchmail.imap.commands_types import Command, Create, List
from exchmail.imap.folders import SPECIAL_USES
from exchmail.imap.parsing import (
    Atom,
    ParseError,
    SequenceSet,
    Token,
    as_atom,
    as_bytes,
    as_number,
    expect_count,
)

if TYPE_CHECKING:
    from exchmail.imap.commands_args import ParseOptions

#: RFC 2971 section 3.3: field strings, values and pairs.
ID_MAX_FIELD, ID_MAX_VALUE, ID_MAX_PAIRS = 30, 1024, 30


# -- command types ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Move(Command):
    """[UID] MOVE sequence-set mailbox (RFC 6851)."""

    NAME: ClassVar[bytes] = b"MOVE"
    sequence_set: SequenceSet
    mailbox: bytes
    uid: bool = False


@dataclass(frozen=True, slots=True)
class Unselect(Command):
    """UNSELECT (RFC 3691)."""

    NAME: ClassVar[bytes] = b"UNSELECT"


@dataclass(frozen=True, slots=True)
class Id(Command):
    """ID (field value ...) or ID NIL (RFC 2971): ``fields`` is None for NIL;
    a value is None for NIL."""

    NAME: ClassVar[bytes] = b"ID"
    fields: tuple[tuple[bytes, bytes | None], ...] | None


@dataclass(frozen=True, slots=True)
class GetQuota(Command):
    """GETQUOTA quota-root (RFC 9208)."""

    NAME: ClassVar[bytes] = b"GETQUOTA"
    root: bytes


@dataclass(frozen=True, slots=True)
class GetQuotaRoot(Command):
    """GETQUOTAROOT mailbox (RFC 9208)."""

    NAME: ClassVar[bytes] = b"GETQUOTAROOT"
    mailbox: bytes


@dataclass(frozen=True, slots=True)
class SetQuota(Command):
    """SETQUOTA quota-root (resource limit ...) (RFC 9208); always refused here."""

    NAME: ClassVar[bytes] = b"SETQUOTA"
    root: bytes
    limits: tuple[tuple[bytes, int], ...]


# -- parse functions ----------------------------------------------------------------------
def parse_move(args: Any) -> Command:
    args.expect(2)
    return Move(args.tag, sequence_set(args.tokens[0]), astring(args.tokens[1]), args.uid)


def parse_unselect(args: Any) -> Command:
    args.expect(0)
    return Unselect(args.tag)


def parse_id(args: Any) -> Command:
    args.expect(1)
    token = args.tokens[0]
    if isinstance(token, Atom) and token.upper() == b"NIL":
        return Id(args.tag, None)
    if not isinstance(token, list):
        raise ParseError("ID takes a parenthesised list of field-value pairs or NIL")
    if len(token) % 2:
        raise ParseError("ID fields and values must come in pairs")
    if len(token) > 2 * ID_MAX_PAIRS:
        raise ParseError(f"ID takes at most {ID_MAX_PAIRS} field-value pairs")
    fields = []
    for index in range(0, len(token), 2):
        field = _id_string(token[index], "field")
        if len(field) > ID_MAX_FIELD:
            raise ParseError(f"ID field names are at most {ID_MAX_FIELD} octets")
        raw = token[index + 1]
        value = None if isinstance(raw, Atom) and raw.upper() == b"NIL" else _id_string(raw, "value")
        if value is not None and len(value) > ID_MAX_VALUE:
            raise ParseError(f"ID values are at most {ID_MAX_VALUE} octets")
        fields.append((field, value))
    return Id(args.tag, tuple(fields))


def _id_string(token: Token, what: str) -> bytes:
    if isinstance(token, list) or isinstance(token, Atom):
        raise ParseError(f"ID {what}s must be strings")
    return as_bytes(token)


def parse_getquota(args: Any) -> Command:
    args.expect(1)
    return GetQuota(args.tag, astring(args.tokens[0]))


def parse_getquotaroot(args: Any) -> Command:
    args.expect(1)
    return GetQuotaRoot(args.tag, astring(args.tokens[0]))


def parse_setquota(args: Any) -> Command:
    args.expect(2)
    raw = args.tokens[1]
    if not isinstance(raw, list) or len(raw) % 2:
        raise ParseError("SETQUOTA takes a list of resource-limit pairs")
    limits = tuple((as_atom(raw[i]), as_number(raw[i + 1])) for i in range(0, len(raw), 2))
    return SetQuota(args.tag, astring(args.tokens[0]), limits)


# -- extended base commands ---------------------------------------------------------------------
SELECTION_OPTIONS = frozenset({b"SUBSCRIBED", b"REMOTE", b"RECURSIVEMATCH", b"SPECIAL-USE"})
RETURN_OPTIONS = frozenset({b"SUBSCRIBED", b"CHILDREN", b"STATUS", b"SPECIAL-USE"})


def parse_list(args: Any) -> Command:
    """LIST, plain or extended (RFC 5258, 5819, 6154 section 5.1)."""
    options: ParseOptions = args.options
    extended_on = "LIST-EXTENDED" in options.extensions
    tokens = list(args.tokens)
    selection: frozenset[bytes] = frozenset()
    if tokens and isinstance(tokens[0], list):
        if not extended_on:
            raise ParseError("LIST takes a reference and a pattern")
        selection = _options(tokens.pop(0), SELECTION_OPTIONS, "selection", options)
    returns: frozenset[bytes] = frozenset()
    items: tuple[bytes, ...] = ()
    if len(tokens) == 4 and isinstance(tokens[2], Atom) and tokens[2].upper() == b"RETURN":
        if not (extended_on or "LIST-STATUS" in options.extensions):
            raise ParseError("LIST takes a reference and a pattern")
        returns, items = _return_options(tokens[3], options)
        tokens = tokens[:2]
    expect_count(tokens, 2)
    reference = astring(tokens[0])
    if isinstance(tokens[1], list):
        if not extended_on or not tokens[1]:
            raise ParseError("LIST takes a reference and a pattern")
        patterns = tuple(astring(token) for token in tokens[1])
    else:
        patterns = (astring(tokens[1]),)
    if b"RECURSIVEMATCH" in selection and not selection & {b"SUBSCRIBED", b"SPECIAL-USE"}:
        raise ParseError("RECURSIVEMATCH needs another selection option (SUBSCRIBED)")
    extended = bool(selection or returns or isinstance(tokens[1], list))
    if not extended:
        return List(args.tag, reference, patterns[0])
    return List(args.tag, reference, patterns[0], patterns, selection, returns, items, extended)


def _options(token: Token, known: frozenset[bytes], what: str, options: ParseOptions) -> frozenset[bytes]:
    if not isinstance(token, list):
        raise ParseError(f"expected a list of {what} options")
    return _checked(frozenset(as_atom(item) for item in token), known, what, options)


def _checked(
    names: frozenset[bytes], known: frozenset[bytes], what: str, options: ParseOptions
) -> frozenset[bytes]:
    unknown = names - known
    if b"SPECIAL-USE" in names and "SPECIAL-USE" not in options.extensions:
        unknown |= {b"SPECIAL-USE"}
    if unknown:
        raise ParseError(f"unknown LIST {what} option {sorted(unknown)[0].decode('ascii', 'replace')}")
    return names


def _return_options(token: Token, options: ParseOptions) -> tuple[frozenset[bytes], tuple[bytes, ...]]:
    if not isinstance(token, list):
        raise ParseError("expected a list of return options")
    names: set[bytes] = set()
    items: tuple[bytes, ...] = ()
    rest = list(token)
    while rest:
        name = as_atom(rest.pop(0))
        if name == b"STATUS":
            if "LIST-STATUS" not in options.extensions:
                raise ParseError("unknown LIST return option STATUS")
            if not rest or not isinstance(rest[0], list):
                raise ParseError("RETURN (STATUS ...) needs a list of STATUS items")
            items = status_items(rest.pop(0), False, status_extra(options))
        names.add(name)
    return _checked(frozenset(names), RETURN_OPTIONS, "return", options), items


def status_extra(options: ParseOptions) -> frozenset[bytes]:
    """The STATUS items the profile's extensions add."""
    extra = set()
    if "STATUS=SIZE" in options.extensions:
        extra.add(b"SIZE")
    if "APPENDLIMIT" in options.extensions:
        extra.add(b"APPENDLIMIT")
    if "QUOTA" in options.extensions:
        extra.add(b"DELETED-STORAGE")
    if "CONDSTORE" in options.extensions:
        extra.add(b"HIGHESTMODSEQ")  # RFC 7162 §3.1.8
    if "IMAP4rev2" in options.extensions:
        extra.add(b"DELETED")  # RFC 9051 §6.3.11: messages with \Deleted
    return frozenset(extra)


def parse_create(args: Any) -> Command:
    """CREATE mailbox, or with CREATE-SPECIAL-USE, CREATE mailbox (USE (attributes))."""
    args.expect(1, 2)
    mailbox = astring(args.tokens[0])
    if len(args.tokens) == 1:
        return Create(args.tag, mailbox)
    if "CREATE-SPECIAL-USE" not in args.options.extensions:
        raise ParseError("CREATE takes one mailbox name")
    params = args.tokens[1]
    if not isinstance(params, list) or len(params) != 2 or as_atom(params[0]) != b"USE":
        raise ParseError("CREATE takes (USE (attributes)) after the name")
    raw = params[1] if isinstance(params[1], list) else [params[1]]
    uses = []
    for token in raw:
        if not isinstance(token, Atom):
            raise ParseError("special-use attributes are atoms")
        text = bytes(token).decode("ascii", "replace")
        uses.append(SPECIAL_USES.get(text.lower(), text))
    return Create(args.tag, mailbox, tuple(uses))


#: The extension commands: name -> (parse function, has a UID form, the
#: capability whose extension must be on).  LIST and CREATE use :func:`parse_list` and
#: :func:`parse_create` in every profile.
PARSERS: dict[bytes, tuple[Callable[[Any], Command], bool, str]] = {
    b"MOVE": (parse_move, True, "MOVE"),
    b"UNSELECT": (parse_unselect, False, "UNSELECT"),
    b"ID": (parse_id, False, "ID"),
    b"GETQUOTA": (parse_getquota, False, "QUOTA"),
    b"GETQUOTAROOT": (parse_getquotaroot, False, "QUOTA"),
    b"SETQUOTA": (parse_setquota, False, "QUOTA"),
}
