"""CONDSTORE/QRESYNC (RFC 7162), ESEARCH, SORT and THREAD with real clients
against the ``modern`` profile over loopback and the Maildir store.

IMAPClient drives CONDSTORE (``enable``, ``select_folder`` with
HIGHESTMODSEQ, ``fetch`` with CHANGEDSINCE), SORT and THREAD; a raw
QRESYNC client keeps a cache of a mailbox and resynchronises it in one
SELECT after two other sessions changed it concurrently and the server
restarted, and its cache must then equal the server's view.
"""

from __future__ import annotations

import random
import re
import threading

import pytest
from conftest import PASSWORD, start_server
from imapclient import IMAPClient
from test_bad_input import Client, status

from exchmail.profile import load_profile

TIMEOUT = 10


def message(subject: str, date: str = "01 Jan 2024 10:00:00 +0000", extra: str = "") -> bytes:
    return (
        f"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: {subject}\r\n"
        f"Date: Mon, {date}\r\n{extra}\r\nbody of {subject}\r\n"
    ).encode()


def serve(tmp_path, again: bool = False):
    return start_server(
        tmp_path, users=() if again else ("alice", "bob"), config_changes={"profile": load_profile("modern")}
    )


@pytest.fixture
def modern(reactor_thread, tmp_path):
    server = serve(tmp_path)
    yield server
    if server.service.running:
        server.stop()


def client(server) -> IMAPClient:
    c = IMAPClient("127.0.0.1", server.imap_port, ssl=False, timeout=TIMEOUT)
    c.login("alice", PASSWORD)
    return c


# -- CONDSTORE with IMAPClient (RFC 7162 §3.1) ------------------------------------------------
def test_imapclient_condstore(modern):
    with client(modern) as c:
        for subject in ("one", "two", "three"):
            c.append("INBOX", message(subject))
        assert c.enable("CONDSTORE") == [b"CONDSTORE"]
        info = c.select_folder("INBOX", readonly=True)
        highest = info[b"HIGHESTMODSEQ"]
        assert highest >= 4  # three appends after the first MODSEQ
        assert c.folder_status("INBOX", [b"HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"] == highest
        everything = c.fetch([1, 2, 3], ["MODSEQ"])
        assert sorted(everything) == [1, 2, 3]
        assert all(0 < data[b"MODSEQ"][0] <= highest for data in everything.values())
        assert c.fetch([1, 2, 3], ["FLAGS"], modifiers=[f"CHANGEDSINCE {highest}"]) == {}
    with client(modern) as other:  # another session changes one message
        other.select_folder("INBOX")
        other.add_flags([2], [b"\\Flagged"])
    with client(modern) as c:
        c.enable("CONDSTORE")
        info = c.select_folder("INBOX", readonly=True)
        assert info[b"HIGHESTMODSEQ"] > highest
        changed = c.fetch([1, 2, 3], ["FLAGS"], modifiers=[f"CHANGEDSINCE {highest}"])
        assert list(changed) == [2]
        assert changed[2][b"FLAGS"] == (b"\\Flagged",)
        assert changed[2][b"MODSEQ"] == (info[b"HIGHESTMODSEQ"],)
        assert c.search(["MODSEQ", str(highest + 1)]) == [2]


def test_unchangedsince_answers_modified(modern):
    """STORE (UNCHANGEDSINCE n): a message changed since is left alone and named
    in [MODIFIED] (RFC 7162 §3.1.3)."""
    with client(modern) as c:
        c.append("INBOX", message("a"))
        c.append("INBOX", message("b"))
    alice = Client(modern.imap_port)
    alice.login()
    lines = alice.run(b"SELECT INBOX (CONDSTORE)")
    highest = int(re.search(rb"HIGHESTMODSEQ (\d+)", b" ".join(lines)).group(1))
    alice.run(b"STORE 2 +FLAGS (\\Seen)")  # now changed after `highest`
    lines = alice.run(b"STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS (\\Flagged)" % highest)
    assert lines[-1].split(b" ", 1)[1].startswith(b"OK [MODIFIED 2]"), lines
    assert any(line.startswith(b"* 1 FETCH (FLAGS (\\Flagged") and b" MODSEQ (" in line for line in lines), (
        lines
    )
    lines = alice.run(b"FETCH 2 FLAGS")
    assert b"\\Seen" in lines[0] and b"Flagged" not in lines[0], lines
    alice.close()


# -- SORT and THREAD with IMAPClient (RFC 5256) -------------------------------------------------
def test_imapclient_sort_and_thread(modern):
    with client(modern) as c:
        c.append(
            "INBOX",
            message(
                "Re: [list] Zebra",
                "03 Jan 2024 10:00:00 +0000",
                "Message-ID: <z2@x>\r\nReferences: <z1@x>\r\n",
            ),
        )
        c.append("INBOX", message("apple", "02 Jan 2024 10:00:00 +0000", "Message-ID: <a1@x>\r\n"))
        c.append("INBOX", message("Zebra", "01 Jan 2024 10:00:00 +0000", "Message-ID: <z1@x>\r\n"))
        c.select_folder("INBOX")
        assert c.sort(["SUBJECT"]) == [2, 1, 3]  # base subjects "apple", "Zebra", "Zebra"
        assert c.sort(["DATE"]) == [3, 2, 1]
        assert c.sort(["REVERSE", "ARRIVAL"]) == [3, 2, 1]
        assert c.thread("REFERENCES") == ((3, 1), (2,))
        assert c.thread("ORDEREDSUBJECT") == ((3, 1), (2,))


# -- QRESYNC: a client's cache converges after concurrent changes and a restart ----------------
class CachingClient:
    """A raw QRESYNC client keeping ``uid -> flags`` of INBOX and its HIGHESTMODSEQ."""

    FETCH = re.compile(rb"^\* \d+ FETCH \(.*UID (\d+).*FLAGS \(([^)]*)\)")

    def __init__(self, port: int) -> None:
        self.port = port
        self.validity = 0
        self.modseq = 0
        self.cache: dict[int, frozenset[bytes]] = {}

    def full_sync(self) -> None:
        c = self._connect()
        lines = c.run(b"SELECT INBOX")
        self._codes(lines)
        self.cache = self._flags(c.run(b"UID FETCH 1:* (FLAGS)"))
        c.close()

    def resync(self) -> list[bytes]:
        """One SELECT (QRESYNC ...) and a fetch of new messages; the responses."""
        c = self._connect()
        known = b"1:%d" % max(self.cache) if self.cache else b"1"
        lines = c.run(b"SELECT INBOX (QRESYNC (%d %d %s))" % (self.validity, self.modseq, known))
        assert status(lines[-1]) == b"OK", lines
        for line in lines:
            if line.startswith(b"* VANISHED (EARLIER) "):
                for uid in expand(line.split()[-1]):
                    self.cache.pop(uid, None)
        self.cache.update(self._flags(lines))
        newest = max(self.cache, default=0)
        self.cache.update(self._flags(c.run(b"UID FETCH %d:* (FLAGS)" % (newest + 1))))
        self._codes(lines)
        c.close()
        return lines

    def _connect(self) -> Client:
        c = Client(self.port)
        c.login()
        assert status(c.run(b"ENABLE QRESYNC")[-1]) == b"OK"
        return c

    def _codes(self, lines: list[bytes]) -> None:
        text = b" ".join(lines)
        self.validity = int(re.search(rb"UIDVALIDITY (\d+)", text).group(1))
        self.modseq = int(re.search(rb"HIGHESTMODSEQ (\d+)", text).group(1))

    def _flags(self, lines: list[bytes]) -> dict[int, frozenset[bytes]]:
        out = {}
        for line in lines:
            match = self.FETCH.match(line)
            if match:
                flags = frozenset(match.group(2).split()) - {b"\\Recent"}
                out[int(match.group(1))] = flags
        return out


def expand(text: bytes) -> list[int]:
    out: list[int] = []
    for part in text.split(b","):
        low, _, high = part.partition(b":")
        out.extend(range(int(low), int(high or low) + 1))
    return out


def server_view(port: int) -> dict[int, frozenset[bytes]]:
    c = CachingClient(port)
    c.full_sync()
    return c.cache


def changer(port: int, seed: int, rounds: int, errors: list[BaseException]) -> None:
    """Another session: flag changes, expunges and appends, in random order."""
    try:
        rng = random.Random(seed)
        c = Client(port)
        c.login()
        c.run(b"SELECT INBOX")
        for round_ in range(rounds):
            action = rng.choice(("flag", "flag", "unflag", "expunge", "append"))
            number = rng.randint(1, 5)
            if action == "append":
                data = message(f"new {seed}/{round_}")
                lines = c.command(b"ap", b"ap APPEND INBOX {%d+}\r\n" % len(data) + data)
            elif action == "expunge":
                c.run(b"STORE %d +FLAGS.SILENT (\\Deleted)" % number)
                lines = c.run(b"EXPUNGE")
            else:
                sign = b"+" if action == "flag" else b"-"
                lines = c.run(b"STORE %d %sFLAGS (\\Seen $Work%d)" % (number, sign, seed))
            assert status(lines[-1]) in (b"OK", b"BAD"), lines  # BAD: numbers gone meanwhile
        c.close()
    except BaseException as error:  # reported by the test thread
        errors.append(error)


def test_qresync_resync_after_concurrent_changes_and_restart(reactor_thread, tmp_path):
    server = serve(tmp_path)
    try:
        with client(server) as c:
            for number in range(20):
                c.append("INBOX", message(f"m{number}"), flags=[b"\\Seen"] if number % 3 else [])
        cached = CachingClient(server.imap_port)
        cached.full_sync()
        assert len(cached.cache) == 20
        errors: list[BaseException] = []
        workers = [
            threading.Thread(target=changer, args=(server.imap_port, seed, 25, errors)) for seed in (1, 2)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert not errors, errors
        before_restart = cached.modseq
        server.stop()
        server = serve(tmp_path, again=True)  # the same Maildir: MODSEQs must survive
        cached.port = server.imap_port
        lines = cached.resync()
        assert cached.modseq > before_restart
        assert any(line.startswith(b"* VANISHED (EARLIER) ") for line in lines), lines
        assert cached.cache == server_view(server.imap_port)
        # nothing changed since: a second resync reports nothing
        lines = cached.resync()
        assert not any(b"VANISHED" in line or b"FETCH" in line for line in lines), lines
    finally:
        server.stop()
