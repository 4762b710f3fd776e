"""The Maildir++ backend: ``MaildirStore(root, run_blocking=None)``.

Modules: :mod:`.layout` (names to directories), :mod:`.filenames` (message
file names, flags, keywords), :mod:`.uidlist` (persistent UIDs),
:mod:`.deliver` (atomic delivery, CRLF handling), :mod:`.scan` (directory
scans), :mod:`.mailbox` and :mod:`.account` (the store objects).
"""

from exchmail.store.maildir.account import MaildirAccount, MaildirStore
from exchmail.store.maildir.mailbox import MaildirMailbox

__all__ = ["MaildirAccount", "MaildirMailbox", "MaildirStore"]
