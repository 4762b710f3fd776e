"""OAuth 2.0 bearer tokens: SASL OAUTHBEARER (RFC 7628) and XOAUTH2 (Microsoft 365, Gmail).

The client sends its token in one message (initial response or after an
empty challenge):

- ``XOAUTH2``: ``user=<user>^Aauth=Bearer <token>^A^A``;
- ``OAUTHBEARER``: ``n,a=<user>,^Ahost=...^Aport=...^Aauth=Bearer <token>^A^A``.

:class:`TokenValidator` checks the token with PyJWT: the signature against
the keys of ``[oauth] jwks_file`` (by ``kid``) or ``issuer_key``, only the
configured asymmetric algorithms (never ``none``, never a shared secret),
``iss``, ``aud``, ``exp`` and ``nbf`` with ``leeway`` seconds of clock skew,
and the required ``scope``.  With ``introspection_url`` it also asks the
issuer (RFC 7662; alone, for opaque tokens): answers are cached for at
most ``introspection_cache_ttl`` seconds and never past the token's
expiry; an endpoint that does not answer in ``introspection_timeout``
seconds is a temporary failure (``NO [UNAVAILABLE]``), never "wrong
password".  The claim ``account_claim`` names the account, mapped by the
:class:`~exchmail.auth.verified.IdentityMap` rule (``domains``,
``[oauth.accounts]``; a bare name is itself).  A user the client names
must be that account (or the claim's value).

A refused token is answered with the error challenge (RFC 7628 §3.2.2;
XOAUTH2: Google's ``{"status":"401",...}``), then, after the client's
dummy response, ``NO`` / ``-ERR``, counted like a wrong password.  Tokens
are secrets: never logged, and offered under ``auth.login_type`` like
passwords (``plaintext``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections import OrderedDict
from io import BytesIO
from typing import Any
from urllib.parse import urlencode

from twisted.internet import defer
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss

from exchmail.auth.sasl import Challenge, MalformedResponse, MechanismRefused, ServerMechanism, Step
from exchmail.auth.saslconfig import OAuthConfig
from exchmail.auth.verified import IdentityMap, VerifiedLogin, find_verifier
from exchmail.errors import ConfigError, DirectoryUnavailable

log = Logger(namespace="exchmail.auth.oauth")
#: Introspection answers kept at most.
CACHE_ENTRIES = 10_000
#: The largest introspection answer read, in octets.
MAX_ANSWER = 64 * 1024
_MAX_MESSAGE = 16 * 1024


class TokenValidator:
    """Checks bearer tokens; see the module docstring.

    :param clock: ``seconds()`` for expiry (the reactor; a Clock in tests).
    :param agent: a ``twisted.web.client.IAgent`` for introspection (default:
        an ``Agent`` on ``reactor``).
    :raises ConfigError: if PyJWT is missing or a key file is unusable.
    """

    def __init__(self, config: OAuthConfig, reactor: Any, agent: Any = None) -> None:
        try:
            import jwt
        except ImportError:
            raise ConfigError(
                "oauth: bearer tokens need the PyJWT package (pip install 'exchmail[oauth]')"
            ) from None
        self.jwt = jwt
        self.config = config
        self.reactor = reactor
        self.identities = IdentityMap(config.domains, config.accounts, bare=True)
        self.keys: dict[str | None, Any] = self._load_keys()
        self._agent = agent
        self._cache: OrderedDict[bytes, tuple[float, dict[str, Any]]] = OrderedDict()

    def _load_keys(self) -> dict[str | None, Any]:
        """``kid`` -> key (``None``: the issuer key, or a JWKS key without ``kid``)."""
        jwt, config = self.jwt, self.config
        if config.issuer_key is not None:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            try:
                return {None: load_pem_public_key(config.issuer_key.read_bytes())}
            except (OSError, ValueError, TypeError) as e:
                raise ConfigError(
                    f"oauth.issuer_key: unusable {config.issuer_key}: {getattr(e, 'strerror', None) or e}"
                ) from None
        if config.jwks_file is None:
            return {}
        try:
            keys = jwt.PyJWKSet.from_json(config.jwks_file.read_text(encoding="utf-8")).keys
        except (OSError, UnicodeDecodeError, ValueError, jwt.PyJWTError) as e:
            raise ConfigError(
                f"oauth.jwks_file: unusable {config.jwks_file}: {getattr(e, 'strerror', None) or e}"
            ) from None
        return {key.key_id: key.key for key in keys}

    # -- validation --------------------------------------------------------------------
    def validate(self, token: str) -> defer.Deferred[dict[str, Any]]:
        """The token's claims; fails with MechanismRefused (invalid) or
        DirectoryUnavailable (the introspection endpoint did not answer)."""
        try:
            claims = self._verify_jwt(token) if self.keys else {}
        except MechanismRefused as refused:
            return defer.fail(refused)
        if not self.config.introspection_url:
            return defer.succeed(claims)
        d = self._introspect(token)
        return d.addCallback(lambda answer: {**answer, **claims})

    def _verify_jwt(self, token: str) -> dict[str, Any]:
        jwt, config = self.jwt, self.config
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = (
                self.keys.get(kid)
                if kid in self.keys
                else (next(iter(self.keys.values())) if len(self.keys) == 1 else None)
            )
            if key is None:
                raise MechanismRefused("token signed by an unknown key")
            claims = jwt.decode(
                token,
                key,
                algorithms=list(config.algorithms),
                audience=list(config.audience),
                issuer=config.issuer,
                leeway=config.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, TypeError, ValueError) as e:
            # PyJWT raises TypeError/ValueError when the token's "alg" is of
            # another family than the key (ES256 against an RSA key).
            raise MechanismRefused(f"invalid token: {e}") from None
        self._check_scope(claims)
        return dict(claims)

    def _check_scope(self, claims: Any) -> None:
        wanted = self.config.scope.split()
        if not wanted:
            return
        granted = claims.get("scope", claims.get("scp", ""))
        granted = set(granted.split() if isinstance(granted, str) else granted or ())
        if not set(wanted) <= granted:
            raise MechanismRefused("the token lacks a required scope")

    # -- RFC 7662 introspection --------------------------------------------------------
    def _introspect(self, token: str) -> defer.Deferred[dict[str, Any]]:
        key = hashlib.sha256(token.encode("utf-8")).digest()
        now = self.reactor.seconds()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return defer.succeed(cached[1])
        self._cache.pop(key, None)
        d: defer.Deferred[Any] = self._post(token)
        return d.addCallback(self._answered, key)

    def _post(self, token: str) -> defer.Deferred[Any]:
        from twisted.web.client import Agent, FileBodyProducer
        from twisted.web.http_headers import Headers

        config = self.config
        agent = self._agent or Agent(self.reactor, connectTimeout=config.introspection_timeout)
        headers = {b"Content-Type": [b"application/x-www-form-urlencoded"], b"Accept": [b"application/json"]}
        if config.introspection_client_id:
            pair = f"{config.introspection_client_id}:{config.introspection_client_secret}"
            headers[b"Authorization"] = [b"Basic " + base64.b64encode(pair.encode("utf-8"))]
        body = urlencode({"token": token, "token_type_hint": "access_token"}).encode("ascii")
        d: defer.Deferred[Any] = agent.request(
            b"POST",
            config.introspection_url.encode("ascii"),
            Headers(headers),
            FileBodyProducer(BytesIO(body)),
        )

        def received(response: Any) -> Any:
            if response.code != 200:
                raise DirectoryUnavailable(f"token introspection answered {response.code}")
            body: defer.Deferred[bytes] = defer.Deferred()
            response.deliverBody(_Body(body))
            return body

        d.addCallback(received)
        d.addTimeout(config.introspection_timeout, self.reactor)

        def unavailable(failure: Any) -> Any:
            log.error(
                "Token introspection at {url} failed: {error}",
                url=config.introspection_url,
                error=failure.getErrorMessage(),
            )
            raise DirectoryUnavailable("token introspection did not answer")

        return d.addErrback(unavailable)

    def _answered(self, body: bytes, key: bytes) -> dict[str, Any]:
        try:
            answer = json.loads(body)
        except ValueError:
            raise DirectoryUnavailable("token introspection answered no JSON") from None
        if not isinstance(answer, dict) or answer.get("active") is not True:
            raise MechanismRefused("the token is not active")
        now = self.reactor.seconds()
        expires = answer.get("exp")
        wall = time.time()
        if isinstance(expires, (int, float)) and expires + self.config.leeway <= wall:
            raise MechanismRefused("the token has expired")
        audience = answer.get("aud")
        if audience is not None:
            given = {audience} if isinstance(audience, str) else set(audience)
            if not given & set(self.config.audience):
                raise MechanismRefused("the token is for another audience")
        issuer = answer.get("iss")
        if issuer is not None and issuer != self.config.issuer:
            raise MechanismRefused("the token is from another issuer")
        self._check_scope(answer)
        until = now + self.config.introspection_cache_ttl
        if isinstance(expires, (int, float)):
            until = min(until, now + (expires - wall))
        if until > now:
            self._cache[key] = (until, answer)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return answer

    def account_for(self, claims: dict[str, Any], user: str) -> tuple[str, str] | None:
        """(account, identity) for the claims, when ``user`` (if given) agrees; else None."""
        identity = claims.get(self.config.account_claim)
        if not isinstance(identity, str) or not identity:
            return None
        account = self.identities.account(identity)
        if account is None:
            return None
        if user and user.lower() not in (account.lower(), identity.lower()):
            return None
        return account, identity


class _BearerMechanism(ServerMechanism):
    """The common part: one message with the token, or an error challenge and NO."""

    plaintext = True  # a bearer token is replayable until it expires: like a password
    setup: TokenValidator

    def __init__(self, portal: Any, setup: Any = None) -> None:
        super().__init__(portal, setup)
        self._refused: MechanismRefused | None = None

    @classmethod
    def available(cls, portal: Any, setup: Any = None) -> bool:
        return isinstance(setup, TokenValidator) and find_verifier(portal)

    def parse(self, message: bytes) -> tuple[str, str]:
        """(user, token) of the client's message.  :raises MalformedResponse:"""
        raise NotImplementedError

    def error_challenge(self) -> bytes:
        raise NotImplementedError

    def step(self, response: bytes) -> Step | defer.Deferred[Step]:
        if self._refused is not None:  # the answer to the error challenge
            refused, self._refused = self._refused, None
            self.done = True
            raise refused
        self._check_open(response)
        user, token = self.parse(response)
        d: defer.Deferred[Any] = self.setup.validate(token)
        d.addCallback(self._validated, user)
        d.addErrback(self._invalid, user)
        return d

    def _validated(self, claims: dict[str, Any], user: str) -> Step:
        mapped = self.setup.account_for(claims, user)
        if mapped is None:
            raise MechanismRefused("the token names no account the client may use", user)
        account, identity = mapped
        return self._finish(VerifiedLogin(account.encode("utf-8"), identity, self.name.decode("ascii")))

    def _invalid(self, failure: Any, user: str) -> Step:
        failure.trap(MechanismRefused)
        log.info(
            "{mechanism} refused: {reason}",
            mechanism=self.name.decode("ascii"),
            reason=failure.getErrorMessage(),
        )
        self._refused = MechanismRefused(failure.getErrorMessage(), user)
        return Challenge(self.error_challenge())


class _Body(Protocol):
    """Collects an introspection answer of at most MAX_ANSWER octets."""

    def __init__(self, done: defer.Deferred[bytes]) -> None:
        self.done = done
        self.parts: list[bytes] = []
        self.size = 0

    def dataReceived(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > MAX_ANSWER:
            producer: Any = self.transport  # the response's producer: stop the download
            if producer is not None:
                producer.stopProducing()
            return
        self.parts.append(data)

    def connectionLost(self, reason: Any = None) -> None:
        if self.size > MAX_ANSWER:
            self.done.errback(DirectoryUnavailable("token introspection answer too large"))
        elif reason is None or reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.parts))
        else:
            self.done.errback(reason)


def _bearer(value: str) -> str:
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MalformedResponse("expected 'auth=Bearer <token>'")
    return token.strip()


class XOAuth2(_BearerMechanism):
    """XOAUTH2: ``user=U ^A auth=Bearer T ^A ^A``."""

    name = b"XOAUTH2"

    def parse(self, message: bytes) -> tuple[str, str]:
        fields = _fields(message)
        if "auth" not in fields:
            raise MalformedResponse("expected user=...^Aauth=Bearer ...^A^A")
        return fields.get("user", ""), _bearer(fields["auth"])

    def error_challenge(self) -> bytes:
        error: dict[str, str] = {"status": "401", "schemes": "bearer"}
        if self.setup.config.scope:
            error["scope"] = self.setup.config.scope
        return json.dumps(error).encode("utf-8")


class OAuthBearer(_BearerMechanism):
    """OAUTHBEARER (RFC 7628): a GS2 header, then key/value pairs."""

    name = b"OAUTHBEARER"

    def parse(self, message: bytes) -> tuple[str, str]:
        header, sep, rest = message.partition(b"\x01")
        parts = header.split(b",")
        if not sep or len(parts) != 3 or parts[0] not in (b"n", b"y") or parts[2]:
            raise MalformedResponse("expected a GS2 header 'n,a=user,' (no channel binding)")
        user = b""
        if parts[1]:
            if not parts[1].startswith(b"a="):
                raise MalformedResponse("malformed GS2 authzid")
            user = parts[1][2:].replace(b"=2C", b",").replace(b"=3D", b"=")
        fields = _fields(b"\x01" + rest)
        if "auth" not in fields:
            raise MalformedResponse("expected auth=Bearer <token>")
        try:
            return user.decode("utf-8"), _bearer(fields["auth"])
        except UnicodeDecodeError:
            raise MalformedResponse("the authorization identity is not UTF-8") from None

    def error_challenge(self) -> bytes:
        config = self.setup.config
        error = {"status": "invalid_token"}
        if config.scope:
            error["scope"] = config.scope
        if config.openid_configuration:
            error["openid-configuration"] = config.openid_configuration
        return json.dumps(error).encode("utf-8")


def _fields(message: bytes) -> dict[str, str]:
    """``key=value`` pairs separated by ^A, ending in ^A^A."""
    if len(message) > _MAX_MESSAGE or not message.endswith(b"\x01\x01"):
        raise MalformedResponse("the message must end with ^A^A")
    try:
        text = message[:-2].decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedResponse("the message is not UTF-8") from None
    out: dict[str, str] = {}
    for item in text.split("\x01"):
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise MalformedResponse("malformed key=value pair")
        out[key] = value
    return out
