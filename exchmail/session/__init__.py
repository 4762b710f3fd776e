"""The session core shared by IMAP and POP3 (and later LMTP)."""
