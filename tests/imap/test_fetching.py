"""The FETCH handler (exchmail.imap.handlers.fetching) in memory: messages
expunged by another session meanwhile, items served from the shared cache,
MODSEQ beside content, the batching of long answers and the 7-bit view's
size."""

from __future__ import annotations

import re

import pytest
from harness import Harness

from exchmail.errors import NoSuchMessage
from exchmail.imap.handlers import fetching
from exchmail.mailbox import content


def message(number: int, body: bytes = b"") -> bytes:
    return b"From: a@example.org\r\nSubject: m%d\r\n\r\nbody %d%s\r\n" % (number, number, body)


def selected(count: int, profile: str = "exchange2010", **overrides) -> tuple[Harness, object]:
    harness = Harness(profile, overrides)
    for number in range(1, count + 1):
        harness.deliver(message(number))
    c = harness.imap()
    c.login()
    c.line("s SELECT INBOX")
    return harness, c


def numbers(output: bytes) -> list[int]:
    return [int(n) for n in re.findall(rb"^\* (\d+) FETCH", output, re.M)]


def test_message_expunged_by_another_session_is_skipped_then_reported() -> None:
    harness, c = selected(3)
    other = harness.imap()
    other.login()
    other.line("s SELECT INBOX")
    other.line("d STORE 2 +FLAGS (\\Deleted)")
    assert b"* 2 EXPUNGE" in other.line("e EXPUNGE")
    out = c.line("f FETCH 1:3 BODY.PEEK[TEXT]")  # no EXPUNGE during FETCH (RFC 3501 7.4.1)
    assert numbers(out) == [1, 3] and b"body 3" in out and b"body 2" not in out
    assert out.endswith(b"f OK FETCH completed.\r\n")
    assert c.line("n NOOP").startswith(b"* 2 EXPUNGE\r\n")


def test_structure_items_come_from_the_shared_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    harness, c = selected(2)
    first = c.line("f FETCH 1:2 (ENVELOPE BODYSTRUCTURE)")
    assert numbers(first) == [1, 2]

    def render_again(*args: object) -> None:
        raise AssertionError("rendered although cached")

    monkeypatch.setattr(fetching, "render_content", render_again)
    other = harness.imap()  # another session: the cache is the service's
    other.login()
    other.line("s SELECT INBOX")
    assert other.line("f FETCH 1:2 (ENVELOPE BODYSTRUCTURE)") == first


def test_modseq_beside_content_items() -> None:
    harness, c = selected(1, "modern")
    c.line("t STORE 1 +FLAGS.SILENT (\\Flagged)")
    out = c.line("f FETCH 1 (MODSEQ BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    modseq = dict(harness.mailbox().modseqs([1]))[1]
    assert b"\r\n* 1 FETCH (MODSEQ (%d) BODY[HEADER.FIELDS (SUBJECT)] {15}\r\nSubject: m1\r\n" % modseq in out
    assert modseq > 1


def test_long_answers_go_out_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past BATCH rows (index data) or CONTENT_BATCH messages, FETCH yields to
    the reactor; past FLUSH_AT buffered octets it waits for the client."""
    monkeypatch.setattr(fetching, "BATCH", 2)
    monkeypatch.setattr(fetching, "CONTENT_BATCH", 2)
    monkeypatch.setattr(fetching, "FLUSH_AT", 1)
    _, c = selected(5)
    flags = c.line("f FETCH 1:5 (UID FLAGS)")
    assert numbers(flags) == [1, 2, 3, 4, 5] and flags.endswith(b"f OK FETCH completed.\r\n")
    bodies = c.line("b FETCH 1:5 BODY.PEEK[TEXT]")
    assert numbers(bodies) == [1, 2, 3, 4, 5] and bodies.endswith(b"b OK FETCH completed.\r\n")
    assert [int(n) for n in re.findall(rb"body (\d)", bodies)] == [1, 2, 3, 4, 5]


def test_exact_size_of_the_seven_bit_view() -> None:
    """MS-STANXIMAP V0007: under seven_bit_output the sizes describe the 7-bit
    re-encoding of an 8-bit message, which is read to measure it."""
    harness = Harness("exchange2010", {"seven_bit_output": True, "exact_rfc822_size": True})
    harness.deliver(
        b"Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGr\xc3\xbc\xc3\x9fe\r\n"
    )
    c = harness.imap()
    c.login()
    c.line("s SELECT INBOX")
    size = int(re.search(rb"RFC822\.SIZE (\d+)", c.line("f FETCH 1 RFC822.SIZE")).group(1))
    whole = c.line("b FETCH 1 BODY.PEEK[]")
    assert int(re.search(rb"BODY\[\] \{(\d+)\}", whole).group(1)) == size
    assert b"\xc3" not in whole


def test_without_a_shared_cache_structure_items_are_rendered_each_time() -> None:
    harness = Harness("exchange2010", cache=None)  # an embedder's context without a cache
    harness.deliver(message(1))
    c = harness.imap()
    c.login()
    c.line("s SELECT INBOX")
    first = c.line("f FETCH 1 (ENVELOPE BODYSTRUCTURE)")
    assert first.startswith(b"* 1 FETCH (ENVELOPE (") and first == c.line(
        "f FETCH 1 (ENVELOPE BODYSTRUCTURE)"
    )


HEADER_ITEMS = (
    "BODY.PEEK[HEADER.FIELDS (Subject X-A)] BODY.PEEK[HEADER] RFC822.HEADER "
    "BODY.PEEK[HEADER.FIELDS.NOT (Subject)]"
)


def large_messages() -> list[bytes]:
    """Messages over HEADER_READ_THRESHOLD whose empty line falls anywhere,
    with CRLF or bare LF, or that have none at all."""
    body = b"line of the body\r\n" * 4000
    return [
        b"Subject: one\r\nX-A: a\r\n folded\r\nFrom: b@example.org\r\n\r\n" + body,
        b"Subject: lf\nX-A: a\n\n" + body.replace(b"\r\n", b"\n"),
        b"X-Long: " + b"x" * 40 + b"\r\nSubject: late\r\n\r\n" + body,
        b"\r\n" + body,  # an empty header
        b"Subject: no body\r\nX-A: a\r\n" + b"X-B: b\r\n" * 6000,  # no empty line at all
        b"X-A: fields everywhere\r\n"
        + b"X-Filler: y\r\n" * 7
        + b"Subject: s\r\n\r\nSubject: in the body\r\n"
        + body,
    ]


@pytest.mark.parametrize("chunk", [3, 7, 13, 16 * 1024])
def test_header_items_of_large_messages_read_only_the_header(
    monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """A FETCH of header items only reads a large message up to its empty
    line (in chunks: the line may span two) and answers what reading all of
    it answers."""
    harness = Harness("exchange2010", {"seven_bit_output": False})
    for data in large_messages():
        harness.deliver(data)
    c = harness.imap()
    c.login()
    c.line("s SELECT INBOX")
    monkeypatch.setattr(content, "HEADER_READ_THRESHOLD", 1 << 30)  # read whole
    whole = c.line(f"w FETCH 1:* ({HEADER_ITEMS})")
    monkeypatch.setattr(content, "HEADER_READ_THRESHOLD", 64 * 1024)
    monkeypatch.setattr(content, "HEADER_CHUNK", chunk)
    mailbox = harness.mailbox()
    read: list[int] = []
    open_message = mailbox.open_message

    def counted(uid: int) -> object:
        reader = open_message(uid).result  # the memory store answers at once
        original = reader.read

        def read_counted(size: int) -> object:
            return original(size).addCallback(lambda data: read.append(len(data)) or data)

        reader.read = read_counted
        return reader

    monkeypatch.setattr(mailbox, "open_message", counted)
    assert c.line(f"w FETCH 1:* ({HEADER_ITEMS})") == whole
    assert numbers(whole) == [1, 2, 3, 4, 5, 6] and whole.endswith(b"w OK FETCH completed.\r\n")
    total = sum(len(data) for data in large_messages())
    assert 0 < sum(read) < total / 2  # most of it is the bodies, never read
    assert b"Subject: in the body" not in whole


def test_header_items_of_a_message_expunged_meanwhile(monkeypatch: pytest.MonkeyPatch) -> None:
    harness = Harness("exchange2010", {"seven_bit_output": False})
    for data in large_messages()[:3]:
        harness.deliver(data)
    c = harness.imap()
    c.login()
    c.line("s SELECT INBOX")
    mailbox = harness.mailbox()
    open_message = mailbox.open_message

    def gone_for_2(uid: int) -> object:
        if uid == 2:
            raise NoSuchMessage("gone")
        return open_message(uid)

    monkeypatch.setattr(mailbox, "open_message", gone_for_2)
    out = c.line("f FETCH 1:3 (BODY.PEEK[HEADER.FIELDS (Subject)])")
    assert numbers(out) == [1, 3] and out.endswith(b"f OK FETCH completed.\r\n")
