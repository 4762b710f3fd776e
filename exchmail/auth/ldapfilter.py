"""Values in LDAP search filters (RFC 4515): what keeps a login name from
changing the meaning of the filter it is put into.
"""

from __future__ import annotations


def escape_filter_value(value: str) -> str:
    """``value`` escaped for use inside an LDAP filter (RFC 4515 section 3).

    ``*``, ``(``, ``)``, ``\\`` and NUL become ``\\2a``, ``\\28``, ``\\29``,
    ``\\5c`` and ``\\00``; everything else (UTF-8 included) stays as it is.
    """
    return "".join(f"\\{ord(c):02x}" if c in "*()\\\x00" else c for c in value)


def user_filter(template: str, user: str) -> str:
    """The search filter for ``user``: ``template`` with ``{user}`` replaced, escaped."""
    return template.replace("{user}", escape_filter_value(user))
