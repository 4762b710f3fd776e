"""Server-side SASL mechanisms (RFC 4422), shared by IMAP AUTHENTICATE and POP3 AUTH.

A mechanism is a class with a two-method step API; one instance serves one
exchange::

    mechanism = MECHANISMS[b"PLAIN"](portal)
    step = mechanism.start(initial_response_or_None)   # may return a Deferred
    while isinstance(step, Challenge):
        ... send step.data, read the client's response ...
        step = mechanism.step(response)                 # may return a Deferred
    # step is an Outcome: log in with step.credentials through the portal;
    # on success send step.final (if any) as one more challenge, whose
    # answer must be empty (neither IMAP nor POP3 carries data with success).

Responses are the decoded octets (the protocol does base64 and ``*``).
A malformed response raises :class:`MalformedResponse`; the protocol
answers it (IMAP ``BAD``, POP3 ``-ERR``).  No mechanism here negotiates a
security layer (MS-STANXIMAP V0021).

``plaintext`` mechanisms carry the password itself and obey
``auth.login_type``; SCRAM, NTLM and GSSAPI do not, so they are allowed
before TLS.  Bearer tokens (XOAUTH2, OAUTHBEARER) are secrets anyone who
sees them can replay until they expire, so they count as plaintext.
New mechanisms register with :func:`register`.

Mechanisms that need configuration (GSSAPI's keytab, NTLM's domains, the
token issuer) get a *setup* object, one per service, through
:func:`challengers`: ``cls(portal, setup)``; without one they are not
offered.  Mechanisms that verify the client by themselves raise
:class:`MechanismRefused` (an ``UnauthorizedLogin``) from a step; the
session counts that like a wrong password.

SCRAM-SHA-256 (RFC 5802, RFC 7677) needs a checker that provides
:class:`~exchmail.interfaces.ISCRAMKeys` and accepts
:class:`~exchmail.interfaces.ISCRAMCredentials` (the accounts file does;
LDAP does not, so SCRAM is not offered there).  Unknown users get a
made-up salt, so the exchange does not reveal which users exist.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import stringprep
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from twisted.cred.credentials import UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from zope.interface import implementer

from exchmail.interfaces import ISCRAMCredentials, ISCRAMKeys

#: The iteration count of newly derived SCRAM keys (RFC 7677: at least 4096).
SCRAM_ITERATIONS = 10000
SCRAM_SALT_BYTES = 16
#: The largest decoded response any mechanism here accepts.
MAX_RESPONSE = 16 * 1024


class MalformedResponse(Exception):
    """The client's response does not follow the mechanism's syntax or order."""


class MechanismRefused(UnauthorizedLogin):
    """A mechanism that verifies by itself refused the client (bad ticket or
    token, foreign realm, ...).  ``username`` is the account the exchange
    named, if it got that far (``""`` otherwise), for the throttle."""

    def __init__(self, reason: str, username: str = "") -> None:
        super().__init__(reason)
        self.username = username


@dataclass(frozen=True)
class Challenge:
    """Send ``data`` to the client and pass its response to ``step``."""

    data: bytes


@dataclass(frozen=True)
class Outcome:
    """The exchange is complete: log in with ``credentials``.

    ``final`` is the server's last message (SCRAM's ``v=``), sent only
    after the login succeeded.
    """

    credentials: Any
    final: bytes | None = None


Step = Challenge | Outcome


class ServerMechanism:
    """Base class: one SASL exchange, server side."""

    #: The mechanism name as advertised.
    name: ClassVar[bytes] = b""
    #: Whether the password crosses the wire (login_type applies).
    plaintext: ClassVar[bool] = True

    def __init__(self, portal: Any, setup: Any = None) -> None:
        self.portal = portal
        self.setup = setup
        self.done = False

    @classmethod
    def available(cls, portal: Any, setup: Any = None) -> bool:
        """Whether this mechanism can work with ``portal``'s checkers (and
        ``setup``, the service's configuration of it, if it needs one)."""
        return True

    def start(self, initial: bytes | None) -> Step | defer.Deferred[Step]:
        """The first step: ``initial`` is the initial response, if the client sent one."""
        if initial is None:
            return Challenge(b"")
        return self.step(initial)

    def step(self, response: bytes) -> Step | defer.Deferred[Step]:
        raise NotImplementedError

    def _finish(self, credentials: Any, final: bytes | None = None) -> Outcome:
        self.done = True
        return Outcome(credentials, final)

    def _check_open(self, response: bytes) -> None:
        if self.done:
            raise MalformedResponse("the exchange is already complete")
        if len(response) > MAX_RESPONSE:
            raise MalformedResponse("response too long")


def _single_identity(authzid: bytes, authcid: bytes) -> None:
    """No proxy authorisation: an authorisation identity must be the user itself."""
    if authzid and authzid.lower() != authcid.lower():
        raise MalformedResponse("authorization identity differs from the user")


class Plain(ServerMechanism):
    """PLAIN (RFC 4616): ``[authzid] NUL authcid NUL passwd``."""

    name = b"PLAIN"

    def step(self, response: bytes) -> Step:
        self._check_open(response)
        parts = response.split(b"\0")
        if len(parts) != 3 or not parts[1]:
            raise MalformedResponse("expected authzid NUL authcid NUL password")
        authzid, authcid, password = parts
        _single_identity(authzid, authcid)
        return self._finish(UsernamePassword(authcid, password))


class Login(ServerMechanism):
    """LOGIN (draft-murchison-sasl-login): ``Username:`` then ``Password:``.

    An initial response is taken as the user name.
    """

    name = b"LOGIN"

    def __init__(self, portal: Any, setup: Any = None) -> None:
        super().__init__(portal, setup)
        self.username: bytes | None = None

    def start(self, initial: bytes | None) -> Step:
        if initial is None:
            return Challenge(b"Username:")
        return self.step(initial)

    def step(self, response: bytes) -> Step:
        self._check_open(response)
        if self.username is None:
            if not response:
                raise MalformedResponse("empty user name")
            self.username = response
            return Challenge(b"Password:")
        return self._finish(UsernamePassword(self.username, response))


# -- SCRAM -------------------------------------------------------------------------


@dataclass(frozen=True)
class SCRAMKeys:
    """What a server keeps for SCRAM: no password, nothing a client could log in with."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def encode(self) -> str:
        """The accounts-file field: ``$scram-sha-256$i=N$salt$StoredKey$ServerKey``."""
        b64 = [base64.b64encode(v).decode("ascii") for v in (self.salt, self.stored_key, self.server_key)]
        return f"$scram-sha-256$i={self.iterations}${b64[0]}${b64[1]}${b64[2]}"

    @classmethod
    def decode(cls, field: str) -> SCRAMKeys:
        """Parse :meth:`encode`'s form.  :raises ValueError: if malformed."""
        parts = field.split("$")
        if len(parts) != 6 or parts[0] or parts[1] != "scram-sha-256" or not parts[2].startswith("i="):
            raise ValueError("not a $scram-sha-256$ field")
        try:
            salt, stored, server = (base64.b64decode(p, validate=True) for p in parts[3:])
        except binascii.Error:
            raise ValueError("bad base64 in a $scram-sha-256$ field") from None
        iterations = int(parts[2][2:])
        if iterations < 1 or len(stored) != 32 or len(server) != 32:
            raise ValueError("bad $scram-sha-256$ field")
        return cls(salt, iterations, stored, server)


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def scram_keys(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> SCRAMKeys:
    """Derive the SCRAM-SHA-256 keys of ``password`` (SASLprep'd, RFC 5802 §3).

    :raises ValueError: if the password contains characters SASLprep prohibits.
    """
    salt = secrets.token_bytes(SCRAM_SALT_BYTES) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password).encode("utf-8"), salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    return SCRAMKeys(salt, iterations, hashlib.sha256(client_key).digest(), _hmac(salted, b"Server Key"))


def saslprep(text: str) -> str:
    """SASLprep (RFC 4013) for stored strings.  :raises ValueError: if prohibited."""
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c))
    normal = unicodedata.normalize("NFKC", mapped)
    if not normal:
        return normal
    prohibited = (
        stringprep.in_table_c12,
        stringprep.in_table_c21,
        stringprep.in_table_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
        stringprep.in_table_a1,
    )
    for c in normal:
        if any(check(c) for check in prohibited):
            raise ValueError(f"character {c!r} is prohibited by SASLprep")
    if any(stringprep.in_table_d1(c) for c in normal):
        if any(stringprep.in_table_d2(c) for c in normal) or not (
            stringprep.in_table_d1(normal[0]) and stringprep.in_table_d1(normal[-1])
        ):
            raise ValueError("bidirectional text not allowed by SASLprep")
    return normal


@implementer(ISCRAMCredentials)
class SCRAMCredentials:
    """The client's proof of a SCRAM exchange; a checker verifies it."""

    def __init__(self, username: bytes, auth_message: bytes, proof: bytes) -> None:
        self.username = username
        self.auth_message = auth_message
        self.proof = proof

    def check_stored_key(self, stored_key: bytes) -> bool:
        signature = _hmac(stored_key, self.auth_message)
        if len(self.proof) != len(signature):
            return False
        client_key = bytes(a ^ b for a, b in zip(self.proof, signature, strict=True))
        return hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key)


def find_scram_keys(portal: Any) -> Any:
    """The checker of ``portal`` that verifies SCRAM credentials, or ``None``."""
    checkers = getattr(portal, "checkers", {}) or {}
    checker = checkers.get(ISCRAMCredentials)
    return checker if checker is not None and ISCRAMKeys.providedBy(checker) else None


def _attributes(message: bytes) -> list[tuple[bytes, bytes]]:
    out = []
    for item in message.split(b","):
        if len(item) < 2 or item[1:2] != b"=" or not item[:1].isalpha():
            raise MalformedResponse("malformed SCRAM attribute")
        out.append((item[:1], item[2:]))
    return out


def _saslname(value: bytes) -> bytes:
    if b"," in value or (b"=" in value.replace(b"=2C", b"").replace(b"=3D", b"")):
        raise MalformedResponse("malformed SCRAM user name")
    return value.replace(b"=2C", b",").replace(b"=3D", b"=")


class ScramSHA256(ServerMechanism):
    """SCRAM-SHA-256 (RFC 7677) without channel binding."""

    name = b"SCRAM-SHA-256"
    plaintext = False

    def __init__(self, portal: Any, setup: Any = None) -> None:
        super().__init__(portal, setup)
        self._keys_source = find_scram_keys(portal)
        self._state = "first"
        self._gs2 = b""
        self._first_bare = b""
        self._server_first = b""
        self._nonce = b""
        self._username = b""
        self._keys: SCRAMKeys | None = None

    @classmethod
    def available(cls, portal: Any, setup: Any = None) -> bool:
        return find_scram_keys(portal) is not None

    def step(self, response: bytes) -> Step | defer.Deferred[Step]:
        self._check_open(response)
        if self._state == "first":
            return self._client_first(response)
        return self._client_final(response)

    def _client_first(self, message: bytes) -> defer.Deferred[Step]:
        flag, _, rest = message.partition(b",")
        authzid, sep, bare = rest.partition(b",")
        if not sep or flag not in (b"n", b"y"):
            # "p=": channel binding, which is not offered (no -PLUS mechanism).
            raise MalformedResponse("unsupported or malformed GS2 header")
        if authzid and not authzid.startswith(b"a="):
            raise MalformedResponse("malformed GS2 authzid")
        attributes = _attributes(bare)
        # RFC 5802 puts reserved-mext first, before n=: look for it before the order check.
        if any(name == b"m" for name, _ in attributes):
            raise MalformedResponse("mandatory SCRAM extensions are not supported")
        if len(attributes) < 2 or attributes[0][0] != b"n" or attributes[1][0] != b"r":
            raise MalformedResponse("expected n=user,r=nonce")
        username, client_nonce = _saslname(attributes[0][1]), attributes[1][1]
        if not username or not client_nonce:
            raise MalformedResponse("empty user name or nonce")
        _single_identity(_saslname(authzid[2:]) if authzid else b"", username)
        self._gs2 = message[: len(flag) + 1 + len(authzid) + 1]
        self._first_bare, self._username = bare, username
        self._nonce = client_nonce + base64.b64encode(secrets.token_bytes(18))
        self._state = "final"
        d = defer.maybeDeferred(self._lookup, username)
        d.addCallback(self._server_first_message)
        return d

    def _lookup(self, username: bytes) -> Any:
        """The user's keys: a Deferred (``ISCRAMKeys.scram_keys`` is asynchronous), or None."""
        try:
            name = username.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return self._keys_source.scram_keys(name) if self._keys_source is not None else None

    def _server_first_message(self, keys: SCRAMKeys | None) -> Step:
        if keys is None:  # unknown user or no keys: a stable made-up salt; the proof fails
            salt = _hmac(_FAKE_SALT_KEY, self._username.lower())[:SCRAM_SALT_BYTES]
            keys = SCRAMKeys(salt, SCRAM_ITERATIONS, b"\0" * 32, b"\0" * 32)
        self._keys = keys
        self._server_first = b"r=%s,s=%s,i=%d" % (self._nonce, base64.b64encode(keys.salt), keys.iterations)
        return Challenge(self._server_first)

    def _client_final(self, message: bytes) -> Step:
        if self._keys is None:  # the keys look-up has not answered: out of order
            raise MalformedResponse("client-final message before the server-first message")
        without_proof, sep, proof = message.rpartition(b",p=")
        if not sep:
            raise MalformedResponse("missing client proof")
        attributes = _attributes(without_proof)
        if len(attributes) < 2 or attributes[0][0] != b"c" or attributes[1][0] != b"r":
            raise MalformedResponse("expected c=...,r=...,p=...")
        try:
            binding = base64.b64decode(attributes[0][1], validate=True)
            proof_bytes = base64.b64decode(proof, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedResponse("bad base64 in the client-final message") from None
        if binding != self._gs2:
            raise MalformedResponse("channel binding data differs from the GS2 header")
        if attributes[1][1] != self._nonce:
            raise MalformedResponse("nonce mismatch")
        auth_message = b",".join((self._first_bare, self._server_first, without_proof))
        signature = _hmac(self._keys.server_key, auth_message)
        return self._finish(
            SCRAMCredentials(self._username, auth_message, proof_bytes), b"v=" + base64.b64encode(signature)
        )


_FAKE_SALT_KEY = secrets.token_bytes(32)


# -- registry ----------------------------------------------------------------------

#: Mechanism name -> class.  Profiles name the ones a service offers.
MECHANISMS: dict[bytes, type[ServerMechanism]] = {}


def register(mechanism: type[ServerMechanism]) -> type[ServerMechanism]:
    """Make ``mechanism`` available under its name (usable as a class decorator)."""
    MECHANISMS[mechanism.name] = mechanism
    return mechanism


for _mechanism in (ScramSHA256, Plain, Login):
    register(_mechanism)


def challengers(
    names: Iterable[str | bytes], portal: Any, setups: Mapping[bytes, Any] | None = None
) -> dict[bytes, Callable[[], Any]]:
    """Mechanism name -> factory of a fresh mechanism, for the ``names`` that
    are registered and work with ``portal``'s checkers, in the given order.

    ``setups`` maps a mechanism name to the service's configuration of it
    (see :mod:`exchmail.auth.saslsetup`); mechanisms that need one are
    left out without it.
    """
    setups = setups or {}
    out: dict[bytes, Callable[[], Any]] = {}
    for name in names:
        key = (name.encode("ascii") if isinstance(name, str) else name).upper()
        cls = MECHANISMS.get(key)
        setup = setups.get(key)
        if cls is not None and cls.available(portal, setup):
            out[cls.name] = partial(cls, portal, setup) if setup is not None else partial(cls, portal)
    return out


def is_plaintext(factory: Any) -> bool:
    """Whether the mechanism a challengers factory makes sends the password in the
    clear (unknown factories, e.g. Twisted's challengers, are taken to do so)."""
    return bool(getattr(getattr(factory, "func", factory), "plaintext", True))


class ChallengeResponseMechanism(ServerMechanism):
    """Adapts a Twisted ``IChallengeResponse`` (e.g. ``imap4.PLAINCredentials``)."""

    def __init__(self, challenger: Any) -> None:
        super().__init__(None)
        self.challenger = challenger

    def start(self, initial: bytes | None) -> Step:
        if initial is None:
            return Challenge(self.challenger.getChallenge())
        return self.step(initial)

    def step(self, response: bytes) -> Step:
        from twisted.mail.imap4 import IllegalClientResponse

        self._check_open(response)
        try:
            self.challenger.setResponse(response)
        except IllegalClientResponse as error:
            raise MalformedResponse(str(error)) from None
        if self.challenger.moreChallenges():
            return Challenge(self.challenger.getChallenge())
        return self._finish(self.challenger)


def as_mechanism(made: Any) -> ServerMechanism:
    """What a challengers factory made, as a :class:`ServerMechanism`."""
    if isinstance(made, ServerMechanism):
        return made
    return ChallengeResponseMechanism(made)
