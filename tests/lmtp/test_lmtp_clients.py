"""LMTP over real sockets with real clients: smtplib.LMTP, swaks, a raw socket.

The server is a complete exchmail service (Maildir store, accounts file)
started on loopback ports and a Unix socket.
"""

from __future__ import annotations

import os
import shutil
import smtplib
import socket
import subprocess
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lmtp_support import LMTPServerUnderTest, lmtp_server

MESSAGE = b"From: sender@example.com\r\nTo: alice@example.org\r\nSubject: test\r\n\r\nHello.\r\n"


@pytest.fixture
def lmtp(reactor_thread: Any, tmp_path: Path) -> Iterator[LMTPServerUnderTest]:
    yield from lmtp_server(tmp_path)


def lmtp_send(
    client: smtplib.LMTP, sender: str, recipients: list[str], message: bytes
) -> tuple[dict[str, int], list[tuple[int, bytes]]]:
    """One LMTP transaction: the RCPT codes, and the replies after DATA (one per
    accepted recipient).  smtplib's ``sendmail`` reads only one reply after
    DATA, as SMTP has, so LMTP clients read the rest themselves."""
    client.ehlo_or_helo_if_needed()
    assert client.mail(sender)[0] == 250
    codes = {r: client.rcpt(r)[0] for r in recipients}
    assert client.docmd("DATA")[0] == 354
    client.send(message + b".\r\n")
    accepted = [r for r in recipients if codes[r] == 250]
    return codes, [client.getreply() for _ in accepted]


def test_smtplib_many_recipients_one_bad(lmtp: LMTPServerUnderTest) -> None:
    recipients = [
        "alice@example.org",
        "nobody@example.org",
        "bob@example.org",
        "carol@example.org",
        "alice+work@example.org",
    ]
    with smtplib.LMTP("127.0.0.1", lmtp.port) as client:
        client.ehlo_or_helo_if_needed()  # smtplib.LMTP says LHLO
        assert client.has_extn("pipelining") and client.has_extn("enhancedstatuscodes")
        codes, replies = lmtp_send(client, "sender@example.com", recipients, MESSAGE)
        assert codes == {**dict.fromkeys(recipients, 250), "nobody@example.org": 550}
        assert [code for code, _ in replies] == [250, 250, 250, 250]
        assert [text.split(b"<")[1].split(b">")[0] for _, text in replies] == [
            b"alice@example.org",
            b"bob@example.org",
            b"carol@example.org",
            b"alice+work@example.org",
        ]
        assert client.noop()[0] == 250
    assert len(lmtp.messages("alice")) == 2  # +work: no such folder, so INBOX
    assert len(lmtp.messages("bob")) == 1 and len(lmtp.messages("carol")) == 1


def test_smtplib_send_message_to_a_single_recipient(lmtp: LMTPServerUnderTest) -> None:
    # With one recipient, SMTP's one reply is all there is: sendmail works.
    with smtplib.LMTP("127.0.0.1", lmtp.port) as client:
        assert client.sendmail("sender@example.com", ["bob@example.org"], MESSAGE) == {}
    assert len(lmtp.messages("bob")) == 1


def test_smtplib_8bit_body_without_binarymime(lmtp: LMTPServerUnderTest) -> None:
    body = (
        "From: a@example.com\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        "Grüße aus München – ½ € ✓\r\n.starts with a dot\r\n"
    ).encode()
    with smtplib.LMTP(str(lmtp.socket)) as client:  # the Unix socket
        client.ehlo_or_helo_if_needed()
        assert client.has_extn("8bitmime") and not client.has_extn("binarymime")
        assert (
            client.sendmail("a@example.com", ["alice@example.org"], body, mail_options=["BODY=8BITMIME"])
            == {}
        )  # one recipient
    (stored,) = lmtp.messages("alice")
    assert stored.endswith(body)


def test_disconnect_mid_data_keeps_acknowledged_and_drops_the_half(lmtp: LMTPServerUnderTest) -> None:
    with socket.create_connection(("127.0.0.1", lmtp.port)) as raw:
        reader = raw.makefile("rb")
        reader.readline()
        raw.sendall(b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
        while not reader.readline().startswith(b"354"):
            pass
        raw.sendall(b"Subject: first\r\n\r\nacknowledged\r\n.\r\n")
        assert reader.readline().startswith(b"250 2.0.0")
        raw.sendall(b"MAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
        for _ in range(3):
            reader.readline()
        raw.sendall(b"Subject: second\r\n\r\nhalf of a bo")
        time.sleep(0.2)  # let the server take the half before the connection drops
    time.sleep(0.2)
    (stored,) = lmtp.messages("alice")
    assert b"acknowledged" in stored
    mail = lmtp.running.data_dir / "mail" / "alice"
    assert os.listdir(mail / "tmp") == [] and os.listdir(mail / "new") == []


def test_50_mb_message_is_streamed_not_held_in_memory(lmtp: LMTPServerUnderTest) -> None:
    line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\r\n"  # 74 octets
    block = line * 885  # ~64 KB
    blocks = (50 * 1024 * 1024) // len(block) + 1
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with socket.create_connection(("127.0.0.1", lmtp.port)) as raw:
            reader = raw.makefile("rb")
            reader.readline()
            raw.sendall(b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n")
            while not reader.readline().startswith(b"354"):
                pass
            raw.sendall(b"Subject: big\r\n\r\n")
            for _ in range(blocks):
                raw.sendall(block)
            raw.sendall(b".\r\n")
            reply = reader.readline()
            raw.sendall(b"QUIT\r\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reply.startswith(b"250 2.0.0"), reply
    (size,) = lmtp.sizes("bob")
    assert size > blocks * len(block) >= 50 * 1024 * 1024
    # The whole process (client, reactor thread, store threads) never held
    # more than a few MB at once: the message went to disk as it came.
    assert peak < 8 * 1024 * 1024, f"peak {peak} octets"


swaks = pytest.mark.skipif(
    shutil.which("swaks") is None, reason="swaks is not installed (apt-get install swaks)"
)


@swaks
def test_swaks_over_tcp_and_unix_socket(lmtp: LMTPServerUnderTest) -> None:
    common = [
        "swaks",
        "--protocol",
        "LMTP",
        "--from",
        "sender@example.com",
        "--header",
        "Subject: from swaks",
        "--body",
        "Hello from swaks.",
    ]
    tcp = subprocess.run(
        [
            *common,
            "--to",
            "alice@example.org,bob@example.org",
            "--server",
            "127.0.0.1",
            "--port",
            str(lmtp.port),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tcp.returncode == 0, tcp.stdout + tcp.stderr
    assert tcp.stdout.count("250 2.0.0") == 2
    unix = subprocess.run(
        [*common, "--to", "carol@example.org", "--socket", str(lmtp.socket)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unix.returncode == 0, unix.stdout + unix.stderr
    for user in ("alice", "bob", "carol"):
        (stored,) = lmtp.messages(user)
        assert b"Subject: from swaks" in stored and b"Hello from swaks." in stored


@swaks
def test_swaks_unknown_recipient_fails(lmtp: LMTPServerUnderTest) -> None:
    done = subprocess.run(
        [
            "swaks",
            "--protocol",
            "LMTP",
            "--to",
            "nobody@example.org",
            "--server",
            "127.0.0.1",
            "--port",
            str(lmtp.port),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "550 5.1.1" in done.stdout
