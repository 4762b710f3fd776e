"""``exchmail import`` / ``exchmail export`` with real files, real programs and a real server.

- a 2,000-message corpus written by Python's ``mailbox`` module, imported
  in a tmux pane whose screen shows the progress bar, then again (idempotent);
- an mbox written by mutt (driven in tmux) imports like the original;
- Maildir and mbox exports import back with folders, flags, keywords, dates, order;
- a remote account over ``imaps://`` (exchmail itself, with TLS);
- a bad message is reported and skipped.

The tmux test runs the ``exchmail`` command as a program on a terminal;
the others call it in this process (the ``exchmail`` fixture).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import add_accounts
from corpus import make_mbox

from exchmail.cli import main
from exchmail.store.maildir import MaildirStore
from exchmail.testing import result

EXCHMAIL = [sys.executable, "-c", "import sys; from exchmail.cli import main; sys.exit(main())"]
tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
mutt = pytest.mark.skipif(shutil.which("mutt") is None, reason="mutt is not installed")
_tmux_servers = itertools.count()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.mbox"
    make_mbox(path)
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("small") / "small.mbox"
    make_mbox(path, count=40, seed=7, big=1)
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    add_accounts(data / "users", ("alice", "bob", "carol"), "pw")
    path = tmp_path / "exchmail.toml"
    path.write_text('[server]\ndata_dir = "data"\n')
    return path


@dataclass
class Done:
    """What an ``exchmail`` command did."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def exchmail(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Done]:
    """Runs ``exchmail COMMAND --config CONFIG ARGS...`` in this process.

    The command's code is the same as in a process of its own, which the
    tmux test runs (and tests/ops/test_ops_cli.py, tests/store/test_postgresql_cli.py);
    each such process spent half a second of CPU starting up.
    """

    def run(config: Path, *argv: str, env: dict[str, str] | None = None) -> Done:
        with monkeypatch.context() as patch:
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            status = main([*argv[:1], "--config", str(config), *argv[1:]])
        out, err = capsys.readouterr()
        return Done(status, out, err)

    return run


def snapshot(
    config: Path, user: str, data: Path | None = None
) -> dict[str, list[tuple[frozenset[str], float, bytes]]]:
    """Every folder of ``user`` (under ``config``'s data folder, or ``data``):
    (flags, internal date, content) in UID order."""
    store = MaildirStore((data or config.parent / "data") / "mail")
    account = result(store.account(user))
    found = {}
    for name in sorted(result(account.list_mailboxes())):
        box = result(account.mailbox(name))
        found[name] = [
            (box.message(uid).flags, box.message(uid).internal_date, result(box.read_message(uid)))
            for uid in box.uids()
        ]
    return found


def message_ids(messages: list[tuple[frozenset[str], float, bytes]]) -> list[bytes]:
    return [re.search(rb"Message-ID: (<[^>]+>)", content).group(1) for _, _, content in messages]


def run_in_tmux(command: str, done_marker: str, timeout: float = 300) -> list[str]:
    """Run ``command`` in a detached tmux pane (a terminal); the screens captured
    while it ran, the last one after ``done_marker`` appeared."""
    session = f"exchmail-test-{os.getpid()}-{next(_tmux_servers)}"
    # A tmux server of its own (-L), also for each call: another xdist
    # worker's test ending its last session cannot take this one's server
    # down, and a server still exiting after the previous call's kill-server
    # cannot make this call's new-session fail ("server exited unexpectedly").
    tmux_cmd = ["tmux", "-L", session]
    subprocess.run(
        [*tmux_cmd, "new-session", "-d", "-s", session, "-x", "150", "-y", "40", f"{command}; sleep 600"],
        check=True,
    )
    screens = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = subprocess.run(
                [*tmux_cmd, "capture-pane", "-p", "-t", session], capture_output=True, text=True
            ).stdout
            screens.append(screen)
            if done_marker in screen:
                return screens
            time.sleep(0.2)
        raise AssertionError(f"{command!r} did not finish; screen:\n{screens[-1]}")
    finally:
        subprocess.run([*tmux_cmd, "kill-server"], capture_output=True)


@pytest.mark.slow(waits=True)
@tmux
def test_2000_messages_with_a_progress_bar_in_tmux_then_idempotent(
    corpus: Path, config: Path, exchmail: Callable[..., Done]
) -> None:
    exe = " ".join(f"'{part}'" for part in EXCHMAIL)
    screens = run_in_tmux(
        f"cd '{config.parent}' && {exe} import --config '{config}' alice '{corpus}'; echo EXIT=$?", "EXIT="
    )
    final = screens[-1]
    # tqdm's bar: percentage, bar, octets, rate and the message count.
    bar = re.search(r"import: 100%\|.+\| [\d.]+M/[\d.]+M \[.*B/s, 2000/2000 messages\]", final)
    assert bar, final
    assert "2000 imported" in final and "0 failed" in final and "EXIT=0" in final
    assert any(re.search(r"import: +\d+%\|.*\d+/2000 messages", s) for s in screens)

    (inbox,) = snapshot(config, "alice").values()
    assert len(inbox) == 2000
    assert message_ids(inbox) == [f"<corpus-{i}@example.com>".encode() for i in range(2000)]
    assert inbox[0][1] == 1_700_000_000 and inbox[1999][1] == 1_700_000_000 + 1999 * 3600
    assert sum(1 for flags, _, _ in inbox if "\\Seen" in flags) > 400
    assert any({"$Label1", "work"} <= flags for flags, _, _ in inbox)
    assert all(b"\nStatus:" not in c and b"X-Keywords" not in c for _, _, c in inbox)
    assert max(len(c) for _, _, c in inbox) > 2 * 1024 * 1024

    again = exchmail(config, "import", "alice", str(corpus))
    assert again.returncode == 0, again.stderr
    assert "0 imported (0 octets), 2000 already there, 0 failed" in again.stderr
    assert "import: 2000/2000 messages" in again.stderr  # plain lines off a terminal
    assert len(snapshot(config, "alice")["INBOX"]) == 2000


@pytest.mark.slow(waits=True)
@tmux
@mutt
def test_an_mbox_written_by_mutt(
    small: Path, config: Path, tmp_path: Path, exchmail: Callable[..., Done]
) -> None:
    written = tmp_path / "mutt.mbox"
    # folder: an existing one.  Mutt asks "~/Mail does not exist. Create it?"
    # at start-up when $folder is missing, and that prompt took the first
    # pushed key (<tag-pattern>), so only the current message was copied:
    # the test failed on a machine without ~/Mail, once, until mutt had made it.
    setup = (
        f"set folder={tmp_path} mbox_type=mbox confirmappend=no confirmcreate=no mark_old=no "
        "auto_tag=yes quit=yes delete=no"
    )
    push = f'push "<tag-pattern>~A<enter><copy-message>{written}<enter><quit>"'
    # -R: the source stays as it is (read-only).  HOME: nothing of the
    # machine's home folder is used or made.
    screens = run_in_tmux(
        f"HOME='{tmp_path}' mutt -n -R -F /dev/null -f '{small}' -e '{setup}' -e '{push}'; echo EXIT=$?",
        "EXIT=",
        timeout=60,
    )
    assert written.read_bytes().count(b"\nFrom ") + 1 == 40, screens[-1]
    assert exchmail(config, "import", "bob", str(small)).returncode == 0
    assert exchmail(config, "import", "carol", str(written)).returncode == 0
    original, by_mutt = snapshot(config, "bob")["INBOX"], snapshot(config, "carol")["INBOX"]
    assert len(by_mutt) == 40
    for (flags, date, content), (mutt_flags, mutt_date, mutt_content) in zip(original, by_mutt, strict=True):
        # mutt's copy keeps every flag but \Deleted (a deletion is not copied along).
        assert (mutt_flags, mutt_date) == (flags - {"\\Deleted"}, date)
        # mutt adds Content-Length (dropped, like Status) and Lines (kept).
        assert re.sub(rb"Lines: \d+\r\n", b"", mutt_content) == content


@pytest.mark.slow
def test_maildir_and_mbox_exports_import_back(
    small: Path, config: Path, tmp_path: Path, exchmail: Callable[..., Done]
) -> None:
    assert exchmail(config, "import", "alice", str(small)).returncode == 0
    assert exchmail(config, "import", "--folder", "Archive/2024", "alice", str(small)).returncode == 0
    before = snapshot(config, "alice")
    assert set(before) == {"INBOX", "Archive", "Archive/2024"}
    for fmt, user in (("maildir", "bob"), ("mbox", "carol")):
        dest = tmp_path / fmt
        done = exchmail(config, "export", "--format", fmt, "alice", str(dest))
        assert done.returncode == 0, done.stderr
        assert "80 exported" in done.stderr
        done = exchmail(config, "import", user, str(dest))
        assert done.returncode == 0 and "80 imported" in done.stderr, done.stderr
        after = snapshot(config, user)
        assert {k: v for k, v in after.items() if v} == {k: v for k, v in before.items() if v}
    assert (tmp_path / "mbox" / "Archive" / "2024.mbox").exists()
    assert (tmp_path / "maildir" / ".Archive.2024" / "cur").is_dir()


def test_bad_messages_are_reported_and_skipped(
    config: Path, tmp_path: Path, exchmail: Callable[..., Done]
) -> None:
    mbox = tmp_path / "bad.mbox"
    mbox.write_bytes(
        b"From a Mon Jan  1 00:00:00 2024\nSubject: one\n\nok\n\n"
        b"From a Mon Jan  1 00:00:01 2024\nSubject: two\nX-Keywords: bad\\kw\n\nno\n\n"
        b"From a Mon Jan  1 00:00:02 2024\nSubject: three\n\nok\n"
    )
    done = exchmail(config, "import", "alice", str(mbox))
    assert done.returncode == 1
    assert "bad.mbox message 2: StoreError: invalid keyword" in done.stderr
    assert "2 imported" in done.stderr and "1 failed" in done.stderr
    assert len(snapshot(config, "alice")["INBOX"]) == 2


def test_unknown_user_and_missing_source(config: Path, tmp_path: Path, exchmail: Callable[..., Done]) -> None:
    done = exchmail(config, "import", "nobody", str(tmp_path))
    assert done.returncode == 1 and "no such user 'nobody'" in done.stderr
    done = exchmail(config, "import", "alice", str(tmp_path / "nothere"))
    assert done.returncode == 2 and "no such file or folder" in done.stderr


@pytest.fixture
def imaps_server(reactor_thread: Any, tmp_path: Path) -> Iterator[tuple[Any, int, Path]]:
    from conftest import in_reactor, start_server

    from exchmail.service.config import IMAPConfig
    from exchmail.tls.config import TLSConfig, TLSIdentity
    from exchmail.tls.selfsigned import make_self_signed

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make_self_signed("localhost", cert, key)
    loopback = "tcp:0:interface=127.0.0.1"
    # The remote sends messages as stored (exchange2010 re-encodes 8-bit ones
    # to 7 bits and hides keywords, as Exchange does).
    running = start_server(
        tmp_path / "remote",
        profile_overrides={"seven_bit_output": False, "client_keywords": True},
        config_changes={
            "tls": TLSConfig(TLSIdentity(cert, key)),
            "imap": IMAPConfig(listen=(loopback,), tls_listen=(loopback,)),
        },
    )
    (imaps,) = [s for s in running.service if (s.name or "").startswith("imaps:")]
    port = in_reactor(lambda: imaps.listening).getHost().port
    yield running, port, cert
    running.stop()


@pytest.mark.slow
def test_import_from_a_remote_imap_account(
    imaps_server: Any, small: Path, config: Path, exchmail: Callable[..., Done]
) -> None:
    from conftest import PASSWORD

    running, port, cert = imaps_server
    remote = config.parent / "remote.toml"
    remote.write_text(f'[server]\ndata_dir = "{running.data_dir}"\n')
    # Fill the remote account through its store, then read it over imaps://.
    assert exchmail(remote, "import", "--folder", "Projects/Ünïcode", "alice", str(small)).returncode == 0
    url = f"imaps://alice@localhost:{port}"
    env = {"EXCHMAIL_IMPORT_PASSWORD": PASSWORD}
    done = exchmail(config, "import", "--ca-file", str(cert), "bob", url, env=env)
    assert done.returncode == 0, done.stderr
    assert "40 imported" in done.stderr
    imported = snapshot(config, "bob")
    assert [f for f, v in imported.items() if v] == ["Projects/Ünïcode"]
    source = snapshot(remote, "alice", running.data_dir)["Projects/Ünïcode"]
    assert [(f, d, c) for f, d, c in imported["Projects/Ünïcode"]] == source
    again = exchmail(config, "import", "--ca-file", str(cert), "bob", url, env=env)
    assert "0 imported (0 octets), 40 already there" in again.stderr
    wrong = exchmail(
        config,
        "import",
        "--ca-file",
        str(cert),
        "bob",
        url,
        env={"EXCHMAIL_IMPORT_PASSWORD": "wrong"},
    )
    assert wrong.returncode == 1 and "cannot log in to localhost" in wrong.stderr
