"""NTLM, GSSAPI and bearer tokens in memory (tests/harness.py): the exchange's
shape, every failure path, the session's failure limit, the throttle, the
capability order and the protocol log.  The tokens come from real client
libraries (pyspnego, python-gssapi against the fixture KDC, PyJWT)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import add_accounts
from harness import Harness
from kdc_server import (  # noqa: F401 - the fixtures kdc and alice_ccache
    KDC,
    REALM,
    alice_ccache_fixture,
    kdc_fixture,
)

from exchmail.auth.checker import AccountsChecker
from exchmail.auth.sasl import challengers
from exchmail.auth.saslconfig import GSSAPIConfig, NTLMConfig, OAuthConfig
from exchmail.auth.saslsetup import offered_mechanisms
from exchmail.auth.throttle import LoginThrottle, ThrottleSettings
from exchmail.auth.verified import IdentityMap, VerifiedLoginChecker
from exchmail.session.protolog import ProtocolLog, ProtocolLogObserver

spnego = pytest.importorskip("spnego")
PASSWORD = "pw"


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def unb64(line: bytes) -> bytes:
    assert line.startswith(b"+ "), line
    return base64.b64decode(line[2:].strip())


def make(tmp_path: Path, setups: dict[bytes, Any], overrides: dict | None = None, **context: Any) -> Harness:
    """A harness whose portal checks the accounts file (alice with an NT hash)."""
    add_accounts(tmp_path / "users", ["alice"], PASSWORD, nt_hash=True)
    add_accounts(tmp_path / "users", ["bob"], PASSWORD)
    checker = AccountsChecker(tmp_path / "users", cache_ttl=0)
    h = Harness(overrides={"login_type": "SecureLogin", **(overrides or {})}, checker=checker, **context)
    h.portal.registerChecker(VerifiedLoginChecker(checker))
    for name in ("imap", "pop3"):
        settings = getattr(h.profile, name)
        mechanisms = challengers(offered_mechanisms(settings), h.portal, setups)
        h.contexts[name] = replace(h.contexts[name], mechanisms=mechanisms)
    return h


def ntlm_setup() -> dict[bytes, Any]:
    from exchmail.auth.ntlm import NTLMSetup

    return {b"NTLM": NTLMSetup(NTLMConfig(domains=("EXCHMAIL",)))}


# -- NTLM ---------------------------------------------------------------------------------
def test_E0004_ntlm_offered_before_tls_exchange_shape(tmp_path):
    """[MS-OXIMAP4]: an empty '+ ' first, then NEGOTIATE / CHALLENGE / AUTHENTICATE."""
    c = make(tmp_path, ntlm_setup()).imap()
    assert b"AUTH=NTLM" in c.line("a CAPABILITY")  # before STARTTLS, under SecureLogin
    assert c.line("a AUTHENTICATE NTLM") == b"+ \r\n"
    client = spnego.client("alice", PASSWORD, protocol="ntlm")
    challenge = c.line(b64(client.step()))
    out = c.line(b64(client.step(unb64(challenge))))
    assert out == b"a OK AUTHENTICATE completed.\r\n"


def test_E0003_ntlm_initial_response_and_pop3(tmp_path):
    h = make(tmp_path, ntlm_setup())
    c = h.imap()
    client = spnego.client("EXCHMAIL\\alice", PASSWORD, protocol="ntlm")
    challenge = c.line(b"a AUTHENTICATE NTLM " + b64(client.step()))
    assert c.line(b64(client.step(unb64(challenge)))).startswith(b"a OK")
    p = h.pop3()
    assert p.line("CAPA").count(b"SASL NTLM") == 1
    assert p.line("AUTH NTLM") == b"+ \r\n"
    client = spnego.client("alice", PASSWORD, protocol="ntlm")
    challenge = p.line(b64(client.step()))
    assert p.line(b64(client.step(unb64(challenge)))) == b"+OK User successfully logged on.\r\n"


@pytest.mark.parametrize("garbage", [b"not ntlm at all", b"NTLMSSP\x00\x01\x00"])
def test_E0003_ntlm_garbage_and_truncated_tokens(tmp_path, garbage):
    c = make(tmp_path, ntlm_setup()).imap()
    c.line("a AUTHENTICATE NTLM")
    assert c.line(b64(garbage)) == b"a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    client = spnego.client("alice", PASSWORD, protocol="ntlm")
    c.line("b AUTHENTICATE NTLM")
    challenge = c.line(b64(client.step()))
    authenticate = client.step(unb64(challenge))
    assert c.line(b64(authenticate[:40])).startswith(b"b NO [AUTHENTICATIONFAILED]")
    assert not c.closed


def test_E0003_ntlm_response_that_does_not_parse_is_a_failed_login(tmp_path):
    """An NT response of 25-43 octets is neither v1 nor a whole v2 blob: its
    parse raised ValueError in the checker, answered NO [SERVERBUG] with a
    traceback, and was not counted as a failure (found by fuzzing)."""
    import struct

    h = make(tmp_path, ntlm_setup())
    for step in range(2):
        c = h.imap()
        c.line(f"a{step} AUTHENTICATE NTLM")
        client = spnego.client("alice", PASSWORD, protocol="ntlm")
        challenge = c.line(b64(client.step()))
        authenticate = bytearray(client.step(unb64(challenge)))
        offset = struct.unpack_from("<I", authenticate, 24)[0]
        struct.pack_into("<HHI", authenticate, 20, 30, 30, offset)  # NtChallengeResponse: 30 octets
        assert (
            c.line(b64(bytes(authenticate)))
            == f"a{step} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n".encode()
        )
        assert c.line("n NOOP").startswith(b"n OK")


def test_E0003_ntlmv1_refused_unless_legacy(tmp_path):
    """An NTLMv1 response (LM_COMPAT_LEVEL 1 makes pyspnego send one) is refused by
    default, and accepted with ntlm.allow_ntlmv1."""
    from exchmail.auth.ntlm import NTLMSetup

    def v1_login(h: Harness) -> bytes:
        c = h.imap()
        c.line("a AUTHENTICATE NTLM")
        client = spnego.client("alice", PASSWORD, protocol="ntlm")
        challenge = c.line(b64(client.step()))
        return c.line(b64(client.step(unb64(challenge))))

    import os

    os.environ["LM_COMPAT_LEVEL"] = "1"
    try:
        assert v1_login(make(tmp_path / "v2", ntlm_setup())).startswith(b"a NO")
        legacy = {b"NTLM": NTLMSetup(NTLMConfig(allow_ntlmv1=True))}
        assert v1_login(make(tmp_path / "v1", legacy)).startswith(b"a OK")
    finally:
        del os.environ["LM_COMPAT_LEVEL"]


def test_E0003_bad_base64_and_cancel_count_toward_the_limit(tmp_path):
    """V0058: bad base64, a cancelled exchange and a bad token are failed attempts;
    the fourth ends the session."""
    c = make(tmp_path, ntlm_setup()).imap()
    c.line("a AUTHENTICATE NTLM")
    assert c.line("!!!").startswith(b"a BAD Invalid SASL response")
    c.line("b AUTHENTICATE NTLM")
    assert c.line("*") == b"b NO The AUTH protocol exchange was canceled by the client.\r\n"
    c.line("c AUTHENTICATE NTLM")
    assert c.line(b64(b"junk")).startswith(b"c NO [AUTHENTICATIONFAILED]")
    assert not c.closed
    c.line("d AUTHENTICATE NTLM")
    out = c.line("*")
    assert out == (
        b"d NO The AUTH protocol exchange was canceled by the client.\r\n"
        b"* BYE Too many failed login attempts\r\n"
    )
    assert c.closed


def test_E0002_pop3_cancel_text_and_limit(tmp_path):
    p = make(tmp_path, ntlm_setup()).pop3()
    for _ in range(3):
        p.line("AUTH NTLM")
        assert p.line("*") == b"-ERR The AUTH protocol exchange was canceled by the client.\r\n"
    p.line("AUTH NTLM")
    assert p.line(b64(b"junk")).startswith(b"-ERR [AUTH]")
    assert p.closed  # C0005


def test_E0003_refusals_reach_the_throttle(tmp_path):
    from twisted.internet.task import Clock

    clock = Clock()
    throttle = LoginThrottle(ThrottleSettings(ip_delay_after=2, pair_delay_after=2), clock)
    h = make(tmp_path, ntlm_setup(), throttle=throttle)
    h.clock = clock
    c = h.imap()
    for tag in (b"a", b"b"):
        c.line(tag + b" AUTHENTICATE NTLM")
        c.line(b64(b"junk"))
    assert throttle.delay("192.0.2.1", "") > 0


# -- GSSAPI ----------------------------------------------------------------------------
def gss_setup(kdc: KDC, **changes: Any) -> dict[bytes, Any]:
    from exchmail.auth.kerberos import GSSAPISetup
    from exchmail.session.context import run_inline

    config = replace(
        GSSAPIConfig(
            keytab=kdc.keytab,
            imap_principal="imap/localhost",
            pop3_principal="pop/localhost",
            realms=(REALM,),
        ),
        **changes,
    )
    return {b"GSSAPI": GSSAPISetup(config, "imap/localhost", "gssapi.imap_principal", run_inline)}


def gss_client(ccache: Path) -> Any:
    import gssapi

    creds = gssapi.Credentials(usage="initiate", store={"ccache": f"FILE:{ccache}"})
    return gssapi.SecurityContext(
        name=gssapi.Name("imap@localhost", gssapi.NameType.hostbased_service),
        creds=creds,
        usage="initiate",
        flags=gssapi.RequirementFlag.mutual_authentication,
    )


def gss_until_layers(c: Any, client: Any) -> bytes:
    """Run the context exchange; the wrapped security-layer challenge."""
    challenge = c.line(b"a AUTHENTICATE GSSAPI " + b64(client.step()))
    client.step(unb64(challenge))
    return unb64(c.line(b""))


def test_V0021_E0003_gssapi_offers_only_no_security_layer(tmp_path, kdc, alice_ccache):
    """V0021: the final server message offers layer 1 (none) and size 0."""
    c = make(tmp_path, gss_setup(kdc)).imap()
    client = gss_client(alice_ccache)
    layers = client.unwrap(gss_until_layers(c, client)).message
    assert layers == b"\x01\x00\x00\x00"
    answer = client.wrap(b"\x01\x00\x00\x00alice", False).message
    assert c.line(b64(answer)) == b"a OK AUTHENTICATE completed.\r\n"


@pytest.mark.parametrize("choice", [b"\x02\x00\x10\x00", b"\x04\x00\x10\x00", b"\x01\x00"])
def test_E0003_gssapi_security_layer_choices_refused(tmp_path, kdc, alice_ccache, choice):
    c = make(tmp_path, gss_setup(kdc)).imap()
    client = gss_client(alice_ccache)
    gss_until_layers(c, client)
    out = c.line(b64(client.wrap(choice, False).message))
    assert out.startswith(b"a NO [AUTHENTICATIONFAILED]") or out.startswith(b"a BAD")


def test_E0003_gssapi_bad_tokens(tmp_path, kdc, alice_ccache):
    c = make(tmp_path, gss_setup(kdc)).imap()
    assert c.line(b"a AUTHENTICATE GSSAPI " + b64(b"\x60\x82garbage")).startswith(
        b"a NO [AUTHENTICATIONFAILED]"
    )
    token = gss_client(alice_ccache).step()
    assert c.line(b"b AUTHENTICATE GSSAPI " + b64(token[: len(token) // 2])).startswith(
        b"b NO [AUTHENTICATIONFAILED]"
    )
    client = gss_client(alice_ccache)
    c.line(b"c AUTHENTICATE GSSAPI")
    challenge = c.line(b64(client.step()))
    client.step(unb64(challenge))
    c.line(b"")
    assert c.line(b64(b"not a wrap token")).startswith(b"c NO [AUTHENTICATIONFAILED]")
    assert c.closed is False


def test_E0003_gssapi_foreign_realm_in_memory(tmp_path, kdc, alice_ccache):
    c = make(tmp_path, gss_setup(kdc, realms=("OTHER.TEST",))).imap()
    client = gss_client(alice_ccache)
    gss_until_layers(c, client)
    out = c.line(b64(client.wrap(b"\x01\x00\x00\x00", False).message))
    assert out.startswith(b"a NO [AUTHENTICATIONFAILED]")


def test_E0004_capability_order_ntlm_gssapi_plain(tmp_path, kdc):
    """Exchange's order: AUTH=NTLM AUTH=GSSAPI AUTH=PLAIN, POP3 SASL NTLM GSSAPI PLAIN
    (PLAIN only where login_type allows it; NTLM and GSSAPI before TLS too)."""
    setups = {**ntlm_setup(), **gss_setup(kdc)}
    h = make(tmp_path, setups, overrides={"login_type": "PlainTextAuthentication"})
    assert b"AUTH=NTLM AUTH=GSSAPI AUTH=PLAIN" in h.imap().line("a CAPABILITY")
    assert b"SASL NTLM GSSAPI PLAIN" in h.pop3().line("CAPA")
    secure = make(tmp_path / "secure", setups)
    assert b"AUTH=NTLM AUTH=GSSAPI UIDPLUS" in secure.imap().line("a CAPABILITY")
    off = make(tmp_path / "off", setups, overrides={"EnableGSSAPIAndNTLMAuth": False})
    caps = off.imap().line("a CAPABILITY")
    assert b"AUTH=NTLM" not in caps and b"AUTH=GSSAPI" not in caps


# -- bearer tokens --------------------------------------------------------------------------
def bearer_setup(tmp_path: Path) -> tuple[dict[bytes, Any], Any, Any]:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec
    from twisted.internet.task import Clock

    from exchmail.auth.oauth import TokenValidator

    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "ec"}]}))
    config = OAuthConfig(
        issuer="https://issuer.test",
        audience=("imap",),
        jwks_file=tmp_path / "jwks.json",
        account_claim="upn",
        openid_configuration="https://issuer.test/.well-known/openid",
    )
    validator = TokenValidator(config, Clock())

    def token(**claims: Any) -> str:
        import time

        body = {
            "iss": "https://issuer.test",
            "aud": "imap",
            "exp": int(time.time()) + 60,
            "upn": "alice",
            **claims,
        }
        return jwt.encode(body, key, algorithm="ES256", headers={"kid": "ec"})

    return {b"XOAUTH2": validator, b"OAUTHBEARER": validator}, token, key


def test_E0004_bearer_tokens_are_not_offered_before_tls(tmp_path):
    setups, token, _ = bearer_setup(tmp_path)
    secure = make(tmp_path, setups, overrides={"enable_oauth": True})
    caps = secure.imap().line("a CAPABILITY")
    assert b"XOAUTH2" not in caps and b"OAUTHBEARER" not in caps
    assert b"XOAUTH2" not in secure.imap().line("a AUTHENTICATE XOAUTH2")
    open_ = make(
        tmp_path / "open", setups, overrides={"enable_oauth": True, "login_type": "PlainTextAuthentication"}
    )
    assert b"AUTH=PLAIN AUTH=XOAUTH2 AUTH=OAUTHBEARER" in open_.imap().line("a CAPABILITY")


def test_E0004_oauthbearer_error_challenge_then_no(tmp_path):
    """RFC 7628 §3.2.2: the error JSON as a challenge, the client's ^A, then NO."""
    setups, token, _ = bearer_setup(tmp_path)
    h = make(tmp_path, setups, overrides={"enable_oauth": True, "login_type": "PlainTextLogin"})
    c = h.imap()
    message = b"n,a=alice,\x01auth=Bearer " + token(aud="other").encode() + b"\x01\x01"
    error = json.loads(unb64(c.line(b"a AUTHENTICATE OAUTHBEARER " + b64(message))))
    assert error == {
        "status": "invalid_token",
        "openid-configuration": "https://issuer.test/.well-known/openid",
    }
    assert c.line(b64(b"\x01")) == b"a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    good = b"n,,\x01host=x\x01port=143\x01auth=Bearer " + token().encode() + b"\x01\x01"
    assert c.line(b"b AUTHENTICATE OAUTHBEARER " + b64(good)) == b"b OK AUTHENTICATE completed.\r\n"


def test_E0004_xoauth2_in_pop3_and_malformed_messages(tmp_path):
    setups, token, _ = bearer_setup(tmp_path)
    h = make(tmp_path, setups, overrides={"enable_oauth": True, "login_type": "PlainTextLogin"})
    p = h.pop3()
    assert p.line(b"AUTH XOAUTH2 " + b64(b"user=alice\x01auth=Bearer junk")).startswith(
        b"-ERR [AUTH]"
    )  # no ^A^A: malformed, counted
    p.line(b"AUTH XOAUTH2")
    error = json.loads(unb64(p.line(b64(b"user=alice\x01auth=Bearer junk\x01\x01"))))
    assert error["status"] == "401"
    assert p.line(b"").startswith(b"-ERR [AUTH]")
    ok = b"user=alice\x01auth=Bearer " + token().encode() + b"\x01\x01"
    assert p.line(b"AUTH XOAUTH2 " + b64(ok)) == b"+OK User successfully logged on.\r\n"


def test_E0004_tokens_never_reach_the_protocol_log(tmp_path):
    from twisted.internet.task import Clock

    setups, token, _ = bearer_setup(tmp_path)
    clock = Clock()
    logs = {name: ProtocolLog(tmp_path / "logs", name, clock) for name in ("imap", "pop3")}
    h = make(
        tmp_path, {**setups, **ntlm_setup()}, overrides={"enable_oauth": True, "login_type": "PlainTextLogin"}
    )
    for name in ("imap", "pop3"):
        h.contexts[name] = replace(h.contexts[name], observers=(ProtocolLogObserver(logs[name]),))
    secret = token()
    c = h.imap()
    c.line(b"a AUTHENTICATE XOAUTH2 " + b64(f"user=alice\x01auth=Bearer {secret}\x01\x01".encode()))
    c.line("b LOGOUT")
    client = spnego.client("alice", PASSWORD, protocol="ntlm")
    p = h.pop3()
    p.line("AUTH NTLM")
    negotiate = b64(client.step())
    authenticate = b64(client.step(unb64(p.line(negotiate))))
    p.line(authenticate)
    p.line("QUIT")
    for log in logs.values():
        log.close()
    text = "".join(f.read_text() for f in (tmp_path / "logs").iterdir())
    assert "****" in text and "AUTHENTICATE XOAUTH2" in text and "AUTH NTLM" in text
    for secret_part in (secret, secret.split(".")[2], negotiate.decode(), authenticate.decode()[:40]):
        assert secret_part not in text


def test_identity_map_rules():
    rules = IdentityMap(("EXCHMAIL.TEST",), {"svc/host@EXCHMAIL.TEST": "carol"})
    assert rules.account("alice@EXCHMAIL.TEST") == "alice"
    assert rules.account("alice@exchmail.test") == "alice"
    assert rules.account("SVC/HOST@EXCHMAIL.TEST") == "carol"
    assert rules.account("carol/admin@EXCHMAIL.TEST") is None  # instances never stripped
    assert rules.account("alice@OTHER.TEST") is None
    assert rules.account("alice") is None  # bare names only where allowed
    assert IdentityMap(bare=True).account("alice") == "alice"
