"""``exchmail deliver``'s Maildir drop (exchmail.lmtp.local), called directly:
the folder chosen, a write that fails midway, and the quota's disk usage."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from exchmail.errors import MailboxExists
from exchmail.lmtp import local
from exchmail.store.maildir import folders

MESSAGE = b"Subject: local\r\n\r\nhello\r\n"


def user_path(tmp_path: Path) -> Path:
    return folders.make_user(tmp_path, "alice")


@pytest.mark.parametrize("wanted", ["a//b", "x\x00y", "."])
def test_invalid_folder_name_delivers_to_inbox(tmp_path: Path, wanted: str) -> None:
    assert local.find_folder(user_path(tmp_path), wanted, create=True) == "INBOX"
    assert folders.list_mailboxes(user_path(tmp_path)) == ["INBOX"]  # nothing created


def test_existing_folder_exactly_or_in_another_case(tmp_path: Path) -> None:
    path = user_path(tmp_path)
    folders.create(path, "Lists/Python")
    assert local.find_folder(path, "Lists/Python", create=False) == "Lists/Python"
    assert local.find_folder(path, "lists/PYTHON", create=False) == "Lists/Python"
    assert local.find_folder(path, "Other", create=False) == "INBOX"


def test_folder_made_meanwhile_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another delivery (or the server) creates the folder between the look and the mkdir."""
    path = user_path(tmp_path)

    def create_first(user: Path, name: str) -> None:
        monkeypatch.undo()
        folders.create(user, name)  # the other side wins the race
        raise MailboxExists(name)

    monkeypatch.setattr(folders, "create", create_first)
    assert local.find_folder(path, "Archive", create=True) == "Archive"
    name, target = local.drop(tmp_path, "alice", io.BytesIO(MESSAGE), "Archive")
    assert name == "Archive" and target.read_bytes() == MESSAGE.replace(b"\r\n", b"\n")


class _FailingSource(io.RawIOBase):
    """Gives one chunk, then fails as a broken pipe would."""

    def __init__(self) -> None:
        self.calls = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 1:
            raise OSError("read failed")
        return b"Subject: partial\r\n"


def test_failed_read_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="read failed"):
        local.drop(tmp_path, "alice", _FailingSource())  # type: ignore[arg-type]
    inbox = tmp_path / "alice"
    assert os.listdir(inbox / "tmp") == [] and os.listdir(inbox / "new") == []


def test_usage_counts_new_and_cur_of_every_folder(tmp_path: Path) -> None:
    assert local.usage(tmp_path, "alice") == 0  # no mail folder yet
    local.drop(tmp_path, "alice", io.BytesIO(MESSAGE))
    local.drop(tmp_path, "alice", io.BytesIO(MESSAGE), "Archive", create=True)
    on_disk = len(MESSAGE.replace(b"\r\n", b"\n"))
    assert local.usage(tmp_path, "alice") == 2 * on_disk


def test_usage_skips_a_folder_deleted_while_counting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local.drop(tmp_path, "alice", io.BytesIO(MESSAGE))
    listed = folders.list_mailboxes
    # The server deletes "Gone" between the listing and the scan of its files.
    monkeypatch.setattr(folders, "list_mailboxes", lambda path: [*listed(path), "Gone"])
    assert local.usage(tmp_path, "alice") == len(MESSAGE.replace(b"\r\n", b"\n"))


def test_usage_skips_files_expunged_while_counting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local.drop(tmp_path, "alice", io.BytesIO(MESSAGE))
    local.drop(tmp_path, "alice", io.BytesIO(MESSAGE))
    scan = local._message_files

    def expunging(path: Path):  # the server expunges the first file once it was listed
        for i, entry in enumerate(scan(path)):
            if i == 0:
                os.unlink(entry.path)
            yield entry

    monkeypatch.setattr(local, "_message_files", expunging)
    assert local.usage(tmp_path, "alice") == len(MESSAGE.replace(b"\r\n", b"\n"))
