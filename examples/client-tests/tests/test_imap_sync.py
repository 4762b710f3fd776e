"""FolderSync against exchmail test servers: both Exchange profiles, TLS with the
generated CA, and the server's view of what the client did."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest
from conftest import PASSWORD, message
from mailsync import Account, FolderSync


@pytest.mark.parametrize("exchmail_server", ["exchange2007", "exchange2010"], indirect=True)
def test_sync_fetches_new_mail_and_forgets_expunged_mail(exchmail_server, alice):
    first = exchmail_server.deliver("alice", message("one"))
    second = exchmail_server.deliver("alice", message("two"), flags=["\\Flagged"])
    sync = FolderSync(alice)
    report = sync.sync()
    assert report.fetched == [first, second] and report.errors == []
    assert sync.mirror.messages[first] == message("one")

    exchmail_server.expunge("alice", uids=[first])  # as another client would
    third = exchmail_server.deliver("alice", message("three"))
    report = sync.sync()
    assert (report.fetched, report.removed) == ([third], [first])
    sync.close()
    # BODY.PEEK leaves \Seen alone; the other flags are untouched too
    assert [m.flags for m in exchmail_server.mailbox("alice")] == [{"\\Flagged"}, set()]
    year = {"exchange2007": "2007", "exchange2010": "2010"}[exchmail_server.profile.name]
    assert exchmail_server.transcript("alice")[-2].endswith(f"Server {year} IMAP4 server signing off.")


@pytest.mark.exchmail_profile("exchange2007")
def test_other_folders_keep_their_dates(exchmail_server, alice):
    when = datetime(2023, 12, 24, 18, 0, tzinfo=timezone.utc)
    uid = exchmail_server.deliver("alice", message("old"), folder="Archive", internal_date=when)
    sync = FolderSync(alice, folder="Archive")
    assert sync.sync().fetched == [uid]
    sync.close()
    (stored,) = exchmail_server.mailbox("alice", "Archive")
    assert stored.internal_date == when.timestamp() and stored.subject == "old"


@pytest.mark.exchmail_options(tls=True, login_type="SecureLogin")
def test_starttls_with_the_generated_ca(exchmail_server, alice):
    exchmail_server.deliver("alice", message("secret"))
    plain = FolderSync(alice, retries=0)
    with pytest.raises(Exception, match="LOGIN"):  # SecureLogin: no password in the clear
        plain.sync()
    secure = FolderSync(
        dataclasses.replace(alice, tls="starttls", host="localhost", ca_file=str(exchmail_server.ca_file))
    )
    assert secure.sync().fetched == [1]
    secure.close()
    lines = exchmail_server.transcript("alice")
    assert any(line.endswith("STARTTLS") for line in lines)
    assert not any(PASSWORD in line for line in lines)


def test_implicit_tls_and_settings_from_the_factory(exchmail_server_factory):
    server = exchmail_server_factory(
        profile="exchange2010", tls=True, settings={"imap": {"banner": "Mail lab ready"}}
    )
    server.add_user("alice", PASSWORD)
    server.deliver("alice", message("over imaps"))
    account = Account(
        "localhost", server.imaps_port, "alice", PASSWORD, tls="implicit", ca_file=str(server.ca_file)
    )
    sync = FolderSync(account)
    assert sync.sync().fetched == [1]
    sync.close()
    assert server.transcript("alice")[0] == "S: * OK Mail lab ready"


def test_save_draft(exchmail_server, alice):
    exchmail_server.create_folder("alice", "Drafts")
    sync = FolderSync(alice)
    sync.save_draft(message("draft"))
    sync.close()
    (draft,) = exchmail_server.mailbox("alice", "Drafts")
    assert draft.flags == {"\\Draft"} and draft.content == message("draft")
