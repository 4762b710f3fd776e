"""MemoryUsers, the test servers' checker: passwords, any-case names, SCRAM on demand."""

from __future__ import annotations

import base64

import pytest
from harness import Harness
from scramp import ScramClient
from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin

from exchmail.testing import result
from exchmail.testing.users import MemoryUsers


@pytest.fixture
def users() -> MemoryUsers:
    users = MemoryUsers()
    users.add("Alice", "pw")
    return users


def test_passwords_and_names_in_any_case(users):
    assert result(users.requestAvatarId(UsernamePassword(b"alice", b"pw"))) == "Alice"
    assert result(users.requestAvatarId(UsernamePassword("ALICE", "pw"))) == "Alice"
    for name, password in ((b"alice", b"PW"), (b"bob", b"pw"), (b"alice", b"")):
        with pytest.raises(UnauthorizedLogin):
            result(users.requestAvatarId(UsernamePassword(name, password)))
    assert users.canonical_name("aLiCe") == "Alice" and result(users.user_exists("ALICE"))
    users.remove("alice")
    assert users.canonical_name("alice") is None and users.names() == []


def test_a_new_password_replaces_the_old_one(users):
    users.add("alice", "new")
    assert users.names() == ["alice"]
    with pytest.raises(UnauthorizedLogin):
        result(users.requestAvatarId(UsernamePassword(b"alice", b"pw")))
    assert result(users.requestAvatarId(UsernamePassword(b"alice", b"new"))) == "alice"


def _b64(data: str) -> bytes:
    return base64.b64encode(data.encode())


def test_scram_login_through_an_imap_session(users):
    harness = Harness(overrides={"sasl_mechanisms": ["SCRAM-SHA-256", "PLAIN"]}, checker=users)
    imap = harness.imap()
    client = ScramClient(["SCRAM-SHA-256"], "alice", "pw")
    assert imap.line("a AUTHENTICATE SCRAM-SHA-256") == b"+ \r\n"
    out = imap.line(_b64(client.get_client_first()))
    client.set_server_first(base64.b64decode(out[2:].strip()).decode())
    out = imap.line(_b64(client.get_client_final()))
    client.set_server_final(base64.b64decode(out[2:].strip()).decode())  # checks the server
    assert imap.line(b"") == b"a OK AUTHENTICATE completed.\r\n"
