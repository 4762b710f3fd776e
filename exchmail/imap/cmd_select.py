"""Commands of the selected state: CHECK, CLOSE, EXPUNGE, SEARCH, STORE, COPY
(FETCH lives in :mod:`exchmail.imap.cmd_fetch`), with their UID forms."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from twisted.internet import defer, task

from exchmail import errors
from exchmail.imap.cmd_auth import parse_flag_list
from exchmail.imap.cmd_fetch import FetchCommand
from exchmail.imap.common import CommandFailed
from exchmail.imap.parsing import Atom, ParseError, Token, as_atom, as_bytes, expect_count
from exchmail.imap.search import Candidate, compile_search
from exchmail.imap.selected import SelectedMailbox, format_flags
from exchmail.mime.message import ParsedMessage

SEARCH_CHARSETS = {"US-ASCII": "ascii", "UTF-8": "utf-8"}
STORE_MODES = {b"FLAGS": "replace", b"+FLAGS": "add", b"-FLAGS": "remove"}
# Messages handled between two returns to the reactor in long loops.
BATCH = 500


def compact_uid_set(uids: Iterable[int]) -> bytes:
    """``1:3,7`` for [1, 2, 3, 7] (as UIDPLUS responses want)."""
    ranges: list[list[int]] = []
    for uid in uids:
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1][1] = uid
        else:
            ranges.append([uid, uid])
    return b",".join(b"%d" % a if a == b else b"%d:%d" % (a, b) for a, b in ranges)


class SelectedCommands(FetchCommand):
    """Handlers for the selected state."""

    def _selected(self) -> SelectedMailbox:
        assert self.selected is not None
        return self.selected

    def _writable(self) -> SelectedMailbox:
        selected = self._selected()
        if selected.readonly:
            raise CommandFailed(b"[READ-ONLY] Mailbox is read-only")
        return selected

    def message_set(self, token: Token, uid: bool) -> list[tuple[int, int]]:
        """``(seq, uid)`` pairs of a sequence-set argument; BAD for invalid numbers."""
        if not isinstance(token, Atom):
            raise ParseError("expected a sequence set")
        selected = self._selected()
        if not uid and not selected.seqs_in_range(bytes(token)):
            raise ParseError("Invalid message sequence number")
        return list(selected.resolve(bytes(token), uid))

    def cmd_CHECK(self, tag: bytes, args: list[Token], uid: bool) -> Any:
        expect_count(args, 0)
        return self.refresh_selected().addCallback(lambda _: b"CHECK completed.")

    @defer.inlineCallbacks
    def cmd_CLOSE(self, tag: bytes, args: list[Token], uid: bool):
        expect_count(args, 0)
        selected = self._selected()
        if not selected.readonly:
            yield defer.maybeDeferred(selected.mailbox.expunge)
        self.close_selected()
        return b"CLOSE completed."

    @defer.inlineCallbacks
    def cmd_EXPUNGE(self, tag: bytes, args: list[Token], uid: bool):
        selected = self._writable()
        if uid:
            expect_count(args, 1)
            uids = [u for _, u in self.message_set(args[0], uid=True)]
            yield defer.maybeDeferred(selected.mailbox.expunge, uids)
        else:
            expect_count(args, 0)
            yield defer.maybeDeferred(selected.mailbox.expunge)
        if self.profile.imap.exists_after_expunge:
            self.send_updates(allow_expunge=True)
            self.sendLine(b"* %d EXISTS" % selected.exists)  # V0053
        return b"EXPUNGE completed."

    # -- STORE -------------------------------------------------------------------
    def cmd_STORE(self, tag: bytes, args: list[Token], uid: bool) -> bytes:
        expect_count(args, 3)
        pairs = self.message_set(args[0], uid)
        item = as_atom(args[1])
        silent = item.endswith(b".SILENT")
        mode = STORE_MODES.get(item[:-7] if silent else item)
        if mode is None:
            raise ParseError("STORE needs FLAGS, +FLAGS or -FLAGS")
        flags = parse_flag_list(args[2])
        if "\\Recent" in flags:
            raise ParseError("\\Recent cannot be stored")
        selected = self._writable()
        flags = self.allowed_flags(flags, storing=True)
        new_flags = selected.mailbox.set_flags([u for _, u in pairs], flags, mode, origin=selected)
        if not silent:
            for seq, message_uid in pairs:
                current = selected.flags_of(message_uid)
                if message_uid in new_flags and current is not None:
                    uid_part = b" UID %d" % message_uid if uid else b""
                    self.sendLine(b"* %d FETCH (FLAGS %s%s)" % (seq, format_flags(current), uid_part))
        return b"STORE completed."

    # -- COPY ----------------------------------------------------------------------
    @defer.inlineCallbacks
    def cmd_COPY(self, tag: bytes, args: list[Token], uid: bool):
        expect_count(args, 2)
        pairs = self.message_set(args[0], uid)
        name = self.mailbox_name(args[1])
        try:
            target = yield defer.maybeDeferred(self.account.mailbox, name)
        except errors.NoSuchMailbox:
            raise CommandFailed(b"[TRYCREATE] Mailbox does not exist") from None
        source = self._selected().mailbox
        copied = yield defer.maybeDeferred(source.copy_to, [u for _, u in pairs], target)
        if not copied:
            return b"COPY completed."
        return b"[COPYUID %d %s %s] COPY completed." % (
            target.uid_validity, compact_uid_set(a for a, _ in copied),
            compact_uid_set(b for _, b in copied))

    # -- SEARCH --------------------------------------------------------------------
    @defer.inlineCallbacks
    def cmd_SEARCH(self, tag: bytes, args: list[Token], uid: bool):
        imap = self.profile.imap
        charset = "US-ASCII"
        if len(args) >= 2 and isinstance(args[0], Atom) and as_atom(args[0]) == b"CHARSET":
            charset = as_bytes(args[1]).decode("ascii", "replace").upper()
            args = args[2:]
            if charset not in imap.search_charsets or charset not in SEARCH_CHARSETS:
                names = " ".join(imap.search_charsets).encode("ascii")
                raise CommandFailed(b"[BADCHARSET (" + names + b")] Unsupported charset")
        selected = self._selected()
        program = compile_search(args, SEARCH_CHARSETS[charset], selected.exists, selected.max_uid)
        if imap.max_search_keys and program.key_count > imap.max_search_keys:
            raise CommandFailed(b"[LIMIT] At most %d search keys are supported"
                                % imap.max_search_keys)  # V0041
        exact = self.profile.imap.exact_rfc822_size
        found = []
        for seq in range(1, selected.exists + 1):
            message_uid = selected.uid_at(seq)
            candidate = self._candidate(selected, seq, message_uid, exact)
            if candidate is not None and program.matches(candidate):
                found.append(message_uid if uid else seq)
            if program.needs_content and seq % BATCH == 0:
                yield task.deferLater(self.reactor, 0, lambda: None)
        self.sendLine(b"* SEARCH" + b"".join(b" %d" % n for n in found))
        return b"SEARCH completed."

    @staticmethod
    def _candidate(selected: SelectedMailbox, seq: int, uid: int, exact: bool) -> Candidate | None:
        record = selected.mailbox.message(uid)
        if record is None:
            return None
        cache: list[ParsedMessage] = []

        def parsed() -> ParsedMessage:
            if not cache:
                with selected.mailbox.open_message(uid) as source:
                    cache.append(ParsedMessage(source.read()))
            return cache[0]

        return Candidate(seq, uid, record.flags, uid in selected.recent, record.internal_date,
                         record.exact_size if exact else record.stored_size, parsed)
