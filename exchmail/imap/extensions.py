"""The IMAP extensions a profile switches on one by one, and their capabilities.

Each extension is one boolean field of
:class:`~exchmail.profile.settings.IMAPSettings` (off in the Exchange
profiles and in ``rfc3501``).  What follows from the switch:

- CAPABILITY lists the extension's capability only when its setting is on
  (in the place the profile's ``capabilities`` tuple gives it, else after
  the listed ones);
- the parser refuses its commands and syntax as unknown (BAD) when it is
  off: :class:`~exchmail.imap.commands_args.ParseOptions` carries the set
  of enabled capability names.

``ENABLE`` (RFC 5161) is advertised when an extension that needs it is
on (UTF8=ACCEPT, RFC 6855 §3).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from exchmail.profile.settings import IMAPSettings

#: capability name -> the IMAPSettings field that switches it on, in the
#: order CAPABILITY lists them when the profile's tuple does not name them.
EXTENSION_SETTINGS: dict[str, str] = {
    "SASL-IR": "sasl_ir",
    "LITERAL-": "literal_minus",
    "ID": "id",
    "UNSELECT": "unselect",
    "MOVE": "move",
    "MULTIAPPEND": "multiappend",
    "BINARY": "binary",
    "CATENATE": "catenate",
    "UTF8=ACCEPT": "utf8_accept",
    "SPECIAL-USE": "special_use",
    "CREATE-SPECIAL-USE": "create_special_use",
    "LIST-EXTENDED": "list_extended",
    "LIST-STATUS": "list_status",
    "APPENDLIMIT": "appendlimit",
    "STATUS=SIZE": "status_size",
    "QUOTA": "quota",
    "QUOTA=RES-STORAGE": "quota",
    "COMPRESS=DEFLATE": "compress_deflate",
    "CONDSTORE": "condstore",
    "QRESYNC": "qresync",
    "ESEARCH": "esearch",
    "SEARCHRES": "searchres",
    "WITHIN": "within",
    "SORT": "sort",
    "SORT=DISPLAY": "sort_display",
    "ESORT": "esort",
    "THREAD=ORDEREDSUBJECT": "thread_orderedsubject",
    "THREAD=REFERENCES": "thread_references",
    "CONTEXT=SEARCH": "context_search",
    "CONTEXT=SORT": "context_sort",
    "NOTIFY": "notify",
    "IMAP4rev2": "imap4rev2",
    "PREVIEW": "preview",
}
#: Extensions that are used through ENABLE (RFC 5161).
NEEDS_ENABLE = frozenset({"UTF8=ACCEPT", "CONDSTORE", "QRESYNC", "IMAP4rev2"})


@functools.lru_cache(maxsize=64)
def enabled_extensions(settings: IMAPSettings) -> frozenset[str]:
    """The capability names of the extensions ``settings`` switches on
    (``ENABLE`` included when one of them needs it)."""
    names = {name for name, field in EXTENSION_SETTINGS.items() if getattr(settings, field)}
    if names & NEEDS_ENABLE:
        names.add("ENABLE")
    return frozenset(names)


def gated_capabilities() -> frozenset[str]:
    """Every capability name this module decides on (listed only when on)."""
    return frozenset(EXTENSION_SETTINGS) | {"ENABLE"}


def wire_form(name: str, settings: IMAPSettings) -> bytes:
    """How CAPABILITY spells an extension: APPENDLIMIT carries the limit (RFC 7889)."""
    if name == "APPENDLIMIT":
        return b"APPENDLIMIT=%d" % settings.max_literal_size
    return name.encode("ascii")


def extra_capabilities(settings: IMAPSettings, listed: Iterable[str]) -> list[bytes]:
    """The enabled extensions the profile's ``capabilities`` tuple does not
    name, to be advertised after the listed ones (ENABLE first).  LITERAL-
    takes the place of LITERAL+ (RFC 7888: never both)."""
    enabled = enabled_extensions(settings)
    named = set(listed)
    order = ["ENABLE", *EXTENSION_SETTINGS]
    return [wire_form(name, settings) for name in order if name in enabled and name not in named]
