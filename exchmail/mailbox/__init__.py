"""The mailbox session layer: a session's view of a selected mailbox, message
content access off the reactor thread, and the shared per-message cache.

- :mod:`~exchmail.mailbox.view`: sequence numbers, \\Recent and pending
  updates of one session (RFC 3501 §2.3.1.2, §7.4.1);
- :mod:`~exchmail.mailbox.content`: reading, streaming and parsing message
  content (large messages in the thread pool, never on the reactor thread);
- :mod:`~exchmail.mailbox.cache`: per-message data computed from content,
  bounded in memory and shared by all sessions.
"""
