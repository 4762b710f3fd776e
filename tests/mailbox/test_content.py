"""ReadAhead (exchmail.mailbox.content): reads in order, and with
``headers_only`` only the header of large messages, for FETCH and SEARCH."""

from __future__ import annotations

from typing import Any

import pytest
from harness import Harness

from exchmail.errors import NoSuchMessage
from exchmail.mailbox import content
from exchmail.mailbox.content import ReadAhead

BODY = b"a line of the body\r\n" * 5000  # ~100 KB: over HEADER_READ_THRESHOLD


def small(number: int) -> bytes:
    return b"Subject: small %d\r\n\r\nbody\r\n" % number


def large(number: int) -> bytes:
    return b"Subject: large %d\r\nX-A: a\r\n\r\n" % number + BODY


def mailbox_with(messages: list[bytes]) -> tuple[Harness, Any, list[int]]:
    harness = Harness("modern", {})
    uids = [harness.deliver(data) for data in messages]
    return harness, harness.mailbox(), uids


def counting_opens(monkeypatch: pytest.MonkeyPatch, mailbox: Any) -> list[int]:
    """Count the octets read through ``open_message`` (the memory store answers at once)."""
    read: list[int] = []
    open_message = mailbox.open_message

    def counted(uid: int) -> Any:
        reader = open_message(uid).result
        original = reader.read
        reader.read = lambda size: original(size).addCallback(lambda data: read.append(len(data)) or data)
        return reader

    monkeypatch.setattr(mailbox, "open_message", counted)
    return read


def results(ahead: ReadAhead, count: int) -> list[bytes | None]:
    return [ahead.next().result for _ in range(count)]


@pytest.mark.parametrize("chunk", [5, 16 * 1024])
def test_headers_only_reads_the_header_of_large_messages(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(content, "HEADER_CHUNK", chunk)
    messages = [small(1), large(2), small(3), small(4), large(5), large(6), small(7)]
    _, mailbox, uids = mailbox_with(messages)
    read = counting_opens(monkeypatch, mailbox)
    got = results(ReadAhead(mailbox, uids, headers_only=True), len(uids))
    for data, message in zip(got, messages, strict=True):
        if len(message) > content.HEADER_READ_THRESHOLD:
            header = message[: message.index(b"\r\n\r\n") + 4]
            assert data is not None and data.startswith(header) and len(data) < len(header) + chunk
        else:
            assert data == message  # small ones whole, in batches
    assert 0 < sum(read) < 3 * (40 + chunk)
    # without headers_only every message is read whole
    assert results(ReadAhead(mailbox, uids), len(uids)) == messages


def test_headers_only_batches_keep_their_order(monkeypatch: pytest.MonkeyPatch) -> None:
    messages = [large(1), small(2), small(3), large(4), small(5)]
    _, mailbox, uids = mailbox_with(messages)
    ahead = ReadAhead(mailbox, uids, headers_only=True, window=2)
    seen: list[int] = []
    while (batch := ahead.next_batch()) is not None:
        seen.extend(uid for uid, _ in batch.result)
    assert seen == uids


def test_a_large_message_gone_meanwhile_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    _, mailbox, uids = mailbox_with([large(1), large(2), small(3)])
    open_message = mailbox.open_message

    def gone_for_first(uid: int) -> Any:
        if uid == uids[0]:
            raise NoSuchMessage("gone")
        return open_message(uid)

    monkeypatch.setattr(mailbox, "open_message", gone_for_first)
    got = results(ReadAhead(mailbox, uids, headers_only=True), 3)
    assert (
        got[0] is None
        and got[1] is not None
        and got[1].startswith(b"Subject: large 2")
        and got[2] == small(3)
    )


def test_a_header_search_reads_only_headers_of_large_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    harness, mailbox, _ = mailbox_with([large(1), small(2), large(3), large(4)])
    c = harness.imap()
    c.login()
    c.line("s SELECT INBOX")
    read = counting_opens(monkeypatch, mailbox)
    out = c.line("f UID SEARCH OR SUBJECT large SUBJECT small")
    assert out.startswith(b"* SEARCH 1 2 3 4\r\n") and out.endswith(b"f OK SEARCH completed.\r\n")
    assert 0 < sum(read) < 3 * (40 + content.HEADER_CHUNK)
    # a body key reads the messages whole
    assert c.line("b UID SEARCH BODY line").startswith(b"* SEARCH 1 3 4\r\n")
