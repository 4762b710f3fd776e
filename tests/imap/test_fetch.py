"""Tests for exchmail.imap.fetch (ENVELOPE, BODYSTRUCTURE, BODY[section])."""

from __future__ import annotations

import pytest

from exchmail.imap.fetch import (
    address_list,
    body_lines,
    bodystructure,
    envelope,
    partial,
    section,
)
from exchmail.mime.message import ParsedMessage

SIMPLE = (
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
    b"From: Fred Foobar <foobar@Blurdybloop.COM>\r\n"
    b"Subject: afternoon meeting\r\n"
    b"To: mooch@owatagu.siam.edu\r\n"
    b"Message-Id: <B27397-0100000@Blurdybloop.COM>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
)

PLAIN_UTF8_BODY = "Gr\u00fc\u00dfe aus K\u00f6ln\r\nzweite Zeile\r\n".encode("utf-8")
PLAIN_UTF8 = (
    b"From: =?utf-8?q?J=C3=B6rg?= <joerg@example.de>\r\n"
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
    b"Content-Type: text/plain; charset=utf-8; format=flowed\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n" + PLAIN_UTF8_BODY
)

ALT_PLAIN_HEADER = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
ALT_PLAIN_BODY = "H\u00e9llo\r\nworld\r\n".encode("utf-8")
ALT_HTML_HEADER = (
    b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
)
ALT_HTML_BODY = b"<p>H=C3=A9llo<br>world</p>"
ALT_BODY = (
    b"--inner\r\n" + ALT_PLAIN_HEADER + ALT_PLAIN_BODY + b"\r\n"
    b"--inner\r\n" + ALT_HTML_HEADER + ALT_HTML_BODY + b"\r\n"
    b"--inner--\r\n"
)
ALT_HEADER = b'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n'
PDF_HEADER = (
    b'Content-Type: application/pdf; name="report.pdf"\r\n'
    b'Content-Disposition: attachment; filename="report.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-ID: <pdf1@example.org>\r\n"
    b"Content-Description: Quarterly report\r\n"
    b"\r\n"
)
PDF_BODY = b"JVBERi0xLjQKJcfs\r\nj6IKMSAwIG9iago=\r\n"
MIXED_HEADER = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@example.com>\r\n"
    b"Subject: Report\r\n"
    b"Date: Tue, 05 Mar 2024 10:00:00 +0000\r\n"
    b"Message-ID: <m1@example.org>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
)
MIXED_BODY = (
    b"This is a multi-part message in MIME format.\r\n"
    b"--outer\r\n" + ALT_HEADER + ALT_BODY + b"\r\n"
    b"--outer\r\n" + PDF_HEADER + PDF_BODY + b"\r\n"
    b"--outer--\r\n"
)
MIXED = MIXED_HEADER + MIXED_BODY

INNER_HEADER = (
    b"From: Eve <eve@example.com>\r\n"
    b"To: carol@example.net\r\n"
    b"Subject: original\r\n"
    b"Date: Wed, 06 Mar 2024 09:00:00 +0100\r\n"
    b"Message-ID: <orig@example.com>\r\n"
    b"Content-Type: multipart/alternative; boundary=b2\r\n"
    b"\r\n"
)
INNER_1_HEADER = b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
INNER_BODY = (
    b"--b2\r\n" + INNER_1_HEADER + b"inner text\r\n"
    b"--b2\r\nContent-Type: text/html\r\n\r\n<b>inner</b>\r\n"
    b"--b2--\r\n"
)
INNER = INNER_HEADER + INNER_BODY
FWD_2_HEADER = b"Content-Type: message/rfc822\r\nContent-Description: forwarded\r\n\r\n"
FORWARD = (
    b"From: carol@example.net\r\n"
    b"To: dave@example.net\r\n"
    b"Subject: Fwd: original\r\n"
    b"Content-Type: multipart/mixed; boundary=b1\r\n"
    b"\r\n"
    b"--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
    b"--b1\r\n" + FWD_2_HEADER + INNER + b"\r\n"
    b"--b1--\r\n"
)


# -- ENVELOPE -------------------------------------------------------------------


def test_envelope_rfc3501_example() -> None:
    assert envelope(ParsedMessage(SIMPLE), False) == (
        b'("Mon, 7 Feb 1994 21:52:25 -0800" "afternoon meeting" '
        b'(("Fred Foobar" NIL "foobar" "Blurdybloop.COM")) '
        b'(("Fred Foobar" NIL "foobar" "Blurdybloop.COM")) '
        b'(("Fred Foobar" NIL "foobar" "Blurdybloop.COM")) '
        b'((NIL NIL "mooch" "owatagu.siam.edu")) NIL NIL NIL '
        b'"<B27397-0100000@Blurdybloop.COM>")'
    )


def test_envelope_all_fields() -> None:
    msg = ParsedMessage(
        b"Date: Tue, 05 Mar 2024 10:00:00 +0000\r\n"
        b"Subject: all\r\n"
        b"From: A <a@x.org>\r\n"
        b"Sender: S <s@x.org>\r\n"
        b"Reply-To: R <r@x.org>\r\n"
        b"To: t1@y.org, T2 <t2@y.org>\r\n"
        b"Cc: c@z.org\r\n"
        b"Bcc: b@z.org\r\n"
        b"In-Reply-To: <parent@x.org>\r\n"
        b"Message-ID: <id@x.org>\r\n"
        b"\r\n"
    )
    assert envelope(msg, True) == (
        b'("Tue, 05 Mar 2024 10:00:00 +0000" "all" (("A" NIL "a" "x.org")) '
        b'(("S" NIL "s" "x.org")) (("R" NIL "r" "x.org")) '
        b'((NIL NIL "t1" "y.org")("T2" NIL "t2" "y.org")) ((NIL NIL "c" "z.org")) '
        b'((NIL NIL "b" "z.org")) "<parent@x.org>" "<id@x.org>")'
    )


def test_envelope_absent_headers_are_nil() -> None:
    expected = b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
    assert envelope(ParsedMessage(b"X-Other: 1\r\n\r\nbody"), False) == expected
    assert envelope(ParsedMessage(b"X-Other: 1\r\n\r\nbody"), True) == expected


EMPTY_HEADERS = b"Date:\r\nSubject: \r\nFrom:\r\nTo:\r\nIn-Reply-To:\r\nMessage-ID:\r\n\r\n"


def test_envelope_present_but_empty_rfc() -> None:
    assert envelope(ParsedMessage(EMPTY_HEADERS), False) == b'("" "" NIL NIL NIL NIL NIL NIL "" "")'


def test_envelope_present_but_empty_as_nil() -> None:
    assert envelope(ParsedMessage(EMPTY_HEADERS), True) == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_envelope_sender_reply_to_default_to_from_when_empty() -> None:
    msg = ParsedMessage(b"From: a@x.org\r\nSender:\r\nReply-To: \r\n\r\n")
    addr = b'((NIL NIL "a" "x.org"))'
    assert envelope(msg) == b"(NIL NIL " + b" ".join([addr] * 3) + b" NIL NIL NIL NIL NIL)"


def test_envelope_names_are_not_decoded() -> None:
    msg = ParsedMessage(PLAIN_UTF8)
    env = envelope(msg, False)
    assert env.startswith(
        b'(NIL "=?utf-8?q?Gr=C3=BC=C3=9Fe?=" (("=?utf-8?q?J=C3=B6rg?=" NIL "joerg" "example.de"))'
    )


def test_envelope_8bit_and_special_values_use_literals_or_escapes() -> None:
    msg = ParsedMessage(b'Subject: caf\xc3\xa9 "q"\r\nFrom: "Doe, \\"J\\"" <j@x>\r\n\r\n')
    env = envelope(msg)
    assert env.startswith(b'(NIL {9}\r\ncaf\xc3\xa9 "q" (("Doe, \\"J\\"" NIL "j" "x"))')


def test_envelope_folded_subject_unfolded() -> None:
    msg = ParsedMessage(b"Subject: a long\r\n subject\r\n\r\n")
    assert envelope(msg).startswith(b'(NIL "a long subject" ')


def test_address_list_groups() -> None:
    assert (
        address_list([b"undisclosed-recipients:;"])
        == b'((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))'
    )
    assert address_list([b'"My Friends": a@b.c, B <b@c.d>;, z@z.org']) == (
        b'((NIL NIL "My Friends" NIL)(NIL NIL "a" "b.c")("B" NIL "b" "c.d")(NIL NIL NIL NIL)'
        b'(NIL NIL "z" "z.org"))'
    )


def test_address_list_unterminated_group() -> None:
    assert address_list([b"team: a@b.c"]) == b'((NIL NIL "team" NIL)(NIL NIL "a" "b.c")(NIL NIL NIL NIL))'


def test_address_list_quoting_and_comments() -> None:
    assert address_list([b'"Smith, J: (x)" <js@x.org> (comment, here), other@y.org']) == (
        b'(("Smith, J: (x)" NIL "js" "x.org")(NIL NIL "other" "y.org"))'
    )


def test_address_list_misc() -> None:
    assert address_list([]) == b"NIL"
    assert address_list([b""]) == b"NIL"
    # Dovecot fills what is missing rather than dropping it.
    assert address_list([b" , "]) == b'((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))'
    assert address_list([b"a@x", b"b@y"]) == b'((NIL NIL "a" "x")(NIL NIL "b" "y"))'
    assert address_list([b"root"]) == b'((NIL NIL "root" "MISSING_DOMAIN"))'


def test_envelope_of_encapsulated_message_in_bodystructure() -> None:
    env = envelope(ParsedMessage(INNER))
    assert env in bodystructure(ParsedMessage(FORWARD), True)


# -- BODY / BODYSTRUCTURE -----------------------------------------------------------


def test_body_lines() -> None:
    # Line ends are counted; an unterminated last line is not (Dovecot).
    assert body_lines(b"") == 0
    assert body_lines(b"a") == 0
    assert body_lines(b"a\r\n") == 1
    assert body_lines(b"a\r\nb") == 1
    assert body_lines(b"\r\n\r\n") == 2
    assert body_lines(b"a\nb\n") == 2


def test_bodystructure_minimal_text_like_dovecot() -> None:
    msg = ParsedMessage(b"Subject: x\r\n\r\n1234567890\r\n")
    assert (
        bodystructure(msg, True)
        == b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 12 1 NIL NIL NIL NIL)'
    )
    assert bodystructure(msg, False) == b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 12 1)'


def test_bodystructure_rfc3501_example() -> None:
    msg = ParsedMessage(SIMPLE)
    assert bodystructure(msg, False) == b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 55 1)'


def test_bodystructure_8bit_utf8() -> None:
    msg = ParsedMessage(PLAIN_UTF8)
    assert bodystructure(msg, True) == (
        b'("TEXT" "PLAIN" ("CHARSET" "utf-8" "FORMAT" "flowed") NIL NIL "8BIT" %d 2 NIL NIL NIL NIL)'
        % len(PLAIN_UTF8_BODY)
    )


def test_bodystructure_mixed_alternative_attachment() -> None:
    msg = ParsedMessage(MIXED)
    plain = b'("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "8BIT" %d 2' % len(ALT_PLAIN_BODY)
    html = b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" %d 0' % len(ALT_HTML_BODY)
    pdf = (
        b'("APPLICATION" "PDF" ("NAME" "report.pdf") "<pdf1@example.org>" "Quarterly report" "BASE64" %d'
        % len(PDF_BODY)
    )
    assert bodystructure(msg, True) == (
        b"("
        + b"("
        + plain
        + b" NIL NIL NIL NIL)"
        + html
        + b' NIL NIL NIL NIL) "ALTERNATIVE" ("BOUNDARY" "inner") NIL NIL NIL)'
        + pdf
        + b' NIL ("ATTACHMENT" ("FILENAME" "report.pdf")) NIL NIL)'
        + b' "MIXED" ("BOUNDARY" "outer") NIL NIL NIL)'
    )
    assert bodystructure(msg, False) == (
        b"((" + plain + b")" + html + b') "ALTERNATIVE")' + pdf + b') "MIXED")'
    )


def test_bodystructure_sizes_are_raw_octets() -> None:
    assert len(PDF_BODY) == 36
    assert len(ALT_PLAIN_BODY) == 15
    assert b" 36 NIL (" in bodystructure(ParsedMessage(MIXED), True)


def test_bodystructure_message_rfc822() -> None:
    msg = ParsedMessage(FORWARD)
    inner_env = envelope(ParsedMessage(INNER))
    inner_body = (
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 10 0 NIL NIL NIL NIL)'
        b'("TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" 12 0 NIL NIL NIL NIL)'
        b' "ALTERNATIVE" ("BOUNDARY" "b2") NIL NIL NIL)'
    )
    assert bodystructure(msg, True) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 13 0 NIL NIL NIL NIL)'
        b'("MESSAGE" "RFC822" NIL NIL "forwarded" "7BIT" %d '
        % len(INNER)
        + inner_env
        + b" "
        + inner_body
        + b" %d NIL NIL NIL NIL)" % body_lines(INNER)
        + b' "MIXED" ("BOUNDARY" "b1") NIL NIL NIL)'
    )
    assert body_lines(INNER) == 16
    body = bodystructure(msg, False)
    assert body.endswith(b'"ALTERNATIVE") 16) "MIXED")')
    assert b"NIL NIL NIL NIL)" not in body.replace(inner_env, b"")


def test_bodystructure_rfc822_envelope_empty_as_nil() -> None:
    inner = b"Subject:\r\n\r\nx\r\n"
    data = b"Content-Type: message/rfc822\r\n\r\n" + inner
    assert b'(NIL "" NIL' in bodystructure(ParsedMessage(data), True)
    assert b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)" in bodystructure(
        ParsedMessage(data), True, empty_as_nil=True
    )


def test_bodystructure_extension_fields() -> None:
    msg = ParsedMessage(
        b"Content-Type: image/png\r\n"
        b"Content-Transfer-Encoding: Base64\r\n"
        b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
        b"Content-Disposition: inline\r\n"
        b"Content-Language: en, de\r\n"
        b"Content-Location: http://example.org/a.png\r\n"
        b"\r\n"
        b"iVBORw0KGgo=\r\n"
    )
    assert bodystructure(msg, True) == (
        b'("IMAGE" "PNG" NIL NIL NIL "BASE64" 14 "Q2hlY2sgSW50ZWdyaXR5IQ==" ("INLINE" NIL) ("en" "de") '
        b'"http://example.org/a.png")'
    )
    assert bodystructure(msg, False) == b'("IMAGE" "PNG" NIL NIL NIL "BASE64" 14)'


def test_bodystructure_multipart_extension_fields() -> None:
    data = (
        b'Content-Type: multipart/related; boundary=r; type="text/html"\r\n'
        b"Content-Language: fr\r\n"
        b"\r\n--r\r\n\r\nx\r\n--r--\r\n"
    )
    assert bodystructure(ParsedMessage(data), True) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 1 0 NIL NIL NIL NIL) "RELATED" '
        b'("BOUNDARY" "r" "TYPE" "text/html") NIL ("fr") NIL)'
    )


def test_bodystructure_rfc2231_parameters_as_written() -> None:
    # Continuations are joined; extended values stay encoded (Dovecot).
    data = (
        b"Content-Type: application/octet-stream; name*0*=utf-8''%C3%A9t; name*1=e.txt\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''%C3%A9t%C3%A9.txt\r\n\r\nx"
    )
    result = bodystructure(ParsedMessage(data), True)
    assert b'("NAME*" "utf-8\'\'%C3%A9te.txt")' in result
    assert b'("ATTACHMENT" ("FILENAME*" "utf-8\'\'%C3%A9t%C3%A9.txt"))' in result


def test_bodystructure_empty_message() -> None:
    assert (
        bodystructure(ParsedMessage(b""), False)
        == b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 0 0)'
    )


def test_bodystructure_malformed_multiparts() -> None:
    no_boundary = ParsedMessage(b"Content-Type: multipart/mixed\r\n\r\nabc\r\n")
    assert bodystructure(no_boundary, False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 0 0) "MIXED")'
    )
    assert bodystructure(no_boundary, True) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)'
        b' "MIXED" NIL NIL NIL NIL)'
    )
    unclosed = ParsedMessage(b"Content-Type: multipart/mixed; boundary=u\r\n\r\n--u\r\n\r\nabc\r\n")
    assert bodystructure(unclosed, False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 5 1) "MIXED")'
    )


def test_bodystructure_deep_nesting_does_not_fail() -> None:
    data = b"x\r\n"
    for _ in range(120):
        data = b"Content-Type: message/rfc822\r\n\r\n" + data
    result = bodystructure(ParsedMessage(data), True)
    assert b'"APPLICATION" "OCTET-STREAM"' in result


# -- BODY[section] --------------------------------------------------------------------


def test_section_whole_message_header_text() -> None:
    msg = ParsedMessage(MIXED)
    assert section(msg) == MIXED
    assert section(msg, (), "HEADER") == MIXED_HEADER
    assert section(msg, (), "TEXT") == MIXED_BODY
    assert section(msg, (), "header") == MIXED_HEADER
    assert section(msg, (), "MIME") == b""


def test_section_header_fields() -> None:
    msg = ParsedMessage(MIXED)
    assert section(msg, (), "HEADER.FIELDS", (b"Subject", b"From")) == (
        b"From: Alice <alice@example.org>\r\nSubject: Report\r\n\r\n"
    )
    assert section(msg, (), "HEADER.FIELDS", (b"subject",)) == b"Subject: Report\r\n\r\n"
    assert section(msg, (), "HEADER.FIELDS", (b"X-None",)) == b"\r\n"


def test_section_header_fields_keeps_folding_and_duplicates() -> None:
    msg = ParsedMessage(b"Received: a\r\n  b\r\nSubject: s\r\nreceived: c\r\n\r\nbody")
    assert section(msg, (), "HEADER.FIELDS", (b"RECEIVED",)) == b"Received: a\r\n  b\r\nreceived: c\r\n\r\n"
    assert section(msg, (), "HEADER.FIELDS.NOT", (b"RECEIVED",)) == b"Subject: s\r\n\r\n"


def test_section_header_fields_not() -> None:
    msg = ParsedMessage(MIXED)
    expected = MIXED_HEADER.replace(b"Subject: Report\r\n", b"").replace(
        b"From: Alice <alice@example.org>\r\n", b""
    )
    assert section(msg, (), "HEADER.FIELDS.NOT", (b"From", b"Subject")) == expected


def test_section_header_fields_without_blank_line() -> None:
    """RFC 3501 6.4.5: the blank line is in every header fetch "except in the
    case of a message which has no body and no blank line"; the fields come
    as written, as BODY[HEADER] has them."""
    msg = ParsedMessage(b"Subject: x\r\nFrom: a@b")
    assert section(msg, (), "HEADER.FIELDS", (b"From",)) == b"From: a@b"
    assert section(msg, (), "HEADER.FIELDS", (b"Subject",)) == b"Subject: x\r\n"
    assert section(msg, (), "HEADER.FIELDS.NOT", (b"From",)) == b"Subject: x\r\n"
    assert section(msg, (), "HEADER") == b"Subject: x\r\nFrom: a@b"
    ended = ParsedMessage(b"Subject: x\r\nFrom: a@b\r\n")  # no blank line either
    assert section(ended, (), "HEADER.FIELDS", (b"From",)) == b"From: a@b\r\n"
    empty_body = ParsedMessage(b"Subject: x\r\n\r\n")
    assert section(empty_body, (), "HEADER.FIELDS", (b"Subject",)) == b"Subject: x\r\n\r\n"
    assert section(ParsedMessage(b"\r\nbody"), (), "HEADER.FIELDS", (b"Subject",)) == b"\r\n"


def test_section_parts() -> None:
    msg = ParsedMessage(MIXED)
    assert section(msg, (1,)) == ALT_BODY
    assert section(msg, (1,), "MIME") == ALT_HEADER
    assert section(msg, (1, 1)) == ALT_PLAIN_BODY
    assert section(msg, (1, 1), "MIME") == ALT_PLAIN_HEADER
    assert section(msg, (1, 2)) == ALT_HTML_BODY
    assert section(msg, (1, 2), "MIME") == ALT_HTML_HEADER
    assert section(msg, (2,)) == PDF_BODY
    assert section(msg, (2,), "MIME") == PDF_HEADER


def test_section_nonexistent_part_is_empty() -> None:
    msg = ParsedMessage(MIXED)
    for path in [(3,), (1, 3), (2, 2), (2, 1, 1), (1, 1, 2), (0,)]:
        assert section(msg, path) == b""
        assert section(msg, path, "MIME") == b""
    # A leaf is its own part 1 (Dovecot).
    assert section(msg, (2, 1)) == section(msg, (2,))
    assert section(msg, (1, 1, 1)) == section(msg, (1, 1))
    # HEADER / TEXT of a part that is not message/rfc822
    assert section(msg, (2,), "HEADER") == b""
    assert section(msg, (2,), "TEXT") == b""


def test_section_single_part_message() -> None:
    msg = ParsedMessage(SIMPLE)
    body = b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
    assert section(msg, (1,)) == body
    assert section(msg, (), "TEXT") == body
    assert section(msg, (2,)) == b""


def test_section_message_rfc822() -> None:
    msg = ParsedMessage(FORWARD)
    assert section(msg, (1,)) == b"See attached."
    assert section(msg, (2,)) == INNER
    assert section(msg, (2,), "MIME") == FWD_2_HEADER
    assert section(msg, (2,), "HEADER") == INNER_HEADER
    assert section(msg, (2,), "TEXT") == INNER_BODY
    assert section(msg, (2,), "HEADER.FIELDS", (b"From", b"Subject")) == (
        b"From: Eve <eve@example.com>\r\nSubject: original\r\n\r\n"
    )
    assert section(msg, (2, 1)) == b"inner text"
    assert section(msg, (2, 1), "MIME") == INNER_1_HEADER
    assert section(msg, (2, 2)) == b"<b>inner</b>"
    assert section(msg, (2, 3)) == b""


def test_section_rfc822_with_single_part_inner() -> None:
    inner = b"Subject: in\r\n\r\nhello\r\n"
    msg = ParsedMessage(b"Content-Type: message/rfc822\r\n\r\n" + inner)
    assert section(msg, (1,)) == inner
    assert section(msg, (1,), "HEADER") == b"Subject: in\r\n\r\n"
    assert section(msg, (1,), "TEXT") == b"hello\r\n"
    assert section(msg, (1, 1)) == b"hello\r\n"
    assert section(msg, (1, 1), "MIME") == b"Subject: in\r\n\r\n"


def test_section_8bit_bytes_exact() -> None:
    msg = ParsedMessage(PLAIN_UTF8)
    assert section(msg, (1,)) == PLAIN_UTF8_BODY
    assert section(msg, (), "TEXT") == PLAIN_UTF8_BODY


def test_section_unknown_specifier() -> None:
    with pytest.raises(ValueError):
        section(ParsedMessage(SIMPLE), (), "BOGUS")


# -- partial -------------------------------------------------------------------------


def test_partial() -> None:
    data = b"0123456789"
    assert partial(data, 0, 4) == b"0123"
    assert partial(data, 8, 10) == b"89"
    assert partial(data, 10, 5) == b""
    assert partial(data, 20, 5) == b""
    assert partial(data, 3, None) == b"3456789"
    assert partial(data, 3, 0) == b""
    with pytest.raises(ValueError):
        partial(data, -1, 2)
    with pytest.raises(ValueError):
        partial(data, 0, -2)


def test_partial_of_section() -> None:
    msg = ParsedMessage(MIXED)
    assert partial(section(msg, (1, 1)), 1, 4) == ALT_PLAIN_BODY[1:5]
    assert partial(section(msg, (), "HEADER"), 0, 5) == b"From:"
