"""mbox reading and writing (exchmail.transfer.mbox) called directly: From-line
dates, the Date header fallback, folder trees, and entries without a body."""

from __future__ import annotations

import calendar
from pathlib import Path

import pytest

from exchmail.transfer.mbox import MboxSource, from_line_date, mbox_entry, mbox_folders, message_from_mbox

Y2K = float(calendar.timegm((2000, 1, 1, 0, 0, 0)))


@pytest.mark.parametrize(
    ("line", "date"),
    [
        (b"From a@example.org Sat Jan  1 00:00:00 2000", Y2K),
        (b"From a@example.org Sat Jan  1 00:00 +0100 2000", Y2K),  # read as UTC, no seconds
        (b"From MAILER-DAEMON Sat Jan  1 00:00:00 CET 2000", Y2K),
        (b"From a@example.org", None),  # no date at all
        (b"From a@example.org Sat Jan  1 00:00:00 0000", None),  # no year 0
    ],
)
def test_from_line_date(line: bytes, date: float | None) -> None:
    assert from_line_date(line) == date


def test_date_header_when_the_from_line_has_none() -> None:
    raw = b"Date: Sat, 01 Jan 2000 01:00:00 +0100\nSubject: x\n\nbody\n"
    assert message_from_mbox(raw, b"From a@example.org")[2] == Y2K
    broken = b"Date: the day after tomorrow\nSubject: x\n\nbody\n"
    content, _, date = message_from_mbox(broken, b"From a@example.org")
    assert date is None and content.startswith(b"Date: the day after tomorrow\r\n")


def test_folder_tree_of_mbox_files(tmp_path: Path) -> None:
    entry = b"From a@example.org Sat Jan  1 00:00:00 2000\nSubject: s\n\nhi\n"
    files = {
        "inbox": entry,  # any case: INBOX
        "Work.mbox": entry,
        "Work.sbd/Projects": entry,  # Thunderbird's subfolder
        "Archive/2020.mbx": entry,
        "notes.txt": b"not an mbox\n",
        "empty": b"",
    }
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    found = {name: path.relative_to(tmp_path).as_posix() for name, path in mbox_folders(tmp_path)}
    assert found == {
        "Archive/2020": "Archive/2020.mbx",
        "INBOX": "inbox",
        "Work": "Work.mbox",
        "Work/Projects": "Work.sbd/Projects",
    }
    source = MboxSource(tmp_path)
    assert source.totals() == (4, 4 * len(b"Subject: s\n\nhi\n"))
    assert sorted(m.folder for m in source.messages()) == ["Archive/2020", "INBOX", "Work", "Work/Projects"]
    single = MboxSource(tmp_path / "Work.mbox", folder="Saved")
    assert [(m.folder, m.internal_date, m.read()) for m in single.messages()] == [
        ("Saved", Y2K, b"Subject: s\r\n\r\nhi\r\n")
    ]


def test_entry_of_a_message_without_a_body_or_final_line_end() -> None:
    assert mbox_entry(b"Subject: only a header\r\n", frozenset({"\\Seen"}), Y2K) == (
        b"From MAILER-DAEMON Sat Jan  1 00:00:00 2000\nSubject: only a header\nStatus: RO\n\n\n"
    )
    assert mbox_entry(b"Subject: x\r\n\r\nFrom here, no line end", frozenset(), Y2K, "a@b") == (
        b"From a@b Sat Jan  1 00:00:00 2000\nSubject: x\nStatus: O\n\n>From here, no line end\n\n"
    )
