"""NTLM ([MS-OXIMAP4], [MS-OXPOP3]) with real clients: curl (NTLMv2), pyspnego's
NTLM initiator over imaplib/poplib, and fetchmail, whose NTLM is NTLMv1: refused
by default, accepted with ``[ntlm] allow_ntlmv1``.

The accounts file keeps the NT hashes (written as ``exchmail user passwd``
does with ``[ntlm]`` configured); the server runs under SecureLogin without
TLS, where NTLM (no password on the wire) is offered and PLAIN is not.
"""

from __future__ import annotations

import imaplib
import poplib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSWORD, RunningServer, add_accounts, in_reactor, start_server
from test_gssapi_clients import pop3_auth

from exchmail.auth.saslconfig import NTLMConfig

spnego = pytest.importorskip("spnego", reason="pyspnego (exchmail[ntlm]) is missing")

MESSAGE = b"From: a@example.com\r\nSubject: ntlm\r\n\r\nhello over NTLM\r\n"
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
needs_fetchmail = pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail is not installed")


def start(tmp_path: Path, config: NTLMConfig, nt_hashes: bool = True) -> RunningServer:
    users = tmp_path / "exchmail-data" / "users"
    add_accounts(users, ["alice"], nt_hash=nt_hashes)
    add_accounts(users, ["bob"])  # no NT hash: NTLM cannot work for bob
    server = start_server(tmp_path, users=(), login_type="SecureLogin", config_changes={"ntlm": config})

    def deliver() -> Any:
        d = server.store.account("alice")
        d.addCallback(lambda account: account.mailbox("INBOX"))
        return d.addCallback(lambda inbox: inbox.append(MESSAGE))

    in_reactor(deliver)
    return server


@pytest.fixture
def ntlm_server(reactor_thread: Any, tmp_path: Path) -> Iterator[RunningServer]:
    server = start(tmp_path, NTLMConfig(domains=("EXCHMAIL", "exchmail.test")))
    yield server
    server.stop()


class NTLMClient:
    """pyspnego's NTLM initiator as an imaplib authobject / POP3 responder."""

    def __init__(self, user: str, password: str = PASSWORD) -> None:
        self.context = spnego.client(user, password, protocol="ntlm")

    def respond(self, challenge: bytes) -> bytes:
        return self.context.step(challenge or None) or b""


def curl(url: str, user: str = "alice", password: str = PASSWORD) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "curl",
            "-sS",
            "--ipv4",
            "--max-time",
            "20",
            "--user",
            f"{user}:{password}",
            "--login-options",
            "AUTH=NTLM",
            url,
        ],
        capture_output=True,
        timeout=30,
    )


@needs_curl
def test_E0003_curl_imap_ntlmv2_select_and_fetch(ntlm_server):
    result = curl(f"imap://127.0.0.1:{ntlm_server.imap_port}/INBOX;UID=1")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == MESSAGE


@needs_curl
def test_E0002_curl_pop3_ntlmv2_list_and_retr(ntlm_server):
    url = f"pop3://127.0.0.1:{ntlm_server.pop3_port}/"
    listing = curl(url, "EXCHMAIL\\alice")
    assert listing.returncode == 0, listing.stderr.decode()
    assert listing.stdout.split()[0] == b"1"
    result = curl(url + "1")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == MESSAGE


@needs_curl
def test_E0003_curl_ntlm_wrong_password_refused(ntlm_server):
    result = curl(f"imap://127.0.0.1:{ntlm_server.imap_port}/INBOX;UID=1", password="wrong " + PASSWORD)
    assert result.returncode == 67  # login denied


def imap_ntlm(server: RunningServer, client: NTLMClient) -> tuple[str, Any]:
    imap = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
    try:
        typ, data = imap.authenticate("NTLM", client.respond)
        if typ == "OK":
            assert imap.select("INBOX")[0] == "OK"
            assert imap.fetch("1", "(BODY.PEEK[])")[1][0][1] == MESSAGE
        return typ, data
    except imaplib.IMAP4.error as e:
        return "NO", str(e)
    finally:
        try:
            imap.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


@pytest.mark.parametrize("user", ["alice", "EXCHMAIL\\alice", "alice@exchmail.test", "exchmail\\ALICE"])
def test_E0003_pyspnego_imap_user_forms(ntlm_server, user):
    assert imap_ntlm(ntlm_server, NTLMClient(user))[0] == "OK"


@pytest.mark.parametrize(
    "user, password",
    [
        ("alice", "wrong"),
        ("OTHER\\alice", PASSWORD),
        ("alice@other.test", PASSWORD),
        ("bob", PASSWORD),
        ("nobody", PASSWORD),
    ],
)
def test_E0003_pyspnego_imap_refused(ntlm_server, user, password):
    typ, text = imap_ntlm(ntlm_server, NTLMClient(user, password))
    assert typ == "NO" and "AUTHENTICATIONFAILED" in text


def test_E0002_pyspnego_pop3_capa_and_stat(ntlm_server):
    pop = poplib.POP3("127.0.0.1", ntlm_server.pop3_port, timeout=10)
    try:
        assert pop.capa()["SASL"] == ["NTLM"]
        assert pop3_auth(pop, "NTLM", NTLMClient("alice").respond).startswith(b"+OK")
        assert pop.stat()[0] == 1
    finally:
        pop.quit()


def fetchmail_ntlm(server: RunningServer, tmp_path: Path, protocol: str) -> tuple[int, str]:
    out_dir = tmp_path / f"delivered-{protocol}"
    out_dir.mkdir()
    rc = tmp_path / f"fetchmailrc-{protocol}"
    port = server.imap_port if protocol == "IMAP" else server.pop3_port
    rc.write_text(
        "set invisible\n"
        f"poll 127.0.0.1 protocol {protocol} port {port} auth ntlm timeout 20\n"
        f'  user alice password "{PASSWORD}" is alice here\n'
        f"  mda \"cat > {out_dir}/msg-$$\" no rewrite sslproto '' keep fetchall\n"
    )
    rc.chmod(0o600)
    env = {"HOME": str(tmp_path), "FETCHMAILHOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [
            "fetchmail",
            "--nodetach",
            "-f",
            str(rc),
            "--pidfile",
            str(tmp_path / f"fetchmail-{protocol}.pid"),
            "--nosyslog",
        ],
        capture_output=True,
        timeout=60,
        env=env,
    )
    delivered = [p.read_bytes() for p in out_dir.iterdir()]
    assert delivered in ([], [MESSAGE.replace(b"\r\n", b"\n")])
    return result.returncode, result.stderr.decode()


@needs_fetchmail
@pytest.mark.parametrize("protocol", ["IMAP", "POP3"])
def test_E0003_fetchmail_ntlmv1_refused_by_default(ntlm_server, tmp_path, protocol):
    code, errors = fetchmail_ntlm(ntlm_server, tmp_path, protocol)
    assert code == 3, errors  # fetchmail's "authentication failed"


@needs_fetchmail
@pytest.mark.parametrize("protocol", ["IMAP", "POP3"])
def test_E0003_fetchmail_ntlmv1_with_the_legacy_setting(reactor_thread, tmp_path, protocol):
    server = start(tmp_path, NTLMConfig(allow_ntlmv1=True))
    try:
        code, errors = fetchmail_ntlm(server, tmp_path, protocol)
        assert code == 0, errors
    finally:
        server.stop()
