"""NOTIFY (RFC 5465) for the personal namespace: STATUS updates of other mailboxes.

``NOTIFY SET [STATUS] (filter (events))...`` names mailboxes (``MAILBOXES``,
``SUBTREE``, ``INBOXES``, ``PERSONAL``, ``SUBSCRIBED``; ``SELECTED`` keeps
the usual updates of the selected mailbox) and the events wanted
(MessageNew, MessageExpunge, FlagChange).  The session listens to those
mailboxes (the store tells it of changes, as for the selected one) and
sends ``* STATUS name (items)`` with the items the events call for
(§5.2-5.4: MESSAGES UIDNEXT UIDVALIDITY for new messages, MESSAGES for
expunges, UIDVALIDITY HIGHESTMODSEQ for flag changes) -- at once when the
session is idle, else after the command in progress.  With ``STATUS`` the
current status of every named mailbox is sent at once.  ``NOTIFY NONE``
stops it all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from zope.interface import implementer

from exchmail import errors
from exchmail.imap.commands_sync import Notify
from exchmail.imap.handlers.mailboxes import mailbox_name, status_response
from exchmail.imap.responses import CommandFailed
from exchmail.interfaces import IMailboxListener, IStoreMailbox
from exchmail.store import names

if TYPE_CHECKING:
    from exchmail.imap.session import IMAPSession

#: The most mailboxes one session watches.
MAX_WATCHED = 1000
_ITEMS = {
    b"MESSAGENEW": (b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY"),
    b"MESSAGEEXPUNGE": (b"MESSAGES",),
    b"FLAGCHANGE": (b"UIDVALIDITY", b"HIGHESTMODSEQ"),
}


def status_items(events: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """The STATUS items a set of events calls for, without repeats."""
    out: list[bytes] = []
    for event in events:
        out.extend(item for item in _ITEMS.get(event, ()) if item not in out)
    return tuple(out)


@implementer(IMailboxListener)
class Watch:
    """One watched mailbox: its changes become STATUS responses."""

    def __init__(self, session: IMAPSession, mailbox: IStoreMailbox, events: tuple[bytes, ...]):
        self.session, self.mailbox, self.events = session, mailbox, events

    def _changed(self, event: bytes) -> None:
        view = self.session.view
        if view is not None and view.mailbox is self.mailbox:
            return  # the selected mailbox: its usual updates tell (RFC 5465 §5)
        if event in self.events:
            self.session.notify.pending[self.mailbox.name] = self
            self.session.notify.push()

    def messages_added(self, mailbox: IStoreMailbox, uids: list[int]) -> None:
        self._changed(b"MESSAGENEW")

    def messages_expunged(self, mailbox: IStoreMailbox, uids: list[int]) -> None:
        self._changed(b"MESSAGEEXPUNGE")

    def flags_changed(self, mailbox: IStoreMailbox, uids: list[int], origin: object) -> None:
        self._changed(b"FLAGCHANGE")


class NotifyState:
    """A session's NOTIFY: the watched mailboxes and the STATUS lines owed."""

    def __init__(self, session: IMAPSession) -> None:
        self.session = session
        self.watches: list[Watch] = []
        self.pending: dict[str, Watch] = {}

    def stop(self) -> None:
        for watch in self.watches:
            watch.mailbox.remove_listener(watch)
        self.watches, self.pending = [], {}

    def push(self) -> None:
        """Send what is owed now if the session is not in a command."""
        session = self.session
        if not session.busy or session.idling:
            self.flush()

    def flush(self) -> None:
        pending, self.pending = self.pending, {}
        for watch in pending.values():
            d = status_response(self.session, watch.mailbox.name, status_items(watch.events))
            d.addCallbacks(self._send, lambda failure: None)

    def _send(self, line: bytes) -> None:
        self.session.untagged(line)
        self.session.flush()


@defer.inlineCallbacks
def notify(command: Notify, session: IMAPSession):
    if session.notify is not None:
        session.notify.stop()
        session.notify = None
    if command.groups is None:
        return b"NOTIFY completed."
    state = session.notify = NotifyState(session)
    existing = yield defer.maybeDeferred(session.account.list_mailboxes)
    subscribed: set[str] = set()
    if any(group.filter == b"SUBSCRIBED" for group in command.groups):
        subscribed = yield defer.maybeDeferred(session.account.subscriptions)
    selected = session.view.mailbox.name if session.view is not None else None
    for group in command.groups:
        targets = yield _targets(session, group, existing, subscribed)
        for name in targets:
            if name == selected or len(state.watches) >= MAX_WATCHED:
                continue
            try:
                mailbox = yield defer.maybeDeferred(session.account.mailbox, name)
            except errors.NoSuchMailbox:
                continue
            if group.events:
                watch = Watch(session, mailbox, group.events)
                mailbox.add_listener(watch)
                state.watches.append(watch)
            if command.status and status_items(group.events):
                line = yield status_response(session, name, status_items(group.events))
                session.untagged(line)
    return b"NOTIFY completed."


@defer.inlineCallbacks
def _targets(session: IMAPSession, group: Any, existing: list[str], subscribed: set[str]):
    if group.filter in (b"SELECTED", b"SELECTED-DELAYED"):
        return []
    if group.filter == b"PERSONAL":
        return list(existing)
    if group.filter == b"INBOXES":
        return [names.INBOX]
    if group.filter == b"SUBSCRIBED":
        return [name for name in existing if name in subscribed]
    out = []
    for raw in group.mailboxes:
        try:
            name = yield mailbox_name(session, raw)
        except CommandFailed:
            continue
        out.append(name)
        if group.filter == b"SUBTREE":
            out.extend(other for other in existing if names.is_inferior(other, name))
    return out
