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
increasing, never reused, copy-on-write ``uids()``), streamed and whole
reads (chunks of 1, 7 and 65536 octets), internal dates from 1900 to 9999,
flag modes, results and notifications (with ``origin``), concurrent flag
changes, expunge of ``\\Deleted`` only, MODSEQs where the store keeps them
(:mod:`exchmail.testing.modseq_contract`), COPY, replace, CREATE/DELETE/RENAME
(INBOX rules included), subscriptions, ``\\Marked``, name validation and
the zope interface declarations.

**Deferreds.**  The kit calls every asynchronous method through
:meth:`StoreContract.call`, which wraps it in ``maybeDeferred`` (a plain
value or a raise is fine, as the contract says) and by default expects the
Deferred to have fired already: build the store with a synchronous
``run_blocking`` (:func:`exchmail.store.runner.run_sync`, the default of
the built-in stores), so its work runs at once.  To run the kit against a
store using a real thread pool, override :meth:`StoreContract.call` to run
the call on a running reactor and wait (``blockingCallFromThread``), and
:meth:`StoreContract.now` to make the synchronous calls that change state
there too, as ``tests/store/test_threaded.py`` does.

**Optional features** are tested when the subclass enables them:

- :meth:`StoreContract.reopen`: a new store over the same data (a restart);
  persistence of UIDs, flags and internal dates is then checked.
- :meth:`StoreContract.outside_append` and :meth:`StoreContract.advance`:
  add a message the way another program would, and move the store's clock
  on; the kit then checks that listeners hear of it without ``refresh()``.
- ``release_after``: the store releases mailboxes nobody listens to after
  that many seconds (of its clock, moved with :meth:`advance`); the kit
  checks that the index is let go and that nothing durable is lost.

The class name does not start with ``Test``, so pytest collects it only
through a subclass.
"""

from __future__ import annotations

import gc
import inspect
import io
import weakref
from typing import Any

import pytest
from twisted.internet import defer
from zope.interface.verify import verifyObject

from exchmail.errors import (
    InvalidMailboxName,
    InvalidUserName,
    MailboxExists,
    NoSuchMailbox,
    NoSuchMessage,
)
from exchmail.interfaces import (
    IAccountListing,
    IIndexScan,
    IMailboxListener,
    IMarkedMailboxes,
    IMessageReader,
    IStore,
    IStoreAccount,
    IStoreMailbox,
    IStoreMessage,
)
from exchmail.testing import Recorder, call
from exchmail.testing.modseq_contract import ModSeqContract

MESSAGE = b"From: a@example.org\r\nSubject: test\r\n\r\nHello\r\nworld\r\n"
#: The internal dates IMAP can express (RFC 3501 date-time): 1900 to 9999, UTC.
FIRST_DATE = -2208988800.0  # 1900-01-01T00:00:00Z
LAST_DATE = 253402300799.0  # 9999-12-31T23:59:59Z
#: How often the watching tests move the clock on before giving up.
MAX_WAITS = 100


def big_message(lines: int = 25) -> bytes:
    """A message of ``lines`` 8 KiB lines (25: a little over 200 KiB) whose
    CRLFs straddle 64 KiB boundaries."""
    line = b"x" * 8190 + b"\r\n"
    return b"Subject: big\r\n\r\n" + line * lines + b"\xfe\xff end\r\n"


class StoreContract(ModSeqContract):
    """The IStore* contract; subclass it as ``Test...`` with a ``store`` fixture."""

    #: Seconds after which the store releases unlistened mailboxes, if it does.
    release_after: float | None = None
    #: Seconds :meth:`advance` moves on per wait in the watching test.
    watch_step: float = 5.0

    # -- hooks -------------------------------------------------------------------------
    @pytest.fixture
    def store(self) -> Any:
        """Override: a fresh, empty store (synchronous, see the module docs)."""
        pytest.skip("StoreContract subclasses must define a 'store' fixture")

    def call(self, f: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``f`` (which may return a Deferred) and return its result."""
        return call(f, *args, **kwargs)

    def now(self, f: Any, *args: Any) -> Any:
        """Call a synchronous method that changes state (``add_listener``,
        ``claim_recent``...); override to run it on the reactor thread."""
        return f(*args)

    def reopen(self, store: Any) -> Any:
        """A new store over the same data, as after a restart; ``None`` if the
        store keeps nothing (the persistence checks are then skipped)."""
        return None

    def outside_append(self, store: Any, user: str, mailbox: str, message: bytes) -> bool:
        """Add ``message`` to ``user``'s ``mailbox`` behind the store's back
        (as another program would); ``False`` if nothing else writes to it."""
        return False

    def advance(self, store: Any, seconds: float) -> None:
        """Move the store's clock on by ``seconds`` (a Clock) or wait that long."""
        pytest.skip("the store's clock cannot be moved on")

    # -- fixtures ------------------------------------------------------------------------
    @pytest.fixture
    def account(self, store: Any) -> Any:
        return self.call(store.account, "alice")

    @pytest.fixture
    def inbox(self, account: Any) -> Any:
        return self.call(account.mailbox, "INBOX")

    def read_all(self, reader: Any, size: int) -> bytes:
        chunks = []
        for _ in range(reader.size + 2):  # one octet per read at the very least
            chunk = self.call(reader.read, size)
            if not chunk:
                break
            assert len(chunk) <= size
            chunks.append(chunk)
        return b"".join(chunks)

    # -- interfaces and accounts ------------------------------------------------------------
    def test_interfaces(self, store: Any, account: Any, inbox: Any) -> None:
        assert verifyObject(IStore, store)
        assert verifyObject(IStoreAccount, account)
        assert verifyObject(IStoreMailbox, inbox)
        uid = self.call(inbox.append, MESSAGE)
        assert verifyObject(IStoreMessage, inbox.message(uid))
        reader = self.call(inbox.open_message, uid)
        assert verifyObject(IMessageReader, reader)
        reader.close()
        assert verifyObject(IMailboxListener, Recorder())
        if IAccountListing.providedBy(store):
            assert "alice" in self.call(store.account_names)

    def test_asynchronous_methods_return_deferreds_or_values(
        self, store: Any, account: Any, inbox: Any
    ) -> None:
        """Every asynchronous method gives a Deferred or a plain value (never a
        coroutine or generator, which ``maybeDeferred`` would not run)."""
        uid = self.call(inbox.append, MESSAGE)
        calls = [
            (store.account, "alice"),
            (account.list_mailboxes,),
            (account.mailbox, "INBOX"),
            (account.subscriptions,),
            (inbox.read_message, uid),
            (inbox.open_message, uid),
            (inbox.set_flags, [uid], frozenset({"\\Seen"}), "add"),
            (inbox.refresh,),
            (inbox.expunge, []),
        ]

        def returned(f: Any, *args: Any) -> Any:
            value = f(*args)
            assert isinstance(value, defer.Deferred) or not (
                inspect.iscoroutine(value) or inspect.isgenerator(value)
            ), f
            return value

        for f, *args in calls:
            self.call(returned, f, *args)

    def test_account_is_shared_and_has_inbox(self, store: Any, account: Any) -> None:
        assert self.call(store.account, "alice") is account
        assert account.name == "alice"
        assert "INBOX" in self.call(account.list_mailboxes)
        assert self.call(account.mailbox, "inbox") is self.call(account.mailbox, "INBOX")
        assert self.call(account.mailbox, "InBoX").name == "INBOX"

    @pytest.mark.parametrize("user", ["", "../x", "a/b", ".hidden", "a b"])
    def test_invalid_user_names(self, store: Any, user: str) -> None:
        with pytest.raises(InvalidUserName):
            self.call(store.account, user)

    # -- content ------------------------------------------------------------------------------
    def test_append_and_read(self, inbox: Any) -> None:
        assert inbox.uid_validity > 0
        first = self.call(inbox.append, MESSAGE, frozenset({"\\Seen"}), 1_000_000_000.0)
        second = self.call(inbox.append, io.BytesIO(b"xx" + MESSAGE), frozenset(), None)
        assert 0 < first < second
        assert list(inbox.uids()) == [first, second]
        assert inbox.uid_next > second
        record = inbox.message(first)
        assert record.uid == first
        assert record.flags == frozenset({"\\Seen"})
        assert record.internal_date == pytest.approx(1_000_000_000.0)
        assert record.exact_size == len(MESSAGE)
        assert self.call(inbox.read_message, first) == MESSAGE
        assert self.call(inbox.read_message, second) == b"xx" + MESSAGE
        assert inbox.message(9999) is None
        with pytest.raises(NoSuchMessage):
            self.call(inbox.read_message, 9999)
        with pytest.raises(NoSuchMessage):
            self.call(inbox.open_message, 9999)

    def test_index_scan_and_columns_agree_with_the_records(self, inbox: Any) -> None:
        scanner = IIndexScan(inbox, None)
        if scanner is None:
            pytest.skip("the mailbox does not provide IIndexScan")
        for flags in (frozenset({"\\Seen"}), frozenset(), frozenset({"\\Seen", "\\Flagged"})):
            self.call(inbox.append, MESSAGE, flags, 1_000_000_000.0)
        uids = list(inbox.uids())
        records = [inbox.message(uid) for uid in uids]
        expected = [(r.uid, r.flags, r.internal_date, r.stored_size, r.exact_size) for r in records]
        assert list(scanner.scan(uids)) == expected
        assert list(scanner.scan([uids[0], 9999, uids[2]])) == [expected[0], expected[2]]
        columns = scanner.columns(uids[:2])
        assert columns is not None  # the first two messages
        from_columns = zip(
            columns.uids,
            [columns.flag_sets[number] for number in columns.flags],
            columns.internal_dates,
            columns.stored_sizes,
            columns.exact_sizes,
            strict=True,
        )
        assert list(from_columns) == expected[:2]
        assert scanner.columns(uids[1:]) is None  # not the first messages
        assert scanner.columns([*uids, 9999]) is None

    def test_append_from_file_position(self, inbox: Any) -> None:
        source = io.BytesIO(b"IGNORED" + MESSAGE)
        source.seek(7)
        uid = self.call(inbox.append, source)
        assert self.call(inbox.read_message, uid) == MESSAGE

    @pytest.mark.parametrize("chunk", [1, 7, 65536])
    def test_streamed_read_equals_whole_read(self, inbox: Any, chunk: int) -> None:
        # Reads of 1 or 7 octets: enough to pass one 64 KiB boundary.
        wire = MESSAGE if chunk == 1 else big_message(9 if chunk == 7 else 25)
        uid = self.call(inbox.append, wire)
        whole = self.call(inbox.read_message, uid)
        assert whole == wire
        reader = self.call(inbox.open_message, uid)
        assert reader.size == inbox.message(uid).exact_size == len(wire)
        assert self.read_all(reader, chunk) == whole
        assert self.call(reader.read, chunk) == b""
        reader.close()
        reader.close()  # closing twice is harmless
        with pytest.raises(Exception):  # noqa: B017 - any error: reading after close
            self.call(reader.read, chunk)

    def test_reader_survives_expunge(self, inbox: Any) -> None:
        uid = self.call(inbox.append, big_message())
        reader = self.call(inbox.open_message, uid)
        first = self.call(reader.read, 100)
        self.call(inbox.set_flags, [uid], frozenset({"\\Deleted"}), "add")
        self.call(inbox.expunge)
        assert first + self.read_all(reader, 65536) == big_message()
        reader.close()

    @pytest.mark.parametrize("date", [FIRST_DATE, 0.0, 1_700_000_000.0, 15_032_385_536.0, LAST_DATE])
    def test_internal_date_round_trip(self, store: Any, account: Any, inbox: Any, date: float) -> None:
        uid = self.call(inbox.append, MESSAGE, frozenset({"\\Seen"}), date)
        assert inbox.message(uid).internal_date == date
        self.call(account.create, "Dates")
        target = self.call(account.mailbox, "Dates")
        ((_, copied),) = self.call(inbox.copy_to, [uid], target)
        assert target.message(copied).internal_date == date
        again = self.reopen(store)
        if again is None:
            return
        box = self.call(self.call(again.account, "alice").mailbox, "INBOX")
        assert box.message(uid).internal_date == date
        assert self.call(box.read_message, uid) == MESSAGE

    def test_recent_claimed_once(self, inbox: Any) -> None:
        self.now(inbox.claim_recent)
        assert inbox.recent_count() == 0
        uid = self.call(inbox.append, MESSAGE)
        assert inbox.recent_count() == 1
        assert uid in self.now(inbox.claim_recent)
        assert self.now(inbox.claim_recent) == frozenset()
        assert inbox.recent_count() == 0

    # -- flags and listeners ------------------------------------------------------------------
    def test_set_flags_modes_and_listeners(self, inbox: Any) -> None:
        uid = self.call(inbox.append, MESSAGE)
        listener = Recorder()
        self.now(inbox.add_listener, listener)
        token = object()
        assert self.call(inbox.set_flags, [uid], frozenset({"\\Seen", "$Label1"}), "add", token) == {
            uid: frozenset({"\\Seen", "$Label1"})
        }
        assert self.call(inbox.set_flags, [uid], frozenset({"\\Seen"}), "remove") == {
            uid: frozenset({"$Label1"})
        }
        assert self.call(inbox.set_flags, [uid, 4242], frozenset({"\\Flagged"}), "replace") == {
            uid: frozenset({"\\Flagged"})
        }
        assert inbox.message(uid).flags == frozenset({"\\Flagged"})
        assert listener.events[0] == ("flags", [uid], token)
        assert listener.events[1] == ("flags", [uid], None)
        assert len(listener.events) == 3
        # No change, no event; the result still reports the flags.
        assert self.call(inbox.set_flags, [uid], frozenset({"\\Flagged"}), "add") == {
            uid: frozenset({"\\Flagged"})
        }
        assert len(listener.events) == 3
        self.now(inbox.remove_listener, listener)
        self.now(inbox.remove_listener, listener)  # no error when absent
        self.call(inbox.set_flags, [uid], frozenset(), "replace")
        assert len(listener.events) == 3
        with pytest.raises(ValueError):
            self.call(inbox.set_flags, [uid], frozenset(), "toggle")

    def test_recent_is_never_stored(self, inbox: Any) -> None:
        uid = self.call(inbox.append, MESSAGE, frozenset({"\\Recent", "\\Seen"}))
        assert inbox.message(uid).flags == frozenset({"\\Seen"})
        self.call(inbox.set_flags, [uid], frozenset({"\\Recent"}), "add")
        assert inbox.message(uid).flags == frozenset({"\\Seen"})

    def test_concurrent_flag_changes_all_count(self, inbox: Any) -> None:
        uids = [self.call(inbox.append, MESSAGE) for _ in range(3)]
        listener = Recorder()
        self.now(inbox.add_listener, listener)

        def both() -> defer.Deferred[Any]:
            # Two sessions, neither waiting for the other.
            return defer.gatherResults(
                [
                    defer.maybeDeferred(inbox.set_flags, uids, frozenset({"$A"}), "add", "one"),
                    defer.maybeDeferred(inbox.set_flags, uids[1:], frozenset({"$B"}), "add", "two"),
                    defer.maybeDeferred(inbox.set_flags, uids[:1], frozenset({"\\Seen"}), "add"),
                ]
            )

        first, second, third = self.call(both)
        assert first == {uid: frozenset({"$A"}) for uid in uids}
        assert second == {uid: frozenset({"$A", "$B"}) for uid in uids[1:]}
        assert third == {uids[0]: frozenset({"$A", "\\Seen"})}
        assert [event[2] for event in listener.events] == ["one", "two", None]
        self.now(inbox.remove_listener, listener)

    def test_listener_gets_added(self, inbox: Any) -> None:
        listener = Recorder()
        self.now(inbox.add_listener, listener)
        self.now(inbox.add_listener, listener)  # once only
        uid = self.call(inbox.append, MESSAGE)
        assert listener.events == [("added", [uid])]
        self.now(inbox.remove_listener, listener)

    # -- expunge, copy, replace ------------------------------------------------------------------
    def test_expunge_only_deleted(self, inbox: Any) -> None:
        uids = [self.call(inbox.append, MESSAGE) for _ in range(4)]
        self.call(inbox.set_flags, uids[:3], frozenset({"\\Deleted"}), "add")
        before = inbox.uids()
        snapshot = list(before)
        listener = Recorder()
        self.now(inbox.add_listener, listener)
        assert self.call(inbox.expunge, [uids[1], uids[3]]) == [uids[1]]
        assert self.call(inbox.expunge) == [uids[0], uids[2]]
        assert list(inbox.uids()) == [uids[3]]
        assert list(before) == snapshot  # copy-on-write: handed-out sequences stay
        assert listener.events == [("expunged", [uids[1]]), ("expunged", [uids[0], uids[2]])]
        assert inbox.message(uids[0]) is None
        assert self.call(inbox.expunge) == []
        self.now(inbox.remove_listener, listener)

    def test_uids_not_reused_after_expunge(self, store: Any, inbox: Any) -> None:
        last = self.call(inbox.append, MESSAGE)
        self.call(inbox.set_flags, [last], frozenset({"\\Deleted"}), "add")
        self.call(inbox.expunge)
        assert inbox.uid_next > last
        assert self.call(inbox.append, MESSAGE) > last
        again = self.reopen(store)
        if again is not None:
            box = self.call(self.call(again.account, "alice").mailbox, "INBOX")
            assert box.uid_validity == inbox.uid_validity
            assert self.call(box.append, MESSAGE) > last + 1

    def test_copy_to(self, account: Any, inbox: Any) -> None:
        self.call(account.create, "Archive")
        archive = self.call(account.mailbox, "Archive")
        a = self.call(inbox.append, MESSAGE, frozenset({"\\Answered", "$Work"}), 1_200_000_000.0)
        b = self.call(inbox.append, b"Subject: b\r\n\r\nb\r\n")
        listener = Recorder()
        self.now(archive.add_listener, listener)
        pairs = self.call(inbox.copy_to, [b, a, 777], archive)
        assert [src for src, _ in pairs] == [a, b]
        new_a = dict(pairs)[a]
        record = archive.message(new_a)
        assert record.flags == frozenset({"\\Answered", "$Work"})
        assert record.internal_date == pytest.approx(1_200_000_000.0)
        assert self.call(archive.read_message, new_a) == MESSAGE
        assert list(inbox.uids()) == [a, b]
        assert listener.events == [("added", [new]) for _, new in pairs]
        self.now(archive.remove_listener, listener)

    def test_replace_message(self, inbox: Any) -> None:
        old = self.call(inbox.append, MESSAGE, frozenset({"\\Draft"}), 1_300_000_000.0)
        listener = Recorder()
        self.now(inbox.add_listener, listener)
        new = self.call(inbox.replace_message, old, b"Subject: v2\r\n\r\nnew\r\n")
        assert new > old
        assert inbox.message(old) is None
        assert list(inbox.uids()) == [new]
        assert inbox.message(new).flags == frozenset({"\\Draft"})
        assert inbox.message(new).internal_date == pytest.approx(1_300_000_000.0)
        assert self.call(inbox.read_message, new) == b"Subject: v2\r\n\r\nnew\r\n"
        assert ("added", [new]) in listener.events and ("expunged", [old]) in listener.events
        with pytest.raises(NoSuchMessage):
            self.call(inbox.replace_message, old, MESSAGE)
        self.now(inbox.remove_listener, listener)

    def test_refresh_fires(self, inbox: Any) -> None:
        assert self.call(inbox.refresh) is None

    def test_persistence(self, store: Any, inbox: Any) -> None:
        uid = self.call(inbox.append, MESSAGE, frozenset({"\\Seen", "$Work"}), 1e9)
        self.call(inbox.set_flags, [uid], frozenset({"\\Flagged"}), "add")
        again = self.reopen(store)
        if again is None:
            pytest.skip("the store keeps nothing across a restart")
        box = self.call(self.call(again.account, "alice").mailbox, "INBOX")
        assert box.uid_validity == inbox.uid_validity
        assert list(box.uids()) == [uid]
        assert box.message(uid).flags == frozenset({"\\Seen", "$Work", "\\Flagged"})
        assert self.call(box.read_message, uid) == MESSAGE

    # -- watching and release ----------------------------------------------------------------------
    def test_outside_change_reported_without_refresh(self, store: Any, inbox: Any) -> None:
        listener = Recorder()
        self.now(inbox.add_listener, listener)
        if not self.outside_append(store, "alice", "INBOX", b"Subject: outside\r\n\r\nx\r\n"):
            self.now(inbox.remove_listener, listener)
            pytest.skip("nothing but the store writes to it")
        for _ in range(MAX_WAITS):
            if listener.events:
                break
            self.advance(store, self.watch_step)
        assert [event[0] for event in listener.events] == ["added"]
        (uid,) = listener.events[0][1]
        assert self.call(inbox.read_message, uid) == b"Subject: outside\r\n\r\nx\r\n"
        self.now(inbox.remove_listener, listener)

    def test_idle_mailbox_released_and_reloaded(self, store: Any, account: Any) -> None:
        if self.release_after is None:
            pytest.skip("the store does not release idle mailboxes")
        self.call(account.create, "Idle")
        box = self.call(account.mailbox, "Idle")
        uid = self.call(box.append, MESSAGE, frozenset({"\\Seen"}), 1e9)
        validity = box.uid_validity
        listener = Recorder()
        self.now(box.add_listener, listener)
        self.advance(store, self.release_after * 2)
        assert self.call(account.mailbox, "Idle") is box  # listened to: kept
        self.now(box.remove_listener, listener)
        ref = weakref.ref(box)
        del box
        for _ in range(3):
            self.advance(store, self.release_after * 1.5)
        gc.collect()
        assert ref() is None, "an idle mailbox nobody holds was not released"
        again = self.call(account.mailbox, "Idle")
        assert again.uid_validity == validity
        assert list(again.uids()) == [uid]
        assert again.message(uid).flags == frozenset({"\\Seen"})
        assert self.call(again.append, MESSAGE) > uid

    def test_released_mailbox_still_held_is_shared(self, store: Any, account: Any) -> None:
        if self.release_after is None:
            pytest.skip("the store does not release idle mailboxes")
        box = self.call(account.mailbox, "INBOX")
        for _ in range(3):
            self.advance(store, self.release_after * 1.5)
        assert self.call(account.mailbox, "INBOX") is box  # never two objects at once

    # -- folders ------------------------------------------------------------------------------------
    def test_create_and_list(self, account: Any) -> None:
        self.call(account.create, "A/B/C")
        assert {"INBOX", "A", "A/B", "A/B/C"} <= set(self.call(account.list_mailboxes))
        with pytest.raises(MailboxExists):
            self.call(account.create, "A/B")
        with pytest.raises(MailboxExists):
            self.call(account.create, "inbox")
        self.call(account.create, "INBOX/Sub")
        assert "INBOX/Sub" in self.call(account.list_mailboxes)
        with pytest.raises(NoSuchMailbox):
            self.call(account.mailbox, "Nope")

    @pytest.mark.parametrize("name", ["", "/abs", "a//b", "a/../b", "..", ".", "a\x00b", "x" * 300])
    def test_invalid_mailbox_names(self, account: Any, name: str) -> None:
        with pytest.raises(InvalidMailboxName):
            self.call(account.create, name)
        with pytest.raises(InvalidMailboxName):
            self.call(account.mailbox, name)

    def test_delete(self, account: Any) -> None:
        self.call(account.create, "P/Q")
        self.call(account.delete, "P")
        assert "P" not in self.call(account.list_mailboxes)
        assert "P/Q" in self.call(account.list_mailboxes)
        with pytest.raises(NoSuchMailbox):
            self.call(account.delete, "P")
        with pytest.raises(InvalidMailboxName):
            self.call(account.delete, "INBOX")
        with pytest.raises(NoSuchMailbox):
            self.call(account.mailbox, "P")

    def test_rename_moves_children(self, account: Any) -> None:
        self.call(account.create, "Old/Kid")
        old = self.call(account.mailbox, "Old")
        uid = self.call(old.append, MESSAGE, frozenset({"\\Seen"}))
        self.call(account.rename, "Old", "New/Place")
        listed = set(self.call(account.list_mailboxes))
        assert {"New", "New/Place", "New/Place/Kid"} <= listed
        assert not {"Old", "Old/Kid"} & listed
        box = self.call(account.mailbox, "New/Place")
        assert box is old and box.name == "New/Place"
        assert box.message(uid).flags == frozenset({"\\Seen"})
        assert self.call(box.read_message, uid) == MESSAGE
        self.call(box.append, MESSAGE)  # the renamed object keeps working
        assert len(box.uids()) == 2
        with pytest.raises(NoSuchMailbox):
            self.call(account.rename, "Old", "Other")
        self.call(account.create, "Taken")
        with pytest.raises(MailboxExists):
            self.call(account.rename, "New", "Taken")
        with pytest.raises(InvalidMailboxName):
            self.call(account.rename, "New", "New/Place/Deeper")

    def test_rename_inbox(self, account: Any, inbox: Any) -> None:
        uids = [self.call(inbox.append, MESSAGE, frozenset({"\\Seen"})) for _ in range(2)]
        self.call(account.rename, "INBOX", "Saved")
        assert list(inbox.uids()) == []
        assert "INBOX" in self.call(account.list_mailboxes)
        saved = self.call(account.mailbox, "Saved")
        assert len(saved.uids()) == 2
        for uid in saved.uids():
            assert saved.message(uid).flags == frozenset({"\\Seen"})
            assert self.call(saved.read_message, uid) == MESSAGE
        assert self.call(inbox.append, MESSAGE) > max(uids)

    def test_subscriptions(self, account: Any) -> None:
        assert self.call(account.subscriptions) == set()
        self.call(account.subscribe, "News/Tech")
        self.call(account.subscribe, "inbox")
        assert self.call(account.subscriptions) == {"News/Tech", "INBOX"}
        self.call(account.unsubscribe, "News/Tech")
        self.call(account.unsubscribe, "Not/There")
        assert self.call(account.subscriptions) == {"INBOX"}
        with pytest.raises(InvalidMailboxName):
            self.call(account.subscribe, "a//b")

    def test_marked(self, account: Any, inbox: Any) -> None:
        provided = IMarkedMailboxes.providedBy(account)
        if not provided:
            pytest.skip("the account does not provide IMarkedMailboxes")
        self.call(account.create, "Quiet")
        self.now(inbox.claim_recent)
        self.call(inbox.append, MESSAGE)
        assert self.call(account.marked, ["INBOX", "Quiet", "Nope"]) == {"INBOX"}
        self.now(inbox.claim_recent)
        assert self.call(account.marked, ["INBOX", "Quiet"]) == set()
