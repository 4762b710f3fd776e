"""What the index's changes are made of: new messages, flag changes, flag
modes; and taking back the copies of a COPY that failed.

Shared by :mod:`exchmail.store.index` and the backends' hooks (re-exported
there).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from twisted.internet import defer
from twisted.logger import Logger

from exchmail.errors import NoSuchMailbox

DELETED = "\\Deleted"
RECENT = "\\Recent"
SYSTEM_FLAGS = frozenset({"\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"})
FLAG_MODES = ("replace", "add", "remove")
log = Logger(namespace="exchmail.store")


class NewMessage(NamedTuple):
    """A stored message (what ``_deliver`` produces); ``uid`` only if the
    storage chose it (see ``IndexedMailbox.uids_from_storage``)."""

    flags: frozenset[str]
    internal_date: float
    stored_size: int
    exact_size: int
    extra: tuple[Any, ...] = ()
    uid: int | None = None


class FlagChange(NamedTuple):
    """One planned flag change, handed to ``_store_flags``."""

    uid: int
    row: int
    old: frozenset[str]
    new: frozenset[str]


#: ``(uid, stored flags, {extra column: new value})`` for a change that was stored.
Applied = tuple[int, frozenset[str], dict[int, Any]]


def apply_flag_mode(current: frozenset[str], flags: frozenset[str], mode: str) -> frozenset[str]:
    """Compute the flags after a STORE-like change (``replace``/``add``/``remove``)."""
    if mode == "replace":
        return flags
    if mode == "add":
        return current | flags
    if mode == "remove":
        return current - flags
    raise ValueError(f"unknown flag mode {mode!r}")


@defer.inlineCallbacks
def take_back_copies(target: Any, uids: list[int]) -> Any:
    """Remove the copies a failed COPY made (RFC 3501 6.4.7: the destination
    goes back to its state before); a failure here is logged, and the COPY's
    own error is what the client hears."""
    try:
        yield defer.maybeDeferred(target.set_flags, uids, frozenset({DELETED}), "add")
        yield defer.maybeDeferred(target.expunge, uids)
    except NoSuchMailbox:
        pass  # the destination itself is gone
    except Exception:  # noqa: BLE001 - logged; the COPY's error stands
        log.failure("cannot take back the copies {uids} of a failed COPY", uids=uids)
