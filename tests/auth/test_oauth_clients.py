"""OAuth 2.0 bearer tokens (XOAUTH2, OAUTHBEARER) with real clients: curl
(``--oauth2-bearer``) and IMAPClient (``oauth2_login``, ``oauthbearer_login``).

Tokens are minted here with a local RSA key published in a JWKS file; the
RFC 7662 introspection endpoint is a real HTTP server on loopback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSWORD, RunningServer, in_reactor, start_server
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from exchmail.auth.saslconfig import OAuthConfig

jwt = pytest.importorskip("jwt", reason="PyJWT (exchmail[oauth]) is missing")

ISSUER = "https://login.example.org/tenant"
AUDIENCE = "https://mail.example.org"
MESSAGE = b"From: a@example.com\r\nSubject: oauth\r\n\r\nhello over a bearer token\r\n"
OAUTH_ON = {"enable_oauth": True}
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


class Issuer:
    """An RSA signing key, its JWKS file, and tokens signed with it."""

    def __init__(self, folder: Path, kid: str = "key-1") -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self.jwks = folder / "jwks.json"
        self.jwks.write_text(json.dumps({"keys": [{**jwk, "kid": kid, "use": "sig", "alg": "RS256"}]}))

    def token(self, lifetime: float = 600, key: Any = None, algorithm: str = "RS256", **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + int(lifetime),
            "preferred_username": "alice@example.org",
            "scope": "IMAP.AccessAsUser.All",
            **claims,
        }
        if algorithm == "none":
            return jwt.encode(body, None, algorithm="none", headers={"kid": self.kid})
        return jwt.encode(body, key or self.key, algorithm=algorithm, headers={"kid": self.kid})


def oauth_config(issuer: Issuer, **changes: Any) -> OAuthConfig:
    config = OAuthConfig(
        issuer=ISSUER,
        audience=(AUDIENCE,),
        jwks_file=issuer.jwks,
        domains=("example.org",),
        scope="IMAP.AccessAsUser.All",
    )
    return replace(config, **changes)


def start(tmp_path: Path, config: OAuthConfig, overrides: dict | None = None) -> RunningServer:
    server = start_server(tmp_path, profile_overrides=overrides or OAUTH_ON, config_changes={"oauth": config})

    def deliver() -> Any:
        d = server.store.account("alice")
        d.addCallback(lambda account: account.mailbox("INBOX"))
        return d.addCallback(lambda inbox: inbox.append(MESSAGE))

    in_reactor(deliver)
    return server


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    return Issuer(tmp_path)


@pytest.fixture
def oauth_server(reactor_thread: Any, tmp_path: Path, issuer: Issuer) -> Iterator[RunningServer]:
    server = start(tmp_path / "server", oauth_config(issuer))
    yield server
    server.stop()


def imapclient_login(
    server: RunningServer, token: str, mechanism: str = "XOAUTH2", user: str = "alice@example.org"
) -> Any:
    client = IMAPClient("127.0.0.1", port=server.imap_port, ssl=False, timeout=10)
    try:
        if mechanism == "OAUTHBEARER":
            client.oauthbearer_login(user, token)
        else:
            client.oauth2_login(user, token, mech=mechanism)
        return client.select_folder("INBOX")[b"EXISTS"]
    finally:
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - a refused session may be closed already
            pass


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_E0004_imapclient_bearer_login(oauth_server, issuer, mechanism):
    assert imapclient_login(oauth_server, issuer.token(), mechanism) == 1


def test_E0004_capabilities_list_bearer_mechanisms_only_when_on(
    oauth_server, reactor_thread, tmp_path, issuer
):
    client = IMAPClient("127.0.0.1", port=oauth_server.imap_port, ssl=False, timeout=10)
    assert [c for c in client.capabilities() if c.startswith(b"AUTH=")] == [
        b"AUTH=PLAIN",
        b"AUTH=XOAUTH2",
        b"AUTH=OAUTHBEARER",
    ]
    client.logout()
    off = start(tmp_path / "off", oauth_config(issuer), overrides={"enable_oauth": False})
    try:
        client = IMAPClient("127.0.0.1", port=off.imap_port, ssl=False, timeout=10)
        assert [c for c in client.capabilities() if c.startswith(b"AUTH=")] == [b"AUTH=PLAIN"]
        client.logout()
    finally:
        off.stop()


@pytest.mark.parametrize(
    "case", ["expired", "audience", "signature", "none", "issuer", "scope", "account", "user"]
)
def test_E0004_bad_tokens_refused(oauth_server, issuer, tmp_path, case):
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token, user = {
        "expired": (issuer.token(lifetime=-3600), "alice"),
        "audience": (issuer.token(aud="https://elsewhere.example.org"), "alice"),
        "signature": (issuer.token(key=other), "alice"),
        "none": (issuer.token(algorithm="none"), "alice"),
        "issuer": (issuer.token(iss="https://evil.example.org"), "alice"),
        "scope": (issuer.token(scope="Mail.Read"), "alice"),
        "account": (issuer.token(preferred_username="alice@other.example"), "alice"),
        "user": (issuer.token(), "bob"),  # the token is alice's
    }[case]
    with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
        imapclient_login(oauth_server, token, user=user)


def curl(url: str, token: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "curl",
            "-sS",
            "--ipv4",
            "--max-time",
            "20",
            "--user",
            "alice@example.org",
            "--oauth2-bearer",
            token,
            *args,
            url,
        ],
        capture_output=True,
        timeout=30,
    )


@needs_curl
@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_E0004_curl_bearer_imap_and_pop3(oauth_server, issuer, mechanism):
    option = ("--login-options", f"AUTH={mechanism}")
    result = curl(f"imap://127.0.0.1:{oauth_server.imap_port}/INBOX;UID=1", issuer.token(), *option)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == MESSAGE
    result = curl(f"pop3://127.0.0.1:{oauth_server.pop3_port}/1", issuer.token(), *option)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == MESSAGE


@needs_curl
def test_E0004_curl_expired_token_refused(oauth_server, issuer):
    result = curl(f"imap://127.0.0.1:{oauth_server.imap_port}/INBOX;UID=1", issuer.token(lifetime=-3600))
    assert result.returncode == 67


def test_E0004_password_logins_still_work(oauth_server):
    client = IMAPClient("127.0.0.1", port=oauth_server.imap_port, ssl=False, timeout=10)
    client.login("alice", PASSWORD)
    client.logout()


# -- RFC 7662 introspection against a real HTTP endpoint -----------------------------------
class Introspection:
    """A token introspection endpoint on loopback (twisted.web)."""

    def __init__(self) -> None:
        from twisted.web import resource, server

        self.requests: list[dict[str, list[bytes]]] = []
        endpoint = self

        class Introspect(resource.Resource):
            isLeaf = True

            def render_POST(self, request: Any) -> bytes:
                endpoint.requests.append(dict(request.args))
                token = request.args.get(b"token", [b""])[0]
                answer: dict[str, Any] = {"active": False}
                if token == b"opaque-good" and request.getHeader("authorization"):
                    answer = {
                        "active": True,
                        "iss": ISSUER,
                        "aud": AUDIENCE,
                        "exp": int(time.time()) + 600,
                        "scope": "IMAP.AccessAsUser.All",
                        "preferred_username": "alice@example.org",
                    }
                request.setHeader(b"content-type", b"application/json")
                return json.dumps(answer).encode()

        self.site = server.Site(Introspect())
        self.port: Any = None

    def start(self) -> str:
        from twisted.internet import reactor

        self.port = in_reactor(lambda: reactor.listenTCP(0, self.site, interface="127.0.0.1"))
        return f"http://127.0.0.1:{self.port.getHost().port}/introspect"

    def stop(self) -> None:
        in_reactor(self.port.stopListening)


def test_E0004_introspection_opaque_token_cached(reactor_thread, tmp_path, issuer):
    endpoint = Introspection()
    url = endpoint.start()
    config = oauth_config(
        issuer,
        jwks_file=None,
        introspection_url=url,
        introspection_client_id="exchmail",
        introspection_client_secret="client secret",
    )
    server = start(tmp_path, config)
    try:
        assert imapclient_login(server, "opaque-good") == 1
        assert imapclient_login(server, "opaque-good") == 1
        assert len(endpoint.requests) == 1  # the second login used the cache
        with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
            imapclient_login(server, "opaque-revoked")
    finally:
        server.stop()
        endpoint.stop()


def test_E0004_introspection_unreachable_is_temporary(reactor_thread, tmp_path, issuer):
    from kdc_server import free_port

    config = oauth_config(
        issuer,
        jwks_file=None,
        introspection_url=f"http://127.0.0.1:{free_port()}/introspect",
        introspection_timeout=5.0,
    )
    server = start(tmp_path, config)
    try:
        with pytest.raises(LoginError, match=r"UNAVAILABLE"):
            imapclient_login(server, "opaque-good")
    finally:
        server.stop()
