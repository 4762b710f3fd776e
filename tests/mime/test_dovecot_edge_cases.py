"""exchmail's FETCH rendering of RFC 2045/2046/2231/5322 edge cases against
Dovecot's (recorded in dovecot_fixtures.py by make_dovecot_fixtures.py).

Structures are compared as imaptest compares them (parsed, case-insensitive);
section contents octet for octet.
"""

from __future__ import annotations

import hashlib

import pytest

from exchmail.imap.fetch import bodystructure, envelope, section
from exchmail.mime.message import ParsedMessage

from .dovecot_fixtures import EXPECTED
from .edge_messages import CASES, NOT_COMPARABLE
from .imapdata import Item, fold, parse


def _check(ours: bytes, expected: object) -> None:
    folded: Item = fold(parse(ours))
    if isinstance(expected, tuple):
        assert expected == ("sha256", hashlib.sha256(repr(folded).encode()).hexdigest())
    else:
        assert folded == expected


def _spec(spec: str) -> tuple[tuple[int, ...], str | None]:
    numbers: list[int] = []
    parts = spec.split(".")
    while parts and parts[0].isdigit():
        numbers.append(int(parts.pop(0)))
    return tuple(numbers), ".".join(parts) or None


def test_every_comparable_case_has_fixtures() -> None:
    assert set(EXPECTED) == set(CASES) - NOT_COMPARABLE


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_structure_like_dovecot(name: str) -> None:
    msg = ParsedMessage(CASES[name])
    expected = EXPECTED[name]
    _check(bodystructure(msg, True), expected["BODYSTRUCTURE"])
    _check(bodystructure(msg, False), expected["BODY"])
    _check(envelope(msg), expected["ENVELOPE"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sections_like_dovecot(name: str) -> None:
    msg = ParsedMessage(CASES[name])
    sections = EXPECTED[name]["sections"]
    assert isinstance(sections, dict)
    for spec, want in sections.items():
        path, text = _spec(spec)
        got = section(msg, path, text)
        if isinstance(want, tuple):
            assert ("sha256", hashlib.sha256(got).hexdigest()) == want, spec
        else:
            assert got == want, spec
