"""Pure unit tests of the IMAP tokenizer and the FETCH attribute parser.

exchmail.imap.parsing (tokenize, literal_request, sequence sets) and
exchmail.imap.fetchatt.parse_fetch_items.  SEARCH criteria are tested in
test_searchkeys.py, whole commands in test_commands.py.
"""

from __future__ import annotations

import io
import tempfile

import pytest

from exchmail.imap.fetchatt import FetchItem, parse_fetch_items
from exchmail.imap.parsing import (
    MAX_DEPTH,
    MAX_LITERALS,
    Atom,
    LiteralSegment,
    ParseError,
    SequenceSet,
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
from exchmail.session.reader import Command


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


@pytest.mark.parametrize(
    "attribute", [b"BODY[HEADER", b"body.peek[", b"BINARY[1", b"BINARY.PEEK[1", b"binary.size[1"]
)
def test_unbalanced_bracket_in_fetch_attribute(attribute):
    with pytest.raises(ParseError, match="unbalanced"):
        tok(b"a1 FETCH 1 " + attribute)


@pytest.mark.parametrize(
    "atom",
    [
        b"!#$&'+,-.0123456789:;<=>?@^_`|[}",  # imaptest's atoms script: ATOM-CHARs
        b"[",
        b"a[b",
        b"]",
        b"a]",
        b"x[y]z",
        b"}",
        b"BODYX[",
        b"X.BODY[",
    ],
)
def test_brackets_are_atom_characters_outside_fetch_sections(atom):
    tokens = tok(b"a1 SELECT " + atom)
    assert tokens == [b"a1", b"SELECT", atom] and isinstance(tokens[2], Atom)


def test_list_pattern_with_brackets_and_wildcards():
    name = b"!#$&'+,-.0123456789:;<=>?@^_`|[}"
    assert tok(b'a1 LIST "" ' + name + b"%*")[3] == name + b"%*"


def test_sections_off_brackets_are_plain():
    assert tokenize([b"BODY[HEADER.FIELDS (A)]"], sections=False) == [b"BODY[HEADER.FIELDS", [b"A"], b"]"]
    assert tokenize([b"BODY[x"], sections=False) == [b"BODY[x"]


def test_literal_announcement_after_brackets_is_still_recognised():
    assert tok(b"a1 SELECT a[b {3}", LiteralSegment(b"xyz"), b"")[2:] == [b"a[b", b"xyz"]
    assert tok(b"a1 SELECT x[}")[2] == b"x[}"  # not a literal announcement


def test_nesting_depth_is_bounded():
    deepest = b"(" * MAX_DEPTH + b"A" + b")" * MAX_DEPTH
    tokens = tok(b"a1 X " + deepest)
    for _ in range(MAX_DEPTH):
        (tokens,) = tokens[-1:]
    assert tokens == [b"A"]
    with pytest.raises(ParseError, match="nested too deeply"):
        tok(b"a1 X " + b"(" * (MAX_DEPTH + 1) + b"A" + b")" * (MAX_DEPTH + 1))
    with pytest.raises(ParseError, match="nested too deeply"):
        tokenize([b"((A))"], max_depth=1)


def test_pathological_nesting_is_refused_without_recursion():
    with pytest.raises(ParseError, match="nested too deeply"):
        tok(b"a1 SEARCH " + b"(" * 100000)


def test_literal_count_is_bounded():
    def command(count):
        segments: list = [b"a1 X"]
        for _ in range(count):
            segments[-1] += b" {1}"
            segments += [LiteralSegment(b"x"), b""]
        return segments

    assert len(tokenize(command(MAX_LITERALS))) == 2 + MAX_LITERALS
    with pytest.raises(ParseError, match="too many literals"):
        tokenize(command(MAX_LITERALS + 1))
    with pytest.raises(ParseError, match="too many literals"):
        tokenize(command(3), max_literals=2)


def test_section_with_spaces_and_partial_is_one_atom():
    tokens = tok(b"a1 FETCH 1 BODY[HEADER.FIELDS (A B)]<0.10>")
    assert tokens[3] == b"BODY[HEADER.FIELDS (A B)]<0.10>"
    assert isinstance(tokens[3], Atom)


def test_section_inside_list():
    tokens = tok(b"a1 FETCH 1 (UID BODY.PEEK[HEADER.FIELDS (From To)] FLAGS)")
    assert tokens[3] == [b"UID", b"BODY.PEEK[HEADER.FIELDS (From To)]", b"FLAGS"]


def test_tab_and_runs_of_spaces_are_separators():
    assert tok(b'a1\tLOGIN \t  alice\t\t"pw"  ') == [b"a1", b"LOGIN", b"alice", b"pw"]


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
    spool = Spool(tempfile.TemporaryFile(), 0, 3)
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
    spool = Spool(io.BytesIO(b"abc"), 0, 3)
    assert as_bytes(spool) == b"abc"
    # A literal is a slice of its command's spool file, after the earlier literals.
    assert as_bytes(Spool(io.BytesIO(b"xyzabcdef"), 3, 3)) == b"abc"
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
@pytest.mark.parametrize(
    "text,expected",
    [
        (b"1", [(1, 1)]),
        (b"*", [(None, None)]),
        (b"1:3", [(1, 3)]),
        (b"3:1", [(3, 1)]),
        (b"1:*", [(1, None)]),
        (b"*:4", [(None, 4)]),
        (b"1,3:5,7:*", [(1, 1), (3, 5), (7, None)]),
        (b"4294967295", [(4294967295, 4294967295)]),
    ],
)
def test_parse_sequence_set_valid(text, expected):
    assert parse_sequence_set(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"0",
        b"0:3",
        b"1:0",
        b"1:",
        b":1",
        b"a",
        b"1:x",
        b"1,,2",
        b"1,",
        b",1",
        b"1:2:3",
        b"01",
        b" 1",
        b"1 ",
        b"-1",
        b"4294967296",
        b"99999999999",
        b"1.5",
        b"**",
    ],
)
def test_parse_sequence_set_invalid(text):
    with pytest.raises(ParseError):
        parse_sequence_set(text)


def test_sequence_set_type():
    numbers = SequenceSet.parse(b"1:3,5,7:*,*:2,*")
    assert numbers.ranges == ((1, 3), (5, 5), (7, None), (None, 2), (None, None))
    assert bytes(numbers) == b"1:3,5,7:*,*:2,*"
    assert numbers.resolve(9) == [(1, 3), (5, 5), (7, 9), (2, 9), (9, 9)]
    assert SequenceSet.parse(b"4") == SequenceSet(((4, 4),))
    with pytest.raises(ParseError):
        SequenceSet.parse(b"0")


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


@pytest.mark.parametrize(
    "macro,expected",
    [
        (b"ALL", [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE"]),
        (b"fast", [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"]),
        (b"Full", [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE", b"ENVELOPE", b"BODY"]),
    ],
)
def test_fetch_macros(macro, expected):
    assert names(items(Atom(macro))) == expected


def test_fetch_macro_inside_list_is_invalid():
    with pytest.raises(ParseError):
        items([Atom(b"ALL")])


def test_fetch_simple_items_single_and_list():
    assert items(Atom(b"flags")) == [FetchItem(b"FLAGS")]
    parsed = items(
        [
            Atom(b"UID"),
            Atom(b"rfc822.size"),
            Atom(b"ENVELOPE"),
            Atom(b"BODYSTRUCTURE"),
            Atom(b"RFC822"),
            Atom(b"RFC822.HEADER"),
            Atom(b"RFC822.TEXT"),
            Atom(b"INTERNALDATE"),
            Atom(b"BODY"),
        ]
    )
    assert names(parsed) == [
        b"UID",
        b"RFC822.SIZE",
        b"ENVELOPE",
        b"BODYSTRUCTURE",
        b"RFC822",
        b"RFC822.HEADER",
        b"RFC822.TEXT",
        b"INTERNALDATE",
        b"BODY",
    ]
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
    item = items(Atom(b"BODY[1.HEADER.FIELDS.NOT (X-A  X-B)]"))[0]
    assert item.path == (1,) and item.text == "HEADER.FIELDS.NOT" and item.fields == (b"X-A", b"X-B")
    item = items(Atom(b'BODY[HEADER.FIELDS ("Subject" "a\\"b")]'))[0]
    assert item.fields == (b"Subject", b'a"b')
    # The section is echoed in the response as it came: a TAB (a CTL) or
    # unbalanced parentheses and quotes there would break the client's parser.
    for bad in (b"X-A\tX-B", b"A (B)", b'A"B', b"A)", b"(A"):
        with pytest.raises(ParseError, match="header field list"):
            items(Atom(b"BODY[HEADER.FIELDS (" + bad + b")]"))


def test_fetch_partial():
    item = items(Atom(b"BODY[HEADER.FIELDS (A B)]<0.10>"))[0]
    assert item.partial == (0, 10) and item.fields == (b"A", b"B")
    assert item.label() == b"BODY[HEADER.FIELDS (A B)]<0>"
    assert items(Atom(b"BODY.PEEK[]<100.5>"))[0].partial == (100, 5)


@pytest.mark.parametrize(
    "attr",
    [
        b"FOO",
        b"BODY[",
        b"BODY[]<0.0>",
        b"BODY[]<5>",
        b"BODY[]<a.b>",
        b"BODY[]<1.2",
        b"BODY.PEEK",
        b"BODY[0]",
        b"BODY[1.0]",
        b"BODY[MIME]",
        b"BODY[HEADER.FIELDS ()]",
        b"BODY[FOO]",
        b"BODY[1.FOO]",
        b"BODY[TEXT.HEADER]",
        b"RFC822.PEEK",
        b"BODYX[]",
        b"BODY[]x",
    ],
)
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


def test_command_close_closes_its_spool_file():
    """The spooled literals of a command share its one file; closing the
    command (done or refused) closes it, and twice is harmless."""
    file = tempfile.TemporaryFile()
    spool = Spool(file, 0, 3)
    small = LiteralSegment(b"abc")
    command = Command((b"a1 APPEND x {3}", LiteralSegment(spool), b" {3}", small, b""), file)
    command.close()
    assert file.closed
    command.close()  # twice is harmless
    Command((b"a1 NOOP",)).close()  # no spool: nothing to close
