"""field_values() finds the same header fields as the full parser.

A header SEARCH looks for the one field it needs (``field_values``) instead
of splitting every field (``ParsedMessage.get_all``); the answers must be
the same byte for byte, for any input.
"""

from __future__ import annotations

import random

import pytest

from exchmail.mime.headers import field_values
from exchmail.mime.message import ParsedMessage

from .edge_messages import CASES, HEADER_EDGES
from .imaptest_corpus import SCRIPTS

NAMES = ["subject", "Subject", "FROM", "to", "cc", "received", "content-type", "x-a", "date", "message-id"]


def messages() -> list[bytes]:
    return list(CASES.values()) + [data for data, _ in SCRIPTS.values()] + HEADER_EDGES


@pytest.mark.parametrize("name", NAMES)
def test_same_fields_as_the_parser(name: str) -> None:
    for data in messages():
        assert field_values(data, name) == ParsedMessage(data).get_all(name), data[:200]


def test_random_headers_agree() -> None:
    pieces = [
        b"Subject",
        b"subject",
        b"X-A",
        b"From",
        b":",
        b" ",
        b"\t",
        b"\r\n",
        b"\n",
        b"\r",
        b"a",
        b"=?",
        b"\x00",
    ]
    rng = random.Random(20261207)
    for _ in range(3000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randrange(1, 40)))
        for name in ("subject", "x-a", "from"):
            assert field_values(data, name) == ParsedMessage(data).get_all(name), data


def test_names_that_are_no_field_names_go_to_the_parser() -> None:
    assert field_values(b"A B: c\r\n\r\n", "a b") is None
    kelvin = "\u212a"  # KELVIN SIGN: lower-cases to an ASCII "k", as the parser compares
    assert field_values(b"K: c\r\n\r\n", kelvin) == ParsedMessage(b"K: c\r\n\r\n").get_all(kelvin) == [b"c"]
    assert field_values(b"\xc3\xbc: c\r\n\r\n", "\u00fc") is None
    assert field_values(b"Subject: x\r\n\r\n", "sub:ject") is None
