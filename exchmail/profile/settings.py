"""The conformance profile as data: one frozen dataclass field per behaviour.

Every place where Exchange 2007/2010 and RFC 3501/1939 disagree is one
field of :class:`IMAPSettings` or :class:`POP3Settings`, declared with
:func:`setting`.  The field's metadata records

- ``ids``: the statement IDs of ``MS-STANXIMAP`` / ``MS-STANXPOP3`` (or
  section numbers) that the field decides,
- ``rfc``: the RFC section concerned,
- ``admin``: the Exchange administration setting (``Set-ImapSettings`` /
  ``Set-PopSettings`` parameter) that controls it, if any,
- ``doc``: one line saying what the field does.

Field defaults are the Exchange 2010 behaviour; the named profiles of
:mod:`exchmail.profile.builtin` are plain instances built from them with
:func:`dataclasses.replace`.  Adding a behaviour is one line here (and one
line in ``builtin.py`` if the strict-RFC value differs).

Protocol code reads named fields at the start of a command and never asks
which profile is in use.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: The metadata keys :func:`setting` records on a field.
METADATA_KEYS = ("ids", "rfc", "admin", "doc", "minimum")


def setting(default: Any, *, ids: tuple[str, ...], rfc: str = "", admin: str = "",
            doc: str = "", minimum: int | None = None) -> Any:
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
    return dataclasses.field(default=default, metadata={
        "ids": tuple(ids), "rfc": rfc, "admin": admin, "doc": doc, "minimum": minimum,
    })


@dataclass(frozen=True, kw_only=True)
class IMAPSettings:
    """How the IMAP4rev1 service behaves where Exchange and RFC 3501 differ."""

    banner: str = setting(
        "The Microsoft Exchange IMAP4 service is ready.", ids=(),
        rfc="3501 §7.1.1", doc="text of the untagged OK greeting")
    capability_in_greeting: bool = setting(
        False, ids=("V0050",), rfc="3501 §7.1",
        doc="send a [CAPABILITY ...] response code in the greeting")
    capability_in_login_response: bool = setting(
        False, ids=("V0023", "V0024"), rfc="3501 §6.2.3",
        doc="send a [CAPABILITY ...] response code in the tagged OK of LOGIN/AUTHENTICATE")
    authenticated_timeout: int = setting(
        1800, ids=("V0015",), rfc="3501 §5.4", admin="AuthenticatedConnectionTimeout",
        minimum=1, doc="idle seconds before an authenticated session is closed")
    preauthenticated_timeout: int = setting(
        60, ids=("E0002",), rfc="3501 §5.4", admin="PreAuthenticatedConnectionTimeout",
        minimum=1, doc="idle seconds before a not-yet-authenticated session is closed")
    max_command_size: int = setting(
        10240, ids=(), admin="MaxCommandSize", minimum=1,
        doc="longest command line in bytes (literals not counted)")
    max_literal_size: int = setting(
        52428800, ids=(), minimum=0,
        doc="largest literal in bytes, i.e. the largest message APPEND accepts")
    exact_rfc822_size: bool = setting(
        False, ids=("V0006", "V0038", "V0039", "V0043"), rfc="3501 §2.3.4",
        admin="EnableExactRFC822Size",
        doc="report the exact RFC822.SIZE (CRLF form) rather than the stored size")
    empty_envelope_fields_nil: bool = setting(
        True, ids=("V0055",), rfc="3501 §7.4.2",
        doc="render empty ENVELOPE fields as NIL rather than an empty string")
    lsub_percent_noselect_parent: bool = setting(
        False, ids=("2.1.4",), rfc="3501 §6.3.9",
        doc="LSUB '%' also returns an unsubscribed parent of a subscribed name, as \\Noselect")
    capabilities: tuple[str, ...] = setting(
        ("UIDPLUS", "CHILDREN", "IDLE", "NAMESPACE", "LITERAL+"), ids=(),
        rfc="3501 §6.1.1",
        doc="extensions advertised after IMAP4 IMAP4rev1 and AUTH=..., in order")


@dataclass(frozen=True, kw_only=True)
class POP3Settings:
    """How the POP3 service behaves where Exchange and RFC 1939 differ."""

    banner: str = setting(
        "The Microsoft Exchange POP3 service is ready.", ids=(),
        rfc="1939 §4", doc="text of the +OK greeting")
    authenticated_timeout: int = setting(
        1800, ids=(), rfc="1939 §3", admin="AuthenticatedConnectionTimeout",
        minimum=1, doc="idle seconds before an authenticated session is closed")
    preauthenticated_timeout: int = setting(
        60, ids=(), rfc="1939 §3", admin="PreAuthenticatedConnectionTimeout",
        minimum=1, doc="idle seconds before a not-yet-authenticated session is closed")
    max_command_size: int = setting(
        512, ids=(), rfc="2449 §4", admin="MaxCommandSize", minimum=1,
        doc="longest command line in bytes")
    exact_rfc822_size: bool = setting(
        False, ids=(), rfc="1939 §5", admin="EnableExactRFC822Size",
        doc="report exact message sizes (CRLF form) in LIST/STAT rather than stored sizes")


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
