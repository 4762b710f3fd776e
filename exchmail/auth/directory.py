"""What a directory-backed checker knows about a user, and the per-protocol check.

A credential checker returns an *avatar ID* that the realm turns into a
mailbox.  Checkers that know more than a name return a
:class:`DirectoryUser`: a ``str`` (the mailbox name, so every realm and
store can use it as a name) with the directory's attributes on it.
``protocols`` carries Exchange's per-user ``ImapEnabled`` / ``PopEnabled``
idea: :class:`~exchmail.auth.realm.MailRealm` refuses a session for a
protocol that is not in it (the protocol comes from the login's
:class:`~exchmail.interfaces.ILoginMind`).
"""

from __future__ import annotations

from typing import Any

#: The protocol names used in :attr:`DirectoryUser.protocols` and
#: :attr:`exchmail.interfaces.ILoginMind.protocol` (LMTP is never restricted).
IMAP, POP3, LMTP = "imap", "pop3", "lmtp"


class DirectoryUser(str):
    """A mailbox name with directory attributes.

    :ivar dn: the directory entry's distinguished name ("" if none).
    :ivar mail: the primary e-mail address, or ``None``.
    :ivar quota: the mailbox quota in bytes from the directory, or ``None``.
    :ivar protocols: the protocols the user may use (``{"imap", "pop3"}``
        or a subset), or ``None`` for no restriction.
    """

    dn: str
    mail: str | None
    quota: int | None
    protocols: frozenset[str] | None

    def __new__(
        cls,
        name: str,
        dn: str = "",
        mail: str | None = None,
        quota: int | None = None,
        protocols: frozenset[str] | None = None,
    ) -> DirectoryUser:
        self = super().__new__(cls, name)
        self.dn, self.mail, self.quota, self.protocols = dn, mail, quota, protocols
        return self

    def __repr__(self) -> str:
        return (
            f"DirectoryUser({str(self)!r}, dn={self.dn!r}, mail={self.mail!r}, "
            f"quota={self.quota!r}, protocols={self.protocols!r})"
        )


def protocol_allowed(avatar_id: Any, protocol: str) -> bool:
    """Whether ``avatar_id`` may use ``protocol`` (any plain name may use any)."""
    allowed = getattr(avatar_id, "protocols", None)
    return allowed is None or protocol in allowed
