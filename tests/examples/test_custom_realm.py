"""examples/custom_realm.py: the SQLite store passes the compliance kit and
serves IMAP and POP3 through the configuration's backend entry points."""

from __future__ import annotations

import imaplib
import poplib
import sqlite3
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from helpers import Recorder, call
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from exchmail.interfaces import IDirectory
from exchmail.service.config import StoreConfig, default_config, load_config
from exchmail.testing.store_contract import StoreContract

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

import custom_realm  # noqa: E402 - needs the sys.path entry above

MESSAGE = b"From: app@example.org\nSubject: from the app\n\nstored with LF line ends\n"


class TestSQLiteStore(StoreContract):
    """Queries run at once (run_sync); a Clock drives polling and idle release."""

    release_after = 300.0

    @pytest.fixture
    def store(self, tmp_path: Path) -> Any:
        self.clock = Clock()
        store = custom_realm.SQLiteStore(
            tmp_path / "app.sqlite", reactor=self.clock, release_after=self.release_after
        )
        yield store
        store.close()

    def reopen(self, store: Any) -> Any:
        return custom_realm.SQLiteStore(self.path)

    def outside_append(self, store: Any, user: str, mailbox: str, message: bytes) -> bool:
        db = app_db(self.path)
        with db:  # the application adds a row
            db.execute(
                "INSERT INTO app_messages (owner, folder, raw, received) VALUES (?, ?, ?, ?)",
                (user, mailbox, message, 1.2e9),
            )
        db.close()
        return True

    def advance(self, store: Any, seconds: float) -> None:
        self.clock.advance(seconds)

    @pytest.fixture(autouse=True)
    def _path(self, tmp_path: Path) -> None:
        self.path = tmp_path / "app.sqlite"


def app_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path))
    db.executescript(custom_realm.SCHEMA)
    return db


def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"
    store = custom_realm.SQLiteStore(path)
    account = call(store.account, "alice")
    inbox = call(account.mailbox, "INBOX")
    uid = call(inbox.append, b"Subject: x\r\n\r\nx\r\n", frozenset({"\\Seen"}), 1e9)
    call(inbox.set_flags, [uid], frozenset({"$Work"}), "add")
    call(account.create, "Archive")
    call(account.subscribe, "Archive")
    validity = inbox.uid_validity
    store.close()
    again = call(custom_realm.SQLiteStore(path).account, "alice")
    inbox = call(again.mailbox, "INBOX")
    assert list(inbox.uids()) == [uid] and inbox.uid_validity == validity
    assert inbox.message(uid).flags == frozenset({"\\Seen", "$Work"})
    assert "Archive" in call(again.list_mailboxes)
    assert call(again.subscriptions) == {"Archive"}
    assert inbox.uid_next > uid


def test_application_rows_appear_and_disappear_on_refresh(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"
    store = custom_realm.SQLiteStore(path)
    inbox = call(call(store.account, "alice").mailbox, "INBOX")
    listener = Recorder()
    inbox.add_listener(listener)
    db = app_db(path)
    with db:
        row = db.execute(
            "INSERT INTO app_messages (owner, raw, received) VALUES (?, ?, ?)", ("alice", MESSAGE, 1.2e9)
        ).lastrowid
    call(inbox.refresh)
    assert listener.events == [("added", [row])]
    assert call(inbox.read_message, row) == MESSAGE.replace(b"\n", b"\r\n")  # wire form
    assert inbox.message(row).exact_size == len(MESSAGE) + MESSAGE.count(b"\n")
    with db:
        db.execute("DELETE FROM app_messages WHERE id = ?", (row,))
    call(inbox.refresh)
    assert listener.events[-1] == ("expunged", [row])
    # folders the application writes to exist for exchmail too
    with db:
        db.execute(
            "INSERT INTO app_messages (owner, folder, raw, received) VALUES ('bob', 'Orders/2024', ?, 0)",
            (MESSAGE,),
        )
    bob = call(store.account, "bob")
    assert {"INBOX", "Orders", "Orders/2024"} <= set(call(bob.list_mailboxes))


def test_checker_uses_the_application_hashes(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"
    db = app_db(path)
    with db:
        db.execute(
            "INSERT INTO app_users VALUES ('Carol', ?, NULL)",
            (custom_realm.make_password("pw", iterations=1000),),
        )
    checker = custom_realm.AppChecker(path)
    assert verifyObject(IDirectory, checker)
    assert call(checker.requestAvatarId, UsernamePassword(b"carol", b"pw")) == "Carol"
    for name, password in ((b"carol", b"wrong"), (b"nobody", b"pw"), (b"carol", b"")):
        with pytest.raises(UnauthorizedLogin):
            call(checker.requestAvatarId, UsernamePassword(name, password))
    assert checker.canonical_name("CAROL") == "Carol" and not checker.user_exists("x")


def test_the_example_configuration_loads() -> None:
    config = load_config(EXAMPLES / "custom_realm.toml")
    assert config.store.backend == "python:custom_realm:make_store"
    assert config.auth.backend == "python:custom_realm:make_checker"
    assert config.store.options == {"database": "custom_realm.sqlite", "create_demo": True}


def test_served_over_imap_and_pop3(reactor_thread: Any, tmp_path: Path) -> None:
    from conftest import start_server

    path = tmp_path / "app.sqlite"
    db = app_db(path)
    with db:
        db.execute(
            "INSERT INTO app_users VALUES ('alice', ?, NULL)",
            (custom_realm.make_password("app pw", iterations=1000),),
        )
        uid = db.execute(
            "INSERT INTO app_messages (owner, raw, received) VALUES (?, ?, ?)", ("alice", MESSAGE, 1.3e9)
        ).lastrowid
    options = {"database": str(path)}
    auth = replace(default_config(tmp_path).auth, backend="python:custom_realm:make_checker", options=options)
    store = StoreConfig(backend="python:custom_realm:make_store", options=options)
    server = start_server(tmp_path, users=(), config_changes={"auth": auth, "store": store})
    try:
        assert isinstance(server.store, custom_realm.SQLiteStore)
        imap = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=15)
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            imap.login("alice", "wrong")
        imap.login("alice", "app pw")
        imap.select("INBOX")
        typ, data = imap.uid("FETCH", str(uid), "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK" and b"from the app" in data[0][1]
        assert imap.uid("STORE", str(uid), "+FLAGS", "(\\Flagged)")[0] == "OK"
        imap.logout()
        flags = db.execute("SELECT flags FROM exchmail_flags WHERE message_id = ?", (uid,)).fetchone()[0]
        assert "\\Flagged" in flags.split()
        pop = poplib.POP3("127.0.0.1", server.pop3_port, timeout=15)
        pop.user("alice")
        pop.pass_("app pw")
        assert pop.uidl(1).split()[-1] == str(uid).encode()
        lines = pop.retr(1)[1]
        assert b"Subject: from the app" in lines
        pop.quit()
    finally:
        server.stop()
    db.close()
