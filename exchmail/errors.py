"""Exceptions shared by stores, auth backends and protocol code.

Protocol handlers map these to tagged IMAP responses (and later POP3
``-ERR`` lines); anything else that escapes a handler is an internal error
answered ``NO [SERVERBUG]`` and logged with its traceback.
"""


class ExchmailError(Exception):
    """Base class of every exchmail exception."""


class ConfigError(ExchmailError):
    """The configuration is invalid; the message names the key and the problem."""


class StoreError(ExchmailError):
    """A store operation was refused; the message is safe to show a client."""


class NoSuchMailbox(StoreError):
    """The named mailbox does not exist."""


class MailboxExists(StoreError):
    """A mailbox with that name exists already."""


class InvalidMailboxName(StoreError):
    """The mailbox name is malformed or not allowed (e.g. it would escape the data folder)."""


class MailboxHasChildren(StoreError):
    """The mailbox cannot be deleted because it has inferior mailboxes."""


class NoSuchMessage(StoreError):
    """The message (by UID) does not exist (any more)."""


class OverQuota(StoreError):
    """Adding the message would take the account past its storage quota
    (IMAP ``NO [OVERQUOTA]``, POP3 ``-ERR [SYS/PERM]``)."""


class StoreUnavailable(StoreError):
    """The store cannot do it now (a database or file system that does not
    answer); the client may try again later (IMAP ``NO [UNAVAILABLE]``,
    POP3 ``-ERR [SYS/TEMP]``)."""


class InvalidUserName(ExchmailError):
    """The user name is malformed or not allowed."""


class AccountError(ExchmailError):
    """An accounts-file operation failed (duplicate user, unknown user, unreadable file)."""


class DirectoryUnavailable(ExchmailError):
    """The account directory (e.g. LDAP) cannot be reached or did not answer in time.

    A temporary failure, never a verdict on the password: IMAP answers it
    ``NO [UNAVAILABLE]`` and POP3 ``-ERR [SYS/TEMP]``, and it must not count
    as a failed login attempt.  Credential checkers raise it (as a failed
    Deferred) from ``requestAvatarId``.
    """
