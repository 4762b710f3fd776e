"""The Maildir++ backend: ``MaildirStore(root, run_blocking=None, *, reactor=None, ...)``.

Modules: :mod:`.layout` (names to directories), :mod:`.filenames` (message
file names, flags, keywords), :mod:`.uidlist` (persistent UIDs),
:mod:`.deliver` (file work: delivery, flag renames, expunge, reading),
:mod:`.scan` (loading and rescanning folders), :mod:`.folders` (account
work: folders, subscriptions), :mod:`.watch` (inotify or polling),
:mod:`.mailbox` and :mod:`.account` (the store objects, on the reactor
thread).  Everything that touches the disk runs in ``run_blocking``.
"""

from exchmail.store.maildir.account import MaildirAccount, MaildirStore
from exchmail.store.maildir.mailbox import MaildirMailbox

__all__ = ["MaildirAccount", "MaildirMailbox", "MaildirStore"]
