"""The store compliance kit: the contract of :mod:`exchmail.interfaces`, as tests.

A backend author checks a store against the contract by subclassing
:class:`StoreContract` in a pytest module and giving it a ``store``
fixture that returns a fresh, empty store::

    import pytest
    from exchmail.testing.store_contract import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            return MyStore(tmp_path / "db.sqlite")

Every test of the kit then runs against that store: UIDs (strictly
increasing, never reused, copy-on-write ``uids()``), flag persistence and
modes, listener notifications (with ``origin``), expunge of ``\\Deleted``
only, COPY, replace, CREATE/DELETE/RENAME (INBOX rules included),
subscriptions, name validation and the zope interface declarations.

The kit calls the store directly, without a reactor: every method must
return a value or an already fired Deferred when the store is built
without a thread pool (as MemoryStore, ``MaildirStore(root)`` and the
example SQLite store are).  The class name does not start with ``Test``,
so pytest collects it only through a subclass.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from zope.interface.verify import verifyObject

from exchmail.errors import (
    InvalidMailboxName,
    InvalidUserName,
    MailboxExists,
    NoSuchMailbox,
    NoSuchMessage,
)
from exchmail.interfaces import (
    IMailboxListener,
    IStore,
    IStoreAccount,
    IStoreMailbox,
    IStoreMessage,
)
from exchmail.testing import Recorder, call

MESSAGE = b"From: a@example.org\r\nSubject: test\r\n\r\nHello\r\nworld\r\n"


class StoreContract:
    """The IStore* contract; subclass it as ``Test...`` with a ``store`` fixture."""

    @pytest.fixture
    def store(self) -> Any:
        """Override: a fresh, empty store (synchronous, see the module docs)."""
        pytest.skip("StoreContract subclasses must define a 'store' fixture")

    @pytest.fixture
    def account(self, store: Any) -> Any:
        return call(store.account, "alice")

    @pytest.fixture
    def inbox(self, account: Any) -> Any:
        return call(account.mailbox, "INBOX")

    def test_interfaces(self, store: Any, account: Any, inbox: Any) -> None:
        assert verifyObject(IStore, store)
        assert verifyObject(IStoreAccount, account)
        assert verifyObject(IStoreMailbox, inbox)
        uid = call(inbox.append, MESSAGE)
        assert verifyObject(IStoreMessage, inbox.message(uid))
        assert verifyObject(IMailboxListener, Recorder())

    def test_account_is_shared_and_has_inbox(self, store: Any, account: Any) -> None:
        assert call(store.account, "alice") is account
        assert account.name == "alice"
        assert "INBOX" in account.list_mailboxes()
        assert call(account.mailbox, "inbox") is call(account.mailbox, "INBOX")
        assert call(account.mailbox, "InBoX").name == "INBOX"

    @pytest.mark.parametrize("user", ["", "../x", "a/b", ".hidden", "a b"])
    def test_invalid_user_names(self, store: Any, user: str) -> None:
        with pytest.raises(InvalidUserName):
            call(store.account, user)

    def test_append_and_read(self, inbox: Any) -> None:
        assert inbox.uid_validity > 0
        first = call(inbox.append, MESSAGE, frozenset({"\\Seen"}), 1_000_000_000.0)
        second = call(inbox.append, io.BytesIO(b"xx" + MESSAGE), frozenset(), None)
        assert 0 < first < second
        assert list(inbox.uids()) == [first, second]
        assert inbox.uid_next > second
        record = inbox.message(first)
        assert record.uid == first
        assert record.flags == frozenset({"\\Seen"})
        assert record.internal_date == pytest.approx(1_000_000_000.0)
        assert record.exact_size == len(MESSAGE)
        with inbox.open_message(first) as f:
            assert f.read() == MESSAGE
        with inbox.open_message(second) as f:
            assert f.read() == b"xx" + MESSAGE
        assert inbox.message(9999) is None
        with pytest.raises(NoSuchMessage):
            inbox.open_message(9999)

    def test_append_from_file_position(self, inbox: Any) -> None:
        source = io.BytesIO(b"IGNORED" + MESSAGE)
        source.seek(7)
        uid = call(inbox.append, source)
        with inbox.open_message(uid) as f:
            assert f.read() == MESSAGE

    def test_recent_claimed_once(self, inbox: Any) -> None:
        inbox.claim_recent()
        uid = call(inbox.append, MESSAGE)
        assert uid in inbox.claim_recent()
        assert inbox.claim_recent() == frozenset()

    def test_set_flags_modes_and_listeners(self, inbox: Any) -> None:
        uid = call(inbox.append, MESSAGE)
        listener = Recorder()
        inbox.add_listener(listener)
        token = object()
        assert inbox.set_flags([uid], frozenset({"\\Seen", "$Label1"}), "add", token) == {
            uid: frozenset({"\\Seen", "$Label1"})}
        assert inbox.set_flags([uid], frozenset({"\\Seen"}), "remove") == {uid: frozenset({"$Label1"})}
        assert inbox.set_flags([uid, 4242], frozenset({"\\Flagged"}), "replace") == {
            uid: frozenset({"\\Flagged"})}
        assert inbox.message(uid).flags == frozenset({"\\Flagged"})
        assert listener.events[0] == ("flags", [uid], token)
        assert len(listener.events) == 3
        inbox.set_flags([uid], frozenset({"\\Flagged"}), "add")  # no change: no event
        assert len(listener.events) == 3
        inbox.remove_listener(listener)
        inbox.remove_listener(listener)  # no error when absent
        inbox.set_flags([uid], frozenset(), "replace")
        assert len(listener.events) == 3

    def test_listener_gets_added(self, inbox: Any) -> None:
        listener = Recorder()
        inbox.add_listener(listener)
        uid = call(inbox.append, MESSAGE)
        assert listener.events == [("added", [uid])]

    def test_expunge_only_deleted(self, inbox: Any) -> None:
        uids = [call(inbox.append, MESSAGE) for _ in range(4)]
        inbox.set_flags(uids[:3], frozenset({"\\Deleted"}), "add")
        before = inbox.uids()
        snapshot = list(before)
        listener = Recorder()
        inbox.add_listener(listener)
        assert call(inbox.expunge, [uids[1], uids[3]]) == [uids[1]]
        assert call(inbox.expunge) == [uids[0], uids[2]]
        assert list(inbox.uids()) == [uids[3]]
        assert list(before) == snapshot  # copy-on-write: handed-out sequences stay
        assert listener.events == [("expunged", [uids[1]]), ("expunged", [uids[0], uids[2]])]
        assert inbox.message(uids[0]) is None

    def test_uids_not_reused_after_expunge(self, inbox: Any) -> None:
        last = call(inbox.append, MESSAGE)
        inbox.set_flags([last], frozenset({"\\Deleted"}), "add")
        call(inbox.expunge)
        assert inbox.uid_next > last
        assert call(inbox.append, MESSAGE) > last

    def test_copy_to(self, account: Any, inbox: Any) -> None:
        call(account.create, "Archive")
        archive = call(account.mailbox, "Archive")
        a = call(inbox.append, MESSAGE, frozenset({"\\Answered", "$Work"}), 1_200_000_000.0)
        b = call(inbox.append, b"Subject: b\r\n\r\nb\r\n")
        pairs = call(inbox.copy_to, [b, a, 777], archive)
        assert [src for src, _ in pairs] == [a, b]
        new_a = dict(pairs)[a]
        record = archive.message(new_a)
        assert record.flags == frozenset({"\\Answered", "$Work"})
        assert record.internal_date == pytest.approx(1_200_000_000.0)
        with archive.open_message(new_a) as f:
            assert f.read() == MESSAGE
        assert list(inbox.uids()) == [a, b]

    def test_replace_message(self, inbox: Any) -> None:
        old = call(inbox.append, MESSAGE, frozenset({"\\Draft"}), 1_300_000_000.0)
        listener = Recorder()
        inbox.add_listener(listener)
        new = call(inbox.replace_message, old, b"Subject: v2\r\n\r\nnew\r\n")
        assert new > old
        assert inbox.message(old) is None
        assert list(inbox.uids()) == [new]
        assert inbox.message(new).flags == frozenset({"\\Draft"})
        assert inbox.message(new).internal_date == pytest.approx(1_300_000_000.0)
        with inbox.open_message(new) as f:
            assert f.read() == b"Subject: v2\r\n\r\nnew\r\n"
        assert ("added", [new]) in listener.events and ("expunged", [old]) in listener.events
        with pytest.raises(NoSuchMessage):
            call(inbox.replace_message, old, MESSAGE)

    def test_refresh_fires(self, inbox: Any) -> None:
        assert call(inbox.refresh) is None

    def test_create_and_list(self, account: Any) -> None:
        call(account.create, "A/B/C")
        assert {"INBOX", "A", "A/B", "A/B/C"} <= set(account.list_mailboxes())
        with pytest.raises(MailboxExists):
            call(account.create, "A/B")
        with pytest.raises(MailboxExists):
            call(account.create, "inbox")
        call(account.create, "INBOX/Sub")
        assert "INBOX/Sub" in account.list_mailboxes()
        with pytest.raises(NoSuchMailbox):
            call(account.mailbox, "Nope")

    @pytest.mark.parametrize("name", ["", "/abs", "a//b", "a/../b", "..", ".", "a\x00b", "x" * 300])
    def test_invalid_mailbox_names(self, account: Any, name: str) -> None:
        with pytest.raises(InvalidMailboxName):
            call(account.create, name)

    def test_delete(self, account: Any) -> None:
        call(account.create, "P/Q")
        call(account.delete, "P")
        assert "P" not in account.list_mailboxes()
        assert "P/Q" in account.list_mailboxes()
        with pytest.raises(NoSuchMailbox):
            call(account.delete, "P")
        with pytest.raises(InvalidMailboxName):
            call(account.delete, "INBOX")
        with pytest.raises(NoSuchMailbox):
            call(account.mailbox, "P")

    def test_rename_moves_children(self, account: Any) -> None:
        call(account.create, "Old/Kid")
        old = call(account.mailbox, "Old")
        uid = call(old.append, MESSAGE, frozenset({"\\Seen"}))
        call(account.rename, "Old", "New/Place")
        listed = set(account.list_mailboxes())
        assert {"New", "New/Place", "New/Place/Kid"} <= listed
        assert not {"Old", "Old/Kid"} & listed
        box = call(account.mailbox, "New/Place")
        assert box is old and box.name == "New/Place"
        assert box.message(uid).flags == frozenset({"\\Seen"})
        with box.open_message(uid) as f:
            assert f.read() == MESSAGE
        call(box.append, MESSAGE)  # the renamed object keeps working
        assert len(box.uids()) == 2
        with pytest.raises(NoSuchMailbox):
            call(account.rename, "Old", "Other")
        call(account.create, "Taken")
        with pytest.raises(MailboxExists):
            call(account.rename, "New", "Taken")
        with pytest.raises(InvalidMailboxName):
            call(account.rename, "New", "New/Place/Deeper")

    def test_rename_inbox(self, account: Any, inbox: Any) -> None:
        uids = [call(inbox.append, MESSAGE, frozenset({"\\Seen"})) for _ in range(2)]
        call(account.rename, "INBOX", "Saved")
        assert list(inbox.uids()) == []
        assert "INBOX" in account.list_mailboxes()
        saved = call(account.mailbox, "Saved")
        assert len(saved.uids()) == 2
        for uid in saved.uids():
            assert saved.message(uid).flags == frozenset({"\\Seen"})
            with saved.open_message(uid) as f:
                assert f.read() == MESSAGE
        assert call(inbox.append, MESSAGE) > max(uids)

    def test_subscriptions(self, account: Any) -> None:
        assert account.subscriptions() == set()
        account.subscribe("News/Tech")
        account.subscribe("inbox")
        assert account.subscriptions() == {"News/Tech", "INBOX"}
        account.unsubscribe("News/Tech")
        account.unsubscribe("Not/There")
        assert account.subscriptions() == {"INBOX"}
        with pytest.raises(InvalidMailboxName):
            account.subscribe("a//b")
