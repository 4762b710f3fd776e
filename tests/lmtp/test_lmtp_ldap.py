"""LMTP recipients from a real OpenLDAP: the ``mail`` attribute, login names, mailbox names."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "auth"))  # the LDAP tests' slapd
from slapd_server import Slapd, ldap_config, slapd_fixture  # noqa: E402, F401, I001 - the fixture
from twisted.internet.task import Clock  # noqa: E402
from twisted.internet.testing import StringTransport  # noqa: E402

from exchmail.lmtp.server import LMTPServer, make_context  # noqa: E402
from exchmail.lmtp.settings import LMTPSettings  # noqa: E402
from exchmail.store.memory import MemoryStore  # noqa: E402
from exchmail.testing import result  # noqa: E402

pytest.importorskip("ldap3")


def test_recipients_resolved_through_ldap(slapd: Slapd) -> None:
    from exchmail.auth.ldap import LDAPChecker

    store = MemoryStore()
    checker = LDAPChecker(ldap_config(slapd, mailbox_attribute="description"))
    server = LMTPServer(make_context(LMTPSettings(), store, checker, Clock()))
    transport = StringTransport()
    server.makeConnection(transport)
    server.dataReceived(
        b"LHLO x\r\nMAIL FROM:<a@b>\r\n"
        b"RCPT TO:<alice@example.org>\r\nRCPT TO:<DAVE@example.org>\r\n"
        b"RCPT TO:<carol+lists@example.org>\r\nRCPT TO:<nobody@example.org>\r\n"
        b"RCPT TO:<bob@elsewhere.example>\r\nDATA\r\n"
    )
    server.dataReceived(b"Subject: ldap\r\n\r\nhi\r\n.\r\n")
    replies = [line[:3] for line in transport.value().splitlines() if not line.startswith(b"250-")]
    # LHLO, MAIL, alice, dave (mail attribute, any case), carol (detail), nobody,
    # bob@elsewhere (login name from the user part), 354, then one reply per recipient.
    assert replies == [
        b"220",
        b"250",
        b"250",
        b"250",
        b"250",
        b"250",
        b"550",
        b"250",
        b"354",
        b"250",
        b"250",
        b"250",
        b"250",
    ]
    for mailbox_name in ("alice", "dave.mbox", "carol", "bob"):
        box = result(result(store.account(mailbox_name)).mailbox("INBOX"))
        assert len(box.uids()) == 1, mailbox_name
