"""The POP3 half of the conformance profile (MS-STANXPOP3 against RFC 1939).

See :mod:`exchmail.profile.settings` for how settings are declared.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchmail.profile.fields import LoginType, ServiceSettings, SortOrder, setting


@dataclass(frozen=True, kw_only=True)
class POP3Settings(ServiceSettings):
    """How the POP3 service behaves where Exchange and RFC 1939 differ."""

    banner: str = setting(
        "The Microsoft Exchange POP3 service is ready.",
        ids=(),
        admin="Banner",
        rfc="1939 §4",
        doc="text of the +OK greeting",
    )
    sign_off: str = setting(
        "Microsoft Exchange Server 2010 POP3 server signing off.",
        ids=(),
        rfc="1939 §6",
        doc="text of the +OK answering QUIT",
    )
    login_type: LoginType = setting(
        LoginType.SECURE_LOGIN,
        ids=("V0010",),
        rfc="1939 §7, 2595 §4",
        admin="LoginType",
        doc="SecureLogin: USER/PASS and AUTH PLAIN refused before STLS; "
        "PlainTextAuthentication: AUTH PLAIN allowed in the clear; PlainTextLogin: both",
    )
    capabilities: tuple[str, ...] = setting(
        ("TOP", "UIDL", "SASL", "USER", "STLS"),
        ids=(),
        rfc="2449 §6",
        doc="CAPA order; SASL expands to the usable mechanisms and STLS appears only "
        "when it applies; extra_capabilities follow",
    )
    authenticated_timeout: int = setting(
        1800,
        ids=("V0002",),
        rfc="1939 §3",
        admin="AuthenticatedConnectionTimeout",
        minimum=1,
        doc="idle seconds before an authenticated session is closed",
    )
    preauthenticated_timeout: int = setting(
        60,
        ids=("V0002",),
        rfc="1939 §3",
        admin="PreAuthenticatedConnectionTimeout",
        minimum=1,
        doc="idle seconds before a not-yet-authenticated session is closed",
    )
    max_command_size: int = setting(
        512,
        ids=("2.1.2",),
        rfc="2449 §4",
        admin="MaxCommandSize",
        minimum=1,
        doc="longest command line in bytes, CRLF included",
    )
    exact_rfc822_size: bool = setting(
        False,
        ids=("2.1.4", "2.1.5"),
        rfc="1939 §5",
        admin="EnableExactRFC822Size",
        doc="report exact message sizes (CRLF form) in LIST/STAT rather than stored sizes",
    )
    liberal_whitespace: bool = setting(
        True,
        ids=("2.1.1",),
        rfc="1939 §3",
        doc="accept runs of spaces/TABs between keyword and arguments (else one SP only)",
    )
    max_argument_length: int = setting(
        0,
        ids=("2.1.2",),
        rfc="1939 §3",
        minimum=0,
        doc="longest argument in characters (0: no check; RFC 1939 says 40)",
    )
    exclusive_lock: bool = setting(
        False,
        ids=("2.1.3", "C0004"),
        rfc="1939 §4",
        doc="lock the maildrop against other POP3 sessions from login to QUIT",
    )
    autologout_notice: bool = setting(
        True,
        ids=("V0003",),
        rfc="1939 §3",
        doc="send an -ERR line before closing an idle session (RFC 1939: close silently)",
    )
    max_failed_logins: int = setting(
        4,
        ids=("C0005",),
        rfc="1939 §4",
        minimum=0,
        doc="failed USER/PASS or AUTH attempts before the session is dropped (0: no limit)",
    )
    message_retrieval_sort_order: SortOrder = setting(
        SortOrder.ASCENDING,
        ids=(),
        rfc="1939 §5",
        admin="MessageRetrievalSortOrder",
        doc="Ascending: message 1 is the oldest; Descending: message 1 is the newest "
        "(STAT/LIST/UIDL/RETR numbering)",
    )
    extra_capabilities: tuple[str, ...] = setting(
        (),
        ids=(),
        rfc="2449 §6",
        doc="capabilities listed by CAPA after TOP UIDL SASL USER [STLS] "
        "(only RESP-CODES, AUTH-RESP-CODE, PIPELINING are understood)",
    )
    sasl_mechanisms: tuple[str, ...] = setting(
        ("NTLM", "GSSAPI", "PLAIN"),
        ids=("E0002",),
        rfc="5034",
        doc="SASL mechanisms offered by AUTH, in order, of NTLM, GSSAPI, PLAIN, LOGIN, "
        "SCRAM-SHA-256, XOAUTH2, OAUTHBEARER (each only where it can work, as for IMAP)",
    )
    enable_gssapi_and_ntlm_auth: bool = setting(
        True,
        ids=("E0002",),
        rfc="5034",
        admin="EnableGSSAPIAndNTLMAuth",
        doc="offer NTLM and GSSAPI where sasl_mechanisms lists them and [ntlm] / [gssapi] "
        "are configured (SASL NTLM GSSAPI PLAIN, also before STLS)",
    )
    enable_oauth: bool = setting(
        False,
        ids=(),
        rfc="7628",
        doc="offer XOAUTH2 and OAUTHBEARER with [oauth] configured (added after the listed "
        "mechanisms unless sasl_mechanisms places them); Exchange 2007/2010 had neither",
    )
    max_connections: int = setting(
        2000,
        ids=(),
        admin="MaxConnections",
        minimum=0,
        doc="most simultaneous POP3 connections (0: no limit)",
    )
    max_connection_from_single_ip: int = setting(
        2000,
        ids=(),
        admin="MaxConnectionFromSingleIP",
        minimum=0,
        doc="most simultaneous POP3 connections from one address (0: no limit)",
    )
    max_connections_per_user: int = setting(
        16,
        ids=(),
        admin="MaxConnectionsPerUser",
        minimum=0,
        doc="most simultaneous logged-in POP3 sessions of one user (0: no limit)",
    )
