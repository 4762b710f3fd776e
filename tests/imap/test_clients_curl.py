"""exchmail driven by the curl command-line IMAP client (run via subprocess)."""

from __future__ import annotations

import imaplib
import re
import shutil
import subprocess

import pytest
from conftest import FEATURES, PASSWORD

CURL = shutil.which("curl") or "/usr/bin/curl"

pytestmark = pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed")

PLAIN = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"Subject: Hello world\r\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
    b"\r\n"
    b"Hello body text\r\n"
)

UTF8 = (
    "From: Émile <emile@example.fr>\r\n"
    "Subject: =?utf-8?q?Caf=C3=A9?=\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
    "Crème brûlée au café\r\n"
).encode()


@pytest.fixture
def profile_overrides() -> dict:
    """These tests exercise the RFC-style features (see conftest.FEATURES)."""
    return FEATURES


def curl(
    server, path: str, *args: str, user: str = "alice", password: str = PASSWORD, check: bool = True
) -> subprocess.CompletedProcess:
    url = f"imap://127.0.0.1:{server.imap_port}{path}"
    proc = subprocess.run(
        [CURL, "-sS", "--max-time", "10", "--user", f"{user}:{password}", *args, url],
        capture_output=True,
        timeout=15,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def seed(server, *messages: bytes, folders: tuple[str, ...] = ()) -> None:
    client = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
    try:
        client.login("alice", PASSWORD)
        for folder in folders:
            assert client.create(f'"{folder}"')[0] == "OK"
        for msg in messages:
            assert client.append("INBOX", None, None, msg)[0] == "OK"
    finally:
        client.logout()


def test_curl_lists_folders(server):
    seed(server, folders=("Work/Projects", "Archive"))
    out = curl(server, "/").stdout
    assert out.split(b"\r\n") == [
        b'* LIST (\\HasNoChildren) "/" "INBOX"',
        b'* LIST (\\HasNoChildren) "/" "Archive"',
        b'* LIST (\\HasChildren) "/" "Work"',
        b'* LIST (\\HasNoChildren) "/" "Work/Projects"',
        b"",
    ] or sorted(out.split(b"\r\n")) == sorted(
        [
            b'* LIST (\\HasNoChildren) "/" "INBOX"',
            b'* LIST (\\HasNoChildren) "/" "Archive"',
            b'* LIST (\\HasChildren) "/" "Work"',
            b'* LIST (\\HasNoChildren) "/" "Work/Projects"',
            b"",
        ]
    )


def test_curl_wrong_password_fails(server):
    proc = curl(server, "/", password="wrong", check=False)
    assert proc.returncode == 67  # CURLE_LOGIN_DENIED
    assert proc.stdout == b""


def test_curl_fetches_message_byte_exact(server):
    seed(server, PLAIN, UTF8)
    assert curl(server, "/INBOX;UID=1").stdout == PLAIN
    assert curl(server, "/INBOX;UID=2").stdout == UTF8
    # A section: the body only.
    assert curl(server, "/INBOX;UID=2/;SECTION=TEXT").stdout == UTF8[UTF8.index(b"\r\n\r\n") + 4 :]
    # A missing UID: nothing fetched, curl reports an error.
    proc = curl(server, "/INBOX;UID=99", check=False)
    assert proc.stdout == b""
    assert proc.returncode != 0


def test_curl_examine(server):
    seed(server, PLAIN, PLAIN)
    out = curl(server, "/", "-X", "EXAMINE INBOX").stdout
    lines = out.split(b"\r\n")
    assert b"* 2 EXISTS" in lines
    assert b"* OK [PERMANENTFLAGS ()] Permanent flags" in lines
    assert any(re.fullmatch(rb"\* OK \[UIDVALIDITY \d+\].*", x) for x in lines)
    assert any(re.fullmatch(rb"\* OK \[UIDNEXT 3\].*", x) for x in lines)
    # EXAMINE did not claim \Recent: a later SELECT still sees both as recent.
    client = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
    try:
        client.login("alice", PASSWORD)
        client.select("INBOX")
        assert client.response("RECENT") == ("RECENT", [b"2"])
    finally:
        client.logout()


def test_curl_custom_commands(server):
    seed(server, PLAIN, UTF8)
    out = curl(server, "/INBOX", "-X", "SEARCH SUBJECT hello").stdout
    assert out == b"* SEARCH 1\r\n"
    out = curl(server, "/INBOX?ALL").stdout
    assert out == b"* SEARCH 1 2\r\n"
    out = curl(server, "/", "-X", "STATUS INBOX (MESSAGES UIDNEXT)").stdout
    assert (
        out == b'* STATUS "INBOX" (MESSAGES 2 UIDNEXT 3)\r\n'
        or out == b"* STATUS INBOX (MESSAGES 2 UIDNEXT 3)\r\n"
    )
    out = curl(server, "/", "-X", "NAMESPACE").stdout
    assert out == b'* NAMESPACE (("" "/")) NIL NIL\r\n'


def test_curl_upload_appends(server, tmp_path):
    msg_file = tmp_path / "upload.eml"
    msg_file.write_bytes(UTF8)
    curl(server, "/INBOX", "-T", str(msg_file))
    msg_file.write_bytes(PLAIN)
    curl(server, "/INBOX", "-T", str(msg_file))
    assert curl(server, "/INBOX;UID=1").stdout == UTF8
    assert curl(server, "/INBOX;UID=2").stdout == PLAIN
    client = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
    try:
        client.login("alice", PASSWORD)
        typ, data = client.status("INBOX", "(MESSAGES UIDNEXT)")
        assert data == [b'"INBOX" (MESSAGES 2 UIDNEXT 3)']
        client.select("INBOX")
        typ, data = client.fetch("1:2", "(BODY.PEEK[])")
        assert [d[1] for d in data if isinstance(d, tuple)] == [UTF8, PLAIN]
    finally:
        client.logout()


def test_curl_upload_to_missing_folder_fails(server, tmp_path):
    msg_file = tmp_path / "upload.eml"
    msg_file.write_bytes(PLAIN)
    proc = curl(server, "/NoSuchFolder", "-T", str(msg_file), check=False)
    assert proc.returncode != 0
    client = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
    try:
        client.login("alice", PASSWORD)
        assert client.status('"NoSuchFolder"', "(MESSAGES)")[0] == "NO"
    finally:
        client.logout()
