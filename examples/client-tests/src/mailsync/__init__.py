"""mailsync: a tiny mail downloader (IMAP folder mirror, POP3 fetch).

It is the example client of exchmail's ``examples/client-tests`` project:
its tests run against exchmail's pytest plugin and its fault injection.
"""

from mailsync.imap_sync import Account, FolderSync, Mirror, SyncError, SyncReport, TemporaryFailure
from mailsync.pop3_fetch import FetchReport, fetch_all

__all__ = [
    "Account",
    "FetchReport",
    "FolderSync",
    "Mirror",
    "SyncError",
    "SyncReport",
    "TemporaryFailure",
    "fetch_all",
]
