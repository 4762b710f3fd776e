"""LIST/LSUB name matching (exchmail.imap.listing), pure."""

from __future__ import annotations

import random
import re

import pytest

from exchmail.imap.listing import (
    Pattern,
    canonical_name,
    full_pattern,
    has_wildcards,
    list_entries,
    lsub_entries,
)


def backtracking_regex(pattern: str, case_insensitive: bool = False) -> re.Pattern[str]:
    """The former implementation, kept as an oracle for short inputs only."""
    out = []
    for char in pattern:
        out.append(".*" if char == "*" else "[^/]*" if char == "%" else re.escape(char))
    body = "".join(out)
    if pattern[:5].upper() == "INBOX" and (len(pattern) == 5 or pattern[5] in "/*%"):
        body = "(?i:INBOX)" + "".join(out[5:])
    return re.compile("^" + body + "$", re.S | (re.IGNORECASE if case_insensitive else 0))


@pytest.mark.parametrize(
    "pattern,name,expected",
    [
        ("*", "", True),
        ("*", "a/b/c", True),
        ("%", "a", True),
        ("%", "a/b", False),
        ("%", "", True),
        ("", "", True),
        ("", "a", False),
        ("a", "a", True),
        ("a", "A", False),
        ("a", "ab", False),
        ("a/%", "a/b", True),
        ("a/%", "a/b/c", False),
        ("a/*", "a/b/c", True),
        ("a/*", "a", False),
        ("a%", "a", True),
        ("a%", "ab", True),
        ("a%b", "a/b", False),
        ("a*b", "a/x/b", True),
        ("a%*b", "a/xb", True),
        ("a*%b", "a/xb", True),
        ("a%%b", "a/b", False),
        ("%/%", "a/b", True),
        ("**", "a/b", True),
        ("*%*", "a/b", True),
        ("%*", "a/b", True),
        ("*/", "a/", True),
        ("inbox", "INBOX", True),
        ("InBoX/%", "INBOX/x", True),
        ("inbox*", "INBOX/x", True),
        ("inbox%", "INBOX", True),
        ("inboxes", "INBOXES", False),
        ("INBOX/sub", "INBOX/SUB", False),
        ("a.b", "axb", False),
        ("a(b)", "a(b)", True),
        ("a[b]", "a[b]", True),
        ("a\\b", "a\\b", True),
        ("&AOk-%", "&AOk-t", True),
        ("é*", "été", True),
        ("*a*a*a*a*b", "a" * 200, False),
        ("*a*a*a*a*", "a" * 200, True),
        ("%a%a%a%a%b", "a" * 200, False),
        # both wildcards: the leftmost "a" would leave a "/" for the "%"
        ("*a%", "xa/a", True),
        ("*a%", "xa/a/", False),
        ("%/*a%b", "x/a/ab", True),
        ("%*", "a/b", True),
        ("%a*", "x/a", False),
        ("*/%", "a/b/c", True),
        ("*/%", "abc", False),
    ],
)
def test_pattern(pattern, name, expected):
    assert Pattern(pattern).match(name) is expected


@pytest.mark.parametrize(
    "pattern,name,expected",
    [
        ("foo", "FOO", True),
        ("FOO/%", "foo/Bar", True),
        ("é", "É", True),
        ("a%", "A/b", False),
        ("straße", "STRASSE", False),  # one character never matches two
        ("K", "\u212a", True),  # KELVIN SIGN: lower() is "k", as re.IGNORECASE has it
    ],
)
def test_pattern_case_insensitive(pattern, name, expected):
    assert Pattern(pattern, case_insensitive=True).match(name) is expected
    assert Pattern(pattern).match(name) is (pattern == name)


@pytest.mark.parametrize("case_insensitive", [False, True])
def test_pattern_agrees_with_the_former_regex(case_insensitive):
    rng = random.Random(3501)
    alphabet = "aAb/*%iInNbBoOxX"
    for _ in range(3000):
        pattern = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        if rng.random() < 0.2:
            pattern = rng.choice(["INBOX", "inbox", "Inbox"]) + pattern
        name = "".join(rng.choice("aAb/iInNbBoOxX") for _ in range(rng.randint(0, 10)))
        if rng.random() < 0.2:
            name = "INBOX" + name
        expected = bool(backtracking_regex(pattern, case_insensitive).match(name))
        assert Pattern(pattern, case_insensitive).match(name) is expected, (pattern, name)


def test_pathological_pattern_finishes():
    """Robustness: with a mailbox named a x200, LIST "" "*a*a*a*a*b" took 25.6 s with
    the backtracking regex; the automaton is linear (no timing asserted: a slow
    matcher would make the suite hang)."""
    name = "a" * 200
    assert list_entries([name], "*a*a*a*a*b") == []
    assert list_entries([name], "*a*a*a*a*") == [(name, [b"\\HasNoChildren"])]
    long_pattern = "*a" * 500 + "*b"
    assert not Pattern(long_pattern).match("a" * 5000)
    assert not Pattern("%a" * 500 + "%b", case_insensitive=True).match("A" * 5000)
    assert not Pattern("*a%" * 500 + "b").match("a" * 2500 + "/" + "a" * 2500)
    assert lsub_entries([name], [name], "*a*a*a*a*b", noselect_parents=True) == []


# -- the public functions, unchanged -------------------------------------------------------------
MAILBOXES = ["INBOX", "INBOX/Sub", "Archive/2020/Jan", "Archive/2021", "Sent", "sent items"]


def test_list_entries():
    assert list_entries(MAILBOXES, "*") == [
        ("INBOX", [b"\\HasChildren"]),
        ("Archive", [b"\\Noselect", b"\\HasChildren"]),
        ("Archive/2020", [b"\\Noselect", b"\\HasChildren"]),
        ("Archive/2020/Jan", [b"\\HasNoChildren"]),
        ("Archive/2021", [b"\\HasNoChildren"]),
        ("INBOX/Sub", [b"\\HasNoChildren"]),
        ("Sent", [b"\\HasNoChildren"]),
        ("sent items", [b"\\HasNoChildren"]),
    ]
    assert [n for n, _ in list_entries(MAILBOXES, "%")] == ["INBOX", "Archive", "Sent", "sent items"]
    assert [n for n, _ in list_entries(MAILBOXES, "Archive/%", children=False)] == [
        "Archive/2020",
        "Archive/2021",
    ]
    assert list_entries(MAILBOXES, "Archive/%", children=False)[0] == ("Archive/2020", [b"\\Noselect"])
    assert [n for n, _ in list_entries(MAILBOXES, "sent*")] == ["sent items"]
    assert [n for n, _ in list_entries(MAILBOXES, "sent*", case_insensitive=True)] == ["Sent", "sent items"]
    assert [n for n, _ in list_entries(MAILBOXES, "inbox/*")] == ["INBOX/Sub"]
    marked = list_entries(MAILBOXES, "Sent", children=False, marked=lambda n: n == "Sent")
    assert marked == [("Sent", [b"\\Marked"])]


def test_lsub_entries():
    subscribed = ["INBOX", "Archive/2021", "Gone"]
    assert lsub_entries(subscribed, MAILBOXES, "*") == [
        ("Archive/2021", []),
        ("Gone", [b"\\Noselect"]),
        ("INBOX", []),
    ]
    assert lsub_entries(subscribed, MAILBOXES, "%") == [("Gone", [b"\\Noselect"]), ("INBOX", [])]
    assert lsub_entries(subscribed, MAILBOXES, "%", noselect_parents=True) == [
        ("Archive", [b"\\Noselect"]),
        ("Gone", [b"\\Noselect"]),
        ("INBOX", []),
    ]
    assert lsub_entries(subscribed, MAILBOXES, "archive/%", case_insensitive=True) == [("Archive/2021", [])]


def test_full_pattern_canonical_name_and_wildcards():
    assert full_pattern("", "%") == "%"
    assert full_pattern("a", "b") == "a/b"
    assert full_pattern("a/", "b") == "a/b"
    assert full_pattern("a", "/b") == "a/b"
    assert canonical_name("archive/2020/x", MAILBOXES) == "Archive/2020/x"
    assert canonical_name("inbox/sub", MAILBOXES) == "INBOX/Sub"
    assert has_wildcards("a*") and has_wildcards("%") and not has_wildcards("a/b")
