"""Logging in over IMAP and POP3 against a real slapd (auth.backend = "ldap").

The directory has alice (IMAP and POP3 groups), bob (IMAP group only) and
carol (no group); the server requires the mail group for IMAP and the POP
group for POP3, over ldaps:// with the test CA.
"""

from __future__ import annotations

import imaplib
import poplib
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer, start_server
from slapd_server import (  # noqa: F401 - slapd_fixture is the slapd fixture
    MAIL_GROUP,
    PASSWORDS,
    POP_GROUP,
    Slapd,
    ldap_config,
    slapd_fixture,
)

INJECTION = "*)(uid=*"
TIMEOUT = 15


@pytest.fixture
def ldap_server(reactor_thread: Any, tmp_path: Path, slapd: Slapd) -> Iterator[RunningServer]:
    from exchmail.service.config import default_config

    auth = replace(default_config(tmp_path).auth, backend="ldap")
    ldap = ldap_config(slapd, imap_group=MAIL_GROUP, pop3_group=POP_GROUP, timeout=2.0, connect_timeout=2.0)
    running = start_server(tmp_path, users=(), config_changes={"auth": auth, "ldap": ldap})
    yield running
    running.stop()


def imap_login(server: RunningServer, user: str, password: str) -> tuple[str, Any]:
    """("OK", client) or ("NO", the server's text)."""
    client = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=TIMEOUT)
    # imaplib sends the user name as it is: quote it (the injection string has parentheses)
    quoted = '"' + user.replace("\\", "\\\\").replace('"', '\\"') + '"'
    try:
        client.login(quoted, password)
    except imaplib.IMAP4.error as e:
        client.logout()
        return "NO", str(e)
    return "OK", client


def pop3_login(server: RunningServer, user: str, password: str) -> tuple[str, Any]:
    """("OK", client) or ("ERR", the server's text)."""
    client = poplib.POP3("127.0.0.1", server.pop3_port, timeout=TIMEOUT)
    try:
        client.user(user)
        client.pass_(password)
    except poplib.error_proto as e:
        client.quit()
        return "ERR", str(e)
    return "OK", client


def test_members_log_in_and_get_a_mailbox(ldap_server: RunningServer) -> None:
    mail_root = ldap_server.data_dir / "mail"
    assert not (mail_root / "alice").exists()
    status, client = imap_login(ldap_server, "alice", PASSWORDS["alice"])
    assert status == "OK"
    assert client.select("INBOX")[0] == "OK"
    client.append("INBOX", None, None, b"Subject: hi\r\n\r\nhello\r\n")
    client.logout()
    assert (mail_root / "alice").is_dir()  # created on first login
    status, pop = pop3_login(ldap_server, "alice", PASSWORDS["alice"])
    assert status == "OK"
    assert pop.stat()[0] == 1
    pop.quit()
    status, client = imap_login(ldap_server, "bob", PASSWORDS["bob"])
    assert status == "OK"
    client.logout()


def test_bad_passwords_are_refused(ldap_server: RunningServer) -> None:
    status, text = imap_login(ldap_server, "alice", "wrong")
    assert status == "NO" and "[AUTHENTICATIONFAILED]" in text
    status, text = imap_login(ldap_server, "nobody", "x")
    assert status == "NO" and "[AUTHENTICATIONFAILED]" in text
    status, text = pop3_login(ldap_server, "alice", "wrong")
    assert status == "ERR" and "SYS/TEMP" not in text


def test_non_members_are_refused_per_protocol(ldap_server: RunningServer) -> None:
    status, text = imap_login(ldap_server, "carol", PASSWORDS["carol"])
    assert status == "NO" and "[AUTHENTICATIONFAILED]" in text
    status, text = pop3_login(ldap_server, "carol", PASSWORDS["carol"])
    assert status == "ERR" and "SYS/TEMP" not in text
    # bob is in the IMAP group but not in the POP3 group
    status, text = pop3_login(ldap_server, "bob", PASSWORDS["bob"])
    assert status == "ERR" and "SYS/TEMP" not in text
    status, client = imap_login(ldap_server, "bob", PASSWORDS["bob"])
    assert status == "OK"
    client.logout()
    assert not (ldap_server.data_dir / "mail" / "carol").exists()


@pytest.mark.parametrize("password", [PASSWORDS["alice"], "x", "*"])
def test_injection_logs_nobody_in(ldap_server: RunningServer, password: str) -> None:
    status, text = imap_login(ldap_server, INJECTION, password)
    assert status == "NO" and "[AUTHENTICATIONFAILED]" in text
    status, text = pop3_login(ldap_server, INJECTION, password)
    assert status == "ERR" and "SYS/TEMP" not in text


def test_slapd_stopped_and_restarted_mid_test(ldap_server: RunningServer, slapd: Slapd) -> None:
    status, client = imap_login(ldap_server, "alice", PASSWORDS["alice"])
    assert status == "OK"
    slapd.stop()
    # logged-in sessions carry on; new logins fail temporarily, not "wrong password"
    assert client.noop()[0] == "OK"
    for password in (PASSWORDS["alice"], "wrong"):
        status, text = imap_login(ldap_server, "alice", password)
        assert status == "NO" and "[UNAVAILABLE]" in text
        status, text = pop3_login(ldap_server, "alice", password)
        assert status == "ERR" and "[SYS/TEMP]" in text
    # a directory outage does not use up the POP3 session's failed-login budget
    pop = poplib.POP3("127.0.0.1", ldap_server.pop3_port, timeout=TIMEOUT)
    for _ in range(5):
        pop.user("alice")
        with pytest.raises(poplib.error_proto, match="SYS/TEMP"):
            pop.pass_(PASSWORDS["alice"])
    slapd.start()
    pop.user("alice")
    assert pop.pass_(PASSWORDS["alice"]).startswith(b"+OK")
    pop.quit()
    status, again = imap_login(ldap_server, "alice", PASSWORDS["alice"])
    assert status == "OK"
    again.logout()
    status, text = imap_login(ldap_server, "alice", "wrong")
    assert status == "NO" and "[AUTHENTICATIONFAILED]" in text
    client.logout()


@pytest.mark.slow(waits=True)
def test_hung_directory_stalls_no_other_session(ldap_server: RunningServer, slapd: Slapd) -> None:
    status, client = imap_login(ldap_server, "alice", PASSWORDS["alice"])
    assert status == "OK"
    slapd.pause()
    results: list[tuple[str, Any]] = []
    try:
        waiting = threading.Thread(
            target=lambda: results.append(imap_login(ldap_server, "bob", PASSWORDS["bob"]))
        )
        waiting.start()
        time.sleep(0.3)  # bob's login now waits for the directory in the LDAP pool
        assert client.select("INBOX")[0] == "OK"
        assert client.noop()[0] == "OK"
        # answered while bob still waits for the directory (its 2 s timeout)
        assert results == []
        waiting.join(timeout=TIMEOUT)
        assert not waiting.is_alive()
    finally:
        slapd.resume()
    status, text = results[0]
    assert status == "NO" and "[UNAVAILABLE]" in text
    status, bob = imap_login(ldap_server, "bob", PASSWORDS["bob"])
    assert status == "OK"
    bob.logout()
    client.logout()


def test_ldap_quota_attribute_limits_the_mailbox(reactor_thread: Any, tmp_path: Path, slapd: Slapd) -> None:
    """quota_attribute (alice: employeeNumber 1048576) becomes her mailbox limit."""
    from exchmail.service.config import default_config

    auth = replace(default_config(tmp_path).auth, backend="ldap")
    ldap = ldap_config(slapd, quota_attribute="employeeNumber", timeout=2.0, connect_timeout=2.0)
    running = start_server(tmp_path, users=(), config_changes={"auth": auth, "ldap": ldap})
    try:
        status, client = imap_login(running, "alice", PASSWORDS["alice"])
        assert status == "OK"
        small = b"Subject: fits\r\n\r\n" + b"x" * 1000 + b"\r\n"
        assert client.append("INBOX", None, None, small)[0] == "OK"
        big = b"Subject: too big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 1100
        typ, data = client.append("INBOX", None, None, big)
        assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]"), (typ, data)
        client.logout()
    finally:
        running.stop()
