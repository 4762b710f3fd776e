"""Commands of the authenticated state (also valid when a mailbox is selected).

SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST,
LSUB, STATUS, APPEND, NAMESPACE, IDLE.
"""

from __future__ import annotations

import email.utils
import re
from typing import Any

from twisted.internet import defer

from exchmail import errors
from exchmail.imap import listing
from exchmail.imap.common import CommandFailed, SessionBase, decode_mailbox, encode_mailbox
from exchmail.imap.parsing import Atom, ParseError, Spool, Token, as_atom, as_bytes, expect_count
from exchmail.imap.selected import SelectedMailbox, format_flags
from exchmail.interfaces import IMarkedMailboxes
from exchmail.profile.settings import ListReference
from exchmail.store import names
from exchmail.store.index import SYSTEM_FLAGS

STATUS_ITEMS = {b"MESSAGES", b"RECENT", b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN"}
_DATE_TIME = re.compile(rb"^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-]\d{4})$")


def parse_flag_list(token: Token) -> frozenset[str]:
    """A flag list argument (a list of atoms, or one atom) as ``str`` flags."""
    items = token if isinstance(token, list) else [token]
    flags = set()
    for item in items:
        if not isinstance(item, Atom) or not item:
            raise ParseError("flags must be atoms")
        flag = bytes(item).decode("ascii", "replace")
        if flag.startswith("\\"):
            canonical = next((f for f in SYSTEM_FLAGS if f.lower() == flag.lower()), None)
            if canonical is None:
                raise ParseError(f"unknown system flag {flag[:30]}")
            flag = canonical
        elif any(c in flag for c in "()*%\"]{") or not flag.isprintable():
            raise ParseError("invalid keyword")
        flags.add(flag)
    return frozenset(flags)


def parse_date_time(raw: bytes) -> float:
    """An APPEND date-time (``"17-Jul-1996 02:44:25 -0700"``) as epoch seconds."""
    match = _DATE_TIME.match(raw)
    if not match:
        raise ParseError("invalid date-time")
    day, month, year, hh, mm, ss, zone = (g.decode("ascii") for g in match.groups())
    parsed = email.utils.parsedate_tz(f"{day} {month} {year} {hh}:{mm}:{ss} {zone}")
    if parsed is None:
        raise ParseError("invalid date-time")
    return float(email.utils.mktime_tz(parsed))


class AuthenticatedCommands(SessionBase):
    """Handlers for the authenticated state."""

    # -- SELECT / EXAMINE ------------------------------------------------------
    def cmd_SELECT(self, tag: bytes, args: list[Token], uid: bool) -> Any:
        return self._select(args, readonly=False)

    def cmd_EXAMINE(self, tag: bytes, args: list[Token], uid: bool) -> Any:
        return self._select(args, readonly=True)

    @defer.inlineCallbacks
    def _select(self, args: list[Token], readonly: bool):
        expect_count(args, 1)
        name = self.mailbox_name(args[0])
        self.close_selected()
        mailbox = yield defer.maybeDeferred(self.account.mailbox, name)
        yield defer.maybeDeferred(mailbox.refresh)
        selected = SelectedMailbox(mailbox, readonly, self.mailbox_changed,
                                   self.profile.imap.notify_external_flag_changes)
        self.selected, self.state = selected, "select"
        self._send_select_data(selected)
        mode = b"[READ-ONLY] EXAMINE" if readonly else b"[READ-WRITE] SELECT"
        return mode + b" completed."

    def _send_select_data(self, selected: SelectedMailbox) -> None:
        mailbox = selected.mailbox
        flags = self.mailbox_flags(mailbox)
        self.sendLine(b"* FLAGS " + format_flags(flags))
        if selected.readonly:
            permanent: frozenset[str] = frozenset()
        else:
            permanent = flags | {"\\*"} if self.profile.imap.client_keywords else flags
        self.sendLine(b"* OK [PERMANENTFLAGS " + format_flags(permanent) + b"] Permanent flags")
        self.sendLine(b"* %d EXISTS" % selected.exists)
        self.sendLine(b"* %d RECENT" % len(selected.recent))
        first_unseen = next((seq for seq in range(1, selected.exists + 1)
                             if "\\Seen" not in (selected.flags_of(selected.uid_at(seq)) or ())),
                            None)
        if first_unseen is not None:
            self.sendLine(b"* OK [UNSEEN %d] First unseen message" % first_unseen)
        self.sendLine(b"* OK [UIDVALIDITY %d] UIDs valid" % mailbox.uid_validity)
        self.sendLine(b"* OK [UIDNEXT %d] Predicted next UID" % mailbox.uid_next)

    def mailbox_flags(self, mailbox: Any) -> frozenset[str]:
        """The FLAGS list: system flags and the keywords the server defines (E0001)."""
        return SYSTEM_FLAGS | frozenset(self.profile.imap.server_keywords)

    def allowed_flags(self, flags: frozenset[str], storing: bool) -> frozenset[str]:
        """``flags`` if the profile lets clients set them all.

        Keywords the server does not define are refused (STORE) or, when
        the profile ignores invalid parameters (2.3), dropped (APPEND).
        """
        imap = self.profile.imap
        if imap.client_keywords:
            return flags
        allowed = SYSTEM_FLAGS | frozenset(imap.server_keywords)
        if flags <= allowed:
            return flags
        if imap.ignore_invalid_parameters and not storing:
            return flags & allowed
        raise CommandFailed(b"[CANNOT] Client-defined keywords are not supported")

    _idling = False
    idle_poll_interval = 5.0

    def mailbox_changed(self) -> None:
        """A shared-mailbox listener fired: push updates now if the client idles,
        or, when the profile says so (V0002/V0014), if no command is in progress.

        Unilateral updates never carry EXPUNGE (RFC 3501 7.4.1) and are
        skipped while the client is not reading (flow control).
        """
        if self._idling:
            self.send_updates(allow_expunge=True)
            self.flush()
        elif (self.profile.imap.unsolicited_exists and not self._busy and not self._buffer
              and not self.write_gate.paused and self.state == "select"):
            self.send_updates(allow_expunge=False)
            self.flush()

    # -- mailbox names ------------------------------------------------------------
    def mailbox_name(self, token: Token) -> str:
        """A mailbox argument, spelled as the existing mailbox is when the
        profile makes names case-insensitive (V0008)."""
        name = decode_mailbox(token)
        if self.profile.imap.case_insensitive_names:
            name = listing.canonical_name(name, self.account.list_mailboxes())
        return name

    def new_mailbox_name(self, token: Token) -> str:
        """The name for CREATE or a RENAME target, checked against the profile (V0010)."""
        name = self.mailbox_name(token).rstrip(listing.DELIMITER)
        if not self.profile.imap.wildcards_in_names and listing.has_wildcards(name):
            raise CommandFailed(b"[CANNOT] Mailbox names may not contain '*' or '%'")
        return name

    # -- mailbox management ----------------------------------------------------
    def cmd_CREATE(self, tag: bytes, args: list[Token], uid: bool) -> Any:
        expect_count(args, 1)
        name = self.new_mailbox_name(args[0])
        return defer.maybeDeferred(self.account.create, name).addCallback(
            lambda _: b"CREATE completed.")

    def cmd_DELETE(self, tag: bytes, args: list[Token], uid: bool) -> Any:
        expect_count(args, 1)
        name = self.mailbox_name(args[0])
        if not self.profile.imap.delete_with_children and any(
                names.is_inferior(other, name) for other in self.account.list_mailboxes()):
            raise CommandFailed(b"[CANNOT] Mailbox has inferior hierarchical names")
        if self.selected is not None and self.selected.mailbox.name == name:
            self.close_selected()
        return defer.maybeDeferred(self.account.delete, name).addCallback(
            lambda _: b"DELETE completed.")

    def cmd_RENAME(self, tag: bytes, args: list[Token], uid: bool) -> Any:
        expect_count(args, 2)
        old, new = self.mailbox_name(args[0]), self.new_mailbox_name(args[1])
        return defer.maybeDeferred(self.account.rename, old, new).addCallback(
            lambda _: b"RENAME completed.")

    def cmd_SUBSCRIBE(self, tag: bytes, args: list[Token], uid: bool) -> bytes:
        expect_count(args, 1)
        name = self.mailbox_name(args[0])
        if self.profile.imap.subscribe_requires_existing and \
                name not in self.account.list_mailboxes():
            raise CommandFailed(b"[NONEXISTENT] No such mailbox")
        self.account.subscribe(name)
        return b"SUBSCRIBE completed."

    def cmd_UNSUBSCRIBE(self, tag: bytes, args: list[Token], uid: bool) -> bytes:
        expect_count(args, 1)
        self.account.unsubscribe(self.mailbox_name(args[0]))
        return b"UNSUBSCRIBE completed."

    # -- LIST / LSUB ---------------------------------------------------------
    def cmd_LIST(self, tag: bytes, args: list[Token], uid: bool) -> bytes:
        expect_count(args, 2)
        reference, pattern = decode_mailbox_pattern(args[0]), decode_mailbox_pattern(args[1])
        imap = self.profile.imap
        if not pattern:
            self.sendLine(b'* LIST (\\Noselect) "/" ""')
            return b"LIST completed."
        if (reference and not reference.endswith(listing.DELIMITER)
                and imap.list_reference_without_delimiter is ListReference.NO_RESULTS):
            return b"LIST completed."  # V0029: not a level of the hierarchy
        full = listing.full_pattern(reference, pattern)
        marked = self.account.is_marked if IMarkedMailboxes.providedBy(self.account) else None
        entries = listing.list_entries(self.account.list_mailboxes(), full,
                                       imap.list_children_attributes, imap.case_insensitive_names,
                                       marked)
        for name, attributes in entries:
            self._send_list_line(b"LIST", name, attributes)
        return b"LIST completed."

    def cmd_LSUB(self, tag: bytes, args: list[Token], uid: bool) -> bytes:
        expect_count(args, 2)
        reference, pattern = decode_mailbox_pattern(args[0]), decode_mailbox_pattern(args[1])
        full = listing.full_pattern(reference, pattern)
        entries = listing.lsub_entries(self.account.subscriptions(),
                                       self.account.list_mailboxes(), full,
                                       self.profile.imap.lsub_percent_noselect_parent,
                                       self.profile.imap.case_insensitive_names)
        for name, attributes in entries:
            self._send_list_line(b"LSUB", name, attributes)
        return b"LSUB completed."

    def _send_list_line(self, kind: bytes, name: str, attributes: list[bytes]) -> None:
        literal = self.profile.imap.backslash_names_as_literal
        self.sendLine(b"* %s (%s) \"/\" %s" % (kind, b" ".join(attributes),
                                              encode_mailbox(name, literal)))

    # -- STATUS ----------------------------------------------------------------
    @defer.inlineCallbacks
    def cmd_STATUS(self, tag: bytes, args: list[Token], uid: bool):
        expect_count(args, 2)
        name = self.mailbox_name(args[0])
        wanted = args[1] if isinstance(args[1], list) else [args[1]]
        items = [as_atom(item) for item in wanted]
        if any(item not in STATUS_ITEMS for item in items):
            if not self.profile.imap.ignore_invalid_parameters:
                raise ParseError("invalid STATUS item")
            items = [item for item in items if item in STATUS_ITEMS]  # 2.3: ignored
        if not items:
            raise ParseError("no STATUS item")
        mailbox = yield defer.maybeDeferred(self.account.mailbox, name)
        yield defer.maybeDeferred(mailbox.refresh)
        values = {
            b"MESSAGES": lambda: len(mailbox.uids()),
            b"RECENT": mailbox.recent_count,
            b"UIDNEXT": lambda: mailbox.uid_next,
            b"UIDVALIDITY": lambda: mailbox.uid_validity,
            b"UNSEEN": lambda: sum(1 for u in mailbox.uids()
                                   if "\\Seen" not in mailbox.message(u).flags),
        }
        body = b" ".join(b"%s %d" % (item, values[item]()) for item in items)
        literal = self.profile.imap.backslash_names_as_literal
        self.sendLine(b"* STATUS " + encode_mailbox(mailbox.name, literal) + b" (" + body + b")")
        return b"STATUS completed."

    # -- APPEND ----------------------------------------------------------------
    @defer.inlineCallbacks
    def cmd_APPEND(self, tag: bytes, args: list[Token], uid: bool):
        expect_count(args, 2, 4)
        name = self.mailbox_name(args[0])
        message = args[-1]
        if not isinstance(message, (bytes, Spool)) or isinstance(message, Atom):
            raise ParseError("APPEND needs the message as a literal")
        flags: frozenset[str] = frozenset()
        when: float | None = None
        for option in args[1:-1]:
            if isinstance(option, list):
                flags = self.allowed_flags(parse_flag_list(option), storing=False)
            else:
                when = parse_date_time(as_bytes(option))
        try:
            mailbox = yield defer.maybeDeferred(self.account.mailbox, name)
        except errors.NoSuchMailbox:
            raise CommandFailed(b"[TRYCREATE] Mailbox does not exist") from None
        source = message.file if isinstance(message, Spool) else message
        try:
            new_uid = yield defer.maybeDeferred(mailbox.append, source, flags, when)
        finally:
            if isinstance(message, Spool):
                message.file.close()
        return b"[APPENDUID %d %d] APPEND completed." % (mailbox.uid_validity, new_uid)

    # -- NAMESPACE / IDLE --------------------------------------------------------
    def cmd_NAMESPACE(self, tag: bytes, args: list[Token], uid: bool) -> bytes:
        expect_count(args, 0)
        self.sendLine(b'* NAMESPACE (("" "/")) NIL NIL')
        return b"NAMESPACE completed."

    @defer.inlineCallbacks
    def cmd_IDLE(self, tag: bytes, args: list[Token], uid: bool):
        expect_count(args, 0)
        self.sendContinuationRequest(b"idling")
        self.send_updates(allow_expunge=True)
        self._idling = True
        poll = self.reactor.callLater(self.idle_poll_interval, self._idle_poll)
        self._idle_call = poll
        try:
            line = yield self.await_line()
        finally:
            self._idling = False
            if self._idle_call.active():
                self._idle_call.cancel()
        if line.strip(b" \t").upper() != b"DONE":
            raise ParseError("Expected DONE to end IDLE")
        return b"IDLE completed."

    def _idle_poll(self) -> None:
        """While idling, look for outside changes (e.g. Maildir deliveries)."""
        self.refresh_selected().addErrback(
            lambda failure: self.log.failure("refresh during IDLE failed", failure))
        self._idle_call = self.reactor.callLater(self.idle_poll_interval, self._idle_poll)


def decode_mailbox_pattern(token: Token) -> str:
    """A LIST reference or pattern; the empty string is allowed."""
    if as_bytes(token) == b"":
        return ""
    return decode_mailbox(token)
