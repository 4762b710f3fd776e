"""The named profiles: pure data, no logic.

``exchange2010`` is the field defaults of :mod:`exchmail.profile.settings`;
the others are derived from it with :func:`dataclasses.replace`, naming
only the fields that differ.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

from exchmail.profile.settings import IMAPSettings, POP3Settings, Profile

EXCHANGE2010 = Profile("exchange2010", IMAPSettings(), POP3Settings())

EXCHANGE2007 = replace(EXCHANGE2010, name="exchange2007")

RFC3501 = Profile(
    "rfc3501",
    replace(
        EXCHANGE2010.imap,
        banner="exchmail IMAP4rev1 server ready",
        capability_in_greeting=True,
        capability_in_login_response=True,
        exact_rfc822_size=True,
        empty_envelope_fields_nil=False,
        lsub_percent_noselect_parent=True,
    ),
    replace(
        EXCHANGE2010.pop3,
        banner="exchmail POP3 server ready",
        max_command_size=255,
        exact_rfc822_size=True,
    ),
)

#: Every built-in profile by name.
PROFILES = MappingProxyType({p.name: p for p in (EXCHANGE2010, EXCHANGE2007, RFC3501)})

#: The names accepted by :func:`exchmail.profile.load_profile`, default first.
PROFILE_NAMES: tuple[str, ...] = ("exchange2010", "exchange2007", "rfc3501")
