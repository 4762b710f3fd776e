"""Real clients against the ``modern`` profile over loopback: IMAPClient (MOVE,
UNSELECT, ID, ENABLE, SPECIAL-USE, QUOTA, LIST-STATUS), curl, mbsync (isync)
with ``Sync All``, and mutt driven on a pseudo-terminal.

The protocol log shows which commands the clients chose (IMAPClient's
``move`` sends UID MOVE where the server offers it).
"""

from __future__ import annotations

import csv
import imaplib
import os
import pty
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import PASSWORD, start_server
from imapclient import IMAPClient

from exchmail.profile import load_profile
from exchmail.service.config import LoggingConfig, QuotaConfig

TIMEOUT = 10


def message(subject: str) -> bytes:
    return (
        f"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: {subject}\r\n"
        f"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <{subject}@example.com>\r\n"
        f"\r\nbody of {subject}\r\n"
    ).encode()


@pytest.fixture
def modern(reactor_thread, tmp_path):
    """A server of the modern profile with a 1 MB quota and protocol logs."""
    server = start_server(
        tmp_path,
        config_changes={
            "profile": load_profile("modern"),
            "quota": QuotaConfig(limit=1 << 20),
            "logging": LoggingConfig(protocol_log=True, protocol_log_dir=tmp_path / "logs"),
        },
    )
    yield server
    if server.service.running:  # transcript() may have stopped it
        server.stop()


def transcript(server, tmp_path: Path) -> str:
    """The IMAP protocol log so far (the server is stopped to flush it)."""
    server.stop()
    return "".join(p.read_text() for p in sorted((tmp_path / "logs").glob("imap-*.log")))


def client_commands(log: str) -> list[str]:
    """What the clients sent, from a protocol log (CSV: the event, then the text)."""
    rows = csv.reader(line for line in log.splitlines() if not line.startswith("#"))
    return [row[6] for row in rows if len(row) == 7 and row[5] == "<"]


def seed(server, box: str, *subjects: str) -> None:
    m = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=TIMEOUT)
    m.login("alice", PASSWORD)
    for subject in subjects:
        assert m.append(box, None, None, message(subject))[0] == "OK"
    m.logout()


def subjects(server, box: str) -> list[str]:
    with IMAPClient("127.0.0.1", server.imap_port, ssl=False, timeout=TIMEOUT) as c:
        c.login("alice", PASSWORD)
        c.select_folder(box, readonly=True)
        data = c.fetch(c.search(), [b"BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
        return sorted(v[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().strip()[9:] for v in data.values())


# -- IMAPClient ---------------------------------------------------------------------------------
def test_imapclient_modern_session(modern, tmp_path):
    seed(modern, "INBOX", "one", "two", "three")
    with IMAPClient("127.0.0.1", modern.imap_port, ssl=False, timeout=TIMEOUT) as c:
        (fields,) = c.id_({"name": "IMAPClient-test", "version": "1"})
        assert dict(zip(fields[::2], fields[1::2], strict=True)) == {b"name": b"exchmail"}
        c.login("alice", PASSWORD)
        caps = set(c.capabilities())
        assert {
            b"MOVE",
            b"UNSELECT",
            b"ID",
            b"ENABLE",
            b"SPECIAL-USE",
            b"LIST-EXTENDED",
            b"LIST-STATUS",
            b"STATUS=SIZE",
            b"QUOTA",
        } <= caps
        assert c.enable("X-UNKNOWN") == []  # nothing it cannot do is enabled
        folders = {name: flags for flags, _, name in c.list_folders()}
        assert folders["Sent"] == (b"\\HasNoChildren", b"\\Sent")
        assert c.find_special_folder(b"\\Sent") == "Sent"
        assert c.find_special_folder(b"\\Trash") == "Trash"
        status = c.folder_status("INBOX", [b"MESSAGES", b"SIZE"])
        assert status[b"MESSAGES"] == 3 and status[b"SIZE"] == sum(
            len(message(s)) for s in ("one", "two", "three")
        )
        c.select_folder("INBOX")
        uids = c.search(["SUBJECT", "two"])
        c.move(uids, "Archive")
        assert sorted(c.search()) == [1, 3]
        c.unselect_folder()
        roots, quotas = c.get_quota_root("INBOX")
        assert roots.quota_roots == [""] and quotas[0].resource == "STORAGE"
        assert quotas[0].limit == 1024
    assert subjects(modern, "Archive") == ["two"]
    assert subjects(modern, "INBOX") == ["one", "three"]
    sent = client_commands(transcript(modern, tmp_path))
    assert any(" UID MOVE " in line for line in sent) and any(" UNSELECT" in line for line in sent)
    assert not any("EXPUNGE" in line for line in sent)


def test_imapclient_list_extended_and_status(modern):
    with IMAPClient("127.0.0.1", modern.imap_port, ssl=False, timeout=TIMEOUT) as c:
        c.login("alice", PASSWORD)
        c.create_folder("Projects/2024")
        c.subscribe_folder("Projects/2024")
        typ, data = c._imap._simple_command(  # IMAPClient has no LIST-EXTENDED call
            "LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', '"%"', "RETURN", "(CHILDREN)"
        )
        assert typ == "OK"
        lines = c._imap.untagged_responses.pop("LIST", [])
        assert lines == [b'(\\HasChildren) "/" "Projects" ("CHILDINFO" ("SUBSCRIBED"))']


# -- curl -------------------------------------------------------------------------------------------
CURL = shutil.which("curl")


def curl(server, path: str, *args: str) -> str:
    """curl's output, with the server's lines from its trace (``< * ...``) after it."""
    proc = subprocess.run(
        [
            CURL,
            "-sS",
            "-v",
            "--max-time",
            "10",
            "--user",
            f"alice:{PASSWORD}",
            *args,
            f"imap://127.0.0.1:{server.imap_port}{path}",
        ],
        capture_output=True,
        timeout=15,
    )
    assert proc.returncode == 0, proc.stderr
    trace = [line[2:] for line in proc.stderr.decode().splitlines() if line.startswith("< ")]
    return proc.stdout.decode() + "\n".join(trace)


@pytest.mark.skipif(CURL is None, reason="curl not installed")
def test_curl_special_use_move_and_extensions(modern):
    seed(modern, "INBOX", "first", "second")
    listing = curl(modern, "/")
    assert '* LIST (\\HasNoChildren \\Sent) "/" "Sent"' in listing
    assert "* LIST (\\HasNoChildren \\Trash)" in listing
    assert '"Archive"' in curl(modern, "/", "-X", 'LIST (SPECIAL-USE) "" "*"')
    assert "* ID (" in curl(modern, "/", "-X", 'ID ("name" "curl")')
    assert '* QUOTA "" (STORAGE ' in curl(modern, "/", "-X", "GETQUOTAROOT INBOX")
    assert "SIZE " in curl(modern, "/", "-X", "STATUS INBOX (MESSAGES SIZE)")
    out = curl(modern, "/INBOX", "-X", "MOVE 1 Trash")  # curl selects INBOX first
    assert "* OK [COPYUID " in out and "* 1 EXPUNGE" in out
    assert subjects(modern, "Trash") == ["first"]
    assert subjects(modern, "INBOX") == ["second"]


# -- mbsync (isync) ---------------------------------------------------------------------------------------
MBSYNC = shutil.which("mbsync")


def mbsync(config: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([MBSYNC, "-c", str(config), "-a"], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.slow(waits=True)
@pytest.mark.skipif(MBSYNC is None, reason="mbsync (Debian isync) not installed")
def test_mbsync_sync_all_both_ways(modern, tmp_path):
    seed(modern, "INBOX", "a", "b", "c")
    local = tmp_path / "local"
    local.mkdir()
    config = tmp_path / "mbsyncrc"
    config.write_text(f"""IMAPAccount acct
Host 127.0.0.1
Port {modern.imap_port}
User alice
Pass "{PASSWORD}"
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account acct

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
Sync All
SyncState *
""")
    mbsync(config)
    assert len(os.listdir(local / "INBOX" / "new")) == 3
    assert {"Sent", "Drafts", "Trash", "Junk", "Archive"} <= set(os.listdir(local))
    # Locally: delete one message, file a new one in Archive; then sync again.
    victim = sorted(os.listdir(local / "INBOX" / "new"))[0]
    os.rename(local / "INBOX" / "new" / victim, local / "INBOX" / "cur" / (victim + "T"))
    (local / "Archive" / "new" / "100.local.host").write_bytes(message("filed").replace(b"\r\n", b"\n"))
    time.sleep(1)  # mbsync skips a maildir changed within the last second
    mbsync(config)
    assert len(subjects(modern, "INBOX")) == 2
    assert subjects(modern, "Archive") == ["filed"]
    mbsync(config)  # nothing left to do, nothing breaks
    assert len(os.listdir(local / "Archive" / "new") + os.listdir(local / "Archive" / "cur")) == 1


# -- mutt --------------------------------------------------------------------------------------------------
MUTT = shutil.which("mutt")


def run_on_pty(argv: list[str], env: dict[str, str], timeout: float = 30) -> tuple[int, bytes]:
    """Run a full-screen program on a pseudo-terminal until it exits (bounded)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: only exec
        os.execvpe(argv[0], argv, env)
    output = b""
    deadline = time.monotonic() + timeout
    status = None
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    chunk = b""
                output += chunk
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status = code
                break
    finally:
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    assert status is not None, f"mutt did not finish: {output[-500:]!r}"
    return os.waitstatus_to_exitcode(status), output


@pytest.mark.skipif(MUTT is None, reason="mutt not installed")
def test_mutt_saves_a_message_to_archive(modern, tmp_path):
    """mutt reads INBOX, saves the message tagged by subject to =Archive and
    quits, all from ``push`` in its muttrc.  Mutt 2.2 asks for UTF8=ACCEPT
    with ENABLE and saves with UID COPY, \\Deleted and EXPUNGE (it has no MOVE)."""
    seed(modern, "INBOX", "keep", "file-me")
    muttrc = tmp_path / "muttrc"
    muttrc.write_text(f"""set imap_authenticators="plain:login"
set folder="imap://alice@127.0.0.1:{modern.imap_port}/"
set imap_user=alice
set imap_pass="{PASSWORD}"
set spoolfile="+INBOX"
set ssl_starttls=no
set ssl_force_tls=no
set record=""
set header_cache=""
set message_cachedir=""
set confirmappend=no
set confirmcreate=no
set delete=yes
set move=no
set quit=yes
set wait_key=no
push "<tag-pattern>~s file-me<enter><tag-prefix><save-message>=Archive<enter><sync-mailbox><quit>"
""")
    env = {"TERM": "vt100", "HOME": str(tmp_path), "PATH": os.environ.get("PATH", "/usr/bin")}
    code, output = run_on_pty([MUTT, "-n", "-F", str(muttrc)], env)
    assert code == 0, output[-500:]
    assert subjects(modern, "Archive") == ["file-me"]
    assert subjects(modern, "INBOX") == ["keep"]
    sent = client_commands(transcript(modern, tmp_path))
    assert any(" ENABLE UTF8=ACCEPT" in line for line in sent), "\n".join(sent)
    assert any(' UID COPY 2 "Archive"' in line for line in sent), "\n".join(sent)
