"""Bearer-token validation (exchmail.auth.oauth) in memory: the key sources,
the claims an RFC 7662 introspection answer must carry, its cache and size
limit, and the messages of XOAUTH2 and OAUTHBEARER.

The introspection endpoint here is a stand-in ``IAgent`` on a task.Clock;
tests/auth/test_oauth_clients.py talks to a real HTTP endpoint.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone

from exchmail.auth import oauth
from exchmail.auth.oauth import OAuthBearer, TokenValidator, XOAuth2
from exchmail.auth.sasl import MalformedResponse, MechanismRefused
from exchmail.auth.saslconfig import OAuthConfig
from exchmail.errors import ConfigError, DirectoryUnavailable

jwt = pytest.importorskip("jwt", reason="PyJWT (exchmail[oauth]) is missing")

ISSUER = "https://issuer.test"
AUDIENCE = "imap"


def failure_of(d: defer.Deferred[Any]) -> Failure:
    out: list[Any] = []
    d.addBoth(out.append)
    assert out and isinstance(out[0], Failure), out
    return out[0]


def result_of(d: defer.Deferred[Any]) -> Any:
    out: list[Any] = []
    d.addBoth(out.append)
    assert out and not isinstance(out[0], Failure), out
    return out[0]


def ec_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def sign(key: Any, kid: str | None = None, **claims: Any) -> str:
    body = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60, "upn": "alice", **claims}
    return jwt.encode(body, key, algorithm="ES256", headers={"kid": kid} if kid else None)


def config(**changes: Any) -> OAuthConfig:
    return OAuthConfig(issuer=ISSUER, audience=(AUDIENCE,), account_claim="upn", **changes)


# -- where the keys come from --------------------------------------------------------------


def test_issuer_key_pem_verifies_tokens_without_kid(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = ec_key()
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "issuer.pem").write_bytes(pem)
    validator = TokenValidator(config(issuer_key=tmp_path / "issuer.pem"), Clock())
    assert list(validator.keys) == [None]
    assert result_of(validator.validate(sign(key)))["upn"] == "alice"
    refused = failure_of(validator.validate(sign(ec_key())))  # signed by someone else
    assert refused.check(MechanismRefused) and "invalid token" in refused.getErrorMessage()


@pytest.mark.parametrize("alg", ["ES256", "ES512", "RS256"])
def test_a_token_of_another_key_family_is_refused(tmp_path: Path, alg: str) -> None:
    """An ES256 token against an RSA issuer key made PyJWT raise TypeError:
    NO [SERVERBUG] and a traceback for an unsigned token, before login
    (found by fuzzing). It is an invalid token like any other."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "issuer.pem").write_bytes(pem)
    validator = TokenValidator(config(issuer_key=tmp_path / "issuer.pem"), Clock())
    header = jwt.utils.base64url_encode(json.dumps({"alg": alg}).encode()).decode()
    refused = failure_of(validator.validate(f"{header}.e30.AAAA"))
    assert refused.check(MechanismRefused) and "invalid token" in refused.getErrorMessage()


@pytest.mark.parametrize("content", [None, b"not a PEM key"])
def test_unusable_issuer_key_stops_start_up(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "issuer.pem"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=r"oauth\.issuer_key: unusable"):
        TokenValidator(config(issuer_key=path), Clock())


def test_token_with_an_unknown_kid_is_refused(tmp_path: Path) -> None:
    first, second = ec_key(), ec_key()
    keys = [
        {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(k.public_key())), "kid": kid}
        for k, kid in ((first, "a"), (second, "b"))
    ]
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": keys}))
    validator = TokenValidator(config(jwks_file=tmp_path / "jwks.json"), Clock())
    assert result_of(validator.validate(sign(second, "b")))["upn"] == "alice"
    refused = failure_of(validator.validate(sign(second, "c")))
    assert refused.check(MechanismRefused) and refused.getErrorMessage() == "token signed by an unknown key"


# -- RFC 7662 introspection ----------------------------------------------------------------


class _Response:
    def __init__(self, code: int, body: bytes, chunks: int = 1) -> None:
        self.code = code
        self.body = body
        self.chunks = chunks
        self.stopped = False

    def stopProducing(self) -> None:  # the transport _Body stops when the answer is too large
        self.stopped = True

    def deliverBody(self, protocol: Any) -> None:
        protocol.makeConnection(self)
        size = -(-len(self.body) // self.chunks)
        for i in range(0, len(self.body), size):
            protocol.dataReceived(self.body[i : i + size])
        protocol.connectionLost(Failure(ResponseDone()))


class _Agent:
    """Answers each request with the next response (a Deferred that never fires when None)."""

    def __init__(self, *responses: _Response | None) -> None:
        self.responses = list(responses)
        self.requests: list[tuple[bytes, bytes, Any, bytes]] = []

    def request(self, method: bytes, uri: bytes, headers: Any, producer: Any) -> defer.Deferred[Any]:
        body = producer._inputFile.getvalue()  # FileBodyProducer over a BytesIO
        self.requests.append((method, uri, headers, body))
        response = self.responses.pop(0)
        return defer.Deferred() if response is None else defer.succeed(response)


def introspecting(agent: _Agent, clock: Clock | None = None, **changes: Any) -> TokenValidator:
    settings = {"introspection_url": "http://issuer.test/introspect", **changes}
    return TokenValidator(config(**settings), clock or Clock(), agent=agent)


def answer(**fields: Any) -> _Response:
    body = {"active": True, "iss": ISSUER, "aud": AUDIENCE, "upn": "alice", **fields}
    return _Response(200, json.dumps(body).encode())


def test_introspection_request_and_cached_answer() -> None:
    agent = _Agent(answer(exp=time.time() + 600))
    clock = Clock()
    validator = introspecting(
        agent, clock, introspection_client_id="exchmail", introspection_client_secret="s3cret"
    )
    assert result_of(validator.validate("opaque"))["upn"] == "alice"
    method, uri, headers, body = agent.requests[0]
    assert (method, uri) == (b"POST", b"http://issuer.test/introspect")
    assert headers.getRawHeaders(b"authorization") == [b"Basic ZXhjaG1haWw6czNjcmV0"]
    assert parse_qs(body.decode()) == {"token": ["opaque"], "token_type_hint": ["access_token"]}
    assert result_of(validator.validate("opaque"))["upn"] == "alice"  # from the cache
    assert len(agent.requests) == 1
    clock.advance(61)  # introspection_cache_ttl: asked again
    agent.responses.append(answer())
    assert result_of(validator.validate("opaque"))["upn"] == "alice"
    assert len(agent.requests) == 2


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [
        (_Response(503, b""), DirectoryUnavailable, "token introspection did not answer"),
        (_Response(200, b"<html>"), DirectoryUnavailable, "token introspection answered no JSON"),
        # Answered, but too large: a temporary failure too (the log says why).
        (_Response(200, b"x" * (oauth.MAX_ANSWER + 1), 4), DirectoryUnavailable, "did not answer"),
        (answer(active=False), MechanismRefused, "the token is not active"),
        (_Response(200, b"[true]"), MechanismRefused, "the token is not active"),
        (answer(exp=time.time() - 3600), MechanismRefused, "the token has expired"),
        (answer(aud=["other", "more"]), MechanismRefused, "the token is for another audience"),
        (answer(iss="https://elsewhere.test"), MechanismRefused, "the token is from another issuer"),
    ],
)
def test_introspection_answer_refused(response: _Response, error: type, message: str) -> None:
    validator = introspecting(_Agent(response))
    failed = failure_of(validator.validate("opaque"))
    assert failed.check(error) and message in failed.getErrorMessage()
    assert not validator._cache  # nothing kept


def test_introspection_answer_too_large_stops_the_download() -> None:
    response = _Response(200, b"x" * (oauth.MAX_ANSWER + 1), chunks=4)
    failure_of(introspecting(_Agent(response)).validate("opaque"))
    assert response.stopped


def test_introspection_timeout_is_temporary_and_logged() -> None:
    from twisted.logger import globalLogPublisher

    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    clock = Clock()
    try:
        d = introspecting(_Agent(None), clock, introspection_timeout=5.0).validate("opaque")
        clock.advance(5)
        failed = failure_of(d)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert failed.check(DirectoryUnavailable)
    assert any(e.get("log_namespace") == "exchmail.auth.oauth" and "url" in e for e in events)


def test_introspection_cache_keeps_the_newest_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oauth, "CACHE_ENTRIES", 2)
    agent = _Agent(answer(), answer(), answer(), answer())
    validator = introspecting(agent)
    for token in ("t1", "t2", "t3"):
        result_of(validator.validate(token))
    assert len(validator._cache) == 2
    result_of(validator.validate("t3"))  # kept
    assert len(agent.requests) == 3
    result_of(validator.validate("t1"))  # the oldest went
    assert len(agent.requests) == 4


def test_body_reader_passes_on_other_failures() -> None:
    done: defer.Deferred[bytes] = defer.Deferred()
    reader = oauth._Body(done)
    reader.dataReceived(b"{}")
    reader.connectionLost(Failure(ConnectionError("reset")))
    assert failure_of(done).check(ConnectionError)
    done = defer.Deferred()
    reader = oauth._Body(done)
    reader.dataReceived(b"{")
    reader.dataReceived(b"}")
    reader.connectionLost(None)
    assert result_of(done) == b"{}"


# -- the claims name the account -----------------------------------------------------------


def test_account_for_claims_and_user() -> None:
    validator = TokenValidator(config(domains=("example.org",)), Clock())
    assert validator.account_for({"upn": "alice@example.org"}, "") == ("alice", "alice@example.org")
    assert validator.account_for({"upn": "alice@example.org"}, "ALICE") == ("alice", "alice@example.org")
    assert validator.account_for({}, "") is None  # no claim
    assert validator.account_for({"upn": ""}, "") is None
    assert validator.account_for({"upn": 7}, "") is None
    assert validator.account_for({"upn": "alice@other.org"}, "") is None  # not a domain of ours
    assert validator.account_for({"upn": "alice@example.org"}, "bob") is None  # another user


# -- the messages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"user=alice\x01\x01", "expected user="),
        (b"user=alice\x01auth=Basic abc\x01\x01", "expected 'auth=Bearer <token>'"),
        (b"user=alice\x01auth=Bearer   \x01\x01", "expected 'auth=Bearer <token>'"),
        (b"user=\xff\x01auth=Bearer t\x01\x01", "not UTF-8"),
        (b"user=alice\x01=x\x01auth=Bearer t\x01\x01", "malformed key=value pair"),
        (b"user=alice\x01auth=Bearer " + b"t" * oauth._MAX_MESSAGE + b"\x01\x01", "must end with"),
    ],
)
def test_xoauth2_malformed_messages(message: bytes, reason: str) -> None:
    with pytest.raises(MalformedResponse, match=reason):
        XOAuth2(None).parse(message)


def test_xoauth2_message_parsed() -> None:
    assert XOAuth2(None).parse(b"user=alice\x01auth=Bearer tok\x01\x01") == ("alice", "tok")
    assert XOAuth2(None).parse(b"\x01auth=bearer tok\x01\x01") == ("", "tok")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"n,a=alice,auth=Bearer t", "expected a GS2 header"),  # no ^A
        (b"p=tls-unique,,\x01auth=Bearer t\x01\x01", "expected a GS2 header"),
        (b"n,a=alice,x\x01auth=Bearer t\x01\x01", "expected a GS2 header"),
        (b"n,u=alice,\x01auth=Bearer t\x01\x01", "malformed GS2 authzid"),
        (b"n,a=alice,\x01host=x\x01\x01", "expected auth=Bearer"),
        (b"n,a=\xff,\x01auth=Bearer t\x01\x01", "authorization identity is not UTF-8"),
    ],
)
def test_oauthbearer_malformed_messages(message: bytes, reason: str) -> None:
    with pytest.raises(MalformedResponse, match=reason):
        OAuthBearer(None).parse(message)


def test_oauthbearer_message_parsed() -> None:
    assert OAuthBearer(None).parse(b"n,a=al=2Cice,\x01auth=Bearer tok\x01\x01") == ("al,ice", "tok")
    assert OAuthBearer(None).parse(b"y,,\x01auth=Bearer tok\x01\x01") == ("", "tok")


def test_error_challenges_name_the_scope() -> None:
    validator = TokenValidator(config(scope="mail.read"), Clock())
    assert json.loads(XOAuth2(None, validator).error_challenge()) == {
        "status": "401",
        "schemes": "bearer",
        "scope": "mail.read",
    }
    assert json.loads(OAuthBearer(None, validator).error_challenge()) == {
        "status": "invalid_token",
        "scope": "mail.read",
    }
