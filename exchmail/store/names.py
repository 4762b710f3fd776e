"""Mailbox and user name rules shared by every store.

Names are checked here once, before any store turns them into keys or
paths, so that no client-supplied name can reach outside the data folder.
"""

from __future__ import annotations

import re

from exchmail.errors import InvalidMailboxName, InvalidUserName

DELIMITER = "/"
INBOX = "INBOX"
MAX_NAME_LENGTH = 1024
MAX_COMPONENT_LENGTH = 200

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


def normalize_mailbox(name: str) -> str:
    """Check a mailbox name and return its canonical form.

    ``INBOX`` (any case) and its children are spelled ``INBOX``; empty
    components, ``.``/``..`` components, control characters and overlong
    names raise :class:`InvalidMailboxName`.
    """
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidMailboxName("mailbox name is empty or too long")
    if _CONTROL.search(name):
        raise InvalidMailboxName("mailbox name contains control characters")
    parts = name.split(DELIMITER)
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidMailboxName(f"invalid hierarchy component {part!r}")
        if len(part) > MAX_COMPONENT_LENGTH:
            raise InvalidMailboxName("hierarchy component too long")
    if parts[0].upper() == INBOX:
        parts[0] = INBOX
    return DELIMITER.join(parts)


def parents(name: str) -> list[str]:
    """The names of all superiors of ``name``, outermost first."""
    parts = name.split(DELIMITER)
    return [DELIMITER.join(parts[:i]) for i in range(1, len(parts))]


def is_inferior(name: str, parent: str) -> bool:
    """Whether ``name`` lies below ``parent`` in the hierarchy."""
    return name.startswith(parent + DELIMITER)


def check_user_name(name: str) -> str:
    """Return ``name`` if it is a safe user name, else raise :class:`InvalidUserName`.

    Letters, digits and ``. _ @ + -``, starting with a letter or digit, at
    most 128 characters: such a name can be used as a directory name.
    """
    if not isinstance(name, str) or not _USER.match(name):
        raise InvalidUserName(f"invalid user name {name!r}")
    return name
