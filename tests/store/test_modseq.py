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


def test_maildir_uid_list_rewrite_keeps_modseqs(tmp_path, monkeypatch):
    """Flag-change lines are folded into the UID list when it is rewritten:
    MODSEQs, HIGHESTMODSEQ and remembered expunges survive it and a restart."""
    from exchmail.store.maildir import MaildirStore
    from exchmail.store.maildir import mailbox as maildir_mailbox

    monkeypatch.setattr(maildir_mailbox, "MODSEQ_LINES", 3)

    def inbox():
        return call(call(MaildirStore(tmp_path).account, "bob").mailbox, "INBOX")

    box = inbox()
    uids = [call(box.append, b"Subject: %d\r\n\r\nx\r\n" % n) for n in range(4)]
    for round_ in range(6):  # more M lines than messages and MODSEQ_LINES: rewrites
        call(box.set_flags, [uids[round_ % 3]], frozenset({f"$k{round_}"}), "add")
    call(box.set_flags, [uids[3]], frozenset({"\\Deleted"}), "add")
    before_expunge = box.highest_modseq()
    assert call(box.expunge) == [uids[3]]
    call(box.set_flags, [uids[0]], frozenset({"\\Seen"}), "add")
    expected = dict(box.modseqs(uids))
    highest = box.highest_modseq()
    text = (tmp_path / "bob" / "exchmail-uidlist").read_text()
    # 13 M/X lines were appended in all; a rewrite folded them (one per MODSEQ)
    assert sum(line[:1] in ("M", "X") for line in text.splitlines()) < 10, text
    again = inbox()
    assert again.highest_modseq() == highest
    assert dict(again.modseqs(uids)) == expected
    assert again.expunged_since(before_expunge) == [uids[3]]
