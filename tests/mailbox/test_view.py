"""A session's \\Recent UIDs (exchmail.mailbox.view.RecentUids): compact, and
the same answers as a set of UIDs would give."""

from __future__ import annotations

from array import array

import pytest

from exchmail.mailbox.view import RecentUids


def test_recent_uids_answer_like_a_set() -> None:
    recent = RecentUids(frozenset({9, 3, 5}))
    assert len(recent) == 3 and recent
    assert [uid in recent for uid in range(11)] == [uid in {3, 5, 9} for uid in range(11)]
    recent.update([12, 11])  # a later claim: above all others
    recent.update([5, 10])  # EXAMINE sees unclaimed ones again
    assert [uid for uid in range(14) if uid in recent] == [3, 5, 9, 10, 11, 12]
    recent.discard_all([5, 11, 99])
    assert [uid for uid in range(14) if uid in recent] == [3, 9, 10, 12]
    assert not RecentUids()


@pytest.mark.parametrize(
    "uids, recent",
    [
        ([1, 2, 3, 4], [3, 4]),  # the last ones: counted, not looked up
        ([1, 2, 3, 4], [1, 2, 3, 4]),
        ([1, 2, 3, 4], []),
        ([1, 2, 4, 5], [2, 3, 5]),  # 3 expunged (not yet told), 4 claimed by another session
        ([1, 2, 3, 4], [2, 4]),
        ([5, 6], [1, 2, 3]),
    ],
)
def test_marks_match_membership(uids: list[int], recent: list[int]) -> None:
    expected = [uid in recent for uid in uids]
    assert list(RecentUids(recent).marks(uids)) == expected
    assert list(RecentUids(recent).marks(array("Q", uids))) == expected
