"""The pure parts of SORT and THREAD (RFC 5256): base subjects, collation,
sort order with REVERSE, the two threading algorithms and their format."""

from __future__ import annotations

import pytest

from exchmail.imap.sorting import base_subject, casemap, sort_fields, sort_rows
from exchmail.imap.threads import format_threads, orderedsubject, references


@pytest.mark.parametrize(
    ("subject", "base", "reply"),
    [
        ("a", "a", False),
        ("Re: hello", "hello", True),
        ("RE: Re:  hello  (fwd)", "hello", True),
        ("[foo] Fwd: [bar] Re: fw: b (fWd)  (fwd)", "b", True),  # imaptest sort-subject
        ("Re: [FWD: c]", "c", True),
        ("[xyz]", "[xyz]", False),  # a blob that is all there is stays (§2.1 step 4)
        ("[list] topic", "topic", False),
        ("re: [fwd: [fwd: re: [fwd: babylon]]]", "babylon", True),
        ("Ad: Re: Ad: Re: Ad: x", "Ad: Re: Ad: Re: Ad: x", False),
        ("\tfolded\t  text ", "folded text", False),
        ("", "", False),
    ],
)
def test_base_subject(subject, base, reply):
    assert base_subject(subject) == (base, reply)


def test_casemap_orders_as_titlecase_octets():
    # i;unicode-casemap compares titlecased text: "[" and "_" after the letters
    keys = sorted(["_", "[xyz]", "a", "C", "b"], key=casemap)
    assert keys == ["a", "b", "C", "[xyz]", "_"]
    assert casemap("Ä") == casemap("ä") != casemap("a")


def header(subject: str, date: str = "Mon, 01 Jan 2024 10:00:00 +0000", extra: str = "") -> bytes:
    return (
        f"From: =?utf-8?q?Z=C3=BCrich?= <zz@example.org>\r\nTo: grp: a@b.c;\r\n"
        f"Subject: {subject}\r\nDate: {date}\r\n{extra}\r\n"
    ).encode()


def test_sort_fields_from_a_header():
    fields = sort_fields(
        header("Re: =?utf-8?q?caf=C3=A9?=", extra="Message-ID: <m1@x>\r\nReferences: <r1@x> <r2@x>\r\n")
    )
    assert fields.subject == casemap("café") and fields.reply
    assert (fields.from_, fields.display_from) == ("ZZ", casemap("Zürich"))
    assert fields.to == "GRP" and fields.display_to == "GRP"  # a group: its name
    assert fields.message_id == "m1@x" and fields.references == ("r1@x", "r2@x")
    assert fields.date == 1704103200.0
    assert sort_fields(header("x", date="garbage")).date is None
    only_reply = sort_fields(header("x", extra="In-Reply-To: <p@x> <q@x>\r\n"))
    assert only_reply.references == ("p@x",)


def row(seq: int, subject: str, date: str, size: int = 10, extra: str = ""):
    return (seq, seq * 10, float(seq), size, sort_fields(header(subject, date, extra)))


def test_sort_with_reverse_keeps_ties_in_sequence_order():
    rows = [
        row(1, "b", "Mon, 01 Jan 2024 10:00:00 +0000", 5),
        row(2, "a", "Mon, 01 Jan 2024 09:00:00 +0000", 5),
        row(3, "b", "Mon, 01 Jan 2024 08:00:00 +0000", 7),
    ]
    numbers = lambda keys: [r[0] for r in sort_rows(rows, keys)]  # noqa: E731
    assert numbers([(b"SUBJECT", False)]) == [2, 1, 3]
    assert numbers([(b"SUBJECT", True)]) == [1, 3, 2]
    assert numbers([(b"DATE", False)]) == [3, 2, 1]
    assert numbers([(b"SIZE", True), (b"ARRIVAL", False)]) == [3, 1, 2]
    assert numbers([(b"SIZE", True)]) == [3, 1, 2]  # REVERSE does not reverse the ties


def test_threads_references_with_a_missing_parent_and_subject_merge():
    rows = [
        row(1, "topic", "Mon, 01 Jan 2024 10:00:00 +0000", extra="Message-ID: <a@x>\r\n"),
        row(
            2,
            "Re: topic",
            "Mon, 01 Jan 2024 11:00:00 +0000",
            extra="Message-ID: <b@x>\r\nReferences: <a@x>\r\n",
        ),
        # both reply to <lost@x>, which is not in the mailbox: a dummy root
        row(
            3,
            "Re: other",
            "Mon, 01 Jan 2024 12:00:00 +0000",
            extra="Message-ID: <c@x>\r\nReferences: <lost@x>\r\n",
        ),
        row(
            4,
            "Re: other",
            "Mon, 01 Jan 2024 13:00:00 +0000",
            extra="Message-ID: <d@x>\r\nReferences: <lost@x>\r\n",
        ),
        # no references, but the same base subject as message 1's thread
        row(5, "Re: topic", "Mon, 01 Jan 2024 14:00:00 +0000", extra="Message-ID: <e@x>\r\n"),
        row(6, "alone", "Mon, 01 Jan 2024 09:00:00 +0000"),
    ]
    seqs = lambda r: r[0]  # noqa: E731
    assert format_threads(references(rows), seqs) == b"(6)(1 (2)(5))((3)(4))"
    assert format_threads(orderedsubject(rows), seqs) == b"(6)(1 (2)(5))(3 4)"
    assert format_threads(references(rows), lambda r: r[1]) == b"(60)(10 (20)(50))((30)(40))"
    assert format_threads(references([]), seqs) == b""


def test_reference_loops_are_ignored():
    rows = [
        row(1, "x", "Mon, 01 Jan 2024 10:00:00 +0000", extra="Message-ID: <a@x>\r\nReferences: <b@x>\r\n"),
        row(2, "y", "Mon, 01 Jan 2024 11:00:00 +0000", extra="Message-ID: <b@x>\r\nReferences: <a@x>\r\n"),
    ]
    assert format_threads(references(rows), lambda r: r[0]) in (b"(1 2)", b"(2 1)")


def hour(h: int) -> str:
    return f"Mon, 01 Jan 2024 {h:02d}:00:00 +0000"


def test_threads_references_chains_and_reparenting():
    rows = [
        row(1, "chain", hour(1), extra="Message-ID: <a@x>\r\n"),
        # <b@x> is missing: a dummy between 1 and 2, spliced out (3)
        row(2, "Re: chain", hour(2), extra="Message-ID: <c@x>\r\nReferences: <a@x> <b@x>\r\n"),
        # 3 says <n@x> is under <x@x>; <n@x> itself (4) says it is under <y@x>: (1)(B) wins
        row(3, "moved", hour(3), extra="Message-ID: <m@x>\r\nReferences: <x@x> <n@x>\r\n"),
        row(4, "Re: moved", hour(4), extra="Message-ID: <n@x>\r\nReferences: <y@x>\r\n"),
    ]
    assert format_threads(references(rows), lambda r: r[0]) == b"(1 2)(4 3)"


def test_threads_references_subject_gathering():
    rows = [
        row(1, "same", hour(1)),  # neither a reply: both under a new dummy (5)(C)
        row(2, "same", hour(2)),
        row(3, "", hour(3)),  # no subject: never gathered
        row(4, "", hour(4)),
        # two dummy roots (lost parents) with one base subject: their children merge
        row(5, "Re: d", hour(5), extra="References: <l1@x>\r\n"),
        row(6, "Re: d", hour(6), extra="References: <l1@x>\r\n"),
        row(7, "Re: d", hour(7), extra="References: <l2@x>\r\n"),
        row(8, "Re: d", hour(8), extra="References: <l2@x>\r\n"),
    ]
    assert format_threads(references(rows), lambda r: r[0]) == b"((1)(2))(3)(4)((5)(6)(7)(8))"
