"""Message parsing on raw octets, shared by IMAP FETCH/SEARCH, POP3 TOP and the caches."""
