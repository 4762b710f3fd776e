"""imaptest's MIME, ENVELOPE and SEARCH compliance scripts as unit tests.

Each ``ok fetch`` / ``ok search`` command of the scripts in
imaptest_corpus.py is answered from exchmail's pure rendering
(:mod:`exchmail.imap.fetch`, :class:`~exchmail.mime.message.ParsedMessage`)
and compared with the script's expected response the way imaptest compares:
multi-line ``{{{ ... }}}`` blocks become literals, strings match
case-insensitively whether quoted or literal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from exchmail.imap.fetch import bodystructure, envelope, section
from exchmail.mime.message import ParsedMessage, body_contains

from .imapdata import fold, parse
from .imaptest_corpus import SCRIPTS

# Dovecot answers BODY[1.1.MIME] of this digest part (an empty header: just
# the blank line) with "\r\n"; the script says "" but imaptest accepts both.
_DOVECOT_ACTUAL = {("fetch-body-message-rfc822-mime", "BODY[1.1.MIME]"): b"\r\n"}


@dataclass
class Command:
    """One ``ok`` command of a script and the untagged responses it expects."""

    line: str
    expected: list[bytes] = field(default_factory=list)
    absent: list[bytes] = field(default_factory=list)


def mailbox(name: str) -> list[bytes]:
    """The messages of a script's mbox file, with CRLF line ends."""
    data = SCRIPTS[name][0]
    chunks = re.split(rb"(?m)^From [^\n]*\n", data)
    return [chunk.replace(b"\n", b"\r\n") for chunk in chunks if chunk]


def _expand(lines: list[str]) -> bytes:
    """Join response lines, turning ``{{{``...``}}}`` blocks into literals."""
    out = ""
    block: list[str] | None = None
    for line in lines:
        if block is not None:
            if line.startswith("}}}"):
                text = "\r\n".join(block)
                out += f"{{{len(text.encode())}}}\r\n" + text + line[3:]
                block = None
            else:
                block.append(line)
        elif line.endswith("{{{"):
            out += line[:-3]
            block = []
        else:
            out += line
    return out.encode()


def commands(name: str) -> list[Command]:
    """The commands of script *name* (header and comments skipped)."""
    text = SCRIPTS[name][1]
    lines = text.split("\n")
    start = lines.index("") + 1
    out: list[Command] = []
    pending: list[str] = []
    sign = ""
    for line in lines[start:] + [""]:
        if pending:
            pending.append(line)
            if line.startswith("}}}"):
                target = out[-1].expected if sign == "*" else out[-1].absent
                target.append(_expand(pending))
                pending = []
            continue
        if line.startswith("ok "):
            out.append(Command(line[3:]))
        elif line[:2] in ("* ", "! ") and out:
            sign = line[0]
            if line.endswith("{{{"):
                pending = [line[2:]]
                continue
            target = out[-1].expected if sign == "*" else out[-1].absent
            target.append(_expand([line[2:]]))
    return out


def _fetch_value(msg: ParsedMessage, key: bytes, command: str) -> bytes:
    upper = key.upper()
    if upper == b"ENVELOPE":
        return envelope(msg)
    if upper in (b"BODY", b"BODYSTRUCTURE"):
        return bodystructure(msg, upper == b"BODYSTRUCTURE")
    match = re.fullmatch(rb"BODY\[([0-9.]*?)\.?([A-Z.]*)( \(.*\))?\](<\d+>)?", upper)
    assert match, key
    path = tuple(int(n) for n in match.group(1).split(b".") if n)
    text = match.group(2).decode() or None
    fields = tuple(match.group(3)[2:-1].split()) if match.group(3) else ()
    data = section(msg, path, text, fields)
    if match.group(4):  # <start>: the length is in the command
        start = int(match.group(4)[1:-1])
        spec = re.escape(key[key.index(b"[") : key.index(b"]") + 1].decode())
        length = re.search(spec + r"<\d+\.(\d+)>", command, re.IGNORECASE)
        assert length, command
        data = data[start : start + int(length.group(1))]
    return b"{%d}\r\n" % len(data) + data


_SKIPPED = (b"FLAGS", b"UID", b"RFC822.SIZE", b"INTERNALDATE", b"RFC822", b"RFC822.TEXT", b"RFC822.HEADER")


def _content_items(response: bytes) -> list[tuple[bytes, object]]:
    """``(key, value)`` of the content items (not flags, not $variables)."""
    items = parse(response)
    assert isinstance(items, list)
    out = []
    for i in range(0, len(items), 2):
        key, value = items[i], items[i + 1]
        assert isinstance(key, bytes)
        if key.upper() in _SKIPPED or (isinstance(value, bytes) and value.startswith(b"$")):
            continue
        out.append((key, value))
    return out


def _fetch_cases() -> list[tuple[str, int, str, bytes]]:
    cases = []
    for name in SCRIPTS:
        for command in commands(name):
            if not command.line.startswith("fetch "):
                continue
            for response in command.expected:
                match = re.match(rb"(\d+) fetch \(", response, re.IGNORECASE)
                assert match
                data = response[match.end() - 1 :]
                if _content_items(data):
                    cases.append((name, int(match.group(1)), command.line, data))
    return cases


FETCHES = _fetch_cases()


@pytest.mark.parametrize(
    ("name", "seq", "command", "expected"), FETCHES, ids=[f"{c[0]}-{i}" for i, c in enumerate(FETCHES)]
)
def test_fetch_expectation(name: str, seq: int, command: str, expected: bytes) -> None:
    msg = ParsedMessage(mailbox(name)[seq - 1])
    for key, value in _content_items(expected):
        actual = _DOVECOT_ACTUAL.get((name, key.upper().decode()))
        ours = parse(_fetch_value(msg, key, command)) if actual is None else actual
        if b"<" in key and isinstance(ours, bytes) and isinstance(value, bytes):
            # Partial fetches are written as ~{{{ blocks, whose line ends
            # imaptest does not compare.
            ours, value = ours.replace(b"\r", b""), value.replace(b"\r", b"")
        assert fold(ours) == fold(value), key  # type: ignore[arg-type]


def test_fetch_expectations_cover_the_issue() -> None:
    # BODY of fetch-bodystructure, the 14 BODY[...] fetches of fetch-body-mime
    # and the 6 envelopes of fetch-envelope are all checked.
    count = {name: sum(1 for case in FETCHES if case[0] == name) for name in SCRIPTS}
    assert count["fetch-bodystructure"] == 1
    assert count["fetch-body-mime"] == 14
    assert count["fetch-envelope"] == 6


# -- SEARCH -------------------------------------------------------------------------------

_ADDRESS_KEYS = {"from", "to", "cc", "bcc"}


def _matches(msg: ParsedMessage, key: str, args: list[str]) -> bool:
    """The rendering side of one SEARCH key, as exchmail's evaluator uses it."""
    if key in _ADDRESS_KEYS or key == "subject":
        needle = args[0].lower()
        return any(needle in text.lower() for text in msg.search_texts(key))
    if key == "header":
        name, needle = args[0], args[1].lower()
        if not msg.get_all(name):
            return False
        return not needle or any(needle in t.lower() for t in msg.search_texts(name, addresses=False))
    if key == "body":
        return body_contains(msg, args[0])
    if key == "text":
        header = "\n".join(
            f"{n}: {t}" for n, _ in msg.headers() for t in msg.search_texts(n, addresses=False)
        )
        return args[0].lower() in header.lower() or body_contains(msg, args[0])
    raise AssertionError(f"search key {key} not handled here")


def _search_cases() -> list[tuple[str, str, list[int]]]:
    cases = []
    for name in SCRIPTS:
        for command in commands(name):
            match = re.fullmatch(r"search (.*)", command.line)
            if not match or not command.expected:
                continue
            numbers = [int(n) for n in command.expected[0].split()[1:]]
            cases.append((name, match.group(1), numbers))
    return cases


SEARCHES = _search_cases()


@pytest.mark.parametrize(("name", "query", "expected"), SEARCHES, ids=[f"{n}: {q}" for n, q, _ in SEARCHES])
def test_search_expectation(name: str, query: str, expected: list[int]) -> None:
    tokens = re.findall(r'"[^"]*"|\S+', query)
    words = [t[1:-1] if t.startswith('"') else t for t in tokens]
    negate = words[0].lower() == "not"
    if negate:
        words = words[1:]
    key, args = words[0].lower(), words[1:]
    found = []
    for seq, data in enumerate(mailbox(name), 1):
        if _matches(ParsedMessage(data), key, args) != negate:
            found.append(seq)
    assert found == expected


def test_search_addresses_all_checked() -> None:
    assert sum(1 for n, _, _ in SEARCHES if n == "search-addresses") == 28
