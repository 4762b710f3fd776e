"""Maildir++ folder operations (exchmail.store.maildir.folders) called directly:
the edge cases and races of creating, renaming and RENAME INBOX."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exchmail.errors import MailboxExists
from exchmail.store.maildir import folders, layout, uidlist


@pytest.fixture
def user(tmp_path: Path) -> Path:
    return folders.make_user(tmp_path / "mail", "bob")


def test_no_mail_root_no_accounts(tmp_path: Path) -> None:
    assert folders.account_names(tmp_path / "missing") == []


def test_hand_edited_subscriptions_keep_the_valid_names(user: Path) -> None:
    (user / layout.SUBSCRIPTIONS).write_bytes(b"Sent\n/bad//name\nWork/Projects\n\xff\xfe\n\nINBOX\n")
    assert folders.read_subscriptions(user) == {"Sent", "Work/Projects", "INBOX", "\ufffd\ufffd"}


def test_rename_onto_a_child_left_behind_is_refused(user: Path) -> None:
    folders.create(user, "Old/Child")
    folders.create(user, "New/Child")
    folders.delete(user, "New")  # Maildir++: the child stays behind
    with pytest.raises(MailboxExists, match="'New/Child' exists"):
        folders.rename(user, "Old", "New")
    assert set(folders.list_mailboxes(user)) == {"INBOX", "Old", "Old/Child", "New/Child"}


def inbox_files(user: Path, count: int) -> list[str]:
    names = []
    for i in range(count):
        name = f"170000000{i}.M1P1Q{i}.host:2,"
        (user / "cur" / name).write_bytes(b"Subject: %d\n\nx\n" % i)
        names.append(name)
    return names


def test_rename_inbox_makes_parents_and_skips_vanished_files(user: Path) -> None:
    files = inbox_files(user, 3)
    os.unlink(user / "cur" / files[1])  # expunged by another program meanwhile
    entries = [(uid, name.split(":")[0]) for uid, name in enumerate(files, 1)]
    moved = folders.move_inbox(user, "Archive/2020/Inbox", entries, files, b"", 4)
    assert moved == [1, 3]
    assert set(folders.list_mailboxes(user)) == {"INBOX", "Archive", "Archive/2020", "Archive/2020/Inbox"}
    target = layout.mailbox_dir(user, "Archive/2020/Inbox")
    assert sorted(os.listdir(target / "cur")) == [files[0], files[2]]
    assert os.listdir(user / "cur") == []
    listing = uidlist.read(target)
    assert [uid for uid, _ in listing.entries] == [1, 3] and listing.uid_next == 4


def test_rename_inbox_onto_an_existing_folder_is_refused(user: Path) -> None:
    folders.create(user, "Taken")
    files = inbox_files(user, 1)
    with pytest.raises(MailboxExists):
        folders.move_inbox(user, "Taken", [(1, files[0].split(":")[0])], files, b"", 2)
    assert os.listdir(user / "cur") == files


def test_folder_made_meanwhile_puts_the_moved_files_back(user: Path) -> None:
    """Another session creates the target between the check and the rename."""
    files = inbox_files(user, 2)
    folders.create(user, "Race")
    entries = [(uid, name.split(":")[0]) for uid, name in enumerate(files, 1)]
    with pytest.raises(MailboxExists, match="'Race' exists"):
        folders._make(user, "Race", entries, 3, b"kw", files, source=user)
    assert sorted(os.listdir(user / "cur")) == files  # back where they were
    assert os.listdir(layout.mailbox_dir(user, "Race") / "cur") == []
    assert [e for e in os.listdir(user) if e.startswith("..")] == []  # no scratch folder left
