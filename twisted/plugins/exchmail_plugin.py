"""twistd dropin: ``twistd exchmail`` (kept lazy: nothing of exchmail is imported here)."""

from twisted.application.service import ServiceMaker

exchmail = ServiceMaker(
    "exchmail",
    "exchmail.service.tap",
    "Exchange-like IMAP4rev1 (and POP3) server",
    "exchmail",
)
