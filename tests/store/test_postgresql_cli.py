"""``exchmail db init|upgrade|status`` and ``exchmail migrate --from maildir --to postgresql``,
run as commands against a fresh database of the private cluster."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from exchmail.cli import main
from exchmail.store.maildir import MaildirStore
from exchmail.store.postgresql import schema
from exchmail.store.postgresql.db import Database
from exchmail.store.postgresql.store import PostgreSQLStore
from exchmail.testing import call

EXCHMAIL = [sys.executable, "-c", "import sys; from exchmail.cli import main; sys.exit(main())"]

# Each test runs exchmail commands or twistd in subprocesses.
pytestmark = pytest.mark.slow
_names = iter(range(1, 1_000_000))


@pytest.fixture
def empty_dsn(pg_cluster: Any) -> Iterator[str]:
    """A database without the exchmail schema."""
    name = f"cli{next(_names)}"
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield pg_cluster.dsn.replace("dbname=exchmail", f"dbname={name}")
    with psycopg.connect(pg_cluster.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def exchmail(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXCHMAIL, *argv], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_db_init_upgrade_status(empty_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``exchmail db``, called in this process (the command-line plumbing is the
    same as in a subprocess, which the other tests here and tests/ops run)."""

    def db(*argv: str) -> tuple[int, str, str]:
        status = main(["db", *argv])
        out, err = capsys.readouterr()
        return status, out, err

    config = tmp_path / "exchmail.toml"
    config.write_text(f'[store]\nbackend = "postgresql"\ndsn = "{empty_dsn}"\n')
    status, out, _ = db("status", "--config", str(config))
    assert status == 1 and "no schema" in out
    status, out, err = db("init", "--config", str(config))
    assert status == 0, err
    assert f"schema version {schema.LATEST}" in out
    status, _, err = db("init", "--dsn", empty_dsn)
    assert status == 1 and "already" in err
    assert db("upgrade", "--dsn", empty_dsn)[0] == 0
    status, out, _ = db("status", "--dsn", empty_dsn)
    assert status == 0 and f"schema version {schema.LATEST}" in out
    status, _, err = db("status", "--dsn", "host=127.0.0.1 port=1 connect_timeout=2")
    assert status == 1 and "cannot connect" in err


def fill_maildir(data_dir: Path) -> dict[str, list[tuple[frozenset[str], float, bytes]]]:
    """Two accounts' worth of Maildir mail: {user/folder: [(flags, date, content)]}."""
    store = MaildirStore(data_dir / "mail")
    wanted: dict[str, list[tuple[frozenset[str], float, bytes]]] = {}
    for user in ("alice", "bob"):
        account = call(store.account, user)
        call(account.create, "Archive/2024")
        call(account.subscribe, "Archive/2024")
        for folder, count in (("INBOX", 3), ("Archive/2024", 2)):
            box = call(account.mailbox, folder)
            for n in range(count):
                flags = frozenset({"\\Seen", "$Work"} if n % 2 else {"\\Flagged"})
                data = b"Subject: %s %s %d\r\n\r\nbody\r\n" % (user.encode(), folder.encode(), n)
                call(box.append, data, flags, 1_600_000_000.0 + n)
                wanted.setdefault(f"{user}/{folder}", []).append((flags, 1_600_000_000.0 + n, data))
    store.close()
    return wanted


def snapshot(dsn: str, user: str, folder: str) -> list[tuple[frozenset[str], float, bytes]]:
    store = PostgreSQLStore(Database(dsn, pool_size=1), listen=False)
    try:
        box = call(call(store.account, user).mailbox, folder)
        return [
            (box.message(uid).flags, box.message(uid).internal_date, call(box.read_message, uid))
            for uid in box.uids()
        ]
    finally:
        store.close()


def test_migrate_from_maildir(pg_dsn: str, tmp_path: Path) -> None:
    wanted = fill_maildir(tmp_path / "data")
    config = tmp_path / "exchmail.toml"
    config.write_text(f'[server]\ndata_dir = "data"\n[store]\nbackend = "postgresql"\ndsn = "{pg_dsn}"\n')
    argv = (
        "migrate",
        "--from",
        "maildir",
        "--to",
        "postgresql",
        "--config",
        str(config),
        "--progress",
        "lines",
    )
    done = exchmail(*argv, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "account 2/2: bob" in done.stderr and "messages" in done.stderr
    for key, messages in wanted.items():
        user, folder = key.split("/", 1)
        assert snapshot(pg_dsn, user, folder) == messages
    store = PostgreSQLStore(Database(pg_dsn, pool_size=1), listen=False)
    assert call(call(store.account, "alice").subscriptions) == {"Archive/2024"}
    store.close()
    # A second run imports nothing twice.
    assert exchmail(*argv, cwd=tmp_path).returncode == 0
    assert snapshot(pg_dsn, "alice", "INBOX") == wanted["alice/INBOX"]


def test_deliver_into_postgresql(pg_dsn: str, tmp_path: Path) -> None:
    """``exchmail deliver`` (what an MTA runs) stores into the database."""
    from exchmail.auth.accounts import AccountsFile

    (tmp_path / "data").mkdir()
    AccountsFile(tmp_path / "data" / "users").add("erin", "a long password")
    config = tmp_path / "exchmail.toml"
    config.write_text(f'[server]\ndata_dir = "data"\n[store]\nbackend = "postgresql"\ndsn = "{pg_dsn}"\n')
    message = b"From: x@example.org\r\nSubject: delivered\r\n\r\nhi\r\n"
    done = subprocess.run(
        [*EXCHMAIL, "deliver", "--config", str(config), "erin"],
        input=message,
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    ((flags, _, content),) = snapshot(pg_dsn, "erin", "INBOX")
    assert content == message


def test_frontend_on_a_database_without_schema_says_so(empty_dsn: str, tmp_path: Path) -> None:
    """The log names the fix at start-up; sessions get NO, the server stays up."""
    import imaplib
    import time

    from exchmail.auth.accounts import AccountsFile
    from exchmail.testing.frontends import Frontend

    AccountsFile(tmp_path / "users").add("alice", "a long password")
    frontend = Frontend(tmp_path / "f", empty_dsn, tmp_path / "users").start()
    try:
        for _ in range(100):
            if "exchmail db init" in frontend.log_text():
                break
            time.sleep(0.1)
        assert "the mailbox database is not ready" in frontend.log_text()
        client = imaplib.IMAP4("127.0.0.1", frontend.imap_port, timeout=20)
        with pytest.raises(imaplib.IMAP4.error, match="exchmail db init"):
            client.login("alice", "a long password")  # the account cannot be opened
        assert client.noop()[0] == "OK"
        client.logout()
    finally:
        frontend.stop()
