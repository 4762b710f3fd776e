"""Recipient addresses to accounts, through the directory that logins use.

``alice+lists@example.org`` is split into the user part ``alice``, the
*detail* ``lists`` (after ``recipient_delimiter``) and the domain.  The
account is then looked up:

- in a directory with a ``mailbox_for_address(address)`` method (the LDAP
  checker: the entry whose ``mail`` attribute is the address, else the
  entry whose login name is the user part), by ``alice@example.org``;
- in any other :class:`~exchmail.interfaces.IDirectory` (the accounts
  file), as the user ``alice@example.org`` if there is one, else as the
  user ``alice`` -- so both kinds of account names work.

With ``domains`` configured, other domains are unknown recipients.  The
folder for the detail is chosen at delivery (:mod:`exchmail.lmtp.delivery`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from exchmail.errors import ConfigError
from exchmail.interfaces import IDirectory


@dataclass(frozen=True)
class Recipient:
    """A resolved recipient.

    :ivar address: the address as the client gave it.
    :ivar user: the account (mailbox) name.
    :ivar detail: the detail part ("" if none).
    """

    address: str
    user: str
    detail: str = ""


def split_address(address: str, delimiter: str) -> tuple[str, str, str]:
    """``(user, detail, domain)`` of ``address`` (domain and detail may be "")."""
    local, at, domain = address.rpartition("@")
    if not at:
        local, domain = address, ""
    user, detail = local, ""
    if delimiter and delimiter in local:
        user, _, detail = local.partition(delimiter)
    return user, detail, domain


def check_directory(directory: Any) -> None:
    """Raise :class:`ConfigError` unless ``directory`` can answer who exists."""
    if not (hasattr(directory, "mailbox_for_address") or IDirectory.providedBy(directory)):
        raise ConfigError(
            "lmtp.listen: the auth backend does not tell which users exist "
            "(it provides neither IDirectory nor mailbox_for_address), so "
            "LMTP cannot check recipients"
        )


class RecipientResolver:
    """Turns recipient addresses into :class:`Recipient` objects.

    :param directory: the credential checker of ``[auth]`` (see the module docstring).
    :param delimiter: ``[lmtp] recipient_delimiter``.
    :param domains: accepted domains, lower case (empty: any).
    """

    def __init__(self, directory: Any, delimiter: str = "+", domains: tuple[str, ...] = ()) -> None:
        check_directory(directory)
        self.directory = directory
        self.delimiter = delimiter
        self.domains = frozenset(d.lower() for d in domains)

    def resolve(self, address: str) -> defer.Deferred[Recipient | None]:
        """A Deferred of the recipient, or ``None`` if nobody has that address.

        Fails with :class:`~exchmail.errors.DirectoryUnavailable` when the
        directory does not answer (a temporary failure).
        """
        user, detail, domain = split_address(address, self.delimiter)
        if not user or (domain and self.domains and domain.lower() not in self.domains):
            return defer.succeed(None)
        full = f"{user}@{domain}" if domain else user
        finder = getattr(self.directory, "mailbox_for_address", None)
        if finder is not None:
            d = defer.maybeDeferred(finder, full)
        else:
            d = self._in_directory(full, user)

        def found(name: str | None) -> Recipient | None:
            return Recipient(address, name, detail) if name else None

        return d.addCallback(found)

    @defer.inlineCallbacks
    def _in_directory(self, full: str, user: str) -> Any:
        """The canonical name of ``full`` or else of ``user``, or ``None``."""
        for name in dict.fromkeys((full, user)):
            exists = yield defer.maybeDeferred(self.directory.user_exists, name)
            if exists:
                return self.directory.canonical_name(name) or name
        return None
