"""Tests for exchmail.mime.message (ParsedMessage and the raw MIME splitter)."""

from __future__ import annotations

import base64
import datetime

import pytest

from exchmail.mime.message import (
    MAX_DEPTH,
    MimePart,
    ParsedMessage,
    decode_text,
    decode_transfer,
    decode_words,
    parse_header,
)

SIMPLE_HEADER = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@example.com>,\r\n"
    b"\tCarol <carol@example.com>\r\n"
    b"Subject: Hello\r\n"
    b"Date: Tue, 05 Mar 2024 23:30:00 -0800\r\n"
    b"\r\n"
)
SIMPLE = SIMPLE_HEADER + b"Hi Bob,\r\n\r\nsee you.\r\n"

INNER_PLAIN = b"H\xc3\xabllo w\xc3\xb6rld\r\n"
MIXED = (
    b"From: Alice <alice@example.org>\r\n"
    b"Subject: Report\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"This is a multi-part message in MIME format.\r\n"
    b"--outer\r\n"
    b"Content-Type: multipart/alternative; boundary=inner\r\n"
    b"\r\n"
    b"--inner\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n" + INNER_PLAIN + b"\r\n"
    b"--inner\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"<p>H=C3=ABllo =\r\nw=C3=B6rld</p>\r\n"
    b"--inner--\r\n"
    b"\r\n"
    b"--outer\r\n"
    b'Content-Type: application/pdf; name="report.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--outer--\r\n"
    b"epilogue\r\n"
)

INNER_MESSAGE = b"From: Eve <eve@example.com>\r\nSubject: inner\r\n\r\ninner body\r\n"
FORWARD = (
    b"From: carol@example.net\r\n"
    b"Content-Type: multipart/mixed; boundary=b1\r\n"
    b"\r\n"
    b"--b1\r\n"
    b"\r\n"
    b"See attached.\r\n"
    b"--b1\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n" + INNER_MESSAGE + b"\r\n"
    b"--b1--\r\n"
)


# -- header / body boundary --------------------------------------------------


def test_header_and_body_split() -> None:
    msg = ParsedMessage(SIMPLE)
    assert msg.header_bytes() == SIMPLE_HEADER
    assert msg.body_bytes() == b"Hi Bob,\r\n\r\nsee you.\r\n"
    assert msg.raw == SIMPLE
    assert msg.size == len(SIMPLE)


def test_message_without_blank_line_is_all_header() -> None:
    data = b"From: a@b\r\nSubject: x\r\n"
    msg = ParsedMessage(data)
    assert msg.header_bytes() == data
    assert msg.body_bytes() == b""
    assert msg.get("subject") == b"x"


def test_message_with_empty_header() -> None:
    msg = ParsedMessage(b"\r\nbody only\r\n")
    assert msg.header_bytes() == b"\r\n"
    assert msg.body_bytes() == b"body only\r\n"
    assert msg.headers() == []


def test_empty_message() -> None:
    msg = ParsedMessage(b"")
    assert msg.header_bytes() == b""
    assert msg.body_bytes() == b""
    assert msg.headers() == []
    assert msg.body_text() == ""
    assert msg.sent_date() is None


def test_bare_lf_message_tolerated() -> None:
    msg = ParsedMessage(b"Subject: lf\n\nbody\n")
    assert msg.header_bytes() == b"Subject: lf\n\n"
    assert msg.body_bytes() == b"body\n"
    assert msg.get("Subject") == b"lf"


# -- header fields -------------------------------------------------------------


def test_headers_unfolded_in_order() -> None:
    msg = ParsedMessage(SIMPLE)
    assert msg.headers() == [
        ("From", b"Alice <alice@example.org>"),
        ("To", b"Bob <bob@example.com>,\tCarol <carol@example.com>"),
        ("Subject", b"Hello"),
        ("Date", b"Tue, 05 Mar 2024 23:30:00 -0800"),
    ]


def test_get_all_case_insensitive() -> None:
    msg = ParsedMessage(b"Received: a\r\nX-Y: 1\r\nRECEIVED: b\r\n\r\n")
    assert msg.get_all("received") == [b"a", b"b"]
    assert msg.get_all(b"Received") == [b"a", b"b"]
    assert msg.get("x-y") == b"1"
    assert msg.get("missing") is None
    assert msg.get_all("missing") == []


def test_field_raw_keeps_folding() -> None:
    fields = ParsedMessage(SIMPLE).fields
    assert fields[1].raw == b"To: Bob <bob@example.com>,\r\n\tCarol <carol@example.com>\r\n"
    assert b"".join(f.raw for f in fields) + b"\r\n" == SIMPLE_HEADER


def test_parse_header_malformed_lines() -> None:
    fields = parse_header(
        b" leading continuation\r\nnot a header\r\nSubject : spaced\r\nEmpty:\r\n\r\nBody: no\r\n"
    )
    assert [f.name for f in fields] == ["", "", "Subject", "Empty"]
    assert fields[2].value == b"spaced"
    assert fields[3].value == b""


def test_8bit_header_values_are_kept_raw() -> None:
    msg = ParsedMessage(b"Subject: caf\xc3\xa9\r\n\r\n")
    assert msg.get("subject") == b"caf\xc3\xa9"
    assert msg.decoded_header("subject") == "caf\u00e9"
    assert ParsedMessage(b"Subject: caf\xe9\r\n\r\n").decoded_header("subject") == "caf\u00e9"


# -- decoding ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"plain text", "plain text"),
        (b"=?utf-8?q?J=C3=B6rg?=", "J\u00f6rg"),
        (b"=?ISO-8859-1?B?SvZyZw==?= Smith", "J\u00f6rg Smith"),
        (b"=?utf-8?q?a?= =?utf-8?q?b?=", "ab"),
        (b"Re: =?utf-8?b?w6lsw6h2ZQ==?=", "Re: \u00e9l\u00e8ve"),
    ],
)
def test_decode_words(raw: bytes, expected: str) -> None:
    assert decode_words(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"=?bogus-charset?q?abc?=",
        b"=?utf-8?b?!!!notbase64?=",
        b"=?utf-8?q?\xff\xfe?=",
        b"=?utf-8?q?unterminated",
        b"=?",
        b"\xff =?utf-8?q?x?=",
    ],
)
def test_decode_words_never_raises(raw: bytes) -> None:
    assert isinstance(decode_words(raw), str)


def test_decoded_header_absent_is_empty() -> None:
    assert ParsedMessage(SIMPLE).decoded_header("x-missing") == ""


def test_decode_text_fallbacks() -> None:
    assert decode_text(b"caf\xe9", "iso-8859-1") == "caf\u00e9"
    assert decode_text(b"caf\xc3\xa9", "no-such-charset") == "caf\u00e9"
    assert decode_text(b"\xff", None) == "\ufffd"


def test_decode_transfer() -> None:
    assert decode_transfer(b"aGVsbG8=\r\n", "base64") == b"hello"
    assert decode_transfer(b"aGVs\r\nbG8\r\n", "BASE64") == b"hello"  # missing padding
    assert decode_transfer(b"caf=C3=A9 =\r\nok", "quoted-printable") == b"caf\xc3\xa9 ok"
    assert decode_transfer(b"raw", "8bit") == b"raw"
    assert decode_transfer(b"raw", None) == b"raw"


# -- dates -----------------------------------------------------------------------


def test_sent_date_uses_header_time_zone() -> None:
    assert ParsedMessage(SIMPLE).sent_date() == datetime.date(2024, 3, 5)


@pytest.mark.parametrize("value", [b"", b"garbage", b"Mon, 99 Foo 2024 99:99:99 +0000", b"\xff\xfe"])
def test_sent_date_tolerant(value: bytes) -> None:
    assert ParsedMessage(b"Date: " + value + b"\r\n\r\n").sent_date() is None


def test_sent_date_absent() -> None:
    assert ParsedMessage(b"Subject: x\r\n\r\n").sent_date() is None


# -- SEARCH text -----------------------------------------------------------------


def test_header_text_decodes_words() -> None:
    msg = ParsedMessage(b"From: =?utf-8?q?J=C3=B6rg?= <j@x>\r\nSubject: Hi\r\n\r\n")
    assert msg.header_text() == "From: J\u00f6rg <j@x>\nSubject: Hi"


def test_body_text_simple() -> None:
    assert ParsedMessage(SIMPLE).body_text() == "Hi Bob,\r\n\r\nsee you.\r\n"


def test_body_text_8bit_utf8() -> None:
    msg = ParsedMessage(b"Content-Type: text/plain; charset=utf-8\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n")
    assert msg.body_text() == "Gr\u00fc\u00dfe\r\n"


def test_body_text_bad_utf8_replaced() -> None:
    assert ParsedMessage(b"\r\nbad \xff\r\n").body_text() == "bad \ufffd\r\n"


def test_body_text_single_part_base64() -> None:
    payload = base64.encodebytes("d\u00e9j\u00e0 vu".encode("utf-8"))
    msg = ParsedMessage(
        b"Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" + payload
    )
    assert msg.body_text() == "d\u00e9j\u00e0 vu"


def test_body_text_multipart_joins_text_parts_only() -> None:
    text = ParsedMessage(MIXED).body_text()
    assert text == "H\u00ebllo w\u00f6rld\r\n\n<p>H\u00ebllo w\u00f6rld</p>"
    assert "JVBER" not in text
    assert "%PDF" not in text
    assert "multi-part message" not in text  # preamble skipped
    assert "epilogue" not in text


def test_body_text_includes_encapsulated_message() -> None:
    assert ParsedMessage(FORWARD).body_text() == "See attached.\ninner body\r\n"


# -- MIME tree -------------------------------------------------------------------------


def test_simple_part_numbering() -> None:
    msg = ParsedMessage(SIMPLE)
    assert msg.part(()) is msg.root
    part = msg.part((1,))
    assert part is msg.root
    assert part.body == msg.body_bytes()
    assert msg.part((2,)) is None
    assert msg.part((1, 1)) is None
    assert msg.part((0,)) is None


def test_content_type_defaults() -> None:
    root = ParsedMessage(SIMPLE).root
    assert root.content_type == "text/plain"
    assert (root.maintype, root.subtype) == ("text", "plain")
    assert root.params == []
    assert root.param("charset") is None
    assert root.transfer_encoding is None
    assert not root.is_multipart
    assert not root.is_message
    assert root.children == []
    assert root.message is None


def test_unparsable_content_type_is_kept_as_dovecot_does() -> None:
    # Dovecot reports ("garbage" "") rather than pretending text/plain.
    root = ParsedMessage(b"Content-Type: garbage\r\n\r\nx").root
    assert root.content_type == "garbage/"
    assert not root.is_multipart and not root.is_message


def test_mixed_structure() -> None:
    msg = ParsedMessage(MIXED)
    root = msg.root
    assert root.is_multipart
    assert root.content_type == "multipart/mixed"
    assert root.param("BOUNDARY") == b"outer"
    alt, pdf = root.children
    assert alt.content_type == "multipart/alternative"
    assert [c.content_type for c in alt.children] == ["text/plain", "text/html"]
    assert pdf.content_type == "application/pdf"
    assert pdf.params == [("name", b"report.pdf")]
    assert pdf.transfer_encoding == "base64"
    assert pdf.body == b"JVBERi0xLjQK"
    assert pdf.decoded_body() == b"%PDF-1.4\n"
    assert msg.part((1,)) is alt
    assert msg.part((2,)) is pdf
    assert msg.part((3,)) is None
    plain = msg.part((1, 1))
    assert plain is not None
    assert plain.body == INNER_PLAIN
    assert (
        plain.header == b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    html = msg.part((1, 2))
    assert html is not None
    assert html.body == b"<p>H=C3=ABllo =\r\nw=C3=B6rld</p>"
    assert html.decoded_text() == "<p>H\u00ebllo w\u00f6rld</p>"
    assert msg.part((1, 3)) is None
    # A leaf is its own part 1 (Dovecot); nothing lies below that.
    assert msg.part((2, 1)) is pdf
    assert msg.part((2, 1, 1)) is None
    assert msg.part((2, 2)) is None


def test_multipart_part_body_ends_before_delimiter_crlf() -> None:
    alt = ParsedMessage(MIXED).part((1,))
    assert alt is not None
    assert alt.body.startswith(b"--inner\r\n")
    assert alt.body.endswith(b"--inner--\r\n")  # the blank line's CRLF belongs to the delimiter


def test_part_bodies_match_stdlib_parser() -> None:
    import email
    from email.policy import compat32

    data = MIXED.replace(INNER_PLAIN, b"Hello world\r\n")
    parsed = email.message_from_bytes(data, policy=compat32)
    ours = ParsedMessage(data)
    leaves = [p for p in parsed.walk() if not p.is_multipart()]
    for path, leaf in zip([(1, 1), (1, 2), (2,)], leaves, strict=True):
        part = ours.part(path)
        assert part is not None
        assert part.body == leaf.get_payload().encode("ascii")


def test_message_rfc822_part() -> None:
    msg = ParsedMessage(FORWARD)
    headerless, fwd = msg.root.children
    assert headerless.header == b"\r\n"
    assert headerless.content_type == "text/plain"
    assert headerless.body == b"See attached."
    assert fwd.is_message
    inner = fwd.message
    assert isinstance(inner, ParsedMessage)
    assert inner.raw == INNER_MESSAGE
    assert inner.get("subject") == b"inner"
    assert inner.body_bytes() == b"inner body\r\n"
    # 2.1 is the body of the (single part) encapsulated message
    sub = msg.part((2, 1))
    assert sub is inner.root
    assert msg.part((2, 2)) is None
    assert msg.part((2, 1, 1)) is None


def test_digest_default_type() -> None:
    data = (
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n"
        b"--d\r\n\r\nSubject: one\r\n\r\nfirst\r\n"
        b"--d\r\nContent-Type: text/plain\r\n\r\nnot a message\r\n"
        b"--d--\r\n"
    )
    msg = ParsedMessage(data)
    first, second = msg.root.children
    assert first.content_type == "message/rfc822"
    assert first.message is not None
    assert first.message.get("subject") == b"one"
    assert second.content_type == "text/plain"
    assert msg.part((1, 1)) is first.message.root


def test_missing_close_delimiter() -> None:
    data = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\none\r\n--x\r\n\r\ntwo\r\n"
    msg = ParsedMessage(data)
    kids = msg.root.children
    assert [k.body for k in kids] == [b"one", b"two\r\n"]


def test_missing_boundary_parameter() -> None:
    # A multipart without boundary has no parts (BODYSTRUCTURE shows an
    # empty text/plain one, as Dovecot does).
    data = b"Content-Type: multipart/mixed\r\n\r\nno boundary here\r\n"
    msg = ParsedMessage(data)
    assert msg.root.is_multipart
    assert msg.root.children == []
    assert msg.part((1,)) is None
    assert msg.body_bytes() == b"no boundary here\r\n"


def test_boundary_never_found() -> None:
    data = b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--other\r\ntext\r\n"
    msg = ParsedMessage(data)
    assert msg.root.children == []
    assert msg.body_bytes() == b"--other\r\ntext\r\n"


def test_longer_boundary_with_same_prefix_is_not_a_delimiter() -> None:
    data = (
        b"Content-Type: multipart/mixed; boundary=ab\r\n\r\n"
        b"--ab\r\nContent-Type: multipart/mixed; boundary=abc\r\n\r\n"
        b"--abc\r\n\r\ninner\r\n--abc--\r\n"
        b"--ab--\r\n"
    )
    msg = ParsedMessage(data)
    (outer_child,) = msg.root.children
    assert outer_child.is_multipart
    (inner_child,) = outer_child.children
    assert inner_child.body == b"inner"
    assert msg.part((1, 1)) is inner_child


def test_delimiter_must_start_a_line() -> None:
    data = b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\nsee --q here\r\n--q--\r\n"
    (only,) = ParsedMessage(data).root.children
    assert only.body == b"see --q here"


def test_empty_parts_and_transport_padding() -> None:
    data = b"Content-Type: multipart/mixed; boundary=e\r\n\r\n--e  \r\n--e\r\n\r\n--e--  \r\n"
    kids = ParsedMessage(data).root.children
    assert [(k.header, k.body) for k in kids] == [(b"", b""), (b"", b"")]


def test_rfc2231_parameters() -> None:
    data = (
        b"Content-Type: application/octet-stream;\r\n"
        b" name*=utf-8''r%C3%A9sum%C3%A9.txt\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.txt\r\n\r\nx"
    )
    root = ParsedMessage(data).root
    assert root.param("name") == "r\u00e9sum\u00e9.txt".encode("utf-8")
    assert root.header_params("content-disposition") == (
        "attachment",
        [("filename", "r\u00e9sum\u00e9.txt".encode("utf-8"))],
    )
    assert root.header_params("content-location") == (None, [])


def test_deep_nesting_is_bounded() -> None:
    depth = MAX_DEPTH + 5
    data = b""
    for level in range(depth):
        data += b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (
            level,
            level,
        )
    data += b"\r\nleaf\r\n"
    for level in reversed(range(depth)):
        data += b"--b%d--\r\n" % level
    msg = ParsedMessage(data)
    node: MimePart | None = msg.root
    seen = 0
    while node is not None and node.is_multipart:
        node = node.children[0]
        seen += 1
    assert seen == MAX_DEPTH
    assert node is not None and node.content_type == "multipart/mixed"  # not parsed
    assert msg.part((1,) * (MAX_DEPTH + 1)) is node  # a leaf is its own part 1
    assert msg.part((1,) * (MAX_DEPTH + 2)) is None


def test_deep_rfc822_nesting_is_bounded() -> None:
    data = b"Subject: leaf\r\n\r\nleaf\r\n"
    for _ in range(MAX_DEPTH + 5):
        data = b"Content-Type: message/rfc822\r\n\r\n" + data
    msg = ParsedMessage(data)
    assert msg.body_text()  # terminates
    assert msg.part((1,) * (MAX_DEPTH + 1)) is not None
    assert msg.part((1,) * (MAX_DEPTH + 3)) is None


def test_decoded_header_joins_repeated_fields() -> None:
    msg = ParsedMessage(b"X-Tag: =?utf-8?q?=C3=A9?=\r\nX-Tag: two\r\n\r\n")
    assert msg.decoded_header("x-tag") == "\u00e9\ntwo"
