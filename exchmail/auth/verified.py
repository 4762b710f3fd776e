"""Logins proven by a mechanism itself (GSSAPI, OAuth 2.0): identity -> account.

A Kerberos ticket or a bearer token proves an *identity* (``alice@EXAMPLE.ORG``),
not an account.  :class:`IdentityMap` turns the one into the other by a
documented rule, :class:`VerifiedLogin` carries the result to the portal, and
:class:`VerifiedLoginChecker` (registered next to the password checker)
confirms that the account exists and returns its avatar ID, so the realm,
the failed-login throttle and the per-user limits apply as for passwords.

The mapping rule, for an identity ``name@DOMAIN`` (or ``name`` alone):

1. an entry of the explicit table (``[gssapi.principals]``,
   ``[oauth.accounts]``), compared without regard to case, wins;
2. otherwise ``name@DOMAIN`` maps to ``name`` when ``DOMAIN`` is one of the
   configured realms/domains (any case) and ``name`` has no ``/`` (Kerberos
   instances such as ``alice/admin`` are never stripped to ``alice``);
3. an identity without ``@`` maps to itself when ``bare`` is allowed (token
   claims such as ``preferred_username = "alice"``; Kerberos principals
   always carry a realm);
4. anything else is refused: an unmapped or foreign-realm identity never
   reaches an account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from zope.interface import implementer

from exchmail.interfaces import IDirectory, IVerifiedLogin


@dataclass(frozen=True)
class IdentityMap:
    """Maps proven identities to account names (see the module docstring).

    :ivar domains: realms/domains whose names map to the bare name (any case).
    :ivar table: identity -> account name, for everything else.
    :ivar bare: whether an identity without ``@`` maps to itself.
    """

    domains: tuple[str, ...] = ()
    table: Mapping[str, str] = field(default_factory=dict)
    bare: bool = False

    def account(self, identity: str) -> str | None:
        """The account name ``identity`` maps to, or ``None`` (refused)."""
        folded = {key.lower(): value for key, value in self.table.items()}
        if identity.lower() in folded:
            return folded[identity.lower()]
        name, at, domain = identity.rpartition("@")
        if not at:
            return identity if self.bare and identity and "/" not in identity else None
        if (
            name
            and "/" not in name
            and "@" not in name
            and domain.lower() in {d.lower() for d in self.domains}
        ):
            return name
        return None


@implementer(IVerifiedLogin)
@dataclass(frozen=True)
class VerifiedLogin:
    """Credentials of a login a mechanism has verified (see :class:`IVerifiedLogin`)."""

    username: bytes
    identity: str
    mechanism: str


@implementer(ICredentialsChecker)
class VerifiedLoginChecker:
    """Accepts :class:`IVerifiedLogin` credentials for accounts ``directory`` knows.

    The avatar ID is the directory's spelling of the account name.  For the
    LDAP directory, whose entries carry per-protocol groups and quotas,
    :class:`~exchmail.auth.ldap.LDAPChecker` accepts these credentials
    itself (by ``ldap.principal_filter``) and this checker is not used.
    """

    credentialInterfaces = (IVerifiedLogin,)

    def __init__(self, directory: IDirectory) -> None:
        self.directory = directory

    def requestAvatarId(self, credentials: Any) -> defer.Deferred[Any]:
        """A Deferred of the canonical account name, or UnauthorizedLogin."""
        try:
            name = credentials.username.decode("utf-8")
        except UnicodeDecodeError:
            return defer.fail(UnauthorizedLogin("unusable account name"))
        d = defer.maybeDeferred(self.directory.user_exists, name)

        def found(exists: bool) -> str:
            canonical = self.directory.canonical_name(name) if exists else None
            if canonical is None:
                raise UnauthorizedLogin(f"no account {name!r}")
            return canonical

        return d.addCallback(found)


def verified_checkers(checker: Any) -> list[Any]:
    """``checker`` and, when it does not accept :class:`IVerifiedLogin` itself but
    is a directory, a :class:`VerifiedLoginChecker` over it: the portal's checkers."""
    interfaces = getattr(checker, "credentialInterfaces", ())
    if IVerifiedLogin in interfaces or not IDirectory.providedBy(checker):
        return [checker]
    return [checker, VerifiedLoginChecker(checker)]


def find_verifier(portal: Any) -> bool:
    """Whether ``portal`` has a checker for :class:`IVerifiedLogin` credentials."""
    checkers = getattr(portal, "checkers", {}) or {}
    return IVerifiedLogin in checkers
