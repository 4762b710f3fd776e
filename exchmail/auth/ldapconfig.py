"""LDAPConfig: the ``[ldap]`` table, as the LDAP checker needs it.

Kept apart from :mod:`exchmail.auth.ldap` so that reading a configuration
never imports the optional ``ldap3`` package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LDAPConfig:
    """The ``[ldap]`` table: the directory that ``auth.backend = "ldap"`` uses."""

    servers: tuple[str, ...]
    base_dn: str
    user_filter: str = "(&(objectClass=inetOrgPerson)(uid={user}))"
    scope: str = "subtree"
    start_tls: bool = False
    ca_file: Path | None = None
    verify_hostname: bool = True
    bind_dn: str = ""
    bind_password: str = ""
    login_attribute: str = "uid"
    mail_attribute: str = "mail"
    mailbox_attribute: str = ""
    quota_attribute: str = ""
    imap_group: str = ""
    pop3_group: str = ""
    group_member_attribute: str = "member"
    connect_timeout: float = 5.0
    timeout: float = 10.0
    pool_size: int = 4
    cache_ttl: float = 0.0
    #: Finds the entry of a Kerberos principal (GSSAPI logins): ``{principal}``
    #: is the whole principal, ``{user}`` the account name it maps to; empty:
    #: ``user_filter`` with the mapped name.
    principal_filter: str = ""
