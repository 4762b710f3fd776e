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

Threads and Deferreds -- the rule every implementation keeps:

- Methods marked **synchronous** answer from memory.  They never touch a
  disk, a database or the network, and they are cheap (an index look-up),
  so protocol code calls them directly on the reactor thread.
- Every other method is **asynchronous**: it returns a
  :class:`~twisted.internet.defer.Deferred` that fires on the reactor
  thread.  Blocking work behind it (reading or writing files, fsync,
  database queries, hashing) runs off the reactor thread, in a thread pool
  (the ``run_blocking`` callable exchmail gives backends) or an
  asynchronous driver.  Callers wrap calls in
  :func:`~twisted.internet.defer.maybeDeferred`, so an implementation whose
  work is truly in memory may return a plain value (or raise) instead.
- Errors are the classes of :mod:`exchmail.errors`, raised or delivered as
  the Deferred's failure; any other exception is treated by protocol code
  as an internal server error (logged, answered ``NO [SERVERBUG]`` /
  ``-ERR [SYS/TEMP]``).
- Index state (UIDs, records, listeners) is changed only on the reactor
  thread, in the callbacks of the blocking work, so synchronous readers
  never see half a change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from zope.interface import Attribute, Interface

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
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


class IMessageReader(Interface):
    """Sequential access to one message's wire-form content, for streaming.

    Obtained from :meth:`IStoreMailbox.open_message`.  Reads happen off the
    reactor thread; one reader serves one consumer, one read at a time.
    """

    size = Attribute("int: the number of octets the reader delivers in all (exact_size).")

    def read(size: int) -> Deferred[bytes]:
        """Asynchronous: the next at most ``size`` octets; ``b""`` at the end."""

    def close() -> None:
        """Synchronous: release the reader (the file or cursor is closed off-thread
        if closing could block).  Reading after ``close`` is an error."""


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
        :meth:`IStoreMailbox.set_flags` (so a session can ignore its own changes),
        or ``None`` for changes made outside this process."""


class IStoreMailbox(Interface):
    """One mailbox (folder): a shared index of its messages.

    A store hands out one object per open mailbox and shares it between all
    sessions that open it, so every session sees the same index and is
    notified of the others' changes through :class:`IMailboxListener`.

    While it has listeners, a mailbox reports changes made outside this
    process (files dropped into a Maildir, another frontend's writes) to
    them on its own, by watching or polling once per mailbox -- sessions do
    not poll.  A mailbox with no listeners may be released by its account
    after a while and opened afresh later.
    """

    name = Attribute("str: the mailbox name ('/'-delimited; 'INBOX' for the inbox).")
    uid_validity = Attribute("int: UIDVALIDITY, a positive 32-bit value.")
    uid_next = Attribute("int: the UID the next added message will get (a lower bound).")

    # -- synchronous: the in-memory index -------------------------------------
    def uids() -> Sequence[int]:
        """Synchronous: the UIDs of all messages, ascending.

        The returned sequence is copy-on-write: the store never removes
        entries from a sequence it has handed out (it replaces it on
        expunge) and only appends to it.  Callers must not mutate it, and
        may keep it to number messages until they have told their client
        about later changes.
        """

    def message(uid: int) -> IStoreMessage | None:
        """Synchronous: the current record of ``uid``, or ``None`` if it is gone."""

    def recent_count() -> int:
        """Synchronous: how many messages no session has claimed as \\Recent yet."""

    def claim_recent() -> frozenset[int]:
        """Synchronous: take the UIDs that no session has seen yet (they are
        \\Recent for the caller, and for no other session)."""

    def add_listener(listener: IMailboxListener) -> None:
        """Synchronous: start notifying ``listener`` (and watching for outside changes)."""

    def remove_listener(listener: IMailboxListener) -> None:
        """Synchronous: stop notifying ``listener`` (no error if it was not registered)."""

    # -- asynchronous ------------------------------------------------------------
    def read_message(uid: int) -> Deferred[bytes]:
        """Asynchronous: the whole message in wire form (CRLF).

        For messages a caller is willing to hold in memory; use
        :meth:`open_message` to stream large ones.  Fails with
        :class:`~exchmail.errors.NoSuchMessage` if the message is gone.
        """

    def open_message(uid: int) -> Deferred[IMessageReader]:
        """Asynchronous: an :class:`IMessageReader` over the message in wire form.

        The caller closes it.  Fails with :class:`~exchmail.errors.NoSuchMessage`.
        """

    def append(
        source: bytes | BinaryIO, flags: frozenset[str] = frozenset(), internal_date: float | None = None
    ) -> Deferred[int]:
        """Asynchronous: add a message; the result is the new UID.

        ``source`` is the message in wire form; a file is read (off the
        reactor thread) from its current position to its end.  The message
        becomes visible, and the Deferred fires, only once it is complete
        and durable (never half a message): a fired Deferred means the
        message survives a crash.
        """

    def set_flags(
        uids: Iterable[int], flags: frozenset[str], mode: str, origin: object = None
    ) -> Deferred[dict[int, frozenset[str]]]:
        """Asynchronous: change flags; ``mode`` is ``"replace"``, ``"add"`` or ``"remove"``.

        The result maps every UID that still exists to its new flags.
        Listeners are told through ``flags_changed`` with ``origin`` once the
        change is stored.
        """

    def expunge(uids: Iterable[int] | None = None) -> Deferred[list[int]]:
        """Asynchronous: remove messages flagged ``\\Deleted`` (only among ``uids`` if given).

        The result is the removed UIDs, ascending.  If removing one message
        fails, the ones already removed stay removed, no message without
        ``\\Deleted`` is ever removed, and the error is delivered after the
        listeners are told what did go.
        """

    def copy_to(uids: Iterable[int], target: IStoreMailbox) -> Deferred[list[tuple[int, int]]]:
        """Asynchronous: copy messages (content, flags, internal date) into ``target``.

        The result is ``(source_uid, new_uid)`` pairs, ascending by source UID.
        All or nothing (RFC 3501 6.4.7): if copying fails, the copies already
        made are removed again before the error is delivered.
        """

    def replace_message(uid: int, source: bytes | BinaryIO) -> Deferred[int]:
        """Asynchronous: replace a message's content: the old UID is expunged
        and the new content gets a new UID with the old flags and date
        (RFC 3501 2.3.1.1: a UID always names one immutable message)."""

    def refresh() -> Deferred[None]:
        """Asynchronous: pick up changes made outside this process now (e.g.
        files dropped into Maildir ``new/``); cheap when nothing changed."""


class IStoreAccount(Interface):
    """A user's mailboxes and subscriptions."""

    name = Attribute("str: the account (user) name.")

    def list_mailboxes() -> Deferred[list[str]]:
        """Asynchronous: every existing mailbox name, INBOX included, in no
        particular order."""

    def mailbox(name: str) -> Deferred[IStoreMailbox]:
        """Asynchronous: open (or share the already open) mailbox.

        Fails with :class:`~exchmail.errors.NoSuchMailbox`.
        """

    def create(name: str) -> Deferred[None]:
        """Asynchronous: create a mailbox and any missing parents.

        Fails with :class:`~exchmail.errors.MailboxExists` or
        :class:`~exchmail.errors.InvalidMailboxName`.
        """

    def delete(name: str) -> Deferred[None]:
        """Asynchronous: delete a mailbox and its messages; its children stay.

        Fails with NoSuchMailbox; deleting INBOX fails with InvalidMailboxName.
        """

    def rename(old: str, new: str) -> Deferred[None]:
        """Asynchronous: rename a mailbox and its children.

        Renaming INBOX moves its messages into a new mailbox and leaves
        INBOX empty (RFC 3501 6.3.5).
        """

    def subscriptions() -> Deferred[set[str]]:
        """Asynchronous: the subscribed names (which need not exist)."""

    def subscribe(name: str) -> Deferred[None]:
        """Asynchronous: add ``name`` to the subscriptions."""

    def unsubscribe(name: str) -> Deferred[None]:
        """Asynchronous: remove ``name`` from the subscriptions (no error if absent)."""


class IEarlyOpen(Interface):
    """Optional for :class:`IStoreAccount` providers: open a mailbox before its
    index knows every message's internal date and sizes.

    A Maildir folder of files whose names do not record them (dropped in by
    another program) is one: its first load reads names only and learns
    dates and sizes from the files afterwards, in the background.  IMAP
    SELECT opens mailboxes this way, so a client sees the messages, their
    UIDs and flags at once; :meth:`IStoreAccount.mailbox` keeps handing out
    only mailboxes whose index is complete.
    """

    def mailbox_early(name: str) -> Deferred[tuple[IStoreMailbox, Callable[[], Deferred[None] | None]]]:
        """Asynchronous: the mailbox (as :meth:`IStoreAccount.mailbox` opens it)
        and ``details_known``, a synchronous function that answers ``None``
        once the index is complete, and until then a new Deferred that fires
        when it is (or fails if it cannot be completed).

        While the index is incomplete, its records and columns show 0 for the
        internal dates and sizes still to learn; the caller reads only UIDs,
        flags, \\Recent and MODSEQs and no content, and waits for
        ``details_known`` before anything else.  The mailbox's own changes
        (``refresh``, ``set_flags``, ``expunge``) wait for it by themselves.
        """


class IBatchRead(Interface):
    """Optional for :class:`IStoreMailbox` providers: read several small
    messages with one trip to the store's thread (FETCH and SEARCH over many
    messages use it; without it they call ``read_message`` per message)."""

    def read_messages(uids: Sequence[int]) -> Deferred[list[bytes | None]]:
        """Asynchronous: the wire-form content of each of ``uids``, in order;
        ``None`` for a message that is gone."""


class IIndexScan(Interface):
    """Optional for :class:`IStoreMailbox` providers: the index of many messages
    at once, without a record object per message (FETCH of flags and sizes,
    SEARCH on flags, SELECT over very large mailboxes use it)."""

    def scan(uids: Sequence[int]) -> Iterable[tuple[int, frozenset[str], float, int, int]]:
        """Synchronous: ``(uid, flags, internal_date, stored_size, exact_size)`` of
        each of ``uids`` that still exists, in the order given (ascending UIDs)."""

    def columns(uids: Sequence[int]) -> IndexColumns | None:
        """Synchronous: the index of ``uids`` column by column, when they are
        exactly the first ``len(uids)`` messages of the mailbox (what a client
        that is up to date knows: FETCH or SEARCH over ``1:*``), so whole-mailbox
        commands work on arrays instead of a tuple per message; ``None``
        otherwise (callers then use :meth:`scan`)."""


class IndexColumns(NamedTuple):
    """The index of the first messages of a mailbox (:meth:`IIndexScan.columns`):
    entry ``i`` of each sequence belongs to the ``i``-th message."""

    #: the distinct flag sets, numbered by their position
    flag_sets: Sequence[frozenset[str]]
    uids: Sequence[int]
    #: the number of each message's flag set in ``flag_sets``
    flags: Sequence[int]
    internal_dates: Sequence[float]
    stored_sizes: Sequence[int]
    exact_sizes: Sequence[int]


class IModSeq(Interface):
    """Optional for :class:`IStoreMailbox` providers: modification sequences
    (CONDSTORE and QRESYNC, RFC 7162).  Mailboxes without it are answered
    ``NOMODSEQ``: the protocol works, without fast resynchronisation.

    The rules every implementation keeps (the store compliance kit checks them):

    - every message has a MODSEQ, a positive integer; the mailbox's
      HIGHESTMODSEQ is at least every message's MODSEQ;
    - every change -- APPEND (and COPY/MOVE into the mailbox), a flag change
      that changes flags, an expunge -- gives the messages it touches a
      MODSEQ larger than the HIGHESTMODSEQ before it (one change may give
      all its messages the same value), so HIGHESTMODSEQ strictly increases;
      a flag change that changes nothing changes no MODSEQ;
    - both survive restarts for a store whose messages do, and only ever
      grow while ``uid_validity`` stays the same: the Deferred of a change
      fires only once its MODSEQ is recorded, so no client is told a
      HIGHESTMODSEQ that a restart could take back;
    - expunged UIDs are remembered with the MODSEQ of their expunge, at
      least the most recent ones (bounded memory): :meth:`expunged_since`
      answers ``None`` when it no longer reaches back far enough.
    """

    def highest_modseq() -> int:
        """Synchronous: HIGHESTMODSEQ, the largest MODSEQ given so far (at least 1)."""

    def modseqs(uids: Sequence[int]) -> Iterable[tuple[int, int]]:
        """Synchronous: ``(uid, modseq)`` of each of ``uids`` that still exists,
        in the order given."""

    def expunged_since(modseq: int) -> Sequence[int] | None:
        """Synchronous: the UIDs expunged with a MODSEQ larger than ``modseq``,
        ascending; ``None`` if expunges that old are forgotten."""

    def set_flags_unchanged_since(
        uids: Iterable[int], flags: frozenset[str], mode: str, unchanged_since: int, origin: object = None
    ) -> Deferred[tuple[dict[int, frozenset[str]], list[int]]]:
        """Asynchronous: :meth:`IStoreMailbox.set_flags` for the messages whose
        MODSEQ is at most ``unchanged_since`` (tested and changed atomically,
        RFC 7162 §3.1.3); the result is the new flags of the messages that
        still exist and the UIDs that failed the test, ascending."""


class IMarkedMailboxes(Interface):
    """Optional for :class:`IStoreAccount` providers: which mailboxes hold
    messages no session has seen yet (LIST's ``\\Marked``, RFC 3501 7.2.2).
    Accounts that do not provide it are listed without ``\\Marked``."""

    def marked(names: Iterable[str]) -> Deferred[set[str]]:
        """Asynchronous: those of ``names`` that have messages new to every
        session.  Unknown names are not marked.  Asked once per LIST."""


class ISpecialUseMailboxes(Interface):
    """Optional for :class:`IStoreAccount` providers: special-use attributes
    clients give mailboxes (IMAP CREATE-SPECIAL-USE, RFC 6154).  The store
    keeps them with the mailbox: a renamed mailbox keeps its attributes and a
    deleted one loses them.  Accounts that do not provide it refuse
    ``CREATE ... (USE (...))`` with ``NO [USEATTR]``."""

    def special_uses() -> Deferred[dict[str, frozenset[str]]]:
        """Asynchronous: ``{mailbox name: attributes}`` such as ``{"Sent": {"\\Sent"}}``."""

    def set_special_use(name: str, uses: frozenset[str]) -> Deferred[None]:
        """Asynchronous: give the existing mailbox ``name`` these attributes
        (empty: none).  Fails with NoSuchMailbox."""


class IAccountQuota(Interface):
    """Optional for :class:`IStoreAccount` providers that enforce a storage
    quota: what IMAP's GETQUOTA/GETQUOTAROOT report (RFC 9208)."""

    def quota() -> Deferred[tuple[int, int]]:
        """Asynchronous: ``(used, limit)`` in octets for the whole account;
        ``limit`` 0 means none."""


class IAccountListing(Interface):
    """Optional for :class:`IStore` providers: which accounts have mail
    (periodic jobs such as retention walk them, whatever the directory is)."""

    def account_names() -> Deferred[list[str]]:
        """Asynchronous: the names of the accounts the store holds."""


class IUserQuota(Interface):
    """Optional for :class:`IStore` providers that enforce quotas: take a
    user's limit from the account directory (e.g. an LDAP quota attribute)."""

    def set_user_quota(name: str, limit: int) -> None:
        """Synchronous: from now on, ``name``'s mailbox may hold at most ``limit`` octets."""


class IStore(Interface):
    """The root of a mail store: accounts by user name."""

    def account(name: str) -> Deferred[IStoreAccount]:
        """Asynchronous: the account of ``name``, created on first use.

        Fails with :class:`~exchmail.errors.InvalidUserName` for a name that
        cannot be stored safely.
        """

    def close() -> Deferred[None] | None:
        """Release resources (thread pools, open files, connections); may
        return a Deferred that fires once they are released."""


class IDirectory(Interface):
    """The user database role: who exists (credential checks are
    ``twisted.cred.checkers.ICredentialsChecker`` objects beside it)."""

    def user_exists(name: str) -> Deferred[bool]:
        """Asynchronous: whether ``name`` is a known user."""

    def canonical_name(name: str) -> str | None:
        """Synchronous: the name under which the user's mail is stored, or
        ``None`` if the directory does not know it (from its in-memory copy)."""


class ISCRAMKeys(Interface):
    """A user database that keeps SCRAM keys (RFC 5802), so that SCRAM-SHA-256
    can be offered for its users without a plaintext-equivalent secret."""

    def scram_keys(name: str) -> Deferred[object]:
        """Asynchronous: the :class:`exchmail.auth.sasl.SCRAMKeys` of ``name``
        (any case), or ``None`` if the user is unknown or has no keys."""


class ISCRAMCredentials(Interface):
    """Credentials of a completed SCRAM exchange, verified by a checker that
    provides :class:`ISCRAMKeys` (it lists this interface in its
    ``credentialInterfaces``)."""

    username = Attribute("bytes: the authentication identity the client gave.")

    def check_stored_key(stored_key: bytes) -> bool:
        """Whether the client's proof matches ``stored_key`` (constant time)."""


class INTLMCredentials(Interface):
    """Credentials of a completed NTLM exchange ([MS-NLMP]), verified by a
    checker that keeps the users' NT hashes (the accounts file, with
    ``[ntlm]`` configured), which lists this interface in its
    ``credentialInterfaces``."""

    username = Attribute("bytes: the account name the exchange maps to.")

    def check_nt_hash(nt_hash: bytes) -> bool:
        """Whether the client's response was computed from ``nt_hash`` (the
        16-octet MD4 of the UTF-16LE password); constant-time comparison."""


class IVerifiedLogin(Interface):
    """Credentials a SASL mechanism has verified by itself (GSSAPI's Kerberos
    ticket, an OAuth 2.0 bearer token): the identity is proven, and the
    checker that accepts them only confirms that the account exists and
    gives its avatar ID, so the realm, the throttle and the per-user limits
    apply as for passwords.

    Only mechanisms make these, after verification; a checker trusts them.
    """

    username = Attribute("bytes: the account name the proven identity maps to.")
    identity = Attribute("str: the proven identity (a Kerberos principal, a token's subject).")
    mechanism = Attribute("str: the SASL mechanism that proved it, e.g. 'GSSAPI'.")


class ILoginMind(Interface):
    """The ``mind`` a session passes to ``Portal.login``: who is logging in,
    how.  Realms read it to apply per-protocol rules (Exchange's
    ImapEnabled/PopEnabled); all attributes are plain values."""

    protocol = Attribute("str: 'imap', 'pop3' or 'lmtp'.")
    address = Attribute("str: the client's IP address ('' if unknown).")
    secure = Attribute("bool: whether the connection is protected by TLS.")


class ISessionObserver(Interface):
    """Watches IMAP/POP3 sessions: the protocol log, metrics, connection logs.

    Called on the reactor thread; observers must be quick and must not
    raise.  ``session`` is the session's
    :class:`~exchmail.session.observe.SessionInfo` (protocol, id, addresses,
    user once logged in, TLS).
    """

    transcript = Attribute(
        "bool: whether the observer wants the text of every command and "
        "response (redacted: no passwords, literal data as its size)."
    )

    def session_opened(session: object) -> None:
        """A connection was accepted (before the greeting)."""

    def received(session: object, text: str) -> None:
        """The client sent ``text`` (only if ``transcript``)."""

    def sent(session: object, text: str) -> None:
        """The server sent ``text`` (only if ``transcript``)."""

    def command_done(session: object, name: str, status: str, seconds: float) -> None:
        """A command finished with ``status`` (``OK``/``NO``/``BAD``, ``+OK``/``-ERR``)."""

    def login_done(session: object, user: str, mechanism: str, outcome: str) -> None:
        """A login attempt ended: ``outcome`` is ``"success"``, ``"failure"`` or
        ``"unavailable"`` (the directory did not answer)."""

    def session_closed(session: object) -> None:
        """The connection ended."""
