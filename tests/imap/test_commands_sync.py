"""The parsers of exchmail.imap.commands_sync (CONDSTORE/QRESYNC modifiers,
SEARCH/SORT RETURN, SORT, THREAD, CANCELUPDATE, NOTIFY): each malformed form
and the reason the client is given, under the modern profile that has them."""

from __future__ import annotations

import pytest

from exchmail.imap.commands import CommandSyntaxError, ParseOptions, parse_command
from exchmail.imap.commands_sync import Notify, NotifyGroup
from exchmail.imap.parsing import SequenceSet
from exchmail.profile import load_profile
from exchmail.profile.builtin import EXCHANGE2010

MODERN = ParseOptions.from_settings(load_profile("modern").imap)
EXCHANGE = ParseOptions.from_settings(EXCHANGE2010.imap)

BAD = [
    # SELECT (CONDSTORE) / (QRESYNC (...))
    (b"a SELECT INBOX CONDSTORE", "SELECT takes a mailbox name and at most one parameter list"),
    (b"a SELECT INBOX (FOO)", "unknown SELECT parameter"),
    (b"a SELECT INBOX (QRESYNC (1))", "QRESYNC takes (uidvalidity modseq"),
    (b"a SELECT INBOX (QRESYNC (1 5 1:3 (1:2 3:4) x))", "QRESYNC takes (uidvalidity modseq"),
    (b"a SELECT INBOX (QRESYNC (0 5))", "UIDVALIDITY must be positive"),
    (b"a SELECT INBOX (QRESYNC (1 5 (1:2)))", "QRESYNC seq-match-data is (sequence-set uid-set)"),
    # FETCH (CHANGEDSINCE n [VANISHED])
    (b"a FETCH 1 FLAGS CHANGEDSINCE", "FETCH takes a sequence set and fetch attributes"),
    (b"a FETCH 1 FLAGS (FOO)", "unknown FETCH modifier"),
    (b"a FETCH 1 FLAGS (CHANGEDSINCE 5 CHANGEDSINCE 6)", "unknown FETCH modifier"),
    (b"a FETCH 1 FLAGS (VANISHED)", "FETCH modifiers need CHANGEDSINCE"),
    (b"a FETCH 1 FLAGS (CHANGEDSINCE 5 VANISHED)", "VANISHED is only valid with UID FETCH"),
    # STORE (UNCHANGEDSINCE n)
    (b"a STORE 1 (UNCHANGEDSINCE) +FLAGS (x)", "STORE needs FLAGS, +FLAGS or -FLAGS"),
    (b"a STORE 1 (FOO 5) +FLAGS (x)", "unknown STORE modifier"),
    (b'a STORE 1 ("UNCHANGEDSINCE" 5) +FLAGS (x)', "unknown STORE modifier"),
    # SEARCH RETURN (...)
    (b"a SEARCH RETURN ALL", "RETURN needs a parenthesised list of options"),
    (b"a SEARCH RETURN (FOO) ALL", "unknown RETURN option b'FOO'"),
    (b"a SEARCH RETURN (PARTIAL) ALL", "PARTIAL needs a range m:n"),
    (b"a SEARCH RETURN (PARTIAL 0:5) ALL", "PARTIAL needs a range m:n of positive numbers"),
    (b"a SEARCH RETURN (PARTIAL 1-5) ALL", "PARTIAL needs a range m:n of positive numbers"),
    (b"a SEARCH RETURN (PARTIAL 1:99999999999) ALL", "PARTIAL range out of range"),
    # SORT
    (b"a SORT (DATE) UTF-8", "SORT needs (sort criteria), a charset and search criteria"),
    (b"a SORT () UTF-8 ALL", "SORT needs (sort criteria), a charset and search criteria"),
    (b"a SORT DATE UTF-8 ALL", "SORT needs (sort criteria), a charset and search criteria"),
    (b"a SORT (FOO) UTF-8 ALL", "unknown sort key b'FOO'"),
    (b"a SORT (REVERSE REVERSE DATE) UTF-8 ALL", "unknown sort key b'REVERSE'"),
    (b"a SORT (REVERSE) UTF-8 ALL", "REVERSE must be followed by a sort key"),
    (b"a SORT (DATE REVERSE) UTF-8 ALL", "REVERSE must be followed by a sort key"),
    # THREAD
    (b"a THREAD REFERENCES UTF-8", "THREAD needs an algorithm, a charset and search criteria"),
    (b"a THREAD FOO UTF-8 ALL", "unsupported threading algorithm"),
    (b"a THREAD (REFERENCES) UTF-8 ALL", "unsupported threading algorithm"),
    # CANCELUPDATE
    (b"a CANCELUPDATE", "CANCELUPDATE needs at least one tag"),
    # NOTIFY
    (b"a NOTIFY", "NOTIFY takes NONE or SET"),
    (b"a NOTIFY NONE x", "NOTIFY takes NONE or SET"),
    (b"a NOTIFY SET", "NOTIFY SET needs at least one event group"),
    (b"a NOTIFY SET STATUS", "NOTIFY SET needs at least one event group"),
    (b"a NOTIFY SET SELECTED", "a NOTIFY event group is (filter events)"),
    (b"a NOTIFY SET (SELECTED)", "a NOTIFY event group is (filter events)"),
    (b"a NOTIFY SET (FOO (MessageNew))", "unknown NOTIFY filter"),
    (b"a NOTIFY SET (SUBTREE () (MessageNew))", "SUBTREE and MAILBOXES need mailbox names"),
    (b"a NOTIFY SET (SUBTREE (MessageNew))", "a NOTIFY event group needs one list of events or NONE"),
    (b"a NOTIFY SET (SELECTED (MessageNew) (FlagChange))", "a NOTIFY event group needs one list"),
    (b"a NOTIFY SET (SELECTED ())", "NOTIFY events are a parenthesised list"),
    (b"a NOTIFY SET (SELECTED MessageNew)", "NOTIFY events are a parenthesised list"),
    (b"a NOTIFY SET (SELECTED (Foo))", "unknown NOTIFY event"),
]


@pytest.mark.parametrize(("line", "reason"), BAD)
def test_malformed_is_bad_with_its_reason(line: bytes, reason: str) -> None:
    with pytest.raises(CommandSyntaxError) as caught:
        parse_command([line], MODERN)
    error = caught.value
    assert (error.tag, error.status, error.code) == (b"a", "BAD", None)
    assert error.text.startswith(reason), error.text


@pytest.mark.parametrize(
    ("line", "code", "reason"),
    [
        (b"a SORT RETURN (UPDATE) (DATE) UTF-8 ALL", b"CANNOT", "SORT RETURN (UPDATE) is not supported"),
        (b"a SORT (DATE) KOI8-R ALL", b"BADCHARSET (US-ASCII UTF-8)", "Unsupported charset"),
        (b"a THREAD REFERENCES KOI8-R ALL", b"BADCHARSET (US-ASCII UTF-8)", "Unsupported charset"),
    ],
)
def test_unsupported_is_no_with_a_response_code(line: bytes, code: bytes, reason: str) -> None:
    with pytest.raises(CommandSyntaxError) as caught:
        parse_command([line], MODERN)
    assert (caught.value.status, caught.value.code, caught.value.text) == ("NO", code, reason)


def test_return_and_modifiers_are_unknown_where_the_extension_is_off() -> None:
    """Exchange 2010 has neither ESEARCH nor CONDSTORE."""
    for line, reason in (
        (b"a SEARCH RETURN (ALL) ALL", "unknown search key 'RETURN'"),
        (b"a FETCH 1 FLAGS (CHANGEDSINCE 5)", "too many arguments"),
        (b"a SELECT INBOX (CONDSTORE)", "too many arguments"),
    ):
        with pytest.raises(CommandSyntaxError) as caught:
            parse_command([line], EXCHANGE)
        assert caught.value.text.startswith(reason), (line, caught.value.text)


def test_well_formed_edges() -> None:
    search = parse_command([b"a SEARCH RETURN (PARTIAL 5:1) ALL"], MODERN)
    assert search.returns.partial == (1, 5)  # either order
    select = parse_command([b"a SELECT INBOX (QRESYNC (1 5 1:3 (1:2 3:4)))"], MODERN)
    assert select.qresync.seq_match == (SequenceSet.parse(b"1:2"), SequenceSet.parse(b"3:4"))
    notify = parse_command([b"a NOTIFY SET STATUS (SELECTED NONE) (MAILBOXES INBOX (MessageNew))"], MODERN)
    assert notify == Notify(
        b"a",
        (NotifyGroup(b"SELECTED", (), ()), NotifyGroup(b"MAILBOXES", (b"INBOX",), (b"MESSAGENEW",))),
        True,
    )
