"""The conformance profile: every Exchange-versus-RFC behaviour as a named setting.

Use :func:`load_profile` to get a frozen :class:`Profile` (a built-in one,
optionally with validated overrides); protocol code reads
``profile.imap.<field>`` and ``profile.pop3.<field>``.
"""

from exchmail.profile.builtin import PROFILE_NAMES
from exchmail.profile.loader import describe, load_profile
from exchmail.profile.settings import IMAPSettings, POP3Settings, Profile, setting

__all__ = [
    "PROFILE_NAMES",
    "IMAPSettings",
    "POP3Settings",
    "Profile",
    "describe",
    "load_profile",
    "setting",
]
