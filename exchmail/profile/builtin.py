"""The named profiles: pure data, no logic.

``exchange2010`` is the field defaults of :mod:`exchmail.profile.settings`;
the others are derived from it with :func:`dataclasses.replace`, naming
only the fields that differ.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from exchmail.profile.settings import IMAPSettings, ListReference, POP3Settings, Profile, TagSyntax

# NTLM and GSSAPI are offered where configured (EnableGSSAPIAndNTLMAuth, on by
# default in Exchange); bearer tokens (enable_oauth) are off in every profile
# here: Exchange 2007/2010 had none, the later profiles (modern, exchange2016)
# turn them on.
EXCHANGE2010 = Profile("exchange2010", IMAPSettings(), POP3Settings())

# Exchange 2007's documented Set-ImapSettings defaults that differ from 2010's.
EXCHANGE2007 = replace(
    EXCHANGE2010,
    name="exchange2007",
    imap=replace(
        EXCHANGE2010.imap,
        max_connection_from_single_ip=20,
        max_connections_per_user=10,
        sign_off="Microsoft Exchange Server 2007 IMAP4 server signing off.",
    ),
    # Set-PopSettings MaxCommandSize was 47 octets by default in 2007 (512 in 2010).
    pop3=replace(
        EXCHANGE2010.pop3,
        max_connection_from_single_ip=20,
        max_connections_per_user=10,
        max_command_size=47,
        sign_off="Microsoft Exchange Server 2007 POP3 server signing off.",
    ),
)

RFC3501 = Profile(
    "rfc3501",
    replace(
        EXCHANGE2010.imap,
        banner="exchmail IMAP4rev1 server ready",
        sign_off="exchmail IMAP4rev1 server signing off",
        capability_in_greeting=True,
        capability_in_login_response=True,
        exact_rfc822_size=True,
        empty_envelope_fields_nil=False,
        lsub_percent_noselect_parent=True,
        capabilities=(
            "IMAP4rev1",
            "AUTH",
            "SASL-IR",
            "LOGINDISABLED",
            "STARTTLS",
            "UIDPLUS",
            "CHILDREN",
            "IDLE",
            "NAMESPACE",
            "LITERAL+",
        ),
        sasl_ir=True,
        default_folders=(),
        liberal_whitespace=False,
        tag_syntax=TagSyntax.RFC3501,
        unsolicited_exists=False,
        advertise_logindisabled=True,
        client_keywords=True,
        seven_bit_output=False,
        case_insensitive_names=False,
        backslash_names_as_literal=False,
        wildcards_in_names=False,
        max_failed_logins=0,
        delete_with_children=True,
        subscribe_requires_existing=True,
        list_reference_without_delimiter=ListReference.CONCATENATE,
        notify_external_flag_changes=True,
        list_children_attributes=True,
        exists_after_expunge=False,
        search_charsets=("US-ASCII", "UTF-8"),
        max_search_keys=0,
        ignore_invalid_parameters=False,
        sasl_mechanisms=("SCRAM-SHA-256", "GSSAPI", "PLAIN"),
    ),
    replace(
        EXCHANGE2010.pop3,
        banner="exchmail POP3 server ready",
        sign_off="exchmail POP3 server signing off",
        max_command_size=255,
        exact_rfc822_size=True,
        liberal_whitespace=False,
        max_argument_length=40,
        exclusive_lock=True,
        autologout_notice=False,
        max_failed_logins=0,
        extra_capabilities=("RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"),
        sasl_mechanisms=("SCRAM-SHA-256", "GSSAPI", "PLAIN"),
    ),
)

# Strict RFC 3501 plus the extensions today's clients use, with Dovecot's
# defaults where RFC 3501 leaves a choice: what a user of Dovecot expects.
MODERN = replace(
    RFC3501,
    name="modern",
    imap=replace(
        RFC3501.imap,
        banner="exchmail IMAP4rev1 server ready",
        # Dovecot's imap_max_line_length: long ID, SEARCH and UID sets fit.
        max_command_size=65536,
        max_connections=0,
        max_connection_from_single_ip=0,
        max_connections_per_user=0,
        move=True,
        unselect=True,
        id=True,
        special_use=True,
        create_special_use=True,
        list_extended=True,
        list_status=True,
        appendlimit=True,
        status_size=True,
        quota=True,
        multiappend=True,
        binary=True,
        catenate=True,
        utf8_accept=True,  # and with it ENABLE
        compress_deflate=True,
        # issue 14: fast resynchronisation, server-side search, sort and threads
        condstore=True,
        qresync=True,
        esearch=True,
        searchres=True,
        within=True,
        sort=True,
        sort_display=True,
        esort=True,
        thread_orderedsubject=True,
        thread_references=True,
        context_search=True,
        context_sort=True,
        notify=True,
        imap4rev2=True,
        preview=True,
        capabilities=(
            "IMAP4rev1",
            "IMAP4rev2",
            "AUTH",
            "SASL-IR",
            "LOGINDISABLED",
            "STARTTLS",
            "UIDPLUS",
            "CHILDREN",
            "IDLE",
            "NAMESPACE",
            "LITERAL+",
        ),
        enable_oauth=True,  # bearer tokens where [oauth] is configured
        default_folders=(
            "Sent=\\Sent",
            "Drafts=\\Drafts",
            "Trash=\\Trash",
            "Junk=\\Junk",
            "Archive=\\Archive",
        ),
    ),
    pop3=replace(
        RFC3501.pop3,
        max_connections=0,
        max_connection_from_single_ip=0,
        max_connections_per_user=0,
        enable_oauth=True,
    ),
)

# Exchange 2010 plus what later Exchange versions (2013/2016/2019 and Exchange
# Online) are publicly seen to add; docs/conformance-imap.md gives the
# evidence for each setting.
EXCHANGE2016 = replace(
    EXCHANGE2010,
    name="exchange2016",
    imap=replace(
        EXCHANGE2010.imap,
        sign_off="Microsoft Exchange Server IMAP4 server signing off.",
        capabilities=(
            "IMAP4",
            "IMAP4rev1",
            "AUTH",
            "LOGINDISABLED",
            "STARTTLS",
            "SASL-IR",
            "UIDPLUS",
            "MOVE",
            "ID",
            "UNSELECT",
            "CHILDREN",
            "IDLE",
            "NAMESPACE",
            "LITERAL+",
        ),
        sasl_ir=True,
        move=True,
        id=True,
        unselect=True,
        id_fields=("name=Microsoft.Exchange.Imap4.Imap4Server",),
        list_children_attributes=True,
        enable_oauth=True,  # Exchange Online's AUTH=XOAUTH2, where [oauth] is configured
        default_folders=(
            "Sent Items=\\Sent",
            "Drafts=\\Drafts",
            "Deleted Items=\\Trash",
            "Junk Email=\\Junk",
            "Outbox",
            "Calendar",
            "Contacts",
            "Tasks",
            "Notes",
            "Journal",
        ),
    ),
    pop3=replace(EXCHANGE2010.pop3, enable_oauth=True),
)

#: Every built-in profile by name.
PROFILES = MappingProxyType({p.name: p for p in (EXCHANGE2010, EXCHANGE2007, RFC3501, MODERN, EXCHANGE2016)})

#: The names accepted by :func:`exchmail.profile.load_profile`, default first.
PROFILE_NAMES: tuple[str, ...] = ("exchange2010", "exchange2007", "rfc3501", "modern", "exchange2016")
