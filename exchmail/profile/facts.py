"""MS-STANXIMAP statements that are facts of exchmail rather than settings.

Every statement of the seed documents is either a profile setting (its ID
is in the ``ids`` metadata of a field of :mod:`exchmail.profile.settings`)
or listed here with what exchmail does, the same in every profile, and,
where another piece of work owns it, which.  A test checks that the two
together cover every statement.
"""

from __future__ import annotations

from types import MappingProxyType

#: Statement ID -> what holds in every profile.
IMAP_FACTS = MappingProxyType(
    {
        "2.1.1": "IMAP listens on any configured endpoint; 143 (and 993 for implicit TLS) "
        "are the documented production values",
        "2.1.2": "a message revised through the store (replace_message) gets a new UID; "
        "the old UID is expunged",
        "2.1.3": "a UID always names one immutable message: revisions get new UIDs",
        "2.1.8": "TLS cipher suites come from OpenSSL: TLS 1.2 minimum by default, never RC4, "
        "export, NULL or anonymous suites (exchmail.tls; owned by the TLS issue)",
        "V0001": "repeated tags are accepted; each command is answered with its tag",
        "V0004": "revised messages get new UIDs (see 2.1.2)",
        "V0011": "the hierarchy delimiter is '/'",
        "V0012": "'&' in names must be modified UTF-7 ('&-'); an unescaped '#' is allowed",
        "V0013": "other protocols and programs (POP3, Maildir deliveries, the store API) "
        "add, change and remove messages; sessions learn of it",
        "V0016": "commands are processed one at a time, in order",
        "V0017": "serial processing: no ambiguity between concurrent commands",
        "V0018": "no mailbox access without authentication",
        "V0019": "no ANONYMOUS mechanism and no anonymous LOGIN",
        "V0021": "no SASL security layer is ever negotiated",
        "V0025": "CREATE makes the missing superior names",
        "V0030": "no mailbox is hidden from LIST wildcards",
        "V0032": "LSUB attributes differ from LIST's (no CHILDREN attributes; \\Noselect "
        "for subscribed names that do not exist)",
        "V0033": "APPEND to the selected mailbox: EXISTS is sent as the command completes",
        "V0034": "CHECK does what NOOP does (the store is always durable)",
        "V0042": "FLAGS change through STORE and through other sessions or protocols",
        "V0046": "status responses carry response codes where RFC 3501 defines one",
        "V0047": "no ALERT and no PARSE response codes are ever sent",
        "V0048": "untagged OK responses of information (the greeting) carry plain text",
        "V0049": "no PREAUTH greeting",
        "V0054": "BODYSTRUCTURE carries extension data; BODY does not",
        "V0056": "cipher suites come from OpenSSL (owned by the TLS issue)",
        "V0057": "optional cipher suites come from OpenSSL (owned by the TLS issue)",
    }
)
