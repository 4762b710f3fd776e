"""Default folders and their special uses (RFC 6154).

A profile's ``default_folders`` names the folders every account should
have, each ``"Name"`` or ``"Name=\\Use"``: Exchange's English set in the
Exchange profiles, ``Sent``, ``Drafts``, ``Trash``, ``Junk`` and
``Archive`` in ``modern``.  :func:`ensure_default_folders` creates the
missing ones at an account's first login after the server starts (an
existing account gets them at its next login; existing folders are never
touched), and :func:`special_uses` says
which attributes LIST shows when the profile advertises SPECIAL-USE: those
of the default folders, and those a client gave with CREATE-SPECIAL-USE
where the store keeps them (:class:`~exchmail.interfaces.ISpecialUseMailboxes`).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from exchmail import errors
from exchmail.interfaces import ISpecialUseMailboxes
from exchmail.profile.settings import IMAPSettings
from exchmail.store import names

log = Logger(namespace="exchmail.imap")

#: RFC 6154 section 2, by lower-case spelling.
SPECIAL_USES = {
    use.lower(): use for use in ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
}


def parse_default_folders(entries: Iterable[str]) -> list[tuple[str, str | None]]:
    """``(name, special use or None)`` of each ``"Name"`` / ``"Name=\\Use"`` entry.

    A text after the last ``=`` that is not a special-use attribute is part
    of the name; names are normalised as the store spells them.
    """
    out = []
    for entry in entries:
        name, sep, use = entry.rpartition("=")
        canonical = SPECIAL_USES.get(use.lower()) if sep else None
        if canonical is None:
            name = entry
        name = name.strip(names.DELIMITER)
        if name:
            out.append((names.normalize_mailbox(name), canonical))
    return out


def default_uses(settings: IMAPSettings) -> dict[str, frozenset[str]]:
    """The special uses the profile gives its default folders, by name."""
    return {
        name: frozenset({use})
        for name, use in parse_default_folders(settings.default_folders)
        if use is not None
    }


@defer.inlineCallbacks
def special_uses(account: Any, settings: IMAPSettings, existing: Iterable[str] = ()):
    """A Deferred of ``{name: attributes}`` for LIST (empty without SPECIAL-USE).

    ``existing`` are the account's mailbox names: where names are
    case-insensitive (V0008), a default folder's use goes to the existing
    mailbox of that name in any case.
    """
    if not settings.special_use:
        return {}
    uses = default_uses(settings)
    if ISpecialUseMailboxes.providedBy(account):
        stored = yield defer.maybeDeferred(account.special_uses)
        for name, attributes in stored.items():
            uses[name] = frozenset(attributes)
    if settings.case_insensitive_names:  # V0008: "sent items" is "Sent Items"
        folded = {name.casefold(): name for name in existing}
        uses = {folded.get(name.casefold(), name): value for name, value in uses.items()}
    return uses


#: Accounts whose default folders were seen to this process, with the folder
#: lists checked (so a login costs no listing once the folders are there).
_ENSURED: weakref.WeakKeyDictionary[Any, set[tuple[str, ...]]] = weakref.WeakKeyDictionary()


def ensure_default_folders(account: Any, settings: IMAPSettings) -> defer.Deferred[None]:
    """Create the profile's default folders that ``account`` lacks.

    Done at an account's first login in this server process: a folder the
    user deletes later stays deleted until the server starts again.  Never
    fails: a folder that cannot be made is logged and skipped (the login
    goes on).  Folders that exist, in any case when the profile makes names
    case-insensitive, are left alone.
    """
    folders = settings.default_folders
    try:
        checked = _ENSURED.setdefault(account, set())
    except TypeError:  # an account object without weak references: check every login
        checked = set()
    if not folders or folders in checked:
        return defer.succeed(None)
    d = _create_missing(account, settings)
    return d.addCallback(lambda done: checked.add(folders) if done else None)


@defer.inlineCallbacks
def _create_missing(account: Any, settings: IMAPSettings):
    """A Deferred of whether every default folder now exists (or failed for good)."""
    wanted = parse_default_folders(settings.default_folders)
    try:
        existing = yield defer.maybeDeferred(account.list_mailboxes)
    except Exception:  # noqa: BLE001 - the login must not fail for this
        log.failure(
            "cannot list the mailboxes of {user} for its default folders", user=getattr(account, "name", "?")
        )
        return False
    have = {name.casefold() if settings.case_insensitive_names else name for name in existing}
    for name, _ in wanted:
        key = name.casefold() if settings.case_insensitive_names else name
        if key in have:
            continue
        try:
            yield defer.maybeDeferred(account.create, name)
        except errors.MailboxExists:
            pass  # made meanwhile by another session
        except Exception:  # noqa: BLE001
            log.failure(
                "cannot create the default folder {name!r} of {user}",
                name=name,
                user=getattr(account, "name", "?"),
            )
        have.add(key)
    return True
