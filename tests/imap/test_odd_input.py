"""Odd input that fuzzing the server turned up, through the protocol in memory
(test_bad_input.py has the socket-level cases): a malformed command gets BAD
with a reason, odd message content never an internal error, and the
connection stays usable."""

from __future__ import annotations

import base64

import pytest
from harness import Harness


def selected(*messages: bytes, profile: str = "modern") -> object:
    harness = Harness(profile, {})
    for data in messages:
        harness.deliver(data)
    c = harness.imap()
    c.login()
    c.line("s SELECT INBOX")
    return c


@pytest.mark.parametrize(
    "fields",
    [
        "Subject (Subject From)",
        'Sub"ject',
        "Subject)",
        "(Subject",
        "FLAGS (",
        "a\tb",
        "a{b",
        "X-*",
    ],
)
def test_invalid_header_field_lists_are_bad(fields: str) -> None:
    """They were accepted and echoed raw into the response (unbalanced
    parentheses, an open quote, a TAB): a client's parser lost its place."""
    c = selected(b"Subject: s\r\nFrom: f\r\n\r\nbody\r\n")
    out = c.line(f"f FETCH 1 (BODY.PEEK[HEADER.FIELDS ({fields})])")
    assert out.startswith(b"f BAD ") and b"FETCH (" not in out, out
    assert c.line("n NOOP").endswith(b"n OK NOOP completed.\r\n")


def test_quoted_header_field_names_are_astrings() -> None:
    c = selected(b"Subject: s\r\nFrom: f\r\n\r\nbody\r\n")
    out = c.line('f FETCH 1 (BODY.PEEK[HEADER.FIELDS ("Subject" From)])')
    assert b'BODY[HEADER.FIELDS ("SUBJECT" FROM)] {23}\r\nSubject: s\r\nFrom: f\r\n\r\n)' in out
    assert out.endswith(b"f OK FETCH completed.\r\n")


@pytest.mark.parametrize(
    "command",
    [
        "SORT (DATE) UTF-8 ALL",
        "SORT (SUBJECT) UTF-8 ALL",
        "SORT RETURN (MIN) (DATE) UTF-8 ALL",
        "THREAD REFERENCES UTF-8 ALL",
        "THREAD ORDEREDSUBJECT UTF-8 ALL",
    ],
)
def test_sort_and_thread_over_a_date_in_year_0000(command: str) -> None:
    """calendar.timegm knows no year 0: every SORT and THREAD of the mailbox
    answered NO [SERVERBUG]. Such a date is no date (RFC 5256: sent date 0)."""
    c = selected(
        b"Date: 1 Jan 0000 00:00:00 +0000\r\nSubject: zero\r\n\r\nx\r\n",
        b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nSubject: real\r\n\r\nx\r\n",
    )
    out = c.line(f"t {command}")
    assert out.endswith(b" OK SORT completed.\r\n") or out.endswith(b" OK THREAD completed.\r\n"), out
    assert b"SERVERBUG" not in out


def test_body_search_and_preview_of_utf16_without_a_byte_order_mark() -> None:
    """A text part in charset=utf-16 with no BOM made every body SEARCH of the
    mailbox, and PREVIEW, answer NO [SERVERBUG]."""
    text = "hello from utf-16".encode("utf-16-be")
    c = selected(
        b"Content-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(text).replace(b"\n", b"\r\n"),
        b"Content-Type: text/plain; charset=utf-16\r\n\r\nhello\r\n",  # odd length, raw
        b"Subject: plain\r\n\r\nhello\r\n",
    )
    assert c.line("s SEARCH BODY utf-16").startswith(b"* SEARCH 1\r\n")
    assert c.line("t SEARCH TEXT hello").startswith(b"* SEARCH 1 3\r\n")
    out = c.line("p FETCH 1:2 (PREVIEW)")
    assert b'PREVIEW "hello from utf-16"' in out and out.endswith(b"p OK FETCH completed.\r\n")


def test_search_text_looks_in_part_headers_and_attached_messages() -> None:
    """RFC 3501 6.4.4: TEXT is "the header or body of the message": a body
    part's MIME header (an attachment's file name) and an attached message's
    header are in its body. BODY still means the text of the parts."""
    c = selected(
        b"Subject: outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: innerword\r\n\r\nbody\r\n",
        b"Subject: files\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/plain\r\n\r\nsee the attachment\r\n--b\r\n"
        b"Content-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="=?utf-8?q?Ver=C3=B6ffentlichung?=.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n",
        b"Subject: plain\r\n\r\nnothing here\r\n",
    )
    assert c.line("t SEARCH TEXT innerword").startswith(b"* SEARCH 1\r\n")
    assert c.line("t SEARCH TEXT application/pdf").startswith(b"* SEARCH 2\r\n")
    assert c.line("t SEARCH TEXT outer").startswith(b"* SEARCH 1\r\n")  # the message's own header
    assert c.line("b SEARCH BODY application/pdf").startswith(b"* SEARCH\r\n")
    assert c.line("b SEARCH BODY attachment").startswith(b"* SEARCH 2\r\n")  # its text part
