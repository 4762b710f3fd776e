"""Regenerate dovecot_fixtures.py from a running Dovecot (not a test).

    python tests/mime/make_dovecot_fixtures.py [PORT]

Needs a Dovecot 2.3 IMAP server on 127.0.0.1:PORT (default 13143) with a
user ``user2``/``pass`` (/work/shared/tools/dovecot-peer/start gives one).
Every message of edge_messages.CASES is appended to a scratch mailbox and
Dovecot's BODYSTRUCTURE, BODY, ENVELOPE and the sections exchmail finds are
recorded; test_dovecot_edge_cases.py compares exchmail with them.
"""

from __future__ import annotations

import hashlib
import re
import socket
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE))

from edge_messages import CASES, NOT_COMPARABLE  # noqa: E402
from imapdata import fold, parse  # noqa: E402

from exchmail.mime.message import ParsedMessage  # noqa: E402

#: Items whose repr (structures) or size (sections) exceeds this are stored
#: as a digest.
BIG = 1500
BIG_SECTION = 400


class _Client:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""
        self.tag = 0
        self._line()
        self.cmd(b"LOGIN user2 pass")

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _response(self) -> bytes:
        out = b""
        while True:
            line = self._line()
            out += line
            match = re.search(rb"\{(\d+)\}$", line)
            if not match:
                return out
            size = int(match.group(1))
            while len(self.buf) < size:
                self.buf += self.sock.recv(1 << 20)
            out += b"\r\n" + self.buf[:size]
            self.buf = self.buf[size:]

    def cmd(self, command: bytes, literal: bytes | None = None) -> list[bytes]:
        self.tag += 1
        tag = b"F%d" % self.tag
        if literal is None:
            self.sock.sendall(tag + b" " + command + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + command + b" {%d}\r\n" % len(literal))
            if not self._line().startswith(b"+"):
                raise RuntimeError("literal refused")
            self.sock.sendall(literal + b"\r\n")
        untagged = []
        while True:
            response = self._response()
            if response.startswith(tag + b" "):
                if not response.startswith(tag + b" OK"):
                    raise RuntimeError(response)
                return untagged
            untagged.append(response)


def _items(response: bytes) -> dict[bytes, object]:
    match = re.match(rb"\* \d+ FETCH ", response)
    assert match is not None
    values = parse(response[match.end() :])
    assert isinstance(values, list)
    return {values[i].upper(): values[i + 1] for i in range(0, len(values), 2)}  # type: ignore[union-attr]


def _paths(part, prefix=()):  # type: ignore[no-untyped-def]
    out = []
    if part.is_multipart:
        for index, child in enumerate(part.children, 1):
            path = prefix + (index,)
            out.append((path, child.is_message))
            out.extend(_inner_paths(child, path))
    return out


def _inner_paths(part, path):  # type: ignore[no-untyped-def]
    if part.is_multipart:
        return _paths(part, path)
    if part.is_message:
        inner = part.message
        if inner.is_multipart:
            return _paths(inner, path)
        return [(path + (1,), inner.is_message)] + _inner_paths(inner, path + (1,))
    return []


def section_specs(data: bytes, limit: int = 24) -> list[str]:
    """The sections fetched for a message: HEADER, TEXT and, for the first
    *limit* parts, the part, its MIME header and (messages) HEADER/TEXT."""
    msg = ParsedMessage(data)
    found = _paths(msg) if msg.is_multipart else [((1,), msg.is_message)] + _inner_paths(msg, (1,))
    specs = ["HEADER", "TEXT"]
    for path, is_message in found[:limit]:
        number = ".".join(str(n) for n in path)
        specs += [number, number + ".MIME"]
        if is_message:
            specs += [number + ".HEADER", number + ".TEXT"]
    return specs


def _store(value: object) -> object:
    folded = fold(value)  # type: ignore[arg-type]
    text = repr(folded)
    if len(text) > BIG:
        return ("sha256", hashlib.sha256(text.encode()).hexdigest())
    return folded


def main(port: int) -> None:
    client = _Client(port)
    try:
        client.cmd(b"DELETE fixtures")
    except RuntimeError:
        pass
    client.cmd(b"CREATE fixtures")
    names = [name for name in CASES if name not in NOT_COMPARABLE]
    for name in names:
        client.cmd(b"APPEND fixtures", CASES[name])
    client.cmd(b"SELECT fixtures")
    expected: dict[str, dict[str, object]] = {}
    for seq, name in enumerate(names, 1):
        specs = section_specs(CASES[name])
        items = b" ".join(b"BODY.PEEK[%s]" % spec.encode() for spec in specs)
        got: dict[bytes, object] = {}
        for response in client.cmd(b"FETCH %d (BODYSTRUCTURE BODY ENVELOPE %s)" % (seq, items)):
            got.update(_items(response))
        record: dict[str, object] = {
            key: _store(got[key.encode()]) for key in ("BODYSTRUCTURE", "BODY", "ENVELOPE")
        }
        sections = {}
        for spec in specs:
            value = got[b"BODY[%s]" % spec.encode()] or b""
            assert isinstance(value, bytes)
            if len(value) > BIG_SECTION:
                sections[spec] = ("sha256", hashlib.sha256(value).hexdigest())
            else:
                sections[spec] = value
        record["sections"] = sections
        expected[name] = record
    client.cmd(b"DELETE fixtures")
    out = HERE / "dovecot_fixtures.py"
    lines = [
        '"""FETCH responses of Dovecot 2.3.19 for edge_messages.CASES: BODYSTRUCTURE,',
        "BODY and ENVELOPE parsed and upper-cased (imaptest compares case-insensitively),",
        "sections as octets; generated by make_dovecot_fixtures.py.  Items too big to",
        'keep are ("sha256", hex digest of the octets or of the repr)."""',
        "",
        "# ruff: noqa: E501",
        "# fmt: off",
        "EXPECTED = {",
    ]
    lines += [f"    {name!r}: {record!r}," for name, record in expected.items()]
    lines.append("}")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out} ({len(names)} messages)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 13143)
