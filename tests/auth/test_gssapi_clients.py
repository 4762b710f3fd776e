"""GSSAPI (RFC 4752) against a real MIT KDC with real clients: curl, fetchmail,
and the Python ``gssapi`` package driving imaplib/poplib.

The server runs under SecureLogin without TLS: PLAIN is not offered, GSSAPI
(which sends no password) is, as Exchange offers it before STARTTLS.
"""

from __future__ import annotations

import base64
import imaplib
import poplib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer, in_reactor, start_server
from kdc_server import (  # noqa: F401 - the fixtures kdc and alice_ccache
    ALICE_PASSWORD,
    BOB_PASSWORD,
    KDC,
    REALM,
    alice_ccache_fixture,
    kdc_fixture,
)

from exchmail.auth.saslconfig import GSSAPIConfig

gssapi = pytest.importorskip("gssapi", reason="the gssapi package (exchmail[gssapi]) is missing")

MESSAGE = b"From: a@example.com\r\nSubject: kerberos\r\n\r\nhello over GSSAPI\r\n"


def gssapi_config(kdc: KDC, **changes: Any) -> GSSAPIConfig:
    config = GSSAPIConfig(
        keytab=kdc.keytab, imap_principal="imap/localhost", pop3_principal="pop/localhost", realms=(REALM,)
    )
    return replace(config, **changes)


def start(tmp_path: Path, config: GSSAPIConfig, **kwargs: Any) -> RunningServer:
    server = start_server(tmp_path, login_type="SecureLogin", config_changes={"gssapi": config}, **kwargs)

    def deliver() -> Any:
        d = server.store.account("alice")
        d.addCallback(lambda account: account.mailbox("INBOX"))
        return d.addCallback(lambda inbox: inbox.append(MESSAGE))

    in_reactor(deliver)
    return server


@pytest.fixture
def gss_server(reactor_thread: Any, tmp_path: Path, kdc: KDC) -> Iterator[RunningServer]:
    server = start(tmp_path, gssapi_config(kdc))
    yield server
    server.stop()


class SASLClient:
    """The client side of RFC 4752 with the gssapi package (for imaplib/poplib)."""

    def __init__(self, ccache: Path, service: str, authzid: bytes = b"", mutual: bool = True) -> None:
        creds = gssapi.Credentials(usage="initiate", store={"ccache": f"FILE:{ccache}"})
        flags = gssapi.RequirementFlag.integrity
        if mutual:
            flags |= gssapi.RequirementFlag.mutual_authentication
        self.context = gssapi.SecurityContext(
            name=gssapi.Name(f"{service}@localhost", gssapi.NameType.hostbased_service),
            creds=creds,
            usage="initiate",
            flags=flags,
        )
        self.authzid = authzid
        self.sent: list[bytes] = []

    def respond(self, challenge: bytes) -> bytes:
        if not self.context.complete:
            out = self.context.step(challenge or None) or b""
        elif not challenge:
            out = b""
        else:
            layers = self.context.unwrap(challenge).message
            assert layers == b"\x01\x00\x00\x00"  # only "no security layer" offered (V0021)
            out = self.context.wrap(b"\x01\x00\x00\x00" + self.authzid, False).message
        self.sent.append(out)
        return out


def curl(kdc: KDC, ccache: Path, url: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    # curl offers GSSAPI only for a user name with a realm (any: the ticket decides).
    return subprocess.run(
        [
            "curl",
            "-sS",
            "--ipv4",
            "--max-time",
            "20",
            "--user",
            f"alice@{REALM}:",
            "--login-options",
            "AUTH=GSSAPI",
            *args,
            url,
        ],
        capture_output=True,
        timeout=30,
        env=kdc.env(ccache),
    )


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
needs_fetchmail = pytest.mark.skipif(shutil.which("fetchmail") is None, reason="fetchmail is not installed")


# -- real clients -----------------------------------------------------------------------
@needs_curl
def test_E0003_curl_imap_gssapi_select_and_fetch(gss_server, kdc, alice_ccache):
    result = curl(kdc, alice_ccache, f"imap://localhost:{gss_server.imap_port}/INBOX;UID=1")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == MESSAGE


@needs_curl
def test_E0002_curl_pop3_gssapi_stat_and_retr(gss_server, kdc, alice_ccache):
    url = f"pop3://localhost:{gss_server.pop3_port}/"
    listing = curl(kdc, alice_ccache, url)
    assert listing.returncode == 0, listing.stderr.decode()
    assert listing.stdout.split()[0] == b"1"
    result = curl(kdc, alice_ccache, url + "1")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == MESSAGE


@needs_curl
def test_E0003_curl_without_ticket_is_refused(gss_server, kdc, tmp_path):
    result = curl(kdc, tmp_path / "empty.ccache", f"imap://localhost:{gss_server.imap_port}/INBOX;UID=1")
    assert result.returncode != 0


def fetchmail(
    kdc: KDC,
    ccache: Path,
    tmp_path: Path,
    protocol: str,
    port: int,
    auth: str,
    user: str = "alice",
    password: str = "",
) -> tuple[int, str, list[bytes]]:
    out_dir = tmp_path / f"delivered-{protocol}-{auth}"
    out_dir.mkdir()
    rc = tmp_path / f"fetchmailrc-{protocol}-{auth}"
    secret = f' password "{password}"' if password else ""
    rc.write_text(
        "set invisible\n"
        f"poll localhost protocol {protocol} port {port} auth {auth} timeout 20\n"
        f"  user {user}{secret} is {user} here\n"
        f"  mda \"cat > {out_dir}/msg-$$\" no rewrite sslproto '' keep fetchall\n"
    )
    rc.chmod(0o600)
    env = dict(kdc.env(ccache), HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
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
    return result.returncode, result.stderr.decode(), [p.read_bytes() for p in out_dir.iterdir()]


@needs_fetchmail
@pytest.mark.parametrize("protocol", ["IMAP", "POP3"])
def test_E0003_fetchmail_gssapi(gss_server, kdc, alice_ccache, tmp_path, protocol):
    port = gss_server.imap_port if protocol == "IMAP" else gss_server.pop3_port
    code, errors, delivered = fetchmail(kdc, alice_ccache, tmp_path, protocol, port, "gssapi")
    assert code == 0, errors
    assert delivered == [MESSAGE.replace(b"\r\n", b"\n")]


# -- Python gssapi client over imaplib / poplib ----------------------------------------
def test_E0003_python_gssapi_imap_capability_order_and_select(gss_server, alice_ccache):
    imap = imaplib.IMAP4("127.0.0.1", gss_server.imap_port, timeout=10)
    try:
        caps = imap.capability()[1][0].split()
        auths = [c for c in caps if c.startswith(b"AUTH=")]
        assert auths == [b"AUTH=GSSAPI"]  # no NTLM configured; PLAIN refused before TLS
        client = SASLClient(alice_ccache, "imap")
        assert imap.authenticate("GSSAPI", client.respond)[0] == "OK"
        assert imap.select("INBOX") == ("OK", [b"1"])
        assert imap.fetch("1", "(BODY.PEEK[])")[1][0][1] == MESSAGE
    finally:
        imap.logout()


def pop3_auth(pop: poplib.POP3, mechanism: str, respond: Any) -> bytes:
    """RFC 5034 AUTH driven by ``respond`` (poplib has no AUTH); the final line."""
    pop._putcmd(f"AUTH {mechanism}")
    while True:
        line = pop._getline()[0]
        if not line.startswith(b"+ ") and line != b"+":
            return line
        challenge = base64.b64decode(line[2:].strip() or b"")
        pop._putcmd(base64.b64encode(respond(challenge)).decode())


def test_E0002_python_gssapi_pop3_capa_and_stat(gss_server, alice_ccache):
    pop = poplib.POP3("127.0.0.1", gss_server.pop3_port, timeout=10)
    try:
        assert pop.capa()["SASL"] == ["GSSAPI"]
        client = SASLClient(alice_ccache, "pop")
        assert pop3_auth(pop, "GSSAPI", client.respond).startswith(b"+OK")
        assert pop.stat()[0] == 1
        assert b"\r\n".join(pop.retr(1)[1]) + b"\r\n" == MESSAGE
    finally:
        pop.quit()


def imap_gssapi(server: RunningServer, client: SASLClient) -> tuple[str, Any]:
    imap = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
    try:
        return imap.authenticate("GSSAPI", client.respond)
    except imaplib.IMAP4.error as e:
        return "NO", str(e)
    finally:
        try:
            imap.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


# -- refusals ----------------------------------------------------------------------------
def test_E0003_foreign_realm_refused(reactor_thread, tmp_path, kdc, alice_ccache):
    server = start(tmp_path, gssapi_config(kdc, realms=("OTHER.TEST",)))
    try:
        typ, text = imap_gssapi(server, SASLClient(alice_ccache, "imap"))
        assert typ == "NO" and "AUTHENTICATIONFAILED" in text
    finally:
        server.stop()


def test_E0003_principal_table_and_authzid(reactor_thread, tmp_path, kdc, alice_ccache):
    config = gssapi_config(
        kdc, realms=(), principals={f"alice@{REALM}": "bob"}, authorize={f"alice@{REALM}": ("alice",)}
    )
    server = start(tmp_path, config)
    try:
        assert imap_gssapi(server, SASLClient(alice_ccache, "imap"))[0] == "OK"  # as bob
        assert imap_gssapi(server, SASLClient(alice_ccache, "imap", b"alice"))[0] == "OK"
        typ, text = imap_gssapi(server, SASLClient(alice_ccache, "imap", b"carol"))
        assert typ == "NO"
    finally:
        server.stop()


def test_E0003_authzid_of_another_user_refused(gss_server, alice_ccache):
    typ, _ = imap_gssapi(gss_server, SASLClient(alice_ccache, "imap", b"bob"))
    assert typ == "NO"
    assert imap_gssapi(gss_server, SASLClient(alice_ccache, "imap", b"alice"))[0] == "OK"


def test_E0003_instance_principal_not_stripped(gss_server, kdc, tmp_path):
    ccache = tmp_path / "carol.ccache"
    kdc.kinit(ccache, "carol/admin", "carol admin pw")
    typ, _ = imap_gssapi(gss_server, SASLClient(ccache, "imap"))
    assert typ == "NO"


def test_E0003_replayed_exchange_refused(gss_server, alice_ccache):
    """A recorded exchange replayed: refused by the replay cache (no mutual
    authentication) or, with mutual authentication, by the acceptor subkey."""
    for mutual in (False, True):
        original = SASLClient(alice_ccache, "imap", mutual=mutual)
        assert imap_gssapi(gss_server, original)[0] == "OK"
        recorded = iter(original.sent)
        imap = imaplib.IMAP4("127.0.0.1", gss_server.imap_port, timeout=10)
        try:
            with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                imap.authenticate("GSSAPI", lambda _, sent=recorded: next(sent, b""))
        finally:
            imap.logout()


@pytest.mark.slow(waits=True)
def test_E0003_expired_ticket_refused(gss_server, kdc, tmp_path):
    """A ticket that expired between the client's request and the server's check
    (the fixture realm allows 2 s of clock skew)."""
    ccache = tmp_path / "short.ccache"
    kdc.kinit(ccache, lifetime="2s")
    client = SASLClient(ccache, "imap")
    first = client.context.step()
    time.sleep(5)  # past the ticket's end and the skew: bounded, no time asserted

    def respond(challenge: bytes) -> bytes:
        return first if not challenge else b""

    imap = imaplib.IMAP4("127.0.0.1", gss_server.imap_port, timeout=10)
    try:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            imap.authenticate("GSSAPI", respond)
    finally:
        imap.logout()


def test_E0003_wrong_password_gets_no_ticket(kdc, tmp_path):
    """The password never reaches exchmail: the KDC refuses it before any login."""
    with pytest.raises(RuntimeError, match="Password incorrect|preauthentication failed"):
        kdc.kinit(tmp_path / "wrong.ccache", "alice", "not " + ALICE_PASSWORD)


def test_E0003_unusable_setups_stop_start_up(reactor_thread, tmp_path, kdc):
    from exchmail.errors import ConfigError

    for config, key in (
        (gssapi_config(kdc, keytab=tmp_path / "missing.keytab"), "gssapi.keytab"),
        (gssapi_config(kdc, imap_principal="imap/elsewhere"), "gssapi.imap_principal"),
    ):
        with pytest.raises(ConfigError, match=key):
            start_server(tmp_path / key, login_type="SecureLogin", config_changes={"gssapi": config})


# -- the LDAP directory ---------------------------------------------------------------------
def test_E0003_ldap_directory_maps_principals(reactor_thread, tmp_path, kdc, alice_ccache):
    """A principal's account comes from LDAP (principal_filter), with the
    directory's per-protocol groups: alice may use IMAP, bob not POP3."""
    from slapd_server import MAIL_GROUP, POP_GROUP, Slapd, ldap_config
    from slapd_server import unavailable_reason as slapd_missing

    from exchmail.service.config import default_config

    if slapd_missing():
        pytest.skip(f"OpenLDAP slapd is not available: {slapd_missing()}")
    slapd = Slapd(tmp_path / "slapd")
    slapd.start()
    auth = replace(default_config(tmp_path).auth, backend="ldap")
    ldap = ldap_config(
        slapd,
        imap_group=MAIL_GROUP,
        pop3_group=POP_GROUP,
        principal_filter="(&(objectClass=inetOrgPerson)(uid={user}))",
    )
    server = start_server(
        tmp_path / "server",
        users=(),
        login_type="SecureLogin",
        config_changes={"auth": auth, "ldap": ldap, "gssapi": gssapi_config(kdc)},
    )
    try:
        imap = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=10)
        assert imap.authenticate("GSSAPI", SASLClient(alice_ccache, "imap").respond)[0] == "OK"
        assert imap.select("INBOX")[0] == "OK"
        imap.logout()
        bob = tmp_path / "bob.ccache"
        kdc.kinit(bob, "bob", BOB_PASSWORD)
        pop = poplib.POP3("127.0.0.1", server.pop3_port, timeout=10)
        assert pop3_auth(pop, "GSSAPI", SASLClient(bob, "pop").respond).startswith(b"-ERR")
        pop.quit()
    finally:
        server.stop()
        slapd.stop()
