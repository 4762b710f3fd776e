"""SEARCH criteria: parsing into the syntax tree (exchmail.imap.searchkeys) and
evaluation (exchmail.imap.search), pure."""

from __future__ import annotations

import calendar
import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from exchmail.imap.parsing import MAX_DEPTH, Atom, LiteralSegment, ParseError, SequenceSet, tokenize
from exchmail.imap.search import Candidate, Needs, compile_search, needs_of
from exchmail.imap.searchkeys import (
    All,
    And,
    Body,
    Date,
    Flag,
    Header,
    MessageSet,
    Not,
    Or,
    Recent,
    Size,
    Text,
    parse_search,
    parse_search_date,
)
from exchmail.mime.message import ParsedMessage, nested_header_texts


def parse(line: bytes, charset: str = "US-ASCII", max_keys: int = 0):
    return parse_search(tokenize([line]), charset, max_keys)


# -- the syntax tree -------------------------------------------------------------------
@pytest.mark.parametrize(
    "keys,expected",
    [
        (b"ALL", All()),
        (b"all", All()),
        (b"SEEN", Flag("\\Seen")),
        (b"UNSEEN", Flag("\\Seen", False)),
        (b"ANSWERED UNDRAFT", And((Flag("\\Answered"), Flag("\\Draft", False)))),
        (b"KEYWORD $Work", Flag("$Work")),
        (b'UNKEYWORD "$Work"', Flag("$Work", False)),
        (b"RECENT", Recent()),
        (b"OLD", Recent(False)),
        (b"NEW", And((Recent(), Flag("\\Seen", False)))),
        (b"1:3,*", MessageSet(SequenceSet(((1, 3), (None, None))))),
        (b"UID 5:*", MessageSet(SequenceSet(((5, None),)), uid=True)),
        (b'UID "7"', MessageSet(SequenceSet(((7, 7),)), uid=True)),
        (b"LARGER 10", Size("larger", 10)),
        (b"SMALLER 4294967295", Size("smaller", 4294967295)),
        (b"BEFORE 1-Feb-1994", Date("internal", "before", datetime.date(1994, 2, 1))),
        (b'ON "01-feb-1994"', Date("internal", "on", datetime.date(1994, 2, 1))),
        (b"SINCE 31-Dec-1999", Date("internal", "since", datetime.date(1999, 12, 31))),
        (b"SENTBEFORE 1-Feb-1994", Date("sent", "before", datetime.date(1994, 2, 1))),
        (b"SENTON 1-Feb-1994", Date("sent", "on", datetime.date(1994, 2, 1))),
        (b"SENTSINCE 1-Feb-1994", Date("sent", "since", datetime.date(1994, 2, 1))),
        (b"FROM alice", Header("From", "alice")),
        (b"TO bob", Header("To", "bob")),
        (b"CC x", Header("Cc", "x")),
        (b"BCC x", Header("Bcc", "x")),
        (b'SUBJECT "two words"', Header("Subject", "two words")),
        (b'HEADER X-Custom ""', Header("X-Custom", "")),
        (b"BODY world", Body("world")),
        (b"TEXT world", Text("world")),
        (b"NOT SEEN", Not(Flag("\\Seen"))),
        (b"OR SEEN DRAFT", Or(Flag("\\Seen"), Flag("\\Draft"))),
        (b"(SEEN)", Flag("\\Seen")),
        (b"(SEEN DRAFT) ALL", And((And((Flag("\\Seen"), Flag("\\Draft"))), All()))),
        (b"OR OR SEEN FLAGGED DRAFT", Or(Or(Flag("\\Seen"), Flag("\\Flagged")), Flag("\\Draft"))),
    ],
)
def test_parse(keys, expected):
    assert parse(keys) == expected


def test_parse_literal_and_utf8_strings():
    tokens = tokenize([b"SUBJECT {5}", LiteralSegment(b"Gr\xc3\xbc\xc3\x9f"), b' BODY "\xc3\xa9"'])
    assert parse_search(tokens, "UTF-8") == And((Header("Subject", "Grüß"), Body("é")))


def test_string_not_valid_in_charset_is_bad():
    with pytest.raises(ParseError, match="not valid US-ASCII") as caught:
        parse(b'SUBJECT "Gr\xc3\xbc"')
    assert caught.value.status == "BAD"
    with pytest.raises(ParseError, match="not valid UTF-8"):
        parse(b'SUBJECT "\xff"', "UTF-8")


@pytest.mark.parametrize(
    "keys,reason",
    [
        (b"", "missing search key"),
        (b"()", "missing search key"),
        (b"FOO", "unknown search key"),
        (b"SEEN BOGUS", "unknown search key"),
        (b"NOT", "missing search argument"),
        (b"OR SEEN", "missing search argument"),
        (b"KEYWORD", "missing search argument"),
        (b"LARGER", "missing search argument"),
        (b"LARGER x", "expected a number"),
        (b"LARGER -1", "expected a number"),
        (b"SMALLER 99999999999", "expected a number"),
        (b"SMALLER 4294967296", "out of range"),
        (b"BEFORE", "missing search argument"),
        (b"BEFORE 32-Jan-2020", "invalid date"),
        (b"BEFORE 1-Foo-2020", "invalid date"),
        (b"BEFORE 2020-01-01", "invalid date"),
        (b"ON 1-Feb", "invalid date"),
        (b"SINCE x", "invalid date"),
        (b"SENTON 30-Feb-2020", "invalid date"),
        (b"SINCE 1-Feb-94", "invalid date"),
        (b"SINCE 1-Feb-0000", "invalid date"),
        (b"UID", "missing search argument"),
        (b"UID x", "invalid sequence set"),
        (b"UID 0", "invalid sequence set"),
        (b"UID (1)", "expected a string"),
        (b"1:x", "invalid sequence set"),
        (b"0", "invalid sequence set"),
        (b"HEADER", "missing search argument"),
        (b"HEADER X", "missing search argument"),
        (b'"SEEN"', "expected a search key"),
    ],
)
def test_parse_errors(keys, reason):
    with pytest.raises(ParseError, match=reason) as caught:
        parse(keys)
    assert caught.value.status == "BAD" and caught.value.code is None


def test_parse_search_date():
    assert parse_search_date(Atom(b"1-Feb-1994")) == datetime.date(1994, 2, 1)
    assert parse_search_date(b"28-DEC-2020") == datetime.date(2020, 12, 28)


# -- limits --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "keys,count",
    [
        (b"SEEN", 1),
        (b"UNDELETED " * 10, 10),
        (b"ALL" + b" UNDRAFT" * 9, 10),
        (b"SEEN (FROM a OR UID 1 TO b)", 5),
        (b"NOT SEEN", 2),
        (b"(((SEEN)))", 1),
        (b"NEW", 1),
    ],
)
def test_key_limit_counts_every_key_but_lists(keys, count):
    parse(keys, max_keys=count)
    with pytest.raises(ParseError) as caught:
        parse(keys, max_keys=count - 1) if count > 1 else parse(keys + b" ALL", max_keys=1)
    error = caught.value
    assert (error.status, error.code) == ("NO", b"LIMIT")
    assert str(error) == f"At most {max(count - 1, 1)} search keys are supported"


def test_no_key_limit():
    assert parse(b"SEEN " * 5000)


def test_syntax_errors_win_over_the_key_limit():
    with pytest.raises(ParseError) as caught:
        parse(b"UNDELETED " * 11 + b"BOGUS", max_keys=10)
    assert caught.value.status == "BAD"


def nested(opening: bytes, closing: bytes, depth: int) -> bytes:
    return opening * depth + b"ALL" + closing * depth


@pytest.mark.parametrize("opening,closing", [(b"(", b")"), (b"NOT ", b""), (b"OR ", b" ALL")])
def test_nesting_up_to_the_limit_parses(opening, closing):
    key = parse(nested(opening, closing, MAX_DEPTH))
    depth = 0
    while not isinstance(key, All):
        key = key.key if isinstance(key, Not) else key.left if isinstance(key, Or) else key
        depth += 1
    assert depth == MAX_DEPTH or opening == b"("


@pytest.mark.parametrize("opening,closing", [(b"(", b")"), (b"NOT ", b""), (b"OR ", b" ALL")])
def test_nesting_beyond_the_limit_is_bad(opening, closing):
    with pytest.raises(ParseError, match="nested too deeply") as caught:
        parse_search(tokenize([nested(opening, closing, MAX_DEPTH + 1)], max_depth=100))
    assert caught.value.status == "BAD"


@pytest.mark.parametrize(
    "line",
    [
        # The robustness report's inputs: about 650 bytes each; they used to raise RecursionError.
        b"(" * 322 + b"ALL" + b")" * 322,
        b"NOT " * 483 + b"ALL",
        b"OR " * 483 + b"ALL " * 484,
        b"(NOT OR " * 200 + b"ALL ALL" + b")" * 200,
        b"NOT " * 100000 + b"ALL",
        b"OR " * 100000 + b"ALL",
    ],
)
@pytest.mark.parametrize("max_keys", [0, 10])
def test_pathological_nesting_is_bad_in_every_profile(line, max_keys):
    with pytest.raises(ParseError, match="nested too deeply") as caught:
        parse_search(tokenize([line]), "US-ASCII", max_keys)
    assert caught.value.status == "BAD"


def test_mixed_nesting_counts_lists_not_and_or_together():
    third = MAX_DEPTH // 3
    parse(b"(NOT OR ALL " * third + b"ALL" + b")" * third)  # 3 * 10 levels
    with pytest.raises(ParseError, match="nested too deeply"):
        parse(b"(NOT OR ALL " * (third + 1) + b"ALL" + b")" * (third + 1))


# -- evaluation --------------------------------------------------------------------------------
def ts(y, m, d, hour=12):
    return float(calendar.timegm((y, m, d, hour, 0, 0)))


MESSAGE = (
    b"From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nCc: carol@example.com\r\n"
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= meeting\r\nDate: Tue, 1 Feb 1994 10:00:00 +0000\r\n"
    b"X-Custom: Foo\r\n\r\nHello World body text\r\n"
)
OTHER = b"From: dave@example.org\r\nSubject: other\r\n\r\nnothing here\r\n"


@dataclass(frozen=True)
class FakeCandidate:
    """A Candidate over a ParsedMessage; records which content it was asked for."""

    seq: int
    uid: int
    flags: frozenset[str]
    recent: bool
    internal_date: float
    size: int
    raw: bytes
    asked: list = field(default_factory=list)

    def _parsed(self) -> ParsedMessage:
        return ParsedMessage(self.raw)

    def header(self, name: str) -> str | None:
        self.asked.append("headers")
        parsed = self._parsed()
        return parsed.decoded_header(name) if parsed.get_all(name) else None

    def sent_date(self) -> datetime.date | None:
        self.asked.append("headers")
        return self._parsed().sent_date()

    def header_text(self) -> str:
        self.asked.append("headers")
        return self._parsed().header_text()

    def body_contains(self, needle: str) -> bool:
        self.asked.append("body")
        return needle.casefold() in self._parsed().body_text().casefold()

    def nested_header_texts(self) -> Iterator[str]:
        self.asked.append("part headers")
        return nested_header_texts(self._parsed().root)


def candidates() -> list[FakeCandidate]:
    return [
        FakeCandidate(1, 10, frozenset({"\\Seen", "\\Answered"}), False, ts(1994, 2, 1), 100, MESSAGE),
        FakeCandidate(
            2, 20, frozenset({"\\Flagged", "\\Deleted", "$Work"}), True, ts(1994, 2, 2), 2000, OTHER
        ),
        FakeCandidate(3, 30, frozenset({"\\Draft"}), True, ts(1995, 1, 1), 50, OTHER),
    ]


def search(line: bytes, charset: str = "US-ASCII") -> list[int]:
    program = compile_search(parse(line, charset), max_seq=3, max_uid=30)
    return [c.seq for c in candidates() if program.matches(c)]


def test_fake_candidate_is_a_candidate():
    candidate: Candidate = candidates()[0]  # checked by mypy too
    assert candidate.uid == 10


@pytest.mark.parametrize(
    "keys,expected",
    [
        (b"ALL", [1, 2, 3]),
        (b"SEEN", [1]),
        (b"UNSEEN", [2, 3]),
        (b"ANSWERED", [1]),
        (b"UNANSWERED", [2, 3]),
        (b"DELETED", [2]),
        (b"UNDELETED", [1, 3]),
        (b"DRAFT", [3]),
        (b"UNDRAFT", [1, 2]),
        (b"FLAGGED", [2]),
        (b"UNFLAGGED", [1, 3]),
        (b"KEYWORD $Work", [2]),
        (b"UNKEYWORD $Work", [1, 3]),
        (b"RECENT", [2, 3]),
        (b"OLD", [1]),
        (b"NEW", [2, 3]),
        (b"LARGER 99", [1, 2]),
        (b"SMALLER 100", [3]),
        (b"BEFORE 2-Feb-1994", [1]),
        (b"ON 2-Feb-1994", [2]),
        (b"SINCE 2-Feb-1994", [2, 3]),
        (b'ON "01-feb-1994"', [1]),
        (b"SENTON 1-Feb-1994", [1]),
        (b"SENTBEFORE 1-Feb-1994", []),
        (b"SENTSINCE 1-Feb-1994", [1]),
        (b"FROM alice", [1]),
        (b'FROM "EXAMPLE.ORG"', [2, 3]),
        (b"TO bob", [1]),
        (b"CC carol", [1]),
        (b"BCC x", []),
        (b"SUBJECT meeting", [1]),
        (b"SUBJECT OTHER", [2, 3]),
        (b"HEADER X-Custom foo", [1]),
        (b'HEADER X-Custom ""', [1]),
        (b'HEADER X-Missing ""', []),
        (b"BODY world", [1]),
        (b"BODY Alice", []),
        (b"TEXT Alice", [1]),
        (b"TEXT nothing", [2, 3]),
        (b"1", [1]),
        (b"2:*", [2, 3]),
        (b"*", [3]),
        (b"1,3", [1, 3]),
        (b"5:*", [3]),
        (b"3:1", [1, 2, 3]),
        (b"UID 20", [2]),
        (b"UID 15:*", [2, 3]),
        (b"UID *", [3]),
        (b"UID 1:9,31:40", []),
        (b"UID 30,10:10,20:25", [1, 2, 3]),
        (b"NOT SEEN", [2, 3]),
        (b"OR SEEN DRAFT", [1, 3]),
        (b"OR (SEEN) (FLAGGED DELETED)", [1, 2]),
        (b"NOT (OR SEEN DRAFT)", [2]),
        (b"(RECENT (UNSEEN))", [2, 3]),
        (b"SEEN UNSEEN", []),
        (b"RECENT LARGER 1000", [2]),
        (b"OR OR SEEN FLAGGED DRAFT", [1, 2, 3]),
        (b"NOT NOT SEEN", [1]),
    ],
)
def test_search_keys(keys, expected):
    assert search(keys) == expected


def test_search_utf8_string():
    assert search(b'SUBJECT "Gr\xc3\xbc"', charset="UTF-8") == [1]


@pytest.mark.parametrize(
    "keys,needs",
    [
        (b"ALL", Needs.INDEX),
        (b"SEEN 1:2 UID 3 LARGER 1 BEFORE 1-Jan-2000 NEW", Needs.INDEX),
        (b"FROM a", Needs.HEADERS),
        (b"SENTON 1-Jan-2000", Needs.HEADERS),
        (b"NOT (OR SEEN HEADER X y)", Needs.HEADERS),
        (b"BODY x", Needs.BODY),
        (b"TEXT x", Needs.BODY),
        (b"SUBJECT a OR SEEN NOT TEXT b", Needs.BODY),
    ],
)
def test_needs(keys, needs):
    criteria = parse(keys)
    assert needs_of(criteria) is needs
    assert compile_search(criteria, 3, 30).needs is needs


def test_cheap_keys_are_evaluated_first():
    program = compile_search(parse(b"BODY hello SUBJECT x SEEN"), 3, 30)
    unseen = candidates()[1]
    assert not program.matches(unseen)
    assert unseen.asked == []  # failed on its flags: never read
    seen = candidates()[0]
    assert not program.matches(seen)
    assert seen.asked == ["headers"]  # failed on the subject: the body is never read
    program = compile_search(parse(b"OR BODY x SEEN"), 3, 30)
    assert program.matches(seen) and seen.asked == ["headers"]


def test_program_is_reusable_and_stateless():
    program = compile_search(parse(b"OR FROM alice 3"), 3, 30)
    for _ in range(2):
        assert [c.seq for c in candidates() if program.matches(c)] == [1, 3]


def test_star_resolves_against_the_given_mailbox():
    criteria = parse(b"*")
    assert compile_search(criteria, max_seq=2, max_uid=30).matches(candidates()[1])
    assert not compile_search(criteria, max_seq=3, max_uid=30).matches(candidates()[1])
    empty = compile_search(parse(b"UID *"), max_seq=0, max_uid=0)
    assert not any(empty.matches(c) for c in candidates())
