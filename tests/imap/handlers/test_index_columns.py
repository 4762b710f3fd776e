"""FETCH and SEARCH over the whole mailbox from the index columns
(exchmail.imap.handlers.fetching / searching, IIndexScan.columns).

(The columns themselves are checked for every store by the store compliance
kit.)  FETCH of ``1:n`` and SEARCH on flags alone take the column path; a FETCH
that starts past message 1, or a SEARCH that also looks at numbers, takes
the row-by-row path.  Both must answer the same.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from harness import Harness  # noqa: E402

from exchmail.store.index import IndexedMailbox  # noqa: E402

FLAG_SETS = [
    frozenset(),
    frozenset({"\\Seen"}),
    frozenset({"\\Seen", "$Junk"}),
    frozenset({"kw1"}),
    frozenset({"\\Flagged", "\\Deleted"}),
]


def _mailbox_of_mixed_flags(profile: str) -> tuple[Harness, object]:
    """60 messages, cycling through FLAG_SETS; the last 10 \\Recent for the session."""
    harness = Harness(profile, {"client_keywords": True})
    box = harness.mailbox()
    for i in range(50):
        box.append(b"Subject: m%d\r\n\r\nbody\r\n" % i, FLAG_SETS[i % 5], 1_700_000_000.0 + i * 3600)
    box.claim_recent()
    for i in range(10):
        box.append(b"Subject: r%d\r\n\r\nbody\r\n" % i, FLAG_SETS[(i + 2) % 5], 1_600_000_000.0 + i)
    client = harness.imap()
    client.login()
    client.line("S SELECT INBOX")
    return harness, client


@pytest.fixture
def column_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many messages each IIndexScan.columns call of the store answered."""
    calls: list[int] = []
    original = IndexedMailbox.columns

    def counted(self: IndexedMailbox, uids: object) -> object:
        columns = original(self, uids)  # type: ignore[arg-type]
        calls.append(-1 if columns is None else len(columns.uids))
        return columns

    monkeypatch.setattr(IndexedMailbox, "columns", counted)
    return calls


def _untagged(output: bytes) -> list[bytes]:
    return [line for line in output.split(b"\r\n") if line.startswith(b"* ")]


@pytest.mark.parametrize("profile", ["rfc3501", "exchange2010"])
@pytest.mark.parametrize(
    "items", ["FLAGS", "(UID FLAGS)", "(UID RFC822.SIZE)", "(INTERNALDATE FLAGS RFC822.SIZE)", "FAST"]
)
def test_fetch_of_the_whole_mailbox_answers_as_row_by_row(
    profile: str, items: str, column_calls: list[int]
) -> None:
    _, client = _mailbox_of_mixed_flags(profile)
    column_calls.clear()  # SELECT's first unseen
    rows = _untagged(client.line(f"R1 FETCH 1 {items}")) + _untagged(client.line(f"R2 FETCH 2:* {items}"))
    assert column_calls == [1]  # message 1 alone is a prefix too; 2:* goes row by row
    columns = _untagged(client.line(f"C FETCH 1:* {items}"))
    assert column_calls[-1] == 60
    assert columns == [line for line in rows if b" FETCH " in line]
    assert len(columns) == 60
    if "FLAGS" in items:
        assert b"\\Recent" in columns[-1] and b"\\Recent" not in columns[0]


def test_keywords_are_announced_before_the_first_line_that_shows_them() -> None:
    _, client = _mailbox_of_mixed_flags("rfc3501")
    lines = _untagged(client.line("C UID FETCH 1:* (FLAGS)"))
    first_kw1 = next(i for i, line in enumerate(lines) if b"kw1" in line and b" FETCH " in line)
    announced = [i for i, line in enumerate(lines) if line.startswith(b"* FLAGS ") and b"kw1" in line]
    assert announced and announced[0] < first_kw1


@pytest.mark.parametrize("profile", ["rfc3501", "exchange2010"])
@pytest.mark.parametrize(
    "criteria",
    ["UNSEEN", "SEEN", "NOT SEEN NOT DELETED", "OR FLAGGED KEYWORD kw1", "RECENT", "NEW", "OLD UNSEEN"],
)
@pytest.mark.parametrize("uid", ["", "UID "])
def test_search_on_flags_answers_as_row_by_row(
    profile: str, criteria: str, uid: str, column_calls: list[int]
) -> None:
    _, client = _mailbox_of_mixed_flags(profile)
    column_calls.clear()  # SELECT's first unseen
    # ``1:*`` makes the program look at numbers too: the row-by-row path.
    by_rows = client.line(f"R {uid}SEARCH 1:* {criteria}")
    assert column_calls == []
    by_columns = client.line(f"C {uid}SEARCH {criteria}")
    assert column_calls == [60]  # RECENT, NEW, OLD: asked, then row by row
    assert _untagged(by_columns) == _untagged(by_rows)
    found = re.findall(rb"\d+", _untagged(by_columns)[0])
    assert 0 < len(found) < 60


def test_search_after_an_expunge_not_yet_told_uses_the_rows() -> None:
    harness, client = _mailbox_of_mixed_flags("rfc3501")
    other = harness.imap()
    other.login()
    other.line("O SELECT INBOX")
    other.line("O EXPUNGE")  # \Deleted ones gone; the first client has not heard yet
    answer = _untagged(client.line("C SEARCH UNSEEN"))
    assert answer == _untagged(client.line("R SEARCH 1:* UNSEEN"))
    # Numbers as the client still knows them; the expunged (\\Deleted: 5, 10,
    # ... 50, 53, 58) are left out.
    found = {int(n) for n in answer[0].split()[2:]}
    assert found and not found & {*range(5, 51, 5), 53, 58}
    assert {1, 4, 6, 9, 59} <= found
