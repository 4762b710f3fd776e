"""The typed IMAP commands: one frozen dataclass per command.

:func:`exchmail.imap.commands.parse_command` builds them; handlers read
them.  Every command carries its ``tag``; ``name`` is the command's name as
the client sent it (upper case, without ``UID``).  Mailbox names, LIST
references and patterns stay raw bytes in wire form: decoding modified
UTF-7 (and refusing names that are not) is the handler's business.
Flags are ``str`` with system flags in their canonical spelling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from exchmail.imap.fetchatt import FetchItem
from exchmail.imap.parsing import SequenceSet, Spool
from exchmail.imap.searchkeys import SearchKey

StoreMode = Literal["replace", "add", "remove"]


@dataclass(frozen=True, slots=True)
class Command:
    """Base of every command."""

    NAME: ClassVar[bytes] = b""
    tag: bytes

    @property
    def name(self) -> bytes:
        """The command name, e.g. ``b"FETCH"`` (``b"EXAMINE"`` for a read-only Select)."""
        return self.NAME


# -- any state ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Capability(Command):
    """CAPABILITY."""

    NAME: ClassVar[bytes] = b"CAPABILITY"


@dataclass(frozen=True, slots=True)
class Noop(Command):
    """NOOP."""

    NAME: ClassVar[bytes] = b"NOOP"


@dataclass(frozen=True, slots=True)
class Logout(Command):
    """LOGOUT."""

    NAME: ClassVar[bytes] = b"LOGOUT"


# -- not authenticated ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StartTLS(Command):
    """STARTTLS."""

    NAME: ClassVar[bytes] = b"STARTTLS"


@dataclass(frozen=True, slots=True)
class Login(Command):
    """LOGIN user password (astrings, any octets)."""

    NAME: ClassVar[bytes] = b"LOGIN"
    user: bytes
    password: bytes


@dataclass(frozen=True, slots=True)
class Authenticate(Command):
    """AUTHENTICATE mechanism [initial-response] (RFC 4959 SASL-IR).

    ``mechanism`` is upper case; ``initial_response`` is the raw base64
    text (``b"="`` for an empty response), or ``None`` when absent.
    """

    NAME: ClassVar[bytes] = b"AUTHENTICATE"
    mechanism: bytes
    initial_response: bytes | None = None


# -- authenticated ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Resync:
    """SELECT's QRESYNC parameter (RFC 7162 §3.2.5): what the client knows."""

    uid_validity: int
    modseq: int
    known_uids: SequenceSet | None = None
    #: ``(sequence numbers, their UIDs)`` the client knows (may be ignored)
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True)
class SearchReturn:
    """ESEARCH/CONTEXT result options (RFC 4731, 5182, 5267): ``RETURN (...)``.

    ``options`` holds the upper-case names (MIN MAX ALL COUNT SAVE UPDATE
    CONTEXT); ``partial`` the range of ``PARTIAL m:n`` (``low <= high``).
    """

    options: frozenset[bytes] = frozenset()
    partial: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Select(Command):
    """SELECT mailbox, or EXAMINE mailbox (``readonly``)."""

    NAME: ClassVar[bytes] = b"SELECT"
    mailbox: bytes
    readonly: bool = False
    #: RFC 7162: ``(CONDSTORE)``, or ``(QRESYNC (...))`` as a :class:`Resync`
    condstore: bool = False
    qresync: Resync | None = None

    @property
    def name(self) -> bytes:
        """``b"EXAMINE"`` when read-only, else ``b"SELECT"``."""
        return b"EXAMINE" if self.readonly else b"SELECT"


@dataclass(frozen=True, slots=True)
class Create(Command):
    """CREATE mailbox [(USE (attributes))] (RFC 6154 CREATE-SPECIAL-USE).

    ``uses`` are the special-use attributes in their canonical spelling
    (``"\\Sent"``); empty for a plain CREATE.
    """

    NAME: ClassVar[bytes] = b"CREATE"
    mailbox: bytes
    uses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Delete(Command):
    """DELETE mailbox."""

    NAME: ClassVar[bytes] = b"DELETE"
    mailbox: bytes


@dataclass(frozen=True, slots=True)
class Rename(Command):
    """RENAME old new."""

    NAME: ClassVar[bytes] = b"RENAME"
    old: bytes
    new: bytes


@dataclass(frozen=True, slots=True)
class Subscribe(Command):
    """SUBSCRIBE mailbox."""

    NAME: ClassVar[bytes] = b"SUBSCRIBE"
    mailbox: bytes


@dataclass(frozen=True, slots=True)
class Unsubscribe(Command):
    """UNSUBSCRIBE mailbox."""

    NAME: ClassVar[bytes] = b"UNSUBSCRIBE"
    mailbox: bytes


@dataclass(frozen=True, slots=True)
class List(Command):
    """LIST reference pattern (either may be empty), or the extended form of
    RFC 5258: ``LIST [(selection)] reference (patterns) [RETURN (options)]``.

    ``pattern`` is the first of ``patterns``; ``selection`` and ``returns``
    hold upper-case option names, ``status_items`` the items of
    ``RETURN (STATUS (...))`` (RFC 5819).  ``extended`` tells whether the
    client used any of the extended syntax.
    """

    NAME: ClassVar[bytes] = b"LIST"
    reference: bytes
    pattern: bytes
    patterns: tuple[bytes, ...] = ()
    selection: frozenset[bytes] = frozenset()
    returns: frozenset[bytes] = frozenset()
    status_items: tuple[bytes, ...] = ()
    extended: bool = False


@dataclass(frozen=True, slots=True)
class Lsub(Command):
    """LSUB reference pattern."""

    NAME: ClassVar[bytes] = b"LSUB"
    reference: bytes
    pattern: bytes


@dataclass(frozen=True, slots=True)
class Status(Command):
    """STATUS mailbox (items): upper-case items in the client's order, at least one.

    Unknown items are BAD, or dropped when the profile ignores invalid
    parameters (MS-STANXIMAP 2.3).
    """

    NAME: ClassVar[bytes] = b"STATUS"
    mailbox: bytes
    items: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Append(Command):
    """APPEND mailbox [(flags)] [date-time] message.

    ``internal_date`` is the date-time in seconds since the epoch (UTC), or
    ``None``; ``message`` is the literal (bytes, or a :class:`Spool` whose
    file the handler closes).  Whether the flags are allowed (keywords the
    server does not define) is the handler's policy.
    """

    NAME: ClassVar[bytes] = b"APPEND"
    mailbox: bytes
    flags: frozenset[str]
    internal_date: float | None
    message: bytes | Spool


@dataclass(frozen=True, slots=True)
class Namespace(Command):
    """NAMESPACE."""

    NAME: ClassVar[bytes] = b"NAMESPACE"


@dataclass(frozen=True, slots=True)
class Idle(Command):
    """IDLE (the DONE line is read by the handler)."""

    NAME: ClassVar[bytes] = b"IDLE"


# -- selected -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Check(Command):
    """CHECK."""

    NAME: ClassVar[bytes] = b"CHECK"


@dataclass(frozen=True, slots=True)
class Close(Command):
    """CLOSE."""

    NAME: ClassVar[bytes] = b"CLOSE"


@dataclass(frozen=True, slots=True)
class Expunge(Command):
    """EXPUNGE, or UID EXPUNGE uid-set (RFC 4315) when ``uid_set`` is given."""

    NAME: ClassVar[bytes] = b"EXPUNGE"
    uid_set: SequenceSet | None = None

    @property
    def uid(self) -> bool:
        """Whether this is UID EXPUNGE."""
        return self.uid_set is not None


@dataclass(frozen=True, slots=True)
class Search(Command):
    """[UID] SEARCH [CHARSET charset] criteria.

    ``charset`` is the upper-case IMAP name (``"US-ASCII"`` by default); the
    strings in ``criteria`` are already decoded with it.
    """

    NAME: ClassVar[bytes] = b"SEARCH"
    charset: str
    criteria: SearchKey
    uid: bool = False
    #: ``RETURN (...)`` (ESEARCH): None for a plain SEARCH
    returns: SearchReturn | None = None


@dataclass(frozen=True, slots=True)
class Fetch(Command):
    """[UID] FETCH sequence-set items.

    Macros are expanded; for UID FETCH the ``UID`` item comes first unless
    the client asked for it (RFC 3501 6.4.8).
    """

    NAME: ClassVar[bytes] = b"FETCH"
    sequence_set: SequenceSet
    items: tuple[FetchItem, ...]
    uid: bool = False
    #: RFC 7162 modifiers: ``(CHANGEDSINCE n [VANISHED])``
    changed_since: int | None = None
    vanished: bool = False


@dataclass(frozen=True, slots=True)
class Store(Command):
    """[UID] STORE sequence-set [+|-]FLAGS[.SILENT] flags (never ``\\Recent``)."""

    NAME: ClassVar[bytes] = b"STORE"
    sequence_set: SequenceSet
    mode: StoreMode
    silent: bool
    flags: frozenset[str]
    uid: bool = False
    #: RFC 7162 modifier ``(UNCHANGEDSINCE n)``
    unchanged_since: int | None = None


@dataclass(frozen=True, slots=True)
class Copy(Command):
    """[UID] COPY sequence-set mailbox."""

    NAME: ClassVar[bytes] = b"COPY"
    sequence_set: SequenceSet
    mailbox: bytes
    uid: bool = False
