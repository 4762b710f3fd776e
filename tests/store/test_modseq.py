"""The shared index's MODSEQ memory (exchmail/store/modseq.py): bounded, and
honest about what it forgot."""

from __future__ import annotations

from exchmail.store.index import EXPUNGE_MEMORY
from exchmail.store.memory import MemoryMailbox
from exchmail.testing import call


def test_expunge_memory_is_bounded_and_says_when_it_forgot():
    remembered = [(m, m) for m in range(2, EXPUNGE_MEMORY + 12)]  # 10 too many
    box = MemoryMailbox(
        "INBOX", 1, uid_next=EXPUNGE_MEMORY + 20, highest_modseq=EXPUNGE_MEMORY + 11, expunged=remembered
    )
    assert box.expunged_since(10) is None  # older than what is kept
    assert box.expunged_since(11) == list(range(12, EXPUNGE_MEMORY + 12))
    assert box.expunged_since(EXPUNGE_MEMORY + 10) == [EXPUNGE_MEMORY + 11]
    assert box.expunged_since(box.highest_modseq()) == []


def test_new_expunges_push_the_floor():
    full = [(m, m) for m in range(1, EXPUNGE_MEMORY + 1)]
    box = MemoryMailbox("INBOX", 1, uid_next=EXPUNGE_MEMORY + 1, highest_modseq=EXPUNGE_MEMORY, expunged=full)
    assert box.expunged_since(0) == list(range(1, EXPUNGE_MEMORY + 1))
    uid = call(box.append, b"x\r\n", frozenset({"\\Deleted"}))
    assert call(box.expunge) == [uid]
    assert box.expunged_since(0) is None  # UID 1's expunge was forgotten for it
    assert box.expunged_since(1)[-1] == uid and len(box.expunged_since(1)) == EXPUNGE_MEMORY
