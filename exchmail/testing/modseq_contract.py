"""The MODSEQ rules of :class:`~exchmail.interfaces.IModSeq`, as tests (RFC 7162).

Mixed into :class:`~exchmail.testing.store_contract.StoreContract`: a store
whose mailboxes provide ``IModSeq`` is checked against every rule of the
interface's contract; one without it is skipped here (its sessions answer
``NOMODSEQ``, which is allowed).
"""

from __future__ import annotations

from typing import Any

import pytest

from exchmail.interfaces import IModSeq

MESSAGE = b"From: a@example.org\r\nSubject: modseq\r\n\r\nbody\r\n"


def _modseq(box: Any, uid: int) -> int:
    found = dict(IModSeq(box).modseqs([uid]))
    return found[uid]


class ModSeqContract:
    """Checks of MODSEQ, HIGHESTMODSEQ and the remembered expunges."""

    def call(self, f: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def reopen(self, store: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def modseq_box(inbox: Any) -> Any:
        if not IModSeq.providedBy(inbox):
            pytest.skip("the store keeps no MODSEQs (sessions answer NOMODSEQ)")
        return inbox

    def test_modseq_grows_with_every_change(self, inbox: Any) -> None:
        box = self.modseq_box(inbox)
        start = box.highest_modseq()
        assert start >= 1
        uid = self.call(box.append, MESSAGE)
        appended = box.highest_modseq()
        assert appended > start and _modseq(box, uid) == appended
        self.call(box.set_flags, [uid], frozenset({"\\Seen"}), "add")
        flagged = box.highest_modseq()
        assert flagged > appended and _modseq(box, uid) == flagged
        self.call(box.set_flags, [uid], frozenset({"\\Seen"}), "add")  # changes nothing
        assert box.highest_modseq() == flagged and _modseq(box, uid) == flagged
        other = self.call(box.append, MESSAGE)
        assert all(m <= box.highest_modseq() for _, m in box.modseqs([uid, other]))
        assert box.expunged_since(flagged) == []
        self.call(box.set_flags, [uid], frozenset({"\\Deleted"}), "add")
        before = box.highest_modseq()
        assert self.call(box.expunge) == [uid]
        assert box.highest_modseq() > before
        assert box.expunged_since(before) == [uid]
        assert box.expunged_since(box.highest_modseq()) == []
        assert list(box.modseqs([uid, other])) == [(other, _modseq(box, other))]

    def test_copy_gives_a_new_modseq(self, account: Any, inbox: Any) -> None:
        box = self.modseq_box(inbox)
        uid = self.call(box.append, MESSAGE)
        self.call(account.create, "Target")
        target = self.call(account.mailbox, "Target")
        before = target.highest_modseq()
        ((_, new),) = self.call(box.copy_to, [uid], target)
        assert target.highest_modseq() > before and _modseq(target, new) == target.highest_modseq()

    def test_unchanged_since_is_a_conditional_store(self, inbox: Any) -> None:
        box = self.modseq_box(inbox)
        a = self.call(box.append, MESSAGE)
        b = self.call(box.append, MESSAGE)
        known = _modseq(box, a)  # a is older than b
        result, modified = self.call(
            box.set_flags_unchanged_since, [a, b], frozenset({"\\Flagged"}), "add", known
        )
        assert modified == [b]
        assert result == {a: frozenset({"\\Flagged"})}
        assert box.message(b).flags == frozenset()
        # UNCHANGEDSINCE 0 fails for every message (RFC 7162 §3.1.3)
        _, modified = self.call(box.set_flags_unchanged_since, [a], frozenset(), "replace", 0)
        assert modified == [a] and box.message(a).flags == frozenset({"\\Flagged"})

    def test_modseq_persistence(self, store: Any, inbox: Any) -> None:
        box = self.modseq_box(inbox)
        keep = self.call(box.append, MESSAGE)
        gone = self.call(box.append, MESSAGE, frozenset({"\\Deleted"}))
        self.call(box.set_flags, [keep], frozenset({"\\Answered"}), "add")
        before_expunge = box.highest_modseq()
        self.call(box.expunge)
        highest, kept = box.highest_modseq(), _modseq(box, keep)
        again = self.reopen(store)
        if again is None:
            pytest.skip("the store keeps nothing across a restart")
        reopened = self.call(self.call(again.account, "alice").mailbox, "INBOX")
        assert reopened.highest_modseq() == highest
        assert _modseq(reopened, keep) == kept
        assert reopened.expunged_since(before_expunge) == [gone]
        uid = self.call(reopened.append, MESSAGE)
        assert _modseq(reopened, uid) > highest
