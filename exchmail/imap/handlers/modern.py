"""Handlers of the extension commands: MOVE (RFC 6851), UNSELECT (RFC 3691),
ID (RFC 2971), GETQUOTA/GETQUOTAROOT/SETQUOTA (RFC 9208).

The parser (:mod:`exchmail.imap.commands_modern`) already refused these
commands in profiles that do not have the extension on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.logger import Logger

from exchmail import errors
from exchmail.imap import commands_modern as ext
from exchmail.imap import wire
from exchmail.imap.handlers.mailboxes import mailbox_line, mailbox_name
from exchmail.imap.handlers.messages import compact_uid_set, message_set, writable
from exchmail.imap.responses import CommandFailed
from exchmail.interfaces import IAccountQuota

if TYPE_CHECKING:
    from exchmail.imap.session import IMAPSession

log = Logger(namespace="exchmail.imap")

DELETED = "\\Deleted"


# -- MOVE ---------------------------------------------------------------------------------
@defer.inlineCallbacks
def move(command: ext.Move, session: IMAPSession):
    """Copy, then expunge the originals: ``* OK [COPYUID ...]`` first, then the
    EXPUNGE responses (sent as the command completes), then the tagged OK.

    The store has no atomic move: the copies are made first, so a failure
    part way leaves the originals in place (never a lost message).
    """
    pairs = message_set(session, command.sequence_set, command.uid)
    view = writable(session)  # MOVE removes from the source: it must be read-write
    name = yield mailbox_name(session, command.mailbox)
    try:
        target = yield defer.maybeDeferred(session.account.mailbox, name)
    except errors.NoSuchMailbox:
        raise CommandFailed(b"[TRYCREATE] Mailbox does not exist") from None
    source = view.mailbox
    copied = yield defer.maybeDeferred(source.copy_to, [u for _, u in pairs], target)
    if not copied:
        return b"MOVE completed."
    session.untagged(
        b"OK [COPYUID %d %s %s] Moved"
        % (target.uid_validity, compact_uid_set(a for a, _ in copied), compact_uid_set(b for _, b in copied))
    )
    moved = [a for a, _ in copied]
    # origin=view: this session hears of the removal as EXPUNGE, not as \Deleted.
    yield defer.maybeDeferred(source.set_flags, moved, frozenset({DELETED}), "add", view)
    yield defer.maybeDeferred(source.expunge, moved)
    return b"MOVE completed."


# -- UNSELECT ---------------------------------------------------------------------------------
def unselect(command: ext.Unselect, session: IMAPSession) -> bytes:
    """Leave the selected state; nothing is expunged (unlike CLOSE)."""
    session.close_mailbox()
    return b"UNSELECT completed."


# -- ID ---------------------------------------------------------------------------------------------
def id_(command: ext.Id, session: IMAPSession) -> bytes:
    """Answer with the profile's ``id_fields``; the client's fields are logged."""
    if command.fields:
        described = ", ".join(
            f"{key.decode('utf-8', 'replace')}={'NIL' if value is None else value.decode('utf-8', 'replace')}"
            for key, value in command.fields
        )
        log.info("IMAP client ID: {fields}", fields=described[:2000])
    session.untagged(b"ID " + server_id(session.context.profile.imap.id_fields))
    return b"ID completed."


def server_id(entries: tuple[str, ...]) -> bytes:
    """The ``id_params_list`` of ``"key=value"`` entries (``NIL`` when there are none)."""
    if not entries:
        return b"NIL"
    items = []
    for entry in entries:
        key, sep, value = entry.partition("=")
        items.append(wire.string(key.encode("utf-8")[: ext.ID_MAX_FIELD]))
        items.append(wire.string(value.encode("utf-8")[: ext.ID_MAX_VALUE]) if sep else b"NIL")
    return b"(" + b" ".join(items) + b")"


# -- QUOTA ---------------------------------------------------------------------------------------------
ROOT = b""


@defer.inlineCallbacks
def _account_quota(session: IMAPSession):
    """``(used, limit)`` octets, or None when the account has no limit."""
    account = session.account
    if not IAccountQuota.providedBy(account):
        return None
    used, limit = yield defer.maybeDeferred(account.quota)
    return (used, limit) if limit else None


def _quota_line(used: int, limit: int) -> bytes:
    # RFC 9208 section 5.1: STORAGE in units of 1024 octets.
    return b'QUOTA "" (STORAGE %d %d)' % (-(-used // 1024), limit // 1024)


@defer.inlineCallbacks
def getquotaroot(command: ext.GetQuotaRoot, session: IMAPSession):
    """``* QUOTAROOT mailbox ""`` and the root's ``* QUOTA``; no root without a limit."""
    name = yield mailbox_name(session, command.mailbox)
    mailbox = yield defer.maybeDeferred(session.account.mailbox, name)  # NO [NONEXISTENT]
    quota = yield _account_quota(session)
    line = b"QUOTAROOT " + mailbox_line(session, mailbox.name)
    if quota is None:
        session.untagged(line)
    else:
        session.untagged(line + b' ""')
        session.untagged(_quota_line(*quota))
    return b"GETQUOTAROOT completed."


@defer.inlineCallbacks
def getquota(command: ext.GetQuota, session: IMAPSession):
    quota = yield _account_quota(session)
    if command.root != ROOT or quota is None:
        raise CommandFailed(b"[NONEXISTENT] No such quota root")
    session.untagged(_quota_line(*quota))
    return b"GETQUOTA completed."


def setquota(command: ext.SetQuota, session: IMAPSession) -> Any:
    """Limits come from the configuration or the directory (no QUOTASET)."""
    raise CommandFailed(b"[NOPERM] Quota limits are set by the administrator")
