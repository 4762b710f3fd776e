"""The conformance profile as data: one frozen dataclass field per behaviour.

Every place where Exchange 2007/2010 and RFC 3501/1939 disagree is one
field of :class:`IMAPSettings` (here) or :class:`POP3Settings`
(:mod:`exchmail.profile.pop3settings`), declared with :func:`setting`
(:mod:`exchmail.profile.fields`, with the enumerations and the fields both
services share).  The field's metadata records

- ``ids``: the statement IDs of ``MS-STANXIMAP`` / ``MS-STANXPOP3`` (or
  section numbers) that the field decides,
- ``rfc``: the RFC section concerned,
- ``admin``: the Exchange administration setting (``Set-ImapSettings`` /
  ``Set-PopSettings`` parameter) that controls it, if any,
- ``doc``: one line saying what the field does.

Field defaults are the Exchange 2010 behaviour; the named profiles of
:mod:`exchmail.profile.builtin` are plain instances built from them with
:func:`dataclasses.replace`.  Adding a behaviour is one field in its class (and one
line in ``builtin.py`` if the strict-RFC value differs).

Protocol code reads named fields at the start of a command and never asks
which profile is in use.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchmail.profile.fields import (
    METADATA_KEYS,
    ListReference,
    LoginType,
    ServiceSettings,
    SortOrder,
    TagSyntax,
    setting,
)
from exchmail.profile.pop3settings import POP3Settings

__all__ = [
    "METADATA_KEYS",
    "SECTIONS",
    "IMAPSettings",
    "ListReference",
    "LoginType",
    "POP3Settings",
    "Profile",
    "ServiceSettings",
    "SortOrder",
    "TagSyntax",
    "setting",
]


@dataclass(frozen=True, kw_only=True)
class IMAPSettings(ServiceSettings):
    """How the IMAP4rev1 service behaves where Exchange and RFC 3501 differ."""

    banner: str = setting(
        "The Microsoft Exchange IMAP4 service is ready.",
        ids=(),
        admin="Banner",
        rfc="3501 §7.1.1",
        doc="text of the untagged OK greeting",
    )
    sign_off: str = setting(
        "Microsoft Exchange Server 2010 IMAP4 server signing off.",
        ids=(),
        rfc="3501 §6.1.3",
        doc="text of the untagged BYE answering LOGOUT",
    )
    login_type: LoginType = setting(
        LoginType.SECURE_LOGIN,
        ids=("V0022",),
        rfc="3501 §6.2.2, §6.2.3",
        admin="LoginType",
        doc="SecureLogin: no plaintext password (LOGIN, AUTHENTICATE PLAIN) before TLS; "
        "PlainTextAuthentication: AUTHENTICATE PLAIN allowed in the clear; "
        "PlainTextLogin: both allowed",
    )
    capability_in_greeting: bool = setting(
        False,
        ids=("V0050", "V0020"),
        rfc="3501 §7.1, §6.2.1",
        doc="send a [CAPABILITY ...] response code in the greeting",
    )
    capability_in_login_response: bool = setting(
        False,
        ids=("V0023", "V0024"),
        rfc="3501 §6.2.3",
        doc="send a [CAPABILITY ...] response code in the tagged OK of LOGIN/AUTHENTICATE",
    )
    authenticated_timeout: int = setting(
        1800,
        ids=("V0015",),
        rfc="3501 §5.4",
        admin="AuthenticatedConnectionTimeout",
        minimum=1,
        doc="idle seconds before an authenticated session is closed",
    )
    preauthenticated_timeout: int = setting(
        60,
        ids=("E0002",),
        rfc="3501 §5.4",
        admin="PreAuthenticatedConnectionTimeout",
        minimum=1,
        doc="idle seconds before a not-yet-authenticated session is closed",
    )
    max_command_size: int = setting(
        10240,
        ids=(),
        admin="MaxCommandSize",
        minimum=1,
        doc="longest command line in bytes (literals not counted)",
    )
    max_literal_size: int = setting(
        52428800, ids=(), minimum=0, doc="largest literal in bytes, i.e. the largest message APPEND accepts"
    )
    exact_rfc822_size: bool = setting(
        False,
        ids=("V0006", "V0038", "V0039", "V0043"),
        rfc="3501 §2.3.4",
        admin="EnableExactRFC822Size",
        doc="report the exact RFC822.SIZE (CRLF form) rather than the stored size",
    )
    empty_envelope_fields_nil: bool = setting(
        True,
        ids=("V0055",),
        rfc="3501 §7.4.2",
        doc="render empty ENVELOPE fields as NIL rather than an empty string",
    )
    lsub_percent_noselect_parent: bool = setting(
        False,
        ids=("2.1.4",),
        rfc="3501 §6.3.9",
        doc="LSUB '%' also returns an unsubscribed parent of a subscribed name, as \\Noselect",
    )
    capabilities: tuple[str, ...] = setting(
        (
            "IMAP4",
            "IMAP4rev1",
            "AUTH",
            "LOGINDISABLED",
            "STARTTLS",
            "UIDPLUS",
            "CHILDREN",
            "IDLE",
            "NAMESPACE",
            "LITERAL+",
        ),
        ids=("V0045",),
        rfc="3501 §7.2.1",
        doc="CAPABILITY order; AUTH expands to the SASL mechanisms, and LOGINDISABLED, "
        "STARTTLS and CHILDREN appear only when they apply",
    )
    liberal_whitespace: bool = setting(
        True,
        ids=("2.1.6", "2.1.7", "V0003"),
        rfc="3501 §9",
        doc="accept TABs and runs of spaces/TABs wherever a command needs one SP",
    )
    tag_syntax: TagSyntax = setting(
        TagSyntax.ANY_PRINTABLE,
        ids=("C0001",),
        rfc="3501 §2.2.1, §9",
        doc="any_printable: any printable tag but '+' and '*'; rfc3501: ASTRING-CHARs but '+'",
    )
    unsolicited_exists: bool = setting(
        True,
        ids=("V0002", "V0014"),
        rfc="3501 §5.3",
        doc="tell a selected, idle client of new messages at once (EXISTS/RECENT), "
        "without waiting for its next command",
    )
    advertise_logindisabled: bool = setting(
        False,
        ids=("2.1.5",),
        rfc="3501 §6.2.3, §7.2.1",
        doc="advertise LOGINDISABLED while LOGIN is refused (real Exchange 2010 does; "
        "the seed says not by default)",
    )
    server_keywords: tuple[str, ...] = setting(
        ("$MDNSent",),
        ids=("E0001", "V0052"),
        rfc="3501 §2.3.2",
        doc="keywords the server defines; listed in FLAGS and PERMANENTFLAGS",
    )
    client_keywords: bool = setting(
        False,
        ids=("V0005", "V0037", "V0040"),
        rfc="3501 §2.3.2",
        doc="let clients define their own keywords (PERMANENTFLAGS with \\*)",
    )
    seven_bit_output: bool = setting(
        True,
        ids=("V0007",),
        rfc="3501 §4.3.1",
        doc="never send 8-bit octets: messages with 8-bit data are sent re-encoded "
        "(quoted-printable/base64 bodies, RFC 2047 headers)",
    )
    case_insensitive_names: bool = setting(
        True,
        ids=("V0008",),
        rfc="3501 §5.1",
        doc="mailbox names other than INBOX match without regard to case",
    )
    backslash_names_as_literal: bool = setting(
        True,
        ids=("V0009", "V0028", "V0031"),
        rfc="3501 §5.1, §6.3.8",
        doc="send mailbox names containing a backslash as literals (else quoted, escaped)",
    )
    wildcards_in_names: bool = setting(
        True, ids=("V0010",), rfc="3501 §5.1", doc="allow '*' and '%' in mailbox names (sent quoted)"
    )
    max_failed_logins: int = setting(
        4,
        ids=("V0058",),
        rfc="3501 §11.2",
        minimum=0,
        doc="failed LOGIN/AUTHENTICATE attempts before the session is dropped (0: no limit)",
    )
    delete_with_children: bool = setting(
        False,
        ids=("V0026",),
        rfc="3501 §6.3.4",
        doc="DELETE a mailbox that has inferiors (they stay); else refused",
    )
    subscribe_requires_existing: bool = setting(
        False, ids=("V0027",), rfc="3501 §6.3.6", doc="SUBSCRIBE checks that the mailbox exists"
    )
    list_reference_without_delimiter: ListReference = setting(
        ListReference.NO_RESULTS,
        ids=("V0029",),
        rfc="3501 §6.3.8",
        doc="LIST with a reference not ending in '/': no_results (Exchange), join "
        "(treat it as a level) or concatenate (reference + pattern, as Dovecot and Cyrus)",
    )
    notify_external_flag_changes: bool = setting(
        False,
        ids=("V0044",),
        rfc="3501 §6.4.6, §7.4.2",
        doc="send untagged FETCH FLAGS for changes made by other sessions or protocols",
    )
    list_children_attributes: bool = setting(
        False,
        ids=("V0051",),
        rfc="3348",
        doc="\\HasChildren/\\HasNoChildren in LIST and CHILDREN advertised (observed "
        "Exchange 2010 does; the seed names only \\Marked and \\Noselect)",
    )
    exists_after_expunge: bool = setting(
        True,
        ids=("V0053",),
        rfc="3501 §7.4.1",
        doc="send '* n EXISTS' with the new size when EXPUNGE completes",
    )
    search_charsets: tuple[str, ...] = setting(
        ("US-ASCII",),
        ids=("V0035", "V0036"),
        rfc="3501 §6.4.4",
        doc="charsets SEARCH accepts; others get NO [BADCHARSET (...)] listing these",
    )
    max_search_keys: int = setting(
        10,
        ids=("V0041",),
        rfc="3501 §6.4.4",
        minimum=0,
        doc="most search keys in one SEARCH (0: no limit); more get NO [LIMIT]",
    )
    max_connections: int = setting(
        2000,
        ids=(),
        admin="MaxConnections",
        minimum=0,
        doc="most simultaneous IMAP connections (0: no limit)",
    )
    max_connection_from_single_ip: int = setting(
        2000,
        ids=(),
        admin="MaxConnectionFromSingleIP",
        minimum=0,
        doc="most simultaneous IMAP connections from one address (0: no limit)",
    )
    max_connections_per_user: int = setting(
        16,
        ids=(),
        admin="MaxConnectionsPerUser",
        minimum=0,
        doc="most simultaneous logged-in IMAP sessions of one user (0: no limit)",
    )
    sasl_mechanisms: tuple[str, ...] = setting(
        ("NTLM", "GSSAPI", "PLAIN"),
        ids=(),
        rfc="3501 §6.2.2",
        doc="SASL mechanisms offered, in order, of NTLM, GSSAPI, PLAIN, LOGIN, SCRAM-SHA-256, "
        "XOAUTH2, OAUTHBEARER (each only where it can work: NTLM with [ntlm], GSSAPI "
        "with [gssapi], bearer tokens with [oauth], SCRAM with a checker that keeps "
        "SCRAM keys; PLAIN, LOGIN and bearer tokens obey auth.login_type)",
    )
    enable_gssapi_and_ntlm_auth: bool = setting(
        True,
        ids=("E0003", "E0004"),
        rfc="3501 §6.2.2",
        admin="EnableGSSAPIAndNTLMAuth",
        doc="offer NTLM and GSSAPI where sasl_mechanisms lists them and [ntlm] / [gssapi] "
        "are configured (AUTH=NTLM AUTH=GSSAPI AUTH=PLAIN, also before STARTTLS)",
    )
    enable_oauth: bool = setting(
        False,
        ids=(),
        rfc="7628",
        doc="offer XOAUTH2 and OAUTHBEARER with [oauth] configured (added after the listed "
        "mechanisms unless sasl_mechanisms places them); Exchange 2007/2010 had neither",
    )
    ignore_invalid_parameters: bool = setting(
        True,
        ids=("2.3",),
        rfc="3501 §9",
        doc="ignore unknown STATUS items and unsupported APPEND flags instead of BAD",
    )
    # -- extensions beyond RFC 3501 (off in the Exchange profiles and rfc3501) --------
    multiappend: bool = setting(
        False, ids=(), rfc="3502", doc="MULTIAPPEND: several messages in one APPEND, stored all or none"
    )
    binary: bool = setting(
        False,
        ids=(),
        rfc="3516",
        doc="BINARY: FETCH BINARY[]/BINARY.PEEK[]/BINARY.SIZE[] (decoded content, also "
        "under seven_bit_output) and APPEND with literal8 ~{n}",
    )
    catenate: bool = setting(
        False,
        ids=(),
        rfc="4469",
        doc="CATENATE: APPEND built from literals and URLs of this user's own messages",
    )
    utf8_accept: bool = setting(
        False,
        ids=(),
        rfc="6855",
        doc="UTF8=ACCEPT (and ENABLE for it): after ENABLE UTF8=ACCEPT, mailbox names are "
        "UTF-8 both ways and quoted strings must be valid UTF-8",
    )
    utf8_append_needs_enable: bool = setting(
        False,
        ids=(),
        rfc="6855 §4",
        doc="with UTF8=ACCEPT advertised, refuse (NO) an APPEND whose header has 8-bit "
        "octets unless the client enabled UTF8=ACCEPT (the RFC's MUST; Dovecot accepts)",
    )
    compress_deflate: bool = setting(
        False,
        ids=(),
        rfc="4978",
        doc="COMPRESS=DEFLATE: zlib compression of the session after COMPRESS DEFLATE",
    )
    sasl_ir: bool = setting(
        False,
        ids=(),
        rfc="4959",
        doc="SASL-IR advertised (initial responses in AUTHENTICATE are accepted in every profile)",
    )
    move: bool = setting(
        False,
        ids=(),
        rfc="6851",
        doc="MOVE: MOVE and UID MOVE (untagged COPYUID, then the EXPUNGE responses)",
    )
    unselect: bool = setting(
        False, ids=(), rfc="3691", doc="UNSELECT: leave the selected mailbox without expunging"
    )
    id: bool = setting(False, ids=(), rfc="2971", doc="ID: the ID command (answer: id_fields)")
    id_fields: tuple[str, ...] = setting(
        ("name=exchmail",),
        ids=(),
        rfc="2971 §3.3",
        doc='the server\'s answer to ID, as "key=value" entries (none: ID NIL)',
    )
    special_use: bool = setting(
        False,
        ids=(),
        rfc="6154",
        doc="SPECIAL-USE: \\Sent, \\Drafts, \\Trash, \\Junk, \\Archive... in LIST (from "
        "default_folders, and from CREATE-SPECIAL-USE where the store keeps them)",
    )
    create_special_use: bool = setting(
        False, ids=(), rfc="6154 §3", doc="CREATE-SPECIAL-USE: CREATE name (USE (\\Sent))"
    )
    list_extended: bool = setting(
        False,
        ids=(),
        rfc="5258",
        doc="LIST-EXTENDED: selection options (SUBSCRIBED, REMOTE, RECURSIVEMATCH), "
        "several patterns, RETURN (SUBSCRIBED CHILDREN)",
    )
    list_status: bool = setting(
        False, ids=(), rfc="5819", doc="LIST-STATUS: LIST ... RETURN (STATUS (items))"
    )
    literal_minus: bool = setting(
        False,
        ids=(),
        rfc="7888",
        doc="LITERAL- advertised instead of LITERAL+: non-synchronizing literals of at most "
        "4096 octets (larger ones get BAD)",
    )
    appendlimit: bool = setting(
        False,
        ids=(),
        rfc="7889",
        doc="APPENDLIMIT=<max_literal_size> advertised, and the STATUS item APPENDLIMIT",
    )
    status_size: bool = setting(
        False, ids=(), rfc="8438", doc="STATUS=SIZE: the STATUS item SIZE (the mailbox's octets)"
    )
    quota: bool = setting(
        False,
        ids=(),
        rfc="9208",
        doc="QUOTA and QUOTA=RES-STORAGE: GETQUOTA, GETQUOTAROOT over the [quota] limits "
        '(one root "" per account), STATUS DELETED-STORAGE',
    )
    condstore: bool = setting(
        False,
        ids=(),
        rfc="7162 §3.1",
        doc="CONDSTORE: MODSEQ per message, HIGHESTMODSEQ (SELECT, STATUS), FETCH "
        "CHANGEDSINCE, STORE UNCHANGEDSINCE ([MODIFIED]), SEARCH MODSEQ; NOMODSEQ for "
        "stores that keep no MODSEQs",
    )
    qresync: bool = setting(
        False,
        ids=(),
        rfc="7162 §3.2",
        doc="QRESYNC (after ENABLE QRESYNC): SELECT/EXAMINE (QRESYNC (...)) with VANISHED "
        "(EARLIER), UID FETCH (CHANGEDSINCE n VANISHED), VANISHED instead of EXPUNGE",
    )
    esearch: bool = setting(
        False,
        ids=(),
        rfc="4731",
        doc="ESEARCH: SEARCH RETURN (MIN MAX ALL COUNT) answered with an ESEARCH response",
    )
    searchres: bool = setting(
        False,
        ids=(),
        rfc="5182",
        doc="SEARCHRES: SEARCH RETURN (SAVE) and '$' as a sequence set for the saved result",
    )
    within: bool = setting(
        False, ids=(), rfc="5032", doc="WITHIN: the SEARCH keys OLDER n and YOUNGER n (seconds)"
    )
    sort: bool = setting(
        False,
        ids=(),
        rfc="5256 §3",
        doc="SORT and UID SORT (ARRIVAL CC DATE FROM REVERSE SIZE SUBJECT TO) with "
        "i;unicode-casemap collation and RFC 5256 base subjects",
    )
    sort_display: bool = setting(
        False, ids=(), rfc="5957", doc="SORT=DISPLAY: the sort keys DISPLAYFROM and DISPLAYTO"
    )
    esort: bool = setting(
        False, ids=(), rfc="5267 §3", doc="ESORT: SORT RETURN (MIN MAX ALL COUNT) as ESEARCH"
    )
    thread_orderedsubject: bool = setting(False, ids=(), rfc="5256 §3", doc="THREAD=ORDEREDSUBJECT")
    thread_references: bool = setting(
        False, ids=(), rfc="5256 §3", doc="THREAD=REFERENCES (the RFC's six steps)"
    )
    context_search: bool = setting(
        False,
        ids=(),
        rfc="5267 §4",
        doc="CONTEXT=SEARCH: SEARCH RETURN (PARTIAL m:n) and (UPDATE) with ADDTO/REMOVEFROM "
        "notifications, CANCELUPDATE",
    )
    context_sort: bool = setting(False, ids=(), rfc="5267 §4", doc="CONTEXT=SORT: SORT RETURN (PARTIAL m:n)")
    notify: bool = setting(
        False,
        ids=(),
        rfc="5465",
        doc="NOTIFY: NOTIFY SET/NONE for the selected mailbox and the personal namespace "
        "(STATUS updates of other mailboxes)",
    )
    preview: bool = setting(
        False,
        ids=(),
        rfc="8970",
        doc="PREVIEW: the FETCH item PREVIEW (and PREVIEW (LAZY)): up to 200 characters "
        "of the first text part",
    )
    imap4rev2: bool = setting(
        False,
        ids=(),
        rfc="9051",
        doc="IMAP4rev2 advertised beside IMAP4rev1; ENABLE IMAP4rev2 switches the session to "
        "rev2 rules (no \\Recent, ESEARCH replies to SEARCH); rev1 clients see no change",
    )
    default_folders: tuple[str, ...] = setting(
        (
            "Sent Items=\\Sent",
            "Drafts=\\Drafts",
            "Deleted Items=\\Trash",
            "Junk E-Mail=\\Junk",
            "Outbox",
            "Calendar",
            "Contacts",
            "Tasks",
            "Notes",
            "Journal",
        ),
        ids=(),
        rfc="6154 §2",
        doc="folders made at an account's first login (after a start) when missing; existing "
        'ones are never touched; each "Name" or "Name=\\Use" (its SPECIAL-USE attribute)',
    )


@dataclass(frozen=True)
class Profile:
    """A named, complete set of behaviours for both services."""

    name: str
    imap: IMAPSettings
    pop3: POP3Settings


#: The settings classes by the prefix used in override keys.
SECTIONS: dict[str, type[IMAPSettings | POP3Settings]] = {
    "imap": IMAPSettings,
    "pop3": POP3Settings,
}
