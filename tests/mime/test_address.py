"""Address parsing (Dovecot's message-address rules) and canonical writing."""

from __future__ import annotations

import pytest

from exchmail.mime.address import Address, format_addresses, parse_addresses


def _plain(value: bytes) -> list[tuple[bytes | None, ...]]:
    return [(a.name, a.route, a.mailbox, a.domain) for a in parse_addresses(value)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"user@domain", [(None, None, b"user", b"domain")]),
        (b"Real Name <user@domain>", [(b"Real Name", None, b"user", b"domain")]),
        (b"user@domain (Real Name)", [(b"Real Name", None, b"user", b"domain")]),
        (b"<@route:user@domain>", [(None, b"@route", b"user", b"domain")]),
        (b"Name <@r1,@r2:user@domain>", [(b"Name", b"@r1,@r2", b"user", b"domain")]),
        (b"<user (c)@ (c) domain.org>", [(None, None, b"user", b"domain.org")]),
        (b'"Doe, John" <j@x>', [(b"Doe, John", None, b"j", b"x")]),
        (b"root", [(None, None, b"root", b"MISSING_DOMAIN")]),
        (b"John Smith", [(b"John Smith", None, b"MISSING_MAILBOX", b"MISSING_DOMAIN")]),
        (b"Name <user@domain", [(b"Name", None, b"user", b"SYNTAX_ERROR")]),
        (b"<@route user@domain>", [(None, b"INVALID_ROUTE", b"user", b"domain")]),
        (b"a.b.@c", [(None, None, b"a.b.", b"c")]),
        (b"user@[1.2.3.4]", [(None, None, b"user", b"[1.2.3.4]")]),
        (b"", []),
        (b"  ", []),
    ],
)
def test_parse(value: bytes, expected: list[tuple[bytes | None, ...]]) -> None:
    assert _plain(value) == expected


def test_groups() -> None:
    addrs = parse_addresses(b"group: g1@d1.org, g2@d2.org;, group2: (foo) ;")
    assert _plain(b"group: g1@d1.org, g2@d2.org;, group2: (foo) ;") == [
        (None, None, b"group", None),
        (None, None, b"g1", b"d1.org"),
        (None, None, b"g2", b"d2.org"),
        (None, None, None, None),
        (None, None, b"group2", None),
        (None, None, None, None),
    ]
    assert addrs[0].is_group_start and addrs[3].is_group_end
    assert not addrs[1].is_group_start and not addrs[1].is_group_end


def test_fill_missing_off() -> None:
    assert parse_addresses(b"root", fill_missing=False)[0] == Address(None, None, b"root", b"", True)


def test_nul_becomes_replacement_character() -> None:
    assert parse_addresses(b'"n\x00m" <a@b>')[0].name == "n\ufffdm".encode()


_SYNTAX = b"SYNTAX_ERROR"
_NO_BOX = b"MISSING_MAILBOX"
_NO_DOMAIN = b"MISSING_DOMAIN"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # A local part may end in dots (obs-local-part), even at the end of input.
        (b"a..", [Address(None, None, b"a..", _NO_DOMAIN, True)]),
        # Broken angle addresses keep what parsed and mark the domain.
        (b"<a@>", [Address(None, None, b"a", _SYNTAX, True)]),
        (b"<a b>", [Address(None, None, b"a", _SYNTAX, True)]),
        (b"<", [Address(None, None, _NO_BOX, _SYNTAX, True)]),
        (b"< ", [Address(None, None, _NO_BOX, _SYNTAX, True)]),
        # Broken source routes: INVALID_ROUTE unless the route itself parsed.
        (b"<@", [Address(None, b"INVALID_ROUTE", _NO_BOX, _SYNTAX, True)]),
        (b"<@a,", [Address(None, b"INVALID_ROUTE", _NO_BOX, _SYNTAX, True)]),
        (b"<@a.:b@c>", [Address(None, b"INVALID_ROUTE", _NO_BOX, _SYNTAX, True)]),
        (b"<@a b", [Address(None, b"INVALID_ROUTE", b"b", _SYNTAX, True)]),
        (b"<@a:", [Address(None, b"@a", _NO_BOX, _SYNTAX, True)]),
        (b"<@a: ", [Address(None, b"@a", _NO_BOX, _SYNTAX, True)]),
        # A quoted word alone is a display name without an address.
        (b'"quoted"', [Address(b"quoted", None, _NO_BOX, _NO_DOMAIN, True)]),
        # An open group: the start and (invalid) end markers are still given.
        (b"g:", [Address(None, None, b"g", None, True), Address(None, None, None, None, True)]),
        (
            b"g: a@b, ",
            [
                Address(None, None, b"g", None, False),
                Address(None, None, b"a", b"b", False),
                Address(None, None, None, None, True),
            ],
        ),
        # Garbage after the last comma becomes one invalid address.
        (b"a@b, (c", [Address(None, None, b"a", b"b"), Address(None, None, _NO_BOX, _NO_DOMAIN, True)]),
        # A trailing comma is ignored.
        (b"a@b, ", [Address(None, None, b"a", b"b")]),
    ],
)
def test_parse_broken(value: bytes, expected: list[Address]) -> None:
    assert parse_addresses(value) == expected


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (b"user@domain", b"<user@domain>"),
        (b"RealFrom <user-from@domain.org>", b"RealFrom <user-from@domain.org>"),
        (b"user@domain (Real Name)", b'"Real Name" <user@domain>'),
        (b'"Doe, \\"J\\"" <j@x>', b'"Doe, \\"J\\"" <j@x>'),
        (b"=?utf-8?q?J=C3=B6rg?= <j@x>", b"=?utf-8?q?J=C3=B6rg?= <j@x>"),
        (b"<@route:user@domain>", b"<@route:user@domain>"),
        (b"g: a@b, c@d;, h:;", b"g: <a@b>, <c@d>;, h:;"),
        (b'"" <a@b>', b"<a@b>"),
        (b'"a b"@c', b'<"a b"@c>'),
    ],
)
def test_format(value: bytes, written: bytes) -> None:
    assert format_addresses(parse_addresses(value)) == written
