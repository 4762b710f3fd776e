"""A 50 MB message never stalls other clients (the core redesign's acceptance test).

One client FETCHes BODYSTRUCTURE, BODY[1] and BODY[HEADER] and SEARCHes
BODY of a 50 MB message while another keeps sending NOOP.  Checked without
clocks:

- every message-file read and every parse of more than 64 KB happens off
  the reactor thread (the store's reads and the MIME parser are watched);
  only small files the kernel hands over without waiting for the disk
  (exchmail.store.cached, at most 256 KB) are read on it;
- the other client's NOOPs are answered while the big commands are still
  running (so the reactor kept serving it).
"""

from __future__ import annotations

import base64
import imaplib
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSWORD, in_reactor, start_server

from exchmail.mime import message as mime_message
from exchmail.store.cached import MAX_CACHED_READ
from exchmail.store.maildir import mailbox as maildir_mailbox

INLINE_LIMIT = 64 * 1024


def big_message() -> bytes:
    blob = base64.encodebytes(bytes(range(256)) * (35 * 1024 * 4))  # ~50 MB of base64
    text = b"Hello,\r\n\r\nthe report is attached; the magic word is xylophone.\r\n"
    return (
        b"From: a@example.org\r\nTo: b@example.org\r\nSubject: big\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
        b"--BB\r\nContent-Type: text/plain\r\n\r\n"
        + text
        + b"--BB\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + blob.replace(b"\n", b"\r\n") + b"\r\n--BB--\r\n"
    )


class Watch:
    """Records the threads that read message files and parse big messages."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, int, int]] = []
        original_init = mime_message.ParsedMessage.__init__
        watch = self

        def parsed_init(self: Any, data: bytes, *args: Any, **kwargs: Any) -> None:
            watch.calls.append(("parse", len(data), threading.get_ident()))
            original_init(self, data, *args, **kwargs)

        monkeypatch.setattr(mime_message.ParsedMessage, "__init__", parsed_init)
        for hook in ("_read_blocking", "_open_blocking", "_source_blocking", "_read_cached"):
            original = getattr(maildir_mailbox.MaildirMailbox, hook)
            monkeypatch.setattr(maildir_mailbox.MaildirMailbox, hook, self._recording(hook, original))

    def _recording(self, name: str, original: Any) -> Any:
        def recorded(mailbox: Any, handle: Any) -> Any:
            outcome = original(mailbox, handle)
            if outcome is not None:  # (a cached read that answered None read nothing)
                self.calls.append((name, handle[1], threading.get_ident()))
            return outcome

        return recorded


@pytest.mark.slow
def test_big_message_blocks_no_other_client(
    reactor_thread: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_server(tmp_path, profile_overrides={"seven_bit_output": False})
    try:
        reactor_ident = in_reactor(threading.get_ident)
        first = imaplib.IMAP4("127.0.0.1", server.imap_port)
        first.login("alice", PASSWORD)
        message = big_message()
        assert len(message) > 50_000_000  # "a 50 MB message" (max_literal_size is 50 MiB)
        assert first.append("INBOX", None, None, message)[0] == "OK"
        first.select("INBOX")
        other = imaplib.IMAP4("127.0.0.1", server.imap_port)
        other.login("bob", PASSWORD)
        watch = Watch(monkeypatch)

        busy = threading.Event()
        answered_while_busy = []
        results: dict[str, Any] = {}

        def big_commands() -> None:
            busy.set()
            results["fetch"] = first.fetch("1", "(BODYSTRUCTURE BODY[HEADER] BODY.PEEK[1])")
            results["search"] = first.search(None, "BODY", "xylophone")
            busy.clear()

        worker = threading.Thread(target=big_commands)
        worker.start()
        busy.wait(10)
        for _ in range(2000):  # bounded: the big commands take seconds at most
            if not busy.is_set():
                break
            typ, _ = other.noop()
            assert typ == "OK"
            if busy.is_set():
                answered_while_busy.append(True)
        worker.join(120)
        assert not worker.is_alive()
        assert results["fetch"][0] == "OK" and b"APPLICATION" in results["fetch"][1][0][0]
        assert results["search"] == ("OK", [b"1"])
        assert answered_while_busy, "no NOOP was answered while the big commands ran"
        on_reactor = [
            (what, size)
            for what, size, ident in watch.calls
            if ident == reactor_ident
            and (size > MAX_CACHED_READ if what == "_read_cached" else what != "parse" or size > INLINE_LIMIT)
        ]
        assert on_reactor == [], on_reactor
        assert any(what == "parse" and size > INLINE_LIMIT for what, size, _ in watch.calls)
        first.logout()
        other.logout()
    finally:
        server.stop()
