"""FETCH answers the message's own HEADER.FIELDS, HEADER and TEXT without parsing it.

``_top_level_section`` finds these sections with a few searches, where the
other items go through the MIME parser (``_render_parsed``); both must give
the same octets for any input, partial ranges and NUL octets included.
"""

from __future__ import annotations

import random

import pytest
from mime.edge_messages import CASES, HEADER_EDGES
from mime.imaptest_corpus import SCRIPTS

from exchmail.imap.fetchatt import FetchItem, parse_section
from exchmail.imap.handlers.fetching import FetchOptions, _render_parsed, _top_level_section, render_content
from exchmail.mime.message import ParsedMessage
from exchmail.mime.scan import WINDOW

OPTIONS = FetchOptions(exact_size=True, seven_bit=False, empty_as_nil=False)
FIELD_LISTS = [
    b"From To Cc Subject",
    b"subject",
    b"SUBJECT x-a Received",
    b"Message-ID In-Reply-To References",
    b"content-type",
    b"x-a x-a",
    b"nothing-matches",
]


def section_item(spec: bytes, partial: tuple[int, int] | None = None) -> FetchItem:
    path, text, fields = parse_section(spec)
    return FetchItem(b"BODY", path, text, fields, partial, True, spec)


def items() -> list[FetchItem]:
    found = [section_item(b"HEADER.FIELDS (" + names + b")") for names in FIELD_LISTS]
    found += [section_item(b"HEADER"), section_item(b"TEXT"), section_item(b"header.fields (From)")]
    found += [section_item(b"HEADER", (3, 10)), section_item(b"TEXT", (0, 5))]
    found += [section_item(b"HEADER.FIELDS (Subject From)", (2, 40))]
    found += [FetchItem(b"RFC822.HEADER"), FetchItem(b"RFC822.TEXT")]
    return found


def messages() -> list[bytes]:
    return list(CASES.values()) + [data for data, _ in SCRIPTS.values()] + HEADER_EDGES


@pytest.mark.parametrize("item", items(), ids=lambda item: item.label().decode())
def test_same_octets_as_the_parser(item: FetchItem) -> None:
    for data in messages():
        fast = _top_level_section(data, item)
        assert fast is not None
        assert fast == _render_parsed(ParsedMessage(data), item, OPTIONS), data[:200]


def test_random_headers_agree() -> None:
    pieces = [b"Subject", b"subject", b"X-A", b"From", b":", b" ", b"\t", b"\r\n", b"\n", b"\r", b"a"]
    pieces.append(b"\x00")
    wanted = [section_item(b"HEADER.FIELDS (Subject X-A)"), section_item(b"HEADER"), section_item(b"TEXT")]
    rng = random.Random(20261207)
    for _ in range(3000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(1, 40)))
        for item in wanted:
            assert _top_level_section(data, item) == _render_parsed(ParsedMessage(data), item, OPTIONS), data


def test_other_items_and_names_go_to_the_parser() -> None:
    data = b"Subject: x\r\n\r\nbody\r\n"
    for item in (
        section_item(b"HEADER.FIELDS.NOT (Subject)"),
        section_item(b"1.HEADER"),
        section_item(b"1.MIME"),
        section_item(b"1"),
        FetchItem(b"ENVELOPE"),
        FetchItem(b"BODY", (), "HEADER.FIELDS", (b"sub:ject",), None, True, b"HEADER.FIELDS (sub:ject)"),
        FetchItem(b"BODY", (), "HEADER.FIELDS", (b"\xfcber",), None, True, b"HEADER.FIELDS (\xfcber)"),
    ):
        assert _top_level_section(data, item) is None, item
    big = b"Subject: x\r\n\r\n" + b"a" * WINDOW
    assert _top_level_section(big, section_item(b"HEADER")) is None
    # render_content still answers them, through the parser
    assert render_content(big, [section_item(b"HEADER")], OPTIONS) == {
        section_item(b"HEADER"): b"{14}\r\nSubject: x\r\n\r\n"
    }


def test_a_long_field_list_goes_to_the_parser() -> None:
    """One search per name: a list of thousands (a client may send them)
    would cost far more than splitting the fields once."""
    from exchmail.mime.headers import SELECT_MAX_NAMES

    data = b"Subject: x\r\nX-7: y\r\n\r\nbody\r\n"
    names = b" ".join(b"X-%d" % n for n in range(SELECT_MAX_NAMES + 1))
    item = section_item(b"HEADER.FIELDS (" + names + b")")
    assert _top_level_section(data, item) is None
    assert render_content(data, [item], OPTIONS)[item] == b"{10}\r\nX-7: y\r\n\r\n"
    few = section_item(b"HEADER.FIELDS (" + b" ".join(b"X-%d" % n for n in range(SELECT_MAX_NAMES)) + b")")
    assert _top_level_section(data, few) == b"{10}\r\nX-7: y\r\n\r\n"
