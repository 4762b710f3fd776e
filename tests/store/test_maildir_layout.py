"""Modified UTF-7, folder name <-> directory mapping and path safety."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import call

from exchmail import mutf7
from exchmail.errors import InvalidMailboxName, InvalidUserName, NoSuchMailbox
from exchmail.store.maildir import MaildirStore
from exchmail.store.maildir.layout import folder_dirname, folder_name


# -- modified UTF-7 ----------------------------------------------------
@pytest.mark.parametrize(
    "text, encoded",
    [
        ("INBOX", "INBOX"),
        ("&", "&-"),
        ("Tom & Jerry", "Tom &- Jerry"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("Gelöschte Elemente", "Gel&APY-schte Elemente"),
        ("😀", "&2D3eAA-"),
        ("", ""),
    ],
)
def test_mutf7_known_values(text: str, encoded: str) -> None:
    assert mutf7.encode(text) == encoded
    assert mutf7.decode(encoded) == text


@pytest.mark.parametrize(
    "bad",
    [
        "&",  # unterminated
        "&AGE",  # unterminated
        "&AGE-",  # 'a' (printable) must not be base64-encoded
        "&Jjo!-",  # bad base64 character
        "&U,BTFw-&ZeVnLIqe-",  # two adjacent runs: not canonical
        "&AP-",  # odd byte count / non-zero padding bits
        "&2D0-",  # lone surrogate
        "caf\xe9",  # raw 8-bit
        "a\tb",  # control character
    ],
)
def test_mutf7_strict(bad: str) -> None:
    with pytest.raises(ValueError):
        mutf7.decode(bad)


def test_mutf7_round_trip_all_printable_and_more() -> None:
    text = "".join(chr(c) for c in range(0x20, 0x7F)) + "\x01\u00e9\uffff\U0001f600 end"
    assert mutf7.encode(text).isascii()
    assert mutf7.decode(mutf7.encode(text)) == text


# -- layout -------------------------------------------------------------
NAMES = [
    "Sent",
    "A/B",
    "Entwürfe/2024",
    "dots.in.name",
    "100%",
    "a&b",
    "~home",
    "with space",
    "back\\slash",
    ".hidden",
    "%2E%2E",
    "..x",
    "x..",
    "INBOX/Child",
    "inbox2",
    "&-",
    "日本語/😀",
    'a:b*c?d"e<f>g|h',
    "%25",
]


@pytest.mark.parametrize("name", NAMES)
def test_dirname_round_trip(name: str) -> None:
    dirname = folder_dirname(name)
    assert dirname.startswith(".") and dirname not in (".", "..")
    assert "/" not in dirname and "\x00" not in dirname
    # Exactly one '.' per hierarchy level, none inside a component.
    assert dirname.count(".") == name.count("/") + 1
    assert dirname.isascii()
    assert folder_name(dirname) == name


def test_dirname_escapes() -> None:
    assert folder_dirname("a.b/c") == ".a%2Eb.c"
    assert folder_dirname("50%") == ".50%25"
    assert folder_dirname("~x") == ".%7Ex"
    assert folder_dirname("a\\b") == ".a%5Cb"
    assert folder_dirname("Entwürfe") == ".Entw&APw-rfe"


@pytest.mark.parametrize(
    "dirname",
    [
        ".",
        "..",
        "cur",
        "new",
        "tmp",
        ".INBOX",
        ".inbox",
        "..x",
        ".x.",
        ".a..b",
        ".a%2eb",
        ".a%2",
        ".a%zz",
        ".a~b",
        ".caf\u00e9",
        ".&AGE-",
        ".a%2Fb",
        "..exchmail-trash-1-2",
        ".a\\b",
    ],
)
def test_foreign_dirnames_ignored(dirname: str) -> None:
    assert folder_name(dirname) is None


def test_inbox_is_not_a_folder() -> None:
    with pytest.raises(InvalidMailboxName):
        folder_dirname("INBOX")


def test_overlong_dirname_refused() -> None:
    with pytest.raises(InvalidMailboxName):
        folder_dirname("/".join(["ü" * 60] * 4))


# -- path safety ---------------------------------------------------------
def _tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "../x",
        "a/../../b",
        "/abs",
        "a\x00b",
        ".hidden",
        "~",
        "%2E%2E",
        "../../etc",
        "a/./b",
        "a/b/",
        "\\..\\x",
    ],
)
def test_hostile_mailbox_names_stay_inside(tmp_path: Path, name: str) -> None:
    root = tmp_path / "root"
    store = MaildirStore(root)
    account = call(store.account, "bob")
    for op in (
        account.create,
        account.mailbox,
        account.delete,
        account.subscribe,
        lambda name: account.rename("A", name),
        lambda name: account.rename(name, "B"),
    ):
        try:
            call(op, name)
        except (InvalidMailboxName, NoSuchMailbox):
            pass
    try:
        call(account.rename, "INBOX", name)
    except (InvalidMailboxName, NoSuchMailbox):
        pass
    # Nothing appeared outside the user's maildir ...
    outside = {p for p in _tree(tmp_path) if not p.startswith("root/bob/")}
    assert outside == {"root", "root/bob"}
    # ... and whatever was created inside is a single, decodable folder level.
    for entry in os.listdir(root / "bob"):
        if entry.startswith(".") and (root / "bob" / entry).is_dir():
            assert folder_name(entry) is not None or entry.startswith("..")
    assert set(os.listdir(root)) == {"bob"}


@pytest.mark.parametrize("user", ["../x", "", "a/b", "..", ".", "/abs", "a\x00"])
def test_hostile_user_names(tmp_path: Path, user: str) -> None:
    store = MaildirStore(tmp_path / "root")
    with pytest.raises(InvalidUserName):
        call(store.account, user)
    assert not (tmp_path / "root").exists() or os.listdir(tmp_path / "root") == []
