"""How mailsync copes with the failures real servers produce, injected by exchmail.

Each test sets one fault rule and checks that the client met exactly that
failure (in the words the server or the socket used), recovered as it
should, and that the rule fired exactly once.
"""

from __future__ import annotations

import dataclasses

import pytest
from conftest import PASSWORD, message
from mailsync import Account, FolderSync, TemporaryFailure, fetch_all

BIG = message("big", "\r\n".join(["x" * 70] * 300))


def test_select_refused_for_now_then_retried(exchmail_server, alice):
    exchmail_server.deliver("alice", message("one"))
    # imaplib's select(readonly=True) sends EXAMINE
    rule = exchmail_server.faults.reply(
        "EXAMINE", "NO", "[UNAVAILABLE] Mailbox database offline", user="alice"
    )
    report = FolderSync(alice).sync()
    assert report.errors == ["NO [UNAVAILABLE] Mailbox database offline"]
    assert report.fetched == [1] and report.reconnects == 0 and rule.fired == 1


def test_bye_during_fetch_reconnects(exchmail_server, alice):
    exchmail_server.deliver("alice", message("one"))
    rule = exchmail_server.faults.bye("UID FETCH", "Server shutting down")
    sync = FolderSync(alice)
    report = sync.sync()
    assert report.errors == ["lost: Server shutting down"]
    assert report.reconnects == 1 and report.fetched == [1] and rule.fired == 1
    assert "S: * BYE Server shutting down" in exchmail_server.transcript("alice")
    sync.close()


def test_connection_dropped_in_the_middle_of_a_literal(exchmail_server, alice):
    uid = exchmail_server.deliver("alice", BIG)
    rule = exchmail_server.faults.drop("FETCH", when="during", octets=1000)
    sync = FolderSync(alice)
    report = sync.sync()
    assert report.errors == ["lost: socket error: EOF"] and report.reconnects == 1
    assert sync.mirror.messages[uid] == BIG  # the second attempt got all of it
    assert rule.fired == 1
    sync.close()


def test_slow_answer_times_out_and_is_retried(exchmail_server, alice):
    exchmail_server.deliver("alice", message("one"))
    rule = exchmail_server.faults.delay("EXAMINE", 5)
    impatient = dataclasses.replace(alice, timeout=0.5)
    report = FolderSync(impatient).sync()
    assert report.errors == ["timeout"] and report.reconnects == 1 and report.fetched == [1]
    assert rule.fired == 1


def test_store_failure_on_append(exchmail_server, alice):
    exchmail_server.create_folder("alice", "Drafts")
    rule = exchmail_server.faults.store_error("append", text="Database is being moved")
    sync = FolderSync(alice)
    with pytest.raises(TemporaryFailure) as failure:
        sync.save_draft(message("draft"))
    assert str(failure.value) == "NO [UNAVAILABLE] Database is being moved"
    sync.save_draft(message("draft"))  # later, it works
    sync.close()
    assert len(exchmail_server.mailbox("alice", "Drafts")) == 1 and rule.fired == 1


def test_message_expunged_by_another_client_between_two_commands(exchmail_server, alice):
    first = exchmail_server.deliver("alice", message("one"))
    second = exchmail_server.deliver("alice", message("two"))
    # after the client searched and before it fetches the second message
    rule = exchmail_server.faults.expunge("UID FETCH", uids=[second], skip=1)
    sync = FolderSync(alice)
    report = sync.sync()
    assert report.fetched == [first] and report.removed == [second] and report.errors == []
    assert rule.fired == 1
    sync.close()


def test_uidvalidity_change_makes_the_client_start_over(exchmail_server, alice):
    exchmail_server.deliver("alice", message("one"))
    sync = FolderSync(alice)
    sync.sync()
    rule = exchmail_server.faults.change_uidvalidity("EXAMINE")
    report = sync.sync()
    assert report.resynced and report.fetched == [1] and rule.fired == 1
    sync.close()


def test_pop3_temporary_error_on_retr(exchmail_server):
    exchmail_server.add_user("alice", PASSWORD)
    exchmail_server.deliver("alice", message("one"))
    rule = exchmail_server.faults.reply("RETR", "NO", "[SYS/TEMP] Try again later")
    account = Account("127.0.0.1", exchmail_server.pop3_port, "alice", PASSWORD)
    report = fetch_all(account)
    assert report.errors == ["-ERR [SYS/TEMP] Try again later"] and report.attempts == 2
    assert len(report.downloaded) == 1 and rule.fired == 1
    assert exchmail_server.mailbox("alice") == []


def test_pop3_dropped_during_retr_loses_nothing(exchmail_server):
    exchmail_server.add_user("alice", PASSWORD)
    exchmail_server.deliver("alice", message("one"))
    exchmail_server.deliver("alice", BIG)
    rule = exchmail_server.faults.drop("RETR", when="during", octets=500, skip=1)
    account = Account("127.0.0.1", exchmail_server.pop3_port, "alice", PASSWORD)
    report = fetch_all(account)
    assert report.errors == ["lost: -ERR EOF"] and report.attempts == 2 and rule.fired == 1
    assert sorted(report.downloaded.values()) == sorted([message("one"), BIG])
    assert exchmail_server.mailbox("alice") == []


def test_pop3_over_stls_and_pop3s_with_the_generated_ca(exchmail_server_factory):
    server = exchmail_server_factory(tls=True, login_type="SecureLogin")
    server.add_user("alice", PASSWORD)
    server.deliver("alice", message("one"))
    ca_file = str(server.ca_file)
    stls = Account("localhost", server.pop3_port, "alice", PASSWORD, tls="starttls", ca_file=ca_file)
    assert len(fetch_all(stls, delete=False).downloaded) == 1
    pop3s = Account("localhost", server.pop3s_port, "alice", PASSWORD, tls="implicit", ca_file=ca_file)
    report = fetch_all(pop3s)
    assert len(report.downloaded) == 1 and report.errors == []
    assert server.mailbox("alice") == []
