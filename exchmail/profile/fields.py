"""The building blocks of the conformance profile: :func:`setting`, the
enumerations settings take, and :class:`ServiceSettings` (what the IMAP and
POP3 services share).  See :mod:`exchmail.profile.settings`.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

#: The metadata keys :func:`setting` records on a field.
METADATA_KEYS = ("ids", "rfc", "admin", "doc", "minimum")


def setting(
    default: Any,
    *,
    ids: tuple[str, ...],
    rfc: str = "",
    admin: str = "",
    doc: str = "",
    minimum: int | None = None,
) -> Any:
    """Declare one profile setting: a dataclass field with documented metadata.

    :param default: the Exchange 2010 value (must be immutable).
    :param ids: statement IDs decided by this setting (may be empty for
        administrative limits that no statement covers).
    :param rfc: the RFC section concerned, e.g. ``"3501 §2.3.4"``.
    :param admin: the Exchange administration parameter name, usable as an
        override key in configuration files.
    :param doc: a one-line description shown by ``exchmail profile show``.
    :param minimum: for integer settings, the smallest accepted value.
    """
    return dataclasses.field(
        default=default,
        metadata={
            "ids": tuple(ids),
            "rfc": rfc,
            "admin": admin,
            "doc": doc,
            "minimum": minimum,
        },
    )


class TagSyntax(str, enum.Enum):
    """Which command tags are accepted (MS-STANXIMAP C0001)."""

    ANY_PRINTABLE = "any_printable"
    RFC3501 = "rfc3501"


class SortOrder(str, enum.Enum):
    """POP3 message numbering (Set-PopSettings MessageRetrievalSortOrder)."""

    ASCENDING = "Ascending"
    DESCENDING = "Descending"


class ListReference(str, enum.Enum):
    """How LIST treats a reference that does not end with the delimiter (V0029)."""

    #: Nothing is listed (Exchange).
    NO_RESULTS = "no_results"
    #: The reference is a level: ``LIST "a" "%"`` lists ``a/x``.
    JOIN = "join"
    #: Reference and pattern are concatenated, as Dovecot and Cyrus do:
    #: ``LIST "a" "*"`` lists ``a`` itself, ``a/x`` and ``ab``.
    CONCATENATE = "concatenate"


class LoginType(str, enum.Enum):
    """When passwords may cross the wire (Set-ImapSettings/Set-PopSettings LoginType)."""

    #: Plaintext LOGIN / USER+PASS and plaintext SASL allowed without TLS.
    PLAIN_TEXT_LOGIN = "PlainTextLogin"
    #: Plaintext SASL (AUTHENTICATE PLAIN) allowed without TLS; LOGIN / USER+PASS not.
    PLAIN_TEXT_AUTHENTICATION = "PlainTextAuthentication"
    #: No password in the clear before TLS (the Exchange default).
    SECURE_LOGIN = "SecureLogin"


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    """What IMAP and POP3 settings have in common (each service has its own values).

    Session code shared by both protocols reads only these fields; each
    service class redeclares a field where its default, statement IDs or
    description differ.
    """

    banner: str = setting("", ids=(), admin="Banner", doc="text of the greeting")
    sign_off: str = setting("", ids=(), doc="text of the goodbye at LOGOUT/QUIT")
    login_type: LoginType = setting(
        LoginType.SECURE_LOGIN,
        ids=(),
        admin="LoginType",
        doc="PlainTextLogin, PlainTextAuthentication or SecureLogin (no password in the clear before TLS)",
    )
    authenticated_timeout: int = setting(
        1800,
        ids=(),
        admin="AuthenticatedConnectionTimeout",
        minimum=1,
        doc="idle seconds before an authenticated session is closed",
    )
    preauthenticated_timeout: int = setting(
        60,
        ids=(),
        admin="PreAuthenticatedConnectionTimeout",
        minimum=1,
        doc="idle seconds before a not-yet-authenticated session is closed",
    )
    max_command_size: int = setting(
        512, ids=(), admin="MaxCommandSize", minimum=1, doc="longest command line in bytes"
    )
    exact_rfc822_size: bool = setting(
        False,
        ids=(),
        admin="EnableExactRFC822Size",
        doc="report exact message sizes (CRLF form) rather than stored sizes",
    )
    liberal_whitespace: bool = setting(
        True, ids=(), doc="accept runs of spaces/TABs where one SP is required"
    )
    max_failed_logins: int = setting(
        4, ids=(), minimum=0, doc="failed login attempts before the session is dropped (0: no limit)"
    )
    sasl_mechanisms: tuple[str, ...] = setting(
        ("NTLM", "GSSAPI", "PLAIN"), ids=(), doc="SASL mechanisms offered"
    )
    enable_gssapi_and_ntlm_auth: bool = setting(
        True,
        ids=(),
        admin="EnableGSSAPIAndNTLMAuth",
        doc="offer NTLM and GSSAPI (when [ntlm] / [gssapi] are configured)",
    )
    enable_oauth: bool = setting(
        False, ids=(), doc="offer XOAUTH2 and OAUTHBEARER bearer tokens (when [oauth] is configured)"
    )
    max_connections: int = setting(
        2000, ids=(), admin="MaxConnections", minimum=0, doc="most simultaneous connections (0: no limit)"
    )
    max_connection_from_single_ip: int = setting(
        2000,
        ids=(),
        admin="MaxConnectionFromSingleIP",
        minimum=0,
        doc="most simultaneous connections from one address (0: no limit)",
    )
    max_connections_per_user: int = setting(
        16,
        ids=(),
        admin="MaxConnectionsPerUser",
        minimum=0,
        doc="most simultaneous logged-in sessions of one user (0: no limit)",
    )
