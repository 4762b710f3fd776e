"""exchmail: a Twisted IMAP4rev1 + POP3 server framework with Exchange 2007/2010 behaviour."""

__version__ = "0.1.0"
