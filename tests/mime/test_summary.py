"""MessageSummary: a plain, serialisable stand-in for parsing."""

from __future__ import annotations

import pytest

from exchmail.imap.fetch import bodystructure, envelope, section
from exchmail.mime.message import ParsedMessage
from exchmail.mime.summary import MessageSummary, summarize

from .edge_messages import CASES


@pytest.mark.parametrize(
    "name", ["nested_rfc822", "digest", "base64_attachment", "rfc822_inner_no_blank", "envelope_dupes"]
)
def test_summary_renders_like_a_parse(name: str) -> None:
    data = CASES[name]
    summary = MessageSummary.from_bytes(summarize(data).to_bytes())
    assert summary == summarize(data)
    fresh, cached = ParsedMessage(data), ParsedMessage(data, summary=summary)
    assert bodystructure(cached) == bodystructure(fresh)
    assert envelope(summary.headers()) == envelope(fresh)
    for path in [(1,), (2,), (1, 1), (2, 1), (3,)]:
        for text in (None, "MIME", "HEADER", "TEXT"):
            assert section(cached, path, text) == section(fresh, path, text)


def test_summary_holds_no_body() -> None:
    data = CASES["base64_attachment"]
    summary = summarize(data)
    assert summary.size == len(data)
    assert summary.header == ParsedMessage(data).header_bytes()
    assert b"JVBERi0" not in summary.to_bytes()
    assert [child.lines for child in summary.root.children] == [0, -1]  # counted for text only


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"[]",
        b'{"v": 2}',
        b'{"v": 1, "size": "x", "header": "", "root": []}',
        b'{"v": 1, "size": 1, "header": "", "root": [1]}',
    ],
)
def test_from_bytes_rejects_garbage(blob: bytes) -> None:
    with pytest.raises(ValueError):
        MessageSummary.from_bytes(blob)
