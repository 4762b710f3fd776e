"""The IMAP4rev1 protocol: parsing, session state, command handlers, rendering."""
