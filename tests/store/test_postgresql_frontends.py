"""Several exchmail frontends (separate ``twistd`` processes) on one database.

Clients spread over the frontends APPEND, STORE and EXPUNGE at once while
an IDLE session on another frontend watches and POP3 reads on a third;
afterwards the invariants of a shared store must hold everywhere: UIDs
strictly ascending and unique, every acknowledged message present byte for
byte (unless its owner deleted it), flags converged, EXISTS counts equal.
Then the failures: a frontend killed with SIGKILL in the middle of an
APPEND storm loses nothing it acknowledged; the database stopped under a
session answers NO [UNAVAILABLE] / -ERR [SYS/TEMP], and the same
sessions work again once it is back.

Every loop is bounded in count and time; nothing asserts how long anything took.
"""

from __future__ import annotations

import imaplib
import os
import poplib
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSWORD, add_accounts

from exchmail.testing import postgres
from exchmail.testing.frontends import Frontend

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(postgres.unavailable_reason() is not None, reason=str(postgres.unavailable_reason())),
]

TIMEOUT = 20
PROFILE = {"notify_external_flag_changes": True, "client_keywords": True}
WORKERS_PER_FRONTEND = 2
APPENDS_PER_WORKER = 12
MAX_WAITS = 200
STEP = 0.05


def message(owner: str, number: int) -> bytes:
    filler = os.urandom(64).hex().encode()
    return b"From: %s@example.org\r\nSubject: %s-%d\r\n\r\n.dot line\r\n%s\r\n" % (
        owner.encode(),
        owner.encode(),
        number,
        filler * (1 + number % 5),
    )


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users"
    add_accounts(path, ["alice"])
    return path


def started_frontends(tmp_path: Path, dsn: str, users_file: Path, count: int) -> Iterator[list[Frontend]]:
    started = [Frontend(tmp_path / f"f{n}", dsn, users_file, PROFILE).start() for n in range(count)]
    yield started
    for frontend in started:
        frontend.stop()


@pytest.fixture
def frontends(tmp_path: Path, pg_dsn: str, users_file: Path) -> Iterator[list[Frontend]]:
    """Three frontends on one database."""
    yield from started_frontends(tmp_path, pg_dsn, users_file, 3)


@pytest.fixture
def two_frontends(tmp_path: Path, pg_dsn: str, users_file: Path) -> Iterator[list[Frontend]]:
    """Two frontends on one database (each twistd costs about a second of CPU to start)."""
    yield from started_frontends(tmp_path, pg_dsn, users_file, 2)


def login(frontend: Frontend) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", frontend.imap_port, timeout=TIMEOUT)
    assert client.login("alice", PASSWORD)[0] == "OK"
    return client


def append(client: imaplib.IMAP4, data: bytes) -> int:
    typ, answer = client.append("INBOX", None, None, data)
    assert typ == "OK", answer
    match = re.search(rb"APPENDUID \d+ (\d+)", answer[0])
    assert match, answer
    return int(match.group(1))


def contents(client: imaplib.IMAP4) -> dict[int, tuple[frozenset[bytes], bytes]]:
    """Every message of INBOX as this client's frontend sees it: uid -> (flags, content)."""
    assert client.select("INBOX")[0] == "OK"
    typ, data = client.uid("FETCH", "1:*", "(FLAGS)")
    assert typ == "OK"
    flags = {}
    for line in data:
        if not line:
            continue
        match = re.search(rb"UID (\d+) FLAGS \(([^)]*)\)|FLAGS \(([^)]*)\) UID (\d+)", line)
        assert match, line
        uid = int(match.group(1) or match.group(4))
        flags[uid] = frozenset((match.group(2) or match.group(3) or b"").split()) - {b"\\Recent"}
    typ, data = client.uid("FETCH", "1:*", "(BODY.PEEK[])")
    assert typ == "OK"
    bodies = {}
    for item in data:
        if isinstance(item, tuple):
            bodies[int(re.search(rb"UID (\d+)", item[0]).group(1))] = item[1]
    assert set(bodies) == set(flags)
    order = [int(u) for u in re.findall(rb"UID (\d+)", b" ".join(x for x in data if isinstance(x, bytes)))]
    assert order == sorted(order)
    return {uid: (flags[uid], bodies[uid]) for uid in flags}


class Idler:
    """A raw IDLE session that records every untagged line it is sent."""

    def __init__(self, frontend: Frontend) -> None:
        self.sock = socket.create_connection(("127.0.0.1", frontend.imap_port), timeout=TIMEOUT)
        self.file = self.sock.makefile("rb")
        self.file.readline()
        self._command(b'a LOGIN alice "%s"' % PASSWORD.encode())
        self._command(b"b SELECT INBOX")
        self.sock.sendall(b"c IDLE\r\n")
        assert self.file.readline().startswith(b"+")
        self.lines: list[bytes] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _command(self, line: bytes) -> None:
        self.sock.sendall(line + b"\r\n")
        tag = line.split()[0]
        while not (answer := self.file.readline()).startswith(tag):
            assert answer
        assert answer.split()[1] == b"OK", answer

    def _read(self) -> None:
        try:
            while line := self.file.readline():
                self.lines.append(line)
        except OSError:
            pass

    def exists(self) -> int:
        counts = [int(m.group(1)) for line in self.lines if (m := re.match(rb"\* (\d+) EXISTS", line))]
        return counts[-1] if counts else -1

    def close(self) -> None:
        try:
            self.sock.sendall(b"DONE\r\nd LOGOUT\r\n")
        except OSError:
            pass
        self.sock.close()


def wait_for(condition: Any) -> None:
    for _ in range(MAX_WAITS):
        if condition():
            return
        time.sleep(STEP)
    raise AssertionError("the condition did not come true")


def worker(
    frontend: Frontend, owner: str, acked: dict[int, bytes], deleted: set[int], errors: list[BaseException]
) -> None:
    """APPEND messages, STORE a keyword on some and delete others, EXPUNGE now and then."""
    try:
        client = login(frontend)
        assert client.select("INBOX")[0] == "OK"
        mine: list[int] = []
        for number in range(APPENDS_PER_WORKER):
            data = message(owner, number)
            uid = append(client, data)
            assert not mine or uid > mine[-1], "UIDs must rise as seen by one client"
            mine.append(uid)
            acked[uid] = data
            if number % 3 == 1:
                assert client.uid("STORE", str(uid), "+FLAGS", f"(${owner})")[0] == "OK"
            if number % 4 == 2:
                assert client.uid("STORE", str(mine[-2]), "+FLAGS", "(\\Deleted)")[0] == "OK"
                deleted.add(mine[-2])
                assert client.expunge()[0] == "OK"
        client.logout()
    except BaseException as e:  # noqa: BLE001 - reported by the test
        errors.append(e)


def test_concurrent_clients_on_three_frontends(frontends: list[Frontend]) -> None:
    one, two, three = frontends
    idler = Idler(two)
    acked: dict[int, bytes] = {}
    deleted: set[int] = set()
    errors: list[BaseException] = []
    try:
        # The IDLE session on frontend two sees an APPEND made on frontend one.
        first = login(one)
        data = message("first", 0)
        acked[append(first, data)] = data
        wait_for(lambda: idler.exists() == 1)
        threads = [
            threading.Thread(target=worker, args=(frontend, f"W{n}{k}", acked, deleted, errors))
            for n, frontend in enumerate((one, two))
            for k in range(WORKERS_PER_FRONTEND)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        assert not errors, errors
        assert first.select("INBOX")[0] == "OK"
        assert first.expunge()[0] == "OK"
        expected = {uid: data for uid, data in acked.items() if uid not in deleted}
        views = [login(frontend) for frontend in frontends]
        # Every frontend converges on one state: same UIDs, flags and content.
        wait_for(lambda: len({repr(sorted(contents(view).items())) for view in views}) == 1)
        state = contents(views[0])
        assert {uid: data for uid, (_, data) in state.items()} == expected
        for uid, (flags, data) in state.items():
            owner = re.search(rb"Subject: (\w+)-", data).group(1)
            number = int(re.search(rb"Subject: \w+-(\d+)", data).group(1))
            assert (b"$" + owner in flags) == (owner != b"first" and number % 3 == 1), (uid, flags)
        wait_for(lambda: idler.exists() == len(expected))
        for view in views:
            typ, data = view.select("INBOX")
            assert typ == "OK" and int(data[0]) == len(expected)
            view.logout()
        # POP3 on the third frontend lists and retrieves the same messages.
        pop = poplib.POP3("127.0.0.1", three.pop3_port, timeout=TIMEOUT)
        pop.user("alice")
        pop.pass_(PASSWORD)
        assert pop.stat()[0] == len(expected)
        uidls = [int(line.split()[1]) for line in pop.uidl()[1]]
        assert uidls == sorted(expected)
        _, lines, _ = pop.retr(len(uidls))
        assert b"".join(line + b"\r\n" for line in lines) == expected[uidls[-1]]
        pop.quit()
        first.logout()
    finally:
        idler.close()


def test_sigkill_mid_append_storm_loses_nothing_acknowledged(two_frontends: list[Frontend]) -> None:
    one, victim = two_frontends
    acked: dict[int, bytes] = {}
    sent: list[bytes] = []

    def storm() -> None:
        try:
            client = login(victim)
            for number in range(500):
                data = message("storm", number)
                sent.append(data)
                acked[append(client, data)] = data
        except (OSError, imaplib.IMAP4.abort, imaplib.IMAP4.error, AssertionError):
            pass  # the frontend died under us

    thread = threading.Thread(target=storm)
    thread.start()
    wait_for(lambda: len(acked) >= 20)
    victim.kill()
    thread.join(timeout=60)
    assert not thread.is_alive()
    view = login(one)
    state = contents(view)
    view.logout()
    for uid, data in acked.items():
        assert state[uid][1] == data, uid
    # An APPEND in flight when the process died is all there or not at all.
    assert set(state) - set(acked) <= {uid for uid, (_, data) in state.items() if data in sent}
    assert len(state) <= len(sent)


@pytest.mark.slow(waits=True)
def test_database_restart_under_sessions(tmp_path: Path, users_file: Path) -> None:
    """The database goes away under open sessions: NO [UNAVAILABLE] and
    -ERR [SYS/TEMP], the connections stay; once it is back they work again."""
    import psycopg

    from exchmail.store.postgresql import schema
    from exchmail.testing.postgres import PostgresCluster

    cluster = PostgresCluster()
    try:
        with psycopg.connect(cluster.dsn) as conn:
            schema.init(conn)
        frontend = Frontend(tmp_path / "f", cluster.dsn, users_file, PROFILE).start()
        try:
            client = login(frontend)
            assert client.select("INBOX")[0] == "OK"
            append(client, message("before", 0))
            pop = poplib.POP3("127.0.0.1", frontend.pop3_port, timeout=TIMEOUT)
            pop.user("alice")
            cluster.stop("fast")
            typ, answer = client.append("INBOX", None, None, message("during", 0))
            assert typ == "NO" and b"[UNAVAILABLE]" in answer[0], answer
            typ, answer = client.noop()  # the session survives; it may not learn news
            assert typ == "OK" or b"[UNAVAILABLE]" in answer[-1], answer
            with pytest.raises(poplib.error_proto, match=r"SYS/TEMP"):
                pop.pass_(PASSWORD)
            cluster.start()
            for _ in range(MAX_WAITS):
                typ, answer = client.append("INBOX", None, None, message("after", 0))
                if typ == "OK":
                    break
                assert b"[UNAVAILABLE]" in answer[0], answer
                time.sleep(STEP)
            assert typ == "OK"
            typ, data = client.select("INBOX")
            assert typ == "OK" and int(data[0]) == 2
            client.logout()
        finally:
            frontend.stop()
    finally:
        cluster.destroy()
