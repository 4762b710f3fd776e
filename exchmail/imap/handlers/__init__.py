"""The IMAP command handlers and the table the session dispatches by.

Each handler is ``handler(command, session)`` for one command class of
:mod:`exchmail.imap.commands`; :data:`HANDLERS` maps the class to the
handler and the states it is valid in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exchmail.imap import commands as c
from exchmail.imap import commands_modern as m
from exchmail.imap import commands_sync as sy
from exchmail.imap import search
from exchmail.imap.handlers import (
    appending,
    compress,
    context,
    enable,
    fetching,
    listext,
    mailboxes,
    messages,
    modern,
    nonauth,
    notify,
    searching,
    sorting,
)

ANY = ("unauth", "auth", "select")
NONAUTH = ("unauth",)
AUTH = ("auth", "select")
SELECTED = ("select",)

Handler = Callable[[Any, Any], Any]

#: command class -> (handler, states in which it is valid)
HANDLERS: dict[type[c.Command], tuple[Handler, tuple[str, ...]]] = {
    c.Capability: (nonauth.capability, ANY),
    c.Noop: (nonauth.noop, ANY),
    c.Logout: (nonauth.logout, ANY),
    c.Login: (nonauth.login, NONAUTH),
    c.Authenticate: (nonauth.authenticate, NONAUTH),
    c.StartTLS: (nonauth.starttls, NONAUTH),
    c.Select: (mailboxes.select, AUTH),
    c.Create: (listext.create_command, AUTH),
    c.Delete: (mailboxes.delete, AUTH),
    c.Rename: (mailboxes.rename, AUTH),
    c.Subscribe: (mailboxes.subscribe, AUTH),
    c.Unsubscribe: (mailboxes.unsubscribe, AUTH),
    c.List: (listext.list_command, AUTH),
    c.Lsub: (mailboxes.lsub, AUTH),
    c.Status: (mailboxes.status, AUTH),
    c.Namespace: (mailboxes.namespace, AUTH),
    c.Append: (messages.append, AUTH),
    c.Idle: (messages.idle, AUTH),
    c.Check: (nonauth.noop, SELECTED),
    c.Close: (messages.close, SELECTED),
    c.Expunge: (messages.expunge, SELECTED),
    c.Store: (messages.store, SELECTED),
    c.Copy: (messages.copy, SELECTED),
    c.Fetch: (fetching.fetch_command, SELECTED),
    c.Search: (searching.search, SELECTED),
    # extensions (exchmail.imap.extensions): unknown commands unless the profile enables them
    c.ExtendedAppend: (appending.extended_append, AUTH),
    c.Enable: (enable.enable, AUTH),
    c.Compress: (compress.compress, AUTH),
    m.Id: (modern.id_, ANY),  # issue 13's MOVE, UNSELECT, ID, QUOTA (commands_modern)
    m.GetQuota: (modern.getquota, AUTH),
    m.GetQuotaRoot: (modern.getquotaroot, AUTH),
    m.SetQuota: (modern.setquota, AUTH),
    m.Unselect: (modern.unselect, SELECTED),
    m.Move: (modern.move, SELECTED),
    sy.Sort: (sorting.sort, SELECTED),  # issue 14's SORT, THREAD, CONTEXT, NOTIFY (commands_sync)
    sy.Thread: (sorting.thread, SELECTED),
    sy.CancelUpdate: (context.cancelupdate, SELECTED),
    sy.Notify: (notify.notify, AUTH),
}

#: command name (as ``parse_head`` gives it) -> the states in which it is valid
STATES: dict[bytes, tuple[str, ...]] = {cls.NAME: states for cls, (_, states) in HANDLERS.items()}
STATES[b"EXAMINE"] = STATES[b"SELECT"]

#: Commands that never read a message's internal date, sizes or content.
_INDEX_ONLY_COMMANDS = (
    c.Capability,
    c.Logout,
    c.Select,
    c.Idle,
    m.Unselect,
    m.Id,
    c.Namespace,
    c.List,
    c.Lsub,
)
#: FETCH items answered from flags, UIDs and MODSEQs alone.
_INDEX_ONLY_ITEMS = frozenset({b"FLAGS", b"UID", b"MODSEQ"})


def needs_details(command: c.Command) -> bool:
    """Whether ``command`` may read internal dates, sizes or content of the
    selected mailbox's messages, and so waits while a mailbox opened early is
    still learning them (:meth:`~exchmail.interfaces.IEarlyOpen.mailbox_early`)."""
    if isinstance(command, c.Fetch):
        return not all(item.name in _INDEX_ONLY_ITEMS for item in command.items)
    if isinstance(command, c.Search):
        return not search.index_only(command.criteria)
    return not isinstance(command, _INDEX_ONLY_COMMANDS)
