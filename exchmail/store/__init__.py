"""Mail stores: the in-memory reference backend and the Maildir default."""
