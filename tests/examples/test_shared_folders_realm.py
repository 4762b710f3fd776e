"""examples/shared_folders_realm.py: a custom realm, plugged in with make_service(realm=...)."""

from __future__ import annotations

import imaplib
import poplib
import sys
from pathlib import Path
from typing import Any

from conftest import PASSWORD, in_reactor, start_server

from exchmail.store.memory import MemoryStore

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from shared_folders_realm import SharedFoldersRealm  # noqa: E402

NOTICE = b"From: hr@example.org\r\nSubject: canteen closed friday\r\n\r\nSorry.\r\n"


def test_shared_folders_are_mounted_read_only(reactor_thread: Any, tmp_path: Path) -> None:
    store = MemoryStore()
    in_reactor(
        lambda: (
            store.account("public")
            .addCallback(lambda account: account.mailbox("INBOX"))
            .addCallback(lambda inbox: inbox.append(NOTICE))
        )
    )
    server = start_server(tmp_path, store=store, realm=SharedFoldersRealm(store))
    try:
        client = imaplib.IMAP4("127.0.0.1", server.imap_port)
        client.login("alice", PASSWORD)
        typ, listing = client.list()
        assert typ == "OK" and any(b'"Public/INBOX"' in line for line in listing), listing
        assert client.select('"Public/INBOX"')[0] == "OK"
        typ, data = client.fetch("1", "(BODY[])")
        assert typ == "OK" and data[0][1] == NOTICE
        # nothing can be added or created there; alice's own mail is untouched
        assert client.append('"Public/INBOX"', None, None, NOTICE)[0] == "NO"
        assert client.create('"Public/Mine"')[0] == "NO"
        assert client.select("INBOX")[1] == [b"0"]
        client.logout()
        # POP3 sessions get the plain account
        pop = poplib.POP3("127.0.0.1", server.pop3_port)
        pop.user("alice")
        pop.pass_(PASSWORD)
        assert pop.stat() == (0, 0)
        pop.quit()
    finally:
        server.stop()
