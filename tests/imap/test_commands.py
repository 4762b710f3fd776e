"""The typed command parser (exchmail.imap.commands), pure and table-driven.

Each valid form maps to the frozen command it must produce; each invalid
form to the reason (and status) the client is given.
"""

from __future__ import annotations

import calendar
import dataclasses
import io
import random

import pytest

from exchmail.imap.commands import (
    REGISTRY,
    Append,
    Authenticate,
    Capability,
    Check,
    Close,
    Command,
    CommandHead,
    CommandSyntaxError,
    Copy,
    Create,
    Delete,
    Expunge,
    Fetch,
    Idle,
    List,
    Login,
    Logout,
    Lsub,
    Namespace,
    Noop,
    ParseOptions,
    Rename,
    Search,
    Select,
    StartTLS,
    Status,
    Store,
    Subscribe,
    Unsubscribe,
    parse_command,
    parse_head,
    register,
    split_tag,
)
from exchmail.imap.fetchatt import FetchItem
from exchmail.imap.parsing import MAX_DEPTH, MAX_LITERALS, LiteralSegment, SequenceSet, Spool
from exchmail.imap.searchkeys import All, And, Flag, Header, MessageSet, Not
from exchmail.profile.builtin import EXCHANGE2010, RFC3501
from exchmail.profile.settings import IMAPSettings, TagSyntax

EXCHANGE = ParseOptions.from_settings(EXCHANGE2010.imap)
STRICT = ParseOptions.from_settings(RFC3501.imap)


def parse(line: bytes, *rest: bytes | LiteralSegment, options: ParseOptions = EXCHANGE) -> Command:
    return parse_command([line, *rest], options)


def refused(
    line: bytes, *rest: bytes | LiteralSegment, options: ParseOptions = EXCHANGE
) -> CommandSyntaxError:
    with pytest.raises(CommandSyntaxError) as caught:
        parse(line, *rest, options=options)
    return caught.value


def seqs(text: bytes) -> SequenceSet:
    return SequenceSet.parse(text)


def epoch(*fields: int) -> float:
    return float(calendar.timegm(fields))


# -- options ----------------------------------------------------------------------------------
def test_options_from_settings():
    assert ParseOptions() == EXCHANGE == ParseOptions.from_settings(IMAPSettings())
    assert STRICT.liberal_whitespace is False and STRICT.tag_syntax is TagSyntax.RFC3501
    assert STRICT.max_search_keys == 0 and STRICT.ignore_invalid_parameters is False
    assert STRICT.search_charsets == ("US-ASCII", "UTF-8")
    assert EXCHANGE.max_search_keys == 10 and EXCHANGE.ignore_invalid_parameters is True


def test_commands_are_frozen_with_slots():
    command = parse(b"a1 LOGIN alice pw")
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(command, "user", b"bob")  # noqa: B010
    assert not hasattr(command, "__dict__")


# -- valid forms ----------------------------------------------------------------------------------
VALID = [
    (b"a1 CAPABILITY", Capability(b"a1")),
    (b"a1 capability", Capability(b"a1")),
    (b"a1 NOOP", Noop(b"a1")),
    (b"a1 LOGOUT", Logout(b"a1")),
    (b"a1 STARTTLS", StartTLS(b"a1")),
    (b"a1 LOGIN alice secret", Login(b"a1", b"alice", b"secret")),
    (b'a1 LOGIN "alice" "se cret"', Login(b"a1", b"alice", b"se cret")),
    (b"a1 LOGIN NIL NIL", Login(b"a1", b"NIL", b"NIL")),
    (b"a1 AUTHENTICATE plain", Authenticate(b"a1", b"PLAIN", None)),
    (b"a1 AUTHENTICATE PLAIN AGFsaWNlAHB3", Authenticate(b"a1", b"PLAIN", b"AGFsaWNlAHB3")),
    (b"a1 AUTHENTICATE PLAIN =", Authenticate(b"a1", b"PLAIN", b"=")),
    (b"a1 SELECT INBOX", Select(b"a1", b"INBOX")),
    (b'a1 SELECT "a b"', Select(b"a1", b"a b")),
    (b"a1 EXAMINE inbox", Select(b"a1", b"inbox", readonly=True)),
    (b"a1 SELECT &AOk-t&AOk-", Select(b"a1", b"&AOk-t&AOk-")),  # still wire form
    (b"a1 SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}", Select(b"a1", b"!#$&'+,-.0123456789:;<=>?@^_`|[}")),
    (b"a1 SELECT a]b", Select(b"a1", b"a]b")),
    (b"a1 SELECT BODY[x", Select(b"a1", b"BODY[x")),  # sections only in FETCH
    (b"a1 CREATE a/b", Create(b"a1", b"a/b")),
    (b"a1 CREATE a*%", Create(b"a1", b"a*%")),
    (b"a1 DELETE x", Delete(b"a1", b"x")),
    (b'a1 RENAME a "b c"', Rename(b"a1", b"a", b"b c")),
    (b"a1 SUBSCRIBE x", Subscribe(b"a1", b"x")),
    (b"a1 UNSUBSCRIBE x", Unsubscribe(b"a1", b"x")),
    (b'a1 LIST "" *', List(b"a1", b"", b"*")),
    (b'a1 LIST "" %', List(b"a1", b"", b"%")),
    (b"a1 LIST a/ b%*", List(b"a1", b"a/", b"b%*")),
    (
        b'a1 LIST "" !#$&\'+,-.0123456789:;<=>?@^_`|[}%*',
        List(b"a1", b"", b"!#$&'+,-.0123456789:;<=>?@^_`|[}%*"),
    ),
    (b'a1 LSUB "" "*"', Lsub(b"a1", b"", b"*")),
    (b"a1 STATUS INBOX (MESSAGES unseen)", Status(b"a1", b"INBOX", (b"MESSAGES", b"UNSEEN"))),
    (b"a1 STATUS INBOX UIDNEXT", Status(b"a1", b"INBOX", (b"UIDNEXT",))),
    (
        b"a1 STATUS INBOX (RECENT UIDVALIDITY RECENT)",
        Status(b"a1", b"INBOX", (b"RECENT", b"UIDVALIDITY", b"RECENT")),
    ),
    (b"a1 STATUS INBOX (MESSAGES FOO)", Status(b"a1", b"INBOX", (b"MESSAGES",))),  # 2.3: ignored
    (b"a1 NAMESPACE", Namespace(b"a1")),
    (b"a1 IDLE", Idle(b"a1")),
    (b"a1 CHECK", Check(b"a1")),
    (b"a1 CLOSE", Close(b"a1")),
    (b"a1 EXPUNGE", Expunge(b"a1")),
    (b"a1 UID EXPUNGE 1:3,7", Expunge(b"a1", seqs(b"1:3,7"))),
    (b"a1 FETCH 1 FLAGS", Fetch(b"a1", seqs(b"1"), (FetchItem(b"FLAGS"),))),
    (b"a1 FETCH 1:* (UID FLAGS)", Fetch(b"a1", seqs(b"1:*"), (FetchItem(b"UID"), FetchItem(b"FLAGS")))),
    (
        b"a1 FETCH 2 fast",
        Fetch(
            b"a1", seqs(b"2"), (FetchItem(b"FLAGS"), FetchItem(b"INTERNALDATE"), FetchItem(b"RFC822.SIZE"))
        ),
    ),
    (b"a1 UID FETCH 5 FLAGS", Fetch(b"a1", seqs(b"5"), (FetchItem(b"UID"), FetchItem(b"FLAGS")), uid=True)),
    (
        b"a1 UID FETCH 5 (FLAGS UID)",
        Fetch(b"a1", seqs(b"5"), (FetchItem(b"FLAGS"), FetchItem(b"UID")), uid=True),
    ),
    (b"a1 uid fetch 5 FLAGS", Fetch(b"a1", seqs(b"5"), (FetchItem(b"UID"), FetchItem(b"FLAGS")), uid=True)),
    (
        b"a1 FETCH 1 BODY.PEEK[HEADER.FIELDS (From To)]<0.10>",
        Fetch(
            b"a1",
            seqs(b"1"),
            (
                FetchItem(
                    b"BODY",
                    (),
                    "HEADER.FIELDS",
                    (b"From", b"To"),
                    (0, 10),
                    peek=True,
                    section=b"HEADER.FIELDS (FROM TO)",
                ),
            ),
        ),
    ),
    (
        b"a1 FETCH 1 (BODY[1.MIME] RFC822.SIZE)",
        Fetch(
            b"a1",
            seqs(b"1"),
            (FetchItem(b"BODY", (1,), "MIME", section=b"1.MIME"), FetchItem(b"RFC822.SIZE")),
        ),
    ),
    (b"a1 STORE 1 FLAGS (\\Seen)", Store(b"a1", seqs(b"1"), "replace", False, frozenset({"\\Seen"}))),
    (
        b"a1 STORE 1:2 +FLAGS.SILENT (\\seen \\DELETED $Work)",
        Store(b"a1", seqs(b"1:2"), "add", True, frozenset({"\\Seen", "\\Deleted", "$Work"})),
    ),
    (b"a1 STORE * -flags \\Flagged", Store(b"a1", seqs(b"*"), "remove", False, frozenset({"\\Flagged"}))),
    (b"a1 STORE 1 FLAGS ()", Store(b"a1", seqs(b"1"), "replace", False, frozenset())),
    (b"a1 UID STORE 9 +FLAGS (a[b)", Store(b"a1", seqs(b"9"), "add", False, frozenset({"a[b"}), uid=True)),
    (b"a1 COPY 1:3 Archive", Copy(b"a1", seqs(b"1:3"), b"Archive")),
    (b'a1 UID COPY 4 "x y"', Copy(b"a1", seqs(b"4"), b"x y", uid=True)),
    (b"a1 SEARCH ALL", Search(b"a1", "US-ASCII", All())),
    (
        b"a1 SEARCH CHARSET us-ascii SEEN NOT 1:2",
        Search(b"a1", "US-ASCII", And((Flag("\\Seen"), Not(MessageSet(seqs(b"1:2")))))),
    ),
    (b"a1 UID SEARCH UID 5:*", Search(b"a1", "US-ASCII", MessageSet(seqs(b"5:*"), uid=True), uid=True)),
    (b"a1 SEARCH UNSEEN", Search(b"a1", "US-ASCII", Flag("\\Seen", False))),
]


@pytest.mark.parametrize("line,expected", VALID)
def test_valid(line, expected):
    command = parse(line)
    assert command == expected
    assert command.tag == b"a1"


@pytest.mark.parametrize(
    "line,name",
    [
        (b"a1 SELECT x", b"SELECT"),
        (b"a1 EXAMINE x", b"EXAMINE"),
        (b"a1 UID FETCH 1 UID", b"FETCH"),
        (b"a1 noop", b"NOOP"),
        (b"a1 UID EXPUNGE 1", b"EXPUNGE"),
    ],
)
def test_command_names(line, name):
    assert parse(line).name == name


def test_expunge_uid_property():
    assert parse(b"a1 UID EXPUNGE 1").uid and not parse(b"a1 EXPUNGE").uid


# -- literals -----------------------------------------------------------------------------------------
def test_login_with_literals():
    assert parse(b"a1 LOGIN {5}", LiteralSegment(b"al ce"), b" {3+}", LiteralSegment(b'p"w'), b"") == Login(
        b"a1", b"al ce", b'p"w'
    )


def test_append_forms():
    message = b"Subject: x\r\n\r\nbody\r\n"
    literal = [LiteralSegment(message), b""]
    assert parse(b"a1 APPEND INBOX {%d}" % len(message), *literal) == Append(
        b"a1", b"INBOX", frozenset(), None, message
    )
    assert parse(b"a1 APPEND INBOX (\\Seen $Work) {%d+}" % len(message), *literal) == Append(
        b"a1", b"INBOX", frozenset({"\\Seen", "$Work"}), None, message
    )
    assert parse(b'a1 APPEND INBOX "17-Jul-1996 02:44:25 -0700" {%d}' % len(message), *literal) == Append(
        b"a1", b"INBOX", frozenset(), epoch(1996, 7, 17, 9, 44, 25), message
    )
    assert parse(b'a1 APPEND "a b" () " 7-Jul-1996 02:44:25 +0000" {%d}' % len(message), *literal) == Append(
        b"a1", b"a b", frozenset(), epoch(1996, 7, 7, 2, 44, 25), message
    )
    assert parse(b'a1 APPEND INBOX "quoted message"') == Append(
        b"a1", b"INBOX", frozenset(), None, b"quoted message"
    )


def test_append_spool_is_passed_through():
    spool = Spool(io.BytesIO(b"x" * 10), 0, 10)
    command = parse(b"a1 APPEND INBOX {10}", LiteralSegment(spool), b"")
    assert isinstance(command, Append) and command.message is spool


def test_large_literal_is_refused_as_a_string_argument():
    spool = Spool(io.BytesIO(b"x" * 70000), 0, 70000)
    assert (
        refused(b"a1 LOGIN {70000}", LiteralSegment(spool), b" pw").text
        == "literal too large for this argument"
    )


def test_literal_count_limit():
    segments: list[bytes | LiteralSegment] = [b"a1 SEARCH"]
    for _ in range(MAX_LITERALS + 1):
        segments[-1] += b" TEXT {1}"
        segments += [LiteralSegment(b"x"), b""]
    error = refused(*segments)
    assert error.status == "BAD" and "too many literals" in error.text
    assert parse_command(
        segments, dataclasses.replace(EXCHANGE, max_search_keys=0, max_literals=MAX_LITERALS + 1)
    )


# -- date-time ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,expected",
    [
        (b"17-Jul-1996 02:44:25 -0700", epoch(1996, 7, 17, 9, 44, 25)),
        (b" 1-jan-2000 00:00:00 +0000", epoch(2000, 1, 1, 0, 0, 0)),
        (b"01-JAN-2000 00:00:00 +0100", epoch(1999, 12, 31, 23, 0, 0)),
        (b"29-Feb-2000 23:59:59 +2359", epoch(2000, 2, 29, 0, 0, 59)),
        (b"01-Jan-1900 00:00:00 +0000", epoch(1900, 1, 1, 0, 0, 0)),
        (b"01-Jan-1900 00:00:00 -0100", epoch(1900, 1, 1, 1, 0, 0)),
        (b"31-Dec-9999 23:59:59 +0000", epoch(9999, 12, 31, 23, 59, 59)),
        (b"31-Dec-9999 22:59:59 -0100", epoch(9999, 12, 31, 23, 59, 59)),
    ],
)
def test_append_date_time(text, expected):
    command = parse(b'a1 APPEND INBOX "%s" {1}' % text, LiteralSegment(b"x"), b"")
    assert isinstance(command, Append) and command.internal_date == expected


@pytest.mark.parametrize(
    "text",
    [
        b"1-Jan-2000 00:00:00 +0000",  # day: two digits or SP DIGIT
        b"001-Jan-2000 00:00:00 +0000",
        b"00-Jan-2000 00:00:00 +0000",
        b" 0-Jan-2000 00:00:00 +0000",
        b"32-Jan-2000 00:00:00 +0000",
        b"30-Feb-2000 00:00:00 +0000",
        b"29-Feb-1900 00:00:00 +0000",
        b"31-Apr-2000 00:00:00 +0000",
        b"01-Foo-2000 00:00:00 +0000",
        b"01-Jan-0000 00:00:00 +0000",
        b"01-Jan-99 00:00:00 +0000",
        b"01-Jan-2000 24:00:00 +0000",
        b"01-Jan-2000 00:60:00 +0000",
        b"01-Jan-2000 00:00:60 +0000",
        b"01-Jan-2000 0:00:00 +0000",
        b"01-Jan-2000 00:00 +0000",
        b"01-Jan-2000 00:00:00 +9999",
        b"01-Jan-2000 00:00:00 +2400",
        b"01-Jan-2000 00:00:00 +0060",
        b"01-Jan-2000 00:00:00 0000",
        b"01-Jan-2000 00:00:00 +000",
        b"01-Jan-2000 00:00:00 UTC",
        b"01-Jan-2000 00:00:00",
        b"01-Jan-2000  00:00:00 +0000",
        b"01-Jan-2000 00:00:00 +0000 ",
        b"31-Dec-9999 23:59:59 -2359",
        b"31-Dec-9999 23:59:59 -0001",
        b"01-Jan-1900 00:00:00 +0001",
        b"31-Dec-1899 23:59:59 +0000",
        b"01-Jan-2000 00:00:00 +0000\x00",
        b"",
        b"\xd9\xa1\xd9\xa1-Jan-2000 00:00:00 +0000",  # Arabic-Indic digits
    ],
)
def test_append_date_time_invalid(text):
    error = refused(b'a1 APPEND INBOX "%s" {1}' % text, LiteralSegment(b"x"), b"")
    assert error.status == "BAD" and error.text.startswith("invalid date-time"), error.text


# -- errors -----------------------------------------------------------------------------------------
ERRORS = [
    # head
    (b"", b"*", "Null command"),
    (b"  \t ", b"*", "Null command"),
    (b"*", b"*", "invalid or missing tag"),
    (b"* NOOP", b"*", "invalid or missing tag"),
    (b"+ NOOP", b"*", "invalid or missing tag"),
    (b"a\x01 NOOP", b"*", "invalid or missing tag"),
    (b"a\xff NOOP", b"*", "invalid or missing tag"),
    (b"%s NOOP" % (b"t" * 65), b"*", "invalid or missing tag"),
    (b"a1", b"a1", "missing command"),
    (b"a1 ", b"a1", "missing command"),
    (b"a1 (NOOP)", b"a1", "missing command"),
    (b'a1 "NOOP"', b"a1", "missing command"),
    (b"a1 {4}", b"a1", "missing command"),
    (b"a1 FOO", b"a1", "Unsupported command"),
    (b"a1 FOO bar baz", b"a1", "Unsupported command"),
    (b"a1 NO\x01OP", b"a1", "Unsupported command"),
    (b"a1 UID", b"a1", "UID must be followed by COPY, EXPUNGE, FETCH, SEARCH or STORE"),
    (b"a1 UID NOOP", b"a1", "UID must be followed by COPY, EXPUNGE, FETCH, SEARCH or STORE"),
    (b"a1 UID (FETCH)", b"a1", "UID must be followed by COPY, EXPUNGE, FETCH, SEARCH or STORE"),
    (b"a1 UID UID FETCH 1 FLAGS", b"a1", "UID must be followed by COPY, EXPUNGE, FETCH, SEARCH or STORE"),
    # arguments: counts
    (b"a1 NOOP extra", b"a1", "too many arguments"),
    (b"a1 CAPABILITY x", b"a1", "too many arguments"),
    (b"a1 LOGOUT x", b"a1", "too many arguments"),
    (b"a1 STARTTLS x", b"a1", "too many arguments"),
    (b"a1 NAMESPACE x", b"a1", "too many arguments"),
    (b"a1 IDLE x", b"a1", "too many arguments"),
    (b"a1 CHECK x", b"a1", "too many arguments"),
    (b"a1 CLOSE x", b"a1", "too many arguments"),
    (b"a1 EXPUNGE 1", b"a1", "too many arguments"),
    (b"a1 UID EXPUNGE", b"a1", "missing argument"),
    (b"a1 LOGIN alice", b"a1", "missing argument"),
    (b"a1 LOGIN a b c", b"a1", "too many arguments"),
    (b"a1 AUTHENTICATE", b"a1", "missing argument"),
    (b"a1 AUTHENTICATE PLAIN a b", b"a1", "too many arguments"),
    (b"a1 SELECT", b"a1", "missing argument"),
    (b"a1 EXAMINE a b", b"a1", "too many arguments"),
    (b"a1 CREATE", b"a1", "missing argument"),
    (b"a1 DELETE", b"a1", "missing argument"),
    (b"a1 RENAME a", b"a1", "missing argument"),
    (b"a1 SUBSCRIBE", b"a1", "missing argument"),
    (b"a1 UNSUBSCRIBE a b", b"a1", "too many arguments"),
    (b'a1 LIST ""', b"a1", "missing argument"),
    (b'a1 LSUB "" * x', b"a1", "too many arguments"),
    (b"a1 STATUS INBOX", b"a1", "missing argument"),
    (b"a1 APPEND INBOX", b"a1", "missing argument"),
    (b"a1 FETCH 1", b"a1", "missing argument"),
    (b"a1 FETCH 1 FLAGS UID", b"a1", "too many arguments"),
    (b"a1 STORE 1 +FLAGS", b"a1", "missing argument"),
    (b"a1 COPY 1", b"a1", "missing argument"),
    # arguments: shapes
    (b"a1 LOGIN (alice) pw", b"a1", "expected a string, got a list"),
    (b"a1 LOGIN ((alice)) pw", b"a1", "expected a string, got a list"),
    (b'a1 LOGIN "a\\x" "pw"', b"a1", "invalid escape in quoted string"),
    (b'a1 LOGIN alice "secret pw', b"a1", "unterminated quoted string"),
    (b"a1 LOGIN (alice secret", b"a1", "unbalanced '('"),
    (b"a1 LOGIN alice secret)", b"a1", "unbalanced ')'"),
    (b"a1 LOGIN {5}", b"a1", "literal data missing"),
    (b'a1 AUTHENTICATE "PLAIN"', b"a1", "expected an atom"),
    (b"a1 SELECT (INBOX", b"a1", "unbalanced '('"),
    (b'a1 LIST "" "*', b"a1", "unterminated quoted string"),
    (b"a1 STATUS INBOX (MESSAGES", b"a1", "unbalanced '('"),
    (b"a1 STATUS INBOX ()", b"a1", "no STATUS item"),
    (b"a1 STATUS INBOX (FOO)", b"a1", "no STATUS item"),
    (b'a1 STATUS INBOX ("MESSAGES")', b"a1", "expected an atom"),
    (b"a1 APPEND INBOX notaliteral", b"a1", "APPEND needs the message as a literal"),
    (b"a1 APPEND INBOX (\\Seen)", b"a1", "APPEND needs the message as a literal"),
    (b"a1 APPEND INBOX (\\Seen) ()", b"a1", "APPEND needs the message as a literal"),
    (b'a1 APPEND INBOX (\\Bogus) "m"', b"a1", "unknown system flag \\Bogus"),
    (b'a1 APPEND INBOX (\\Recent) "m"', b"a1", "\\Recent cannot be set"),
    (b'a1 APPEND INBOX \\Seen "m"', b"a1", "invalid date-time"),
    (
        b'a1 APPEND INBOX "17-Jul-1996 02:44:25 -0700" (\\Seen) "m"',
        b"a1",
        "APPEND takes [(flags)] [date-time] before the message",
    ),
    (b'a1 APPEND INBOX () () "m"', b"a1", "APPEND takes [(flags)] [date-time] before the message"),
    (
        b'a1 APPEND INBOX "17-Jul-1996 02:44:25 -0700" "17-Jul-1996 02:44:25 -0700" "m"',
        b"a1",
        "APPEND takes [(flags)] [date-time] before the message",
    ),
    (b"a1 FETCH 0 FLAGS", b"a1", "invalid sequence set"),
    (b"a1 FETCH 1:x FLAGS", b"a1", "invalid sequence set"),
    (b"a1 FETCH x FLAGS", b"a1", "invalid sequence set"),
    (b"a1 FETCH 1,,2 FLAGS", b"a1", "invalid sequence set"),
    (b"a1 FETCH 4294967296 FLAGS", b"a1", "sequence number out of range"),
    (b"a1 FETCH (1) FLAGS", b"a1", "expected a sequence set"),
    (b'a1 FETCH "1" FLAGS', b"a1", "expected a sequence set"),
    (b"a1 FETCH 1 (FOO)", b"a1", "unknown fetch attribute"),
    (b"a1 FETCH 1 FOO", b"a1", "unknown fetch attribute"),
    (b"a1 FETCH 1 BODY[FOO]", b"a1", "invalid section"),
    (b"a1 FETCH 1 BODY[]<0.0>", b"a1", "partial length must be positive"),
    (b"a1 FETCH 1 BODY[HEADER", b"a1", "unbalanced '[' in fetch attribute"),
    (b"a1 FETCH 1 (FLAGS", b"a1", "unbalanced '('"),
    (b"a1 FETCH 1 (ALL)", b"a1", "unknown fetch attribute"),
    (b"a1 FETCH 1 ()", b"a1", "empty fetch attribute list"),
    (b"a1 UID FETCH 0 FLAGS", b"a1", "invalid sequence set"),
    (b"a1 STORE 1 +FLAGS (\\Bogus)", b"a1", "unknown system flag \\Bogus"),
    (b'a1 STORE 1 +FLAGS ("quoted")', b"a1", "flags must be atoms"),
    (b"a1 STORE 1 +FLAGS (\\Recent)", b"a1", "\\Recent cannot be stored"),
    (b"a1 STORE 1 +FLAGS (a(b)", b"a1", "unbalanced '('"),
    (b"a1 STORE 1 +FLAGS ((a))", b"a1", "flags must be atoms"),
    (b"a1 STORE 1 +FLAGS (a\\b)", b"a1", "invalid keyword"),
    (b"a1 STORE 1 +FLAGS (a%)", b"a1", "invalid keyword"),
    (b"a1 STORE 1 +FLAGS (a*)", b"a1", "invalid keyword"),
    (b"a1 STORE 1 +FLAGS (a])", b"a1", "invalid keyword"),
    (b"a1 STORE 1 +FLAGS (a{)", b"a1", "invalid keyword"),
    (b"a1 STORE 1 +FLAGS (caf\xc3\xa9)", b"a1", "invalid keyword"),
    (b"a1 STORE 1 FOO (\\Seen)", b"a1", "STORE needs FLAGS, +FLAGS or -FLAGS"),
    (b"a1 STORE 1 +FLAGS.LOUD (\\Seen)", b"a1", "STORE needs FLAGS, +FLAGS or -FLAGS"),
    (b'a1 STORE 1 "FLAGS" (\\Seen)', b"a1", "expected an atom"),
    (b"a1 STORE 0 +FLAGS (\\Seen)", b"a1", "invalid sequence set"),
    (b"a1 COPY 0 INBOX", b"a1", "invalid sequence set"),
    (b"a1 COPY 1 (INBOX)", b"a1", "expected a string, got a list"),
    (b"a1 UID EXPUNGE x", b"a1", "invalid sequence set"),
    (b"a1 SEARCH", b"a1", "missing search key"),
    (b"a1 SEARCH FOO", b"a1", "unknown search key"),
    (b"a1 SEARCH CHARSET", b"a1", "unknown search key"),
    (b"a1 SEARCH CHARSET US-ASCII", b"a1", "missing search key"),
    (b"a1 SEARCH BEFORE 32-Jan-2020", b"a1", "invalid date"),
    (b"a1 SEARCH SINCE notadate", b"a1", "invalid date"),
    (b"a1 SEARCH (SEEN", b"a1", "unbalanced '('"),
    (b"a1 SEARCH 0", b"a1", "invalid sequence set"),
    (b"a1 SEARCH LARGER x", b"a1", "expected a number"),
    (b'a1 SEARCH SUBJECT "\xc3\xa9"', b"a1", "search string is not valid US-ASCII"),
    # limits
    (b"a1 NOOP " + b"(" * (MAX_DEPTH + 1), b"a1", "parentheses nested too deeply (at most 32 levels)"),
    (
        b"a1 SEARCH " + b"(" * 322 + b"ALL" + b")" * 322,
        b"a1",
        "parentheses nested too deeply (at most 32 levels)",
    ),
    (b"a1 SEARCH " + b"NOT " * 483 + b"ALL", b"a1", "search keys nested too deeply (at most 32 levels)"),
    (
        b"a1 SEARCH " + b"OR " * 483 + b"ALL " * 484,
        b"a1",
        "search keys nested too deeply (at most 32 levels)",
    ),
]


@pytest.mark.parametrize("options", [EXCHANGE, STRICT], ids=["exchange", "rfc3501"])
@pytest.mark.parametrize("line,tag,reason", ERRORS)
def test_errors(line, tag, reason, options):
    if options is STRICT and (line.startswith(b"a1 STATUS INBOX (FOO)")):
        reason = "invalid STATUS item"
    error = refused(line, options=options)
    assert (error.tag, error.status, error.code) == (tag, "BAD", None)
    assert error.text.startswith(reason), error.text
    assert error.response().startswith(tag + b" BAD " + reason.encode())


def test_null_and_tag_errors_are_untagged():
    assert refused(b"").response() == b"* BAD Null command"
    assert refused(b"+ x").response() == b"* BAD invalid or missing tag"


# -- profile options ------------------------------------------------------------------------------------
def test_status_unknown_items_by_profile():
    assert parse(b"a1 STATUS INBOX (FOO MESSAGES)") == Status(b"a1", b"INBOX", (b"MESSAGES",))
    assert refused(b"a1 STATUS INBOX (FOO MESSAGES)", options=STRICT).text == "invalid STATUS item"


def test_search_charsets_by_profile():
    error = refused(b"a1 SEARCH CHARSET UTF-8 ALL")
    assert (error.status, error.code, error.text) == ("NO", b"BADCHARSET (US-ASCII)", "Unsupported charset")
    assert error.response() == b"a1 NO [BADCHARSET (US-ASCII)] Unsupported charset"
    assert parse(b'a1 SEARCH CHARSET utf-8 SUBJECT "\xc3\xa9"', options=STRICT) == Search(
        b"a1", "UTF-8", Header("Subject", "é")
    )
    error = refused(b"a1 SEARCH CHARSET KOI8-R ALL", options=STRICT)
    assert error.response() == b"a1 NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset"
    error = refused(b"a1 SEARCH CHARSET {5}", LiteralSegment(b"UTF-8"), b" ALL")
    assert error.code == b"BADCHARSET (US-ASCII)"


def test_search_key_limit_by_profile():
    """V0041: ten keys are fine, eleven are NO [LIMIT] (exchange2010); rfc3501 has no limit."""
    assert parse(b"a1 SEARCH" + b" UNDELETED" * 10)
    assert parse(b"a1 SEARCH ALL" + b" UNDRAFT" * 9)
    error = refused(b"a1 SEARCH" + b" UNDELETED" * 11)
    assert error.response() == b"a1 NO [LIMIT] At most 10 search keys are supported"
    assert refused(b"a1 UID SEARCH NOT (SEEN" + b" OR SEEN DRAFT" * 3 + b")").code == b"LIMIT"
    assert parse(b"a1 SEARCH" + b" UNDELETED" * 11, options=STRICT)


@pytest.mark.parametrize("line", [b"a1 NOOP", b"a1 LOGIN a b", b'a1 LIST "" *'])
def test_strict_whitespace(line):
    assert parse(line, options=STRICT)
    for spaced in (line.replace(b" ", b"  ", 1), line.replace(b" ", b"\t", 1)):
        assert parse(spaced) == parse(line)  # liberal (V0003)
        assert refused(spaced, options=STRICT).tag in (b"a1", b"*")
    error = refused(line.replace(b" ", b"  ", 1), options=STRICT)
    assert error.response() == b"a1 BAD expected a single space after the tag"
    if line.count(b" ") > 1:
        assert parse(line.replace(b" ", b" \t ")) == parse(line)
        error = refused(line.rsplit(b" ", 1)[0] + b"  " + line.rsplit(b" ", 1)[1], options=STRICT)
        assert error.tag == b"a1" and error.status == "BAD"


def test_tag_syntax_by_profile():
    for tag in (b"a{1", b"%x", b"a(", b"a\\b", b"a)b"):
        assert parse(tag + b" NOOP").tag == tag  # any printable
        assert refused(tag + b" NOOP", options=STRICT).tag == b"*"
    for tag in (b"a]", b"A.1", b"x}", b"~|"):
        assert parse(tag + b" NOOP", options=STRICT).tag == tag
    assert parse(b"t" * 64 + b" NOOP", options=STRICT).tag == b"t" * 64
    assert split_tag(b"a1 NOOP x", EXCHANGE) == (b"a1", b"NOOP x")
    assert split_tag(b"a1\tNOOP", EXCHANGE) == (b"a1", b"NOOP")
    assert split_tag(b"a1\tNOOP", STRICT) == (b"*", b"")
    assert split_tag(b"+ NOOP", EXCHANGE) == (b"*", b"NOOP")


# -- head and registry ---------------------------------------------------------------------------------
def test_parse_head():
    assert parse_head(b"a1 uid fetch 1:* (FLAGS", EXCHANGE) == CommandHead(b"a1", b"FETCH", True)
    assert parse_head(b"a1 SELECT {5}", EXCHANGE) == CommandHead(b"a1", b"SELECT", False)
    with pytest.raises(CommandSyntaxError, match="Unsupported command"):
        parse_head(b"a1 XYZZY", EXCHANGE)


def test_registry_holds_every_command():
    assert set(REGISTRY) == {
        b"CAPABILITY",
        b"NOOP",
        b"LOGOUT",
        b"STARTTLS",
        b"LOGIN",
        b"AUTHENTICATE",
        b"SELECT",
        b"EXAMINE",
        b"CREATE",
        b"DELETE",
        b"RENAME",
        b"SUBSCRIBE",
        b"UNSUBSCRIBE",
        b"LIST",
        b"LSUB",
        b"STATUS",
        b"APPEND",
        b"NAMESPACE",
        b"IDLE",
        b"CHECK",
        b"CLOSE",
        b"EXPUNGE",
        b"SEARCH",
        b"FETCH",
        b"STORE",
        b"COPY",
        b"ENABLE",  # extensions (issue 13): unknown unless the profile enables them
        b"COMPRESS",
        b"MOVE",
        b"UNSELECT",
        b"ID",
        b"GETQUOTA",
        b"GETQUOTAROOT",
        b"SETQUOTA",
        b"SORT",  # issue 14
        b"THREAD",
        b"CANCELUPDATE",
        b"NOTIFY",
    }
    assert {name for name, spec in REGISTRY.items() if spec.uid} == {
        b"COPY",
        b"EXPUNGE",
        b"FETCH",
        b"MOVE",
        b"SORT",
        b"THREAD",
        b"SEARCH",
        b"STORE",
    }
    assert {name for name, spec in REGISTRY.items() if spec.sections} == {b"FETCH"}


@dataclasses.dataclass(frozen=True, slots=True)
class Move(Command):
    NAME = b"MOVE"
    sequence_set: SequenceSet
    mailbox: bytes
    uid: bool = False


def test_an_extension_adds_one_entry(monkeypatch):
    from exchmail.imap import commands
    from exchmail.imap.commands_args import astring, sequence_set

    monkeypatch.setattr(commands, "REGISTRY", dict(REGISTRY))

    def parse_move(args):
        args.expect(2)
        return Move(args.tag, sequence_set(args.tokens[0]), astring(args.tokens[1]), args.uid)

    register(b"move", parse_move, uid=True)
    assert parse(b"a1 UID MOVE 1:2 Trash") == Move(b"a1", seqs(b"1:2"), b"Trash", uid=True)
    assert "COPY, EXPUNGE, FETCH, MOVE, SEARCH or STORE" in refused(b"a1 UID NOOP").text
    assert refused(b"a1 MOVE 1").text == "missing argument"


# -- robustness ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("options", [EXCHANGE, STRICT], ids=["exchange", "rfc3501"])
def test_only_command_syntax_errors_escape(options):
    """Mangled variants of every valid line parse or raise CommandSyntaxError, nothing else."""
    lines = [line for line, _ in VALID] + [line for line, _, _ in ERRORS]
    for line in (line for line in lines if len(line) < 100):
        for cut in range(len(line) + 1):
            for variant in (
                line[:cut],
                line[:cut] + b"(" + line[cut:],
                line[:cut] + b'"' + line[cut:],
                line[:cut] + b"]" + line[cut:],
                line[:cut] + b"\x00" + line[cut:],
            ):
                try:
                    parse(variant, options=options)
                except CommandSyntaxError:
                    pass


@pytest.mark.parametrize("options", [EXCHANGE, STRICT], ids=["exchange", "rfc3501"])
def test_random_input_only_raises_command_syntax_error(options):
    rng = random.Random(3501)
    words = [
        b"a1",
        b"UID",
        b"FETCH",
        b"SEARCH",
        b"STORE",
        b"APPEND",
        b"LOGIN",
        b"STATUS",
        b"LIST",
        b"SELECT",
        b"COPY",
        b"EXPUNGE",
        b"AUTHENTICATE",
        b"NOT",
        b"OR",
        b"ALL",
        b"1:*",
        b"*",
        b"BODY[",
        b"BODY.PEEK[HEADER.FIELDS (A)]<0.1>",
        b"FLAGS",
        b"+FLAGS.SILENT",
        b"\\Seen",
        b"(",
        b")",
        b'"',
        b"\\",
        b"{3}",
        b"{0+}",
        b"[",
        b"]",
        b"}",
        b" ",
        b"\t",
        b"\x00",
        b"\xff",
        b"CHARSET",
        b"UTF-8",
        b"HEADER",
        b"SINCE",
        b"1-Jan-2000",
        b'"01-Jan-2000 00:00:00 +0000"',
        b"UID",
        b"0",
        b"4294967296",
        b"%",
        b"NIL",
    ]
    for _ in range(3000):
        line = b" ".join(rng.choice(words) for _ in range(rng.randint(0, 12)))
        segments: list[bytes | LiteralSegment] = [line]
        if line.endswith((b"{3}", b"{0+}")):
            segments += [LiteralSegment(b"abc"), b" " + rng.choice(words)]
        try:
            parse_command(segments, options)
        except CommandSyntaxError as error:
            assert error.status in ("BAD", "NO") and error.tag
