"""Pure unit tests of the IMAP command parsers.

exchmail.imap.parsing (tokenize, literal_request, sequence sets),
exchmail.imap.fetchatt.parse_fetch_items and exchmail.imap.search.compile_search.
"""

from __future__ import annotations

import calendar
import io
import tempfile

import pytest

from exchmail.imap.fetchatt import FetchItem, parse_fetch_items
from exchmail.imap.parsing import (
    Atom,
    LiteralSegment,
    ParseError,
    Spool,
    as_atom,
    as_bytes,
    as_number,
    expect_count,
    literal_request,
    parse_sequence_set,
    resolve_sequence_set,
    tokenize,
)
from exchmail.imap.search import Candidate, compile_search, parse_search_date
from exchmail.mime.message import ParsedMessage


def tok(*segments):
    return tokenize(list(segments))


# -- tokenize ------------------------------------------------------------------
def test_atoms_are_atom_instances():
    tokens = tok(b"a1 NOOP")
    assert tokens == [b"a1", b"NOOP"]
    assert all(isinstance(t, Atom) for t in tokens)


def test_quoted_string_is_plain_bytes_not_atom():
    tokens = tok(b'a1 LOGIN "alice" "NIL"')
    assert tokens == [b"a1", b"LOGIN", b"alice", b"NIL"]
    assert isinstance(tokens[0], Atom)
    assert not isinstance(tokens[2], Atom)
    assert not isinstance(tokens[3], Atom)  # the string "NIL" differs from the atom NIL


def test_nil_atom_is_atom():
    tokens = tok(b"a1 X NIL")
    assert isinstance(tokens[2], Atom) and tokens[2] == b"NIL"


def test_quoted_string_escapes():
    tokens = tok(b'a1 LOGIN "a\\\\b" "say \\"hi\\""')
    assert tokens[2] == b"a\\b"
    assert tokens[3] == b'say "hi"'


def test_quoted_empty_string():
    assert tok(b'a1 LIST "" "*"')[2:] == [b"", b"*"]


def test_quoted_string_keeps_spaces_and_tabs_and_parens():
    assert tok(b'a1 X "  a\tb ( ) "')[2] == b"  a\tb ( ) "


@pytest.mark.parametrize("line", [b'a1 X "a\\b"', b'a1 X "a\\', b'a1 X "abc\\n"'])
def test_quoted_string_invalid_escape(line):
    with pytest.raises(ParseError):
        tok(line)


def test_unterminated_quoted_string():
    with pytest.raises(ParseError):
        tok(b'a1 LOGIN "alice')


def test_nested_lists():
    tokens = tok(b"a1 X (A (B C) () ((D)))")
    assert tokens[2] == [b"A", [b"B", b"C"], [], [[b"D"]]]


def test_lists_without_spaces_between_parens():
    assert tok(b"a1 X (A)(B)")[2:] == [[b"A"], [b"B"]]


@pytest.mark.parametrize("line", [b"a1 X (A", b"a1 X ((A)", b"a1 X A)", b"a1 X (A))", b")", b"("])
def test_unbalanced_parentheses(line):
    with pytest.raises(ParseError):
        tok(line)


def test_unbalanced_bracket_in_atom():
    with pytest.raises(ParseError):
        tok(b"a1 FETCH 1 BODY[HEADER")


def test_section_with_spaces_and_partial_is_one_atom():
    tokens = tok(b"a1 FETCH 1 BODY[HEADER.FIELDS (A B)]<0.10>")
    assert tokens[3] == b"BODY[HEADER.FIELDS (A B)]<0.10>"
    assert isinstance(tokens[3], Atom)


def test_section_inside_list():
    tokens = tok(b"a1 FETCH 1 (UID BODY.PEEK[HEADER.FIELDS (From To)] FLAGS)")
    assert tokens[3] == [b"UID", b"BODY.PEEK[HEADER.FIELDS (From To)]", b"FLAGS"]


def test_tab_and_runs_of_spaces_are_separators():
    assert tok(b"a1\tLOGIN \t  alice\t\t\"pw\"  ") == [b"a1", b"LOGIN", b"alice", b"pw"]


def test_strict_whitespace_mode_rejects_tab_and_double_space():
    assert tokenize([b"a1 NOOP"], liberal_whitespace=False) == [b"a1", b"NOOP"]
    with pytest.raises(ParseError):
        tokenize([b"a1\tNOOP"], liberal_whitespace=False)
    with pytest.raises(ParseError):
        tokenize([b"a1  NOOP"], liberal_whitespace=False)


def test_control_character_is_not_an_atom():
    with pytest.raises(ParseError):
        tok(b"\x00\x01")
    with pytest.raises(ParseError):
        tok(b"a1 NO\x01OP")


def test_empty_line_gives_no_tokens():
    assert tok(b"") == []
    assert tok(b"   \t ") == []


def test_literal_segment():
    tokens = tok(b"a1 LOGIN {5}", LiteralSegment(b"alice"), b' "pw"')
    assert tokens == [b"a1", b"LOGIN", b"alice", b"pw"]
    assert not isinstance(tokens[2], Atom)


def test_non_synchronizing_literal_segment():
    tokens = tok(b"a1 LOGIN {5+}", LiteralSegment(b"alice"), b" {2+}", LiteralSegment(b"pw"), b"")
    assert tokens == [b"a1", b"LOGIN", b"alice", b"pw"]


def test_literal_keeps_crlf_and_specials():
    data = b'a "b" (c)\r\n{3}\r\n'
    assert tok(b"a1 X {%d}" % len(data), LiteralSegment(data), b"")[2] == data


def test_literal_inside_list():
    tokens = tok(b"a1 X (A {3}", LiteralSegment(b"b c"), b" D)")
    assert tokens[2] == [b"A", b"b c", b"D"]


def test_empty_literal():
    assert tok(b"a1 X {0}", LiteralSegment(b""), b"")[2] == b""


def test_spool_literal_is_passed_through():
    spool = Spool(tempfile.TemporaryFile(), 3)
    tokens = tok(b"a1 APPEND INBOX {3}", LiteralSegment(spool), b"")
    assert tokens[3] is spool


def test_missing_literal_data():
    with pytest.raises(ParseError):
        tok(b"a1 LOGIN {5}")


def test_literal_request():
    assert literal_request(b"a1 LOGIN {5}") == (5, True)
    assert literal_request(b"a1 LOGIN {5+}") == (5, False)
    assert literal_request(b"a1 APPEND INBOX (\\Seen) {0}") == (0, True)
    assert literal_request(b"a1 LOGIN alice pw") is None
    assert literal_request(b"a1 LOGIN {5} x") is None
    assert literal_request(b"a1 LOGIN {x}") is None
    assert literal_request(b"a1 LOGIN {-1}") is None
    assert literal_request(b"a1 LOGIN {5++}") is None


# -- argument helpers ----------------------------------------------------------
def test_as_atom_and_as_bytes_and_as_number():
    assert as_atom(Atom(b"fetch")) == b"FETCH"
    with pytest.raises(ParseError):
        as_atom(b"FETCH")
    with pytest.raises(ParseError):
        as_atom([Atom(b"X")])
    assert as_bytes(Atom(b"x")) == b"x" and as_bytes(b"y") == b"y"
    with pytest.raises(ParseError):
        as_bytes([b"x"])
    spool = Spool(io.BytesIO(b"abc"), 3)
    assert as_bytes(spool) == b"abc"
    assert as_number(Atom(b"4294967295")) == 0xFFFFFFFF
    for bad in (Atom(b"4294967296"), Atom(b"-1"), Atom(b"x"), b"12", Atom(b"12345678901")):
        with pytest.raises(ParseError):
            as_number(bad)


def test_expect_count():
    expect_count([1], 1)
    expect_count([1, 2], 1, 2)
    with pytest.raises(ParseError):
        expect_count([], 1)
    with pytest.raises(ParseError):
        expect_count([1, 2], 1)


# -- sequence sets ---------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    (b"1", [(1, 1)]),
    (b"*", [(None, None)]),
    (b"1:3", [(1, 3)]),
    (b"3:1", [(3, 1)]),
    (b"1:*", [(1, None)]),
    (b"*:4", [(None, 4)]),
    (b"1,3:5,7:*", [(1, 1), (3, 5), (7, None)]),
    (b"4294967295", [(4294967295, 4294967295)]),
])
def test_parse_sequence_set_valid(text, expected):
    assert parse_sequence_set(text) == expected


@pytest.mark.parametrize("text", [
    b"", b"0", b"0:3", b"1:0", b"1:", b":1", b"a", b"1:x", b"1,,2", b"1,", b",1", b"1:2:3",
    b"01", b" 1", b"1 ", b"-1", b"4294967296", b"99999999999", b"1.5", b"**",
])
def test_parse_sequence_set_invalid(text):
    with pytest.raises(ParseError):
        parse_sequence_set(text)


def test_resolve_sequence_set():
    assert resolve_sequence_set([(None, None)], 5) == [(5, 5)]
    assert resolve_sequence_set([(1, None)], 5) == [(1, 5)]
    assert resolve_sequence_set([(None, 2)], 5) == [(2, 5)]
    assert resolve_sequence_set([(7, None)], 5) == [(5, 7)]
    assert resolve_sequence_set([(4, 2), (1, 1)], 5) == [(2, 4), (1, 1)]
    assert resolve_sequence_set([(None, None)], 0) == [(0, 0)]


# -- FETCH attributes --------------------------------------------------------------
def items(*tokens):
    return parse_fetch_items(list(tokens))


def names(parsed):
    return [i.name for i in parsed]


@pytest.mark.parametrize("macro,expected", [
    (b"ALL", [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE"]),
    (b"fast", [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"]),
    (b"Full", [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE", b"BODY"]),
])
def test_fetch_macros(macro, expected):
    assert names(items(Atom(macro))) == expected


def test_fetch_macro_inside_list_is_invalid():
    with pytest.raises(ParseError):
        items([Atom(b"ALL")])


def test_fetch_simple_items_single_and_list():
    assert items(Atom(b"flags")) == [FetchItem(b"FLAGS")]
    parsed = items([Atom(b"UID"), Atom(b"rfc822.size"), Atom(b"ENVELOPE"), Atom(b"BODYSTRUCTURE"),
                    Atom(b"RFC822"), Atom(b"RFC822.HEADER"), Atom(b"RFC822.TEXT"),
                    Atom(b"INTERNALDATE"), Atom(b"BODY")])
    assert names(parsed) == [b"UID", b"RFC822.SIZE", b"ENVELOPE", b"BODYSTRUCTURE", b"RFC822",
                             b"RFC822.HEADER", b"RFC822.TEXT", b"INTERNALDATE", b"BODY"]
    assert all(i.section is None for i in parsed)


def test_fetch_sets_seen():
    assert items(Atom(b"RFC822"))[0].sets_seen
    assert items(Atom(b"RFC822.TEXT"))[0].sets_seen
    assert not items(Atom(b"RFC822.HEADER"))[0].sets_seen
    assert not items(Atom(b"BODY"))[0].sets_seen
    assert items(Atom(b"BODY[]"))[0].sets_seen
    assert not items(Atom(b"BODY.PEEK[]"))[0].sets_seen


def test_fetch_body_sections():
    whole = items(Atom(b"BODY[]"))[0]
    assert (whole.name, whole.path, whole.text, whole.section, whole.peek) == (b"BODY", (), None, b"", False)
    assert whole.label() == b"BODY[]"
    header = items(Atom(b"body.peek[header]"))[0]
    assert header.peek and header.text == "HEADER" and header.label() == b"BODY[HEADER]"
    text = items(Atom(b"BODY[TEXT]"))[0]
    assert text.text == "TEXT"
    part = items(Atom(b"BODY[1.2.3]"))[0]
    assert part.path == (1, 2, 3) and part.text is None
    mime = items(Atom(b"BODY[2.MIME]"))[0]
    assert mime.path == (2,) and mime.text == "MIME"
    sub = items(Atom(b"BODY[1.HEADER]"))[0]
    assert sub.path == (1,) and sub.text == "HEADER"


def test_fetch_header_fields():
    item = items(Atom(b"BODY.PEEK[HEADER.FIELDS (From Subject)]"))[0]
    assert item.text == "HEADER.FIELDS" and item.fields == (b"From", b"Subject") and item.peek
    assert item.label() == b"BODY[HEADER.FIELDS (FROM SUBJECT)]"
    item = items(Atom(b"BODY[1.HEADER.FIELDS.NOT (X-A\tX-B)]"))[0]
    assert item.path == (1,) and item.text == "HEADER.FIELDS.NOT" and item.fields == (b"X-A", b"X-B")
    item = items(Atom(b'BODY[HEADER.FIELDS ("Subject")]'))[0]
    assert item.fields == (b"Subject",)


def test_fetch_partial():
    item = items(Atom(b"BODY[HEADER.FIELDS (A B)]<0.10>"))[0]
    assert item.partial == (0, 10) and item.fields == (b"A", b"B")
    assert item.label() == b"BODY[HEADER.FIELDS (A B)]<0>"
    assert items(Atom(b"BODY.PEEK[]<100.5>"))[0].partial == (100, 5)


@pytest.mark.parametrize("attr", [
    b"FOO", b"BODY[", b"BODY[]<0.0>", b"BODY[]<5>", b"BODY[]<a.b>", b"BODY[]<1.2", b"BODY.PEEK",
    b"BODY[0]", b"BODY[1.0]", b"BODY[MIME]", b"BODY[HEADER.FIELDS ()]",
    b"BODY[FOO]", b"BODY[1.FOO]", b"BODY[TEXT.HEADER]", b"RFC822.PEEK", b"BODYX[]",
    b"BODY[]x",
])
def test_fetch_invalid_attributes(attr):
    with pytest.raises(ParseError):
        items(Atom(attr))


def test_fetch_section_trailing_dot_is_invalid():
    with pytest.raises(ParseError):
        items(Atom(b"BODY[1.]"))


@pytest.mark.parametrize("attr", [b"BODY[HEADER.FIELDS]", b"BODY.PEEK[1.HEADER.FIELDS.NOT]"])
def test_fetch_header_fields_without_list_is_invalid(attr):
    with pytest.raises(ParseError):
        items(Atom(attr))


def test_fetch_invalid_argument_shapes():
    with pytest.raises(ParseError):
        parse_fetch_items([])
    with pytest.raises(ParseError):
        parse_fetch_items([Atom(b"FLAGS"), Atom(b"UID")])  # two items need parentheses
    with pytest.raises(ParseError):
        items([])
    with pytest.raises(ParseError):
        items(b"FLAGS")  # a quoted string is no attribute
    with pytest.raises(ParseError):
        items([[Atom(b"FLAGS")]])


# -- SEARCH -------------------------------------------------------------------------
DAY = 86400


def ts(y, m, d, hour=12):
    return float(calendar.timegm((y, m, d, hour, 0, 0)))


MESSAGE = (b"From: Alice <alice@example.com>\r\nTo: bob@example.com\r\nCc: carol@example.com\r\n"
           b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= meeting\r\nDate: Tue, 1 Feb 1994 10:00:00 +0000\r\n"
           b"X-Custom: Foo\r\n\r\nHello World body text\r\n")
OTHER = b"From: dave@example.org\r\nSubject: other\r\n\r\nnothing here\r\n"


def candidates():
    return [
        Candidate(1, 10, frozenset({"\\Seen", "\\Answered"}), False, ts(1994, 2, 1), 100,
                  lambda: ParsedMessage(MESSAGE)),
        Candidate(2, 20, frozenset({"\\Flagged", "\\Deleted", "$Work"}), True, ts(1994, 2, 2), 2000,
                  lambda: ParsedMessage(OTHER)),
        Candidate(3, 30, frozenset({"\\Draft"}), True, ts(1995, 1, 1), 50,
                  lambda: ParsedMessage(OTHER)),
    ]


def search(line, charset="ascii"):
    tokens = tokenize([line])
    program = compile_search(tokens, charset, max_seq=3, max_uid=30)
    return [c.seq for c in candidates() if program.matches(c)]


@pytest.mark.parametrize("keys,expected", [
    (b"ALL", [1, 2, 3]),
    (b"SEEN", [1]), (b"UNSEEN", [2, 3]),
    (b"ANSWERED", [1]), (b"UNANSWERED", [2, 3]),
    (b"DELETED", [2]), (b"UNDELETED", [1, 3]),
    (b"DRAFT", [3]), (b"UNDRAFT", [1, 2]),
    (b"FLAGGED", [2]), (b"UNFLAGGED", [1, 3]),
    (b"KEYWORD $Work", [2]), (b"UNKEYWORD $Work", [1, 3]),
    (b"RECENT", [2, 3]), (b"OLD", [1]), (b"NEW", [2, 3]),
    (b"LARGER 99", [1, 2]), (b"SMALLER 100", [3]),
    (b"BEFORE 2-Feb-1994", [1]), (b"ON 2-Feb-1994", [2]), (b"SINCE 2-Feb-1994", [2, 3]),
    (b'ON "01-feb-1994"', [1]),
    (b"SENTON 1-Feb-1994", [1]), (b"SENTBEFORE 1-Feb-1994", []), (b"SENTSINCE 1-Feb-1994", [1]),
    (b"FROM alice", [1]), (b'FROM "EXAMPLE.ORG"', [2, 3]), (b"TO bob", [1]), (b"CC carol", [1]),
    (b"BCC x", []),
    (b"SUBJECT meeting", [1]), (b"SUBJECT OTHER", [2, 3]),
    (b'HEADER X-Custom foo', [1]), (b'HEADER X-Custom ""', [1]), (b'HEADER X-Missing ""', []),
    (b"BODY world", [1]), (b"BODY Alice", []), (b"TEXT Alice", [1]), (b"TEXT nothing", [2, 3]),
    (b"1", [1]), (b"2:*", [2, 3]), (b"*", [3]), (b"1,3", [1, 3]), (b"5:*", [3]),
    (b"UID 20", [2]), (b"UID 15:*", [2, 3]), (b"UID *", [3]),
    (b"NOT SEEN", [2, 3]), (b"OR SEEN DRAFT", [1, 3]), (b"OR (SEEN) (FLAGGED DELETED)", [1, 2]),
    (b"NOT (OR SEEN DRAFT)", [2]), (b"(RECENT (UNSEEN))", [2, 3]),
    (b"SEEN UNSEEN", []), (b"RECENT LARGER 1000", [2]),
    (b"OR OR SEEN FLAGGED DRAFT", [1, 2, 3]),
    (b"all", [1, 2, 3]),
])
def test_search_keys(keys, expected):
    assert search(keys) == expected


def test_search_utf8_string():
    assert search(b"SUBJECT \"Gr\xc3\xbc\"", charset="utf-8") == [1]


def test_search_invalid_string_for_charset():
    with pytest.raises(ParseError):
        search(b"SUBJECT \"Gr\xc3\xbc\"", charset="ascii")


def test_search_needs_content_and_key_count():
    program = compile_search(tokenize([b"SEEN (FROM a OR UID 1 TO b)"]), "ascii", 3, 30)
    assert program.needs_content
    assert program.key_count == 5  # SEEN, FROM, OR, UID, TO
    assert not compile_search(tokenize([b"SEEN 1:2"]), "ascii", 3, 30).needs_content


@pytest.mark.parametrize("keys", [
    b"", b"FOO", b"SEEN BOGUS", b"()", b"(SEEN", b"NOT", b"OR SEEN", b"KEYWORD", b"LARGER",
    b"LARGER x", b"LARGER -1", b"SMALLER 99999999999", b"BEFORE", b"BEFORE 32-Jan-2020",
    b"BEFORE 1-Foo-2020", b"BEFORE 2020-01-01", b"ON 1-Feb", b"SINCE x", b"SENTON 30-Feb-2020",
    b"UID", b"UID x", b"UID 0", b"UID (1)", b"1:x", b"0", b"HEADER", b"HEADER X", b"\"SEEN\"",
])
def test_search_invalid(keys):
    with pytest.raises(ParseError):
        search(keys)


def test_parse_search_date():
    import datetime
    assert parse_search_date(Atom(b"1-Feb-1994")) == datetime.date(1994, 2, 1)
    assert parse_search_date(b"28-DEC-2020") == datetime.date(2020, 12, 28)


def test_search_date_two_digit_year_is_invalid():
    with pytest.raises(ParseError):
        parse_search_date(Atom(b"1-Feb-94"))
