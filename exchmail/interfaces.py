"""Every zope interface of exchmail, documented as a contract.

Conventions that hold for all of them:

- Mailbox names are ``str`` (Unicode) with ``/`` as the hierarchy
  delimiter.  ``INBOX`` is matched case-insensitively and always spelled
  ``INBOX`` by the store.  Wire encodings (modified UTF-7) are the
  protocol's business, never the store's.
- Message identity is the UID: a positive ``int``, strictly increasing per
  mailbox, never reused while ``uid_validity`` stays the same.  Sequence
  numbers are a per-session notion and never appear in a store API.
- Flags are ``str`` such as ``"\\Seen"`` or ``"$MDNSent"``.  ``\\Recent``
  is session state and never stored.
- Message content as seen through the store is always in *wire form*:
  CRLF line ends.  A store that keeps bare-LF files (Maildir) converts on
  read and reports both sizes.
- Methods documented as "may return a Deferred" must be called through
  ``twisted.internet.defer.maybeDeferred`` by callers.  Methods without that
  note are synchronous and cheap (in-memory index look-ups).
- Errors are the classes of :mod:`exchmail.errors`; any other exception is
  treated by protocol code as an internal server error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import BinaryIO

    from twisted.internet.defer import Deferred


class IStoreMessage(Interface):
    """An immutable view of one message's metadata at the time it was taken.

    Content never changes for a given UID (RFC 3501 2.3.1.1); flags do, so
    holders should fetch a fresh record from the mailbox when they need the
    current flags.
    """

    uid = Attribute("int: the message UID.")
    flags = Attribute("frozenset[str]: the stored flags (no \\Recent).")
    internal_date = Attribute("float: the internal date, seconds since the epoch (UTC).")
    stored_size = Attribute("int: the size as the store keeps it (Maildir: file size, bare LF).")
    exact_size = Attribute("int: the exact RFC 822 size in wire form (CRLF line ends).")


class IMailboxListener(Interface):
    """Receives change notifications from an :class:`IStoreMailbox`.

    Called on the reactor thread, after the change is durable.  Listeners
    must not raise and must not call back into the mailbox synchronously in
    a way that changes it.
    """

    def messages_added(mailbox: IStoreMailbox, uids: list[int]) -> None:
        """New messages with these UIDs (ascending) are in the mailbox."""

    def messages_expunged(mailbox: IStoreMailbox, uids: list[int]) -> None:
        """These UIDs were permanently removed."""

    def flags_changed(mailbox: IStoreMailbox, uids: list[int], origin: object) -> None:
        """Flags of these UIDs changed; ``origin`` is the ``origin`` passed to
        :meth:`IStoreMailbox.set_flags` (so a session can ignore its own changes)."""


class IStoreMailbox(Interface):
    """One mailbox (folder): a shared, in-memory index of its messages.

    A store hands out one object per open mailbox and shares it between all
    sessions that open it, so every session sees the same index and is
    notified of the others' changes through :class:`IMailboxListener`.
    """

    name = Attribute("str: the mailbox name ('/'-delimited; 'INBOX' for the inbox).")
    uid_validity = Attribute("int: UIDVALIDITY, a positive 32-bit value.")
    uid_next = Attribute("int: the UID the next added message will get (a lower bound).")

    def uids() -> Sequence[int]:
        """The UIDs of all messages, ascending.

        The returned sequence is copy-on-write: the store never removes
        entries from a sequence it has handed out (it replaces it on
        expunge) and only appends to it.  Callers must not mutate it, and
        may keep it to number messages until they have told their client
        about later changes.
        """

    def message(uid: int) -> IStoreMessage | None:
        """The current record of ``uid``, or ``None`` if it is gone."""

    def open_message(uid: int) -> BinaryIO:
        """A binary file of the message in wire form (CRLF), positioned at 0.

        The caller closes it.  Raises :class:`~exchmail.errors.NoSuchMessage`.
        """

    def append(source: bytes | BinaryIO, flags: frozenset[str] = frozenset(),
               internal_date: float | None = None) -> Deferred[int]:
        """Add a message; may return a Deferred; result is the new UID.

        ``source`` is the message in wire form; a file is read from its
        current position to its end.  The message becomes visible only once
        it is complete and durable (never half a message).
        """

    def set_flags(uids: Iterable[int], flags: frozenset[str], mode: str,
                  origin: object = None) -> dict[int, frozenset[str]]:
        """Change flags; ``mode`` is ``"replace"``, ``"add"`` or ``"remove"``.

        Returns the new flags of every UID that still exists.  Listeners
        are told through ``flags_changed`` with ``origin``.
        """

    def expunge(uids: Iterable[int] | None = None) -> Deferred[list[int]]:
        """Remove messages flagged ``\\Deleted`` (only among ``uids`` if given).

        May return a Deferred; result is the removed UIDs, ascending.  If
        removing one message fails, the ones already removed stay removed,
        no message without ``\\Deleted`` is ever removed, and the error is
        raised after the listeners are told what did go.
        """

    def copy_to(uids: Iterable[int], target: IStoreMailbox) -> Deferred[list[tuple[int, int]]]:
        """Copy messages (content, flags, internal date) into ``target``.

        May return a Deferred; result is ``(source_uid, new_uid)`` pairs.
        """

    def replace_message(uid: int, source: bytes | BinaryIO) -> Deferred[int]:
        """Replace a message's content: the old UID is expunged and the new
        content gets a new UID with the old flags and date (RFC 3501 2.3.1.1:
        a UID always names one immutable message).  May return a Deferred.
        """

    def recent_count() -> int:
        """How many messages no session has claimed as \\Recent yet (STATUS RECENT)."""

    def claim_recent() -> frozenset[int]:
        """Take the UIDs that no session has seen yet (they are \\Recent for the caller)."""

    def refresh() -> Deferred[None]:
        """Pick up changes made outside this process (e.g. files dropped into
        Maildir ``new/``); may return a Deferred; cheap when nothing changed."""

    def add_listener(listener: IMailboxListener) -> None:
        """Start notifying ``listener``."""

    def remove_listener(listener: IMailboxListener) -> None:
        """Stop notifying ``listener`` (no error if it was not registered)."""


class IStoreAccount(Interface):
    """A user's mailboxes and subscriptions."""

    name = Attribute("str: the account (user) name.")

    def list_mailboxes() -> list[str]:
        """Every existing mailbox name, INBOX included, in no particular order."""

    def mailbox(name: str) -> Deferred[IStoreMailbox]:
        """Open (or share the already open) mailbox; may return a Deferred.

        Raises :class:`~exchmail.errors.NoSuchMailbox`.
        """

    def create(name: str) -> Deferred[None] | None:
        """Create a mailbox and any missing parents; may return a Deferred.

        Raises :class:`~exchmail.errors.MailboxExists` or
        :class:`~exchmail.errors.InvalidMailboxName`.
        """

    def delete(name: str) -> Deferred[None] | None:
        """Delete a mailbox and its messages; its children stay.

        May return a Deferred.  Raises NoSuchMailbox; deleting INBOX raises
        InvalidMailboxName.
        """

    def rename(old: str, new: str) -> Deferred[None] | None:
        """Rename a mailbox and its children; may return a Deferred.

        Renaming INBOX moves its messages into a new mailbox and leaves
        INBOX empty (RFC 3501 6.3.5).
        """

    def subscriptions() -> set[str]:
        """The subscribed names (which need not exist)."""

    def subscribe(name: str) -> None:
        """Add ``name`` to the subscriptions."""

    def unsubscribe(name: str) -> None:
        """Remove ``name`` from the subscriptions (no error if absent)."""


class IMarkedMailboxes(Interface):
    """Optional for :class:`IStoreAccount` providers: which mailboxes hold
    messages no session has seen yet (LIST's ``\\Marked``, RFC 3501 7.2.2).
    Accounts that do not provide it are listed without ``\\Marked``."""

    def is_marked(name: str) -> bool:
        """Whether mailbox ``name`` has messages that are new to every session.

        Must be cheap (no message parsing): it is asked for every listed
        mailbox.  Unknown names are not marked.
        """


class IAccountListing(Interface):
    """Optional for :class:`IStore` providers: which accounts have mail
    (periodic jobs such as retention walk them, whatever the directory is)."""

    def account_names() -> list[str]:
        """The names of the accounts the store holds; may block (call it off
        the reactor thread)."""


class IUserQuota(Interface):
    """Optional for :class:`IStore` providers that enforce quotas: take a
    user's limit from the account directory (e.g. an LDAP quota attribute)."""

    def set_user_quota(name: str, limit: int) -> None:
        """From now on, ``name``'s mailbox may hold at most ``limit`` octets."""


class IStore(Interface):
    """The root of a mail store: accounts by user name."""

    def account(name: str) -> Deferred[IStoreAccount]:
        """The account of ``name``, created on first use; may return a Deferred.

        Raises :class:`~exchmail.errors.InvalidUserName` for a name that
        cannot be stored safely.
        """

    def close() -> None:
        """Release resources (thread pools, open files); may return a Deferred."""


class IDirectory(Interface):
    """The user database role: who exists (credential checks are
    ``twisted.cred.checkers.ICredentialsChecker`` objects beside it)."""

    def user_exists(name: str) -> bool | Deferred[bool]:
        """Whether ``name`` is a known user; may return a Deferred."""

    def canonical_name(name: str) -> str | None:
        """The name under which the user's mail is stored, or ``None``."""


class ISCRAMKeys(Interface):
    """A user database that keeps SCRAM keys (RFC 5802), so that SCRAM-SHA-256
    can be offered for its users without a plaintext-equivalent secret."""

    def scram_keys(name: str) -> object:
        """The :class:`exchmail.auth.sasl.SCRAMKeys` of ``name`` (any case), or
        ``None`` if the user is unknown or has no keys; may return a Deferred."""


class ISCRAMCredentials(Interface):
    """Credentials of a completed SCRAM exchange, verified by a checker that
    provides :class:`ISCRAMKeys` (it lists this interface in its
    ``credentialInterfaces``)."""

    username = Attribute("bytes: the authentication identity the client gave.")

    def check_stored_key(stored_key: bytes) -> bool:
        """Whether the client's proof matches ``stored_key`` (constant time)."""
