"""SASL NTLM as Exchange speaks it ([MS-OXIMAP4] 2.2.1, [MS-OXPOP3] 2.2.1, [MS-NLMP]).

The exchange: the client sends ``AUTHENTICATE NTLM`` / ``AUTH NTLM``; the
server answers ``+ `` (empty); the client sends its NEGOTIATE message, the
server its CHALLENGE (a fresh random server challenge), the client its
AUTHENTICATE message.  All message parsing and all NTLM cryptography are
``pyspnego``'s (its ``spnego._ntlm_raw`` layer, the code of its own NTLM
acceptor); nothing here is hand-written crypto.  pyspnego's acceptor
itself reads password hashes only from a file named by the process-wide
``NTLM_USER_FILE`` variable, so exchmail drives the same layer with its
own state machine and leaves the verification to a ``twisted.cred``
checker that keeps the hashes: the mechanism ends with
:class:`NTLMCredentials`, which :class:`~exchmail.auth.checker.AccountsChecker`
verifies against the account's NT hash (an ``$nt$`` field of the accounts
file, written by ``exchmail user add|passwd`` while ``[ntlm]`` is
configured).  So the throttle, the realm and the per-user limits apply as
for passwords.

NTLMv2 responses only, unless ``[ntlm] allow_ntlmv1`` (the legacy setting:
Exchange's equivalent is the domain's ``LmCompatibilityLevel``) also lets
NTLMv1 (with or without extended session security) through; LM-only
responses are always refused.  An NT hash is password-equivalent: whoever
reads it can log in as the user over NTLM.

The user name maps to an account by the
:class:`~exchmail.auth.verified.IdentityMap` rule: ``alice`` (no domain) is
``alice``; ``EXAMPLE\\alice`` and ``alice@example.org`` are ``alice`` when
``EXAMPLE`` / ``example.org`` are among ``[ntlm] domains`` or are the
``target_name`` the server's challenge announces; anything else is refused.
"""

from __future__ import annotations

import hmac
import os
import socket
import struct
from typing import Any

from zope.interface import implementer

from exchmail.auth.sasl import Challenge, MechanismRefused, ServerMechanism, Step
from exchmail.auth.saslconfig import NTLMConfig
from exchmail.auth.verified import IdentityMap
from exchmail.errors import ConfigError
from exchmail.interfaces import INTLMCredentials

#: The accounts-file field prefix of an NT hash (hex).
NT_PREFIX = "$nt$"
_V1_LENGTH = 24
_MAX_TOKEN = 8 * 1024


def _raw() -> tuple[Any, Any]:
    """pyspnego's NTLM message and crypto modules.  :raises ImportError: if missing."""
    from spnego._ntlm_raw import crypto, messages

    return crypto, messages


def nt_hash(password: str) -> bytes:
    """The NT hash (NTOWFv1: MD4 of the UTF-16LE password) of ``password``.

    :raises ImportError: without pyspnego (``exchmail[ntlm]``).
    """
    crypto, _ = _raw()
    return bytes(crypto.ntowfv1(password))


class NTLMSetup:
    """The NTLM configuration a service's mechanisms share.

    :raises ConfigError: if pyspnego is not installed.
    """

    def __init__(self, config: NTLMConfig) -> None:
        try:
            self.crypto, self.messages = _raw()
        except ImportError:
            raise ConfigError(
                "ntlm: NTLM needs the pyspnego package (pip install 'exchmail[ntlm]')"
            ) from None
        self.config = config
        # The domain the challenge announces is ours too (clients such as
        # fetchmail answer in the server's domain).
        self.identities = IdentityMap((*config.domains, config.target_name), bare=True)

    def account_for(self, domain: str, user: str) -> str | None:
        """The account ``DOMAIN\\user`` (or a UPN ``user@domain``) maps to, or ``None``."""
        if not user:
            return None
        identity = f"{user}@{domain}" if domain else user
        return self.identities.account(identity)

    def challenge(self, negotiate: Any) -> Any:
        """The CHALLENGE message answering ``negotiate`` (as pyspnego's acceptor builds it)."""
        m = self.messages
        flags = (
            negotiate.flags
            | m.NegotiateFlags.request_target
            | m.NegotiateFlags.ntlm
            | m.NegotiateFlags.always_sign
            | m.NegotiateFlags.target_info
            | m.NegotiateFlags.target_type_domain
        )
        if flags & m.NegotiateFlags.unicode:
            flags &= ~m.NegotiateFlags.oem
        elif not flags & m.NegotiateFlags.oem:
            raise MechanismRefused("NTLM: the negotiate message names no text encoding")
        if flags & m.NegotiateFlags.extended_session_security:
            flags &= ~m.NegotiateFlags.lm_key
        host = socket.gethostname()
        info = m.TargetInfo()
        info[m.AvId.nb_domain_name] = self.config.target_name
        info[m.AvId.nb_computer_name] = host.split(".")[0].upper()
        info[m.AvId.dns_computer_name] = host
        info[m.AvId.timestamp] = m.FileTime.now()
        extra = {"version": m.Version.get_current()} if flags & m.NegotiateFlags.version else {}
        return m.Challenge(
            flags, os.urandom(8), target_name=self.config.target_name, target_info=info, **extra
        )


@implementer(INTLMCredentials)
class NTLMCredentials:
    """A completed NTLM exchange; :meth:`check_nt_hash` verifies it."""

    def __init__(
        self, setup: NTLMSetup, username: bytes, negotiate: bytes, challenge: bytes, authenticate: bytes
    ) -> None:
        self.username = username
        self._setup = setup
        self._negotiate, self._challenge, self._authenticate = negotiate, challenge, authenticate

    def check_nt_hash(self, nt_hash: bytes) -> bool:
        """Whether the client's response was computed from ``nt_hash`` (and its MIC, if
        any, from the resulting session key).  A response that does not parse
        (it is the client's) matches nothing: a failed login, not an internal error."""
        try:
            return self._check_nt_hash(nt_hash)
        except (ValueError, TypeError, IndexError, KeyError, struct.error):
            return False

    def _check_nt_hash(self, nt_hash: bytes) -> bool:
        crypto, m = self._setup.crypto, self._setup.messages
        auth = m.Authenticate.unpack(self._authenticate)
        server_challenge = m.Challenge.unpack(self._challenge).server_challenge
        response = auth.nt_challenge_response or b""
        if len(response) > _V1_LENGTH:
            client = m.NTClientChallengeV2.unpack(response[16:])
            key = crypto.ntowfv2(auth.user_name, nt_hash, auth.domain_name)
            expected, _, session_base = crypto.compute_response_v2(
                key, server_challenge, client.challenge_from_client, client.time_stamp, client.av_pairs
            )
            if not hmac.compare_digest(expected, response):
                return False
            if client.av_pairs.get(m.AvId.flags, 0) & m.AvFlags.mic:
                return self._mic_matches(auth, session_base)
            return True
        if len(response) != _V1_LENGTH or not self._setup.config.allow_ntlmv1:
            return False
        client_challenge = b"\0" * 8
        if auth.flags & m.NegotiateFlags.extended_session_security:
            client_challenge = (auth.lm_challenge_response or b"\0" * 8)[:8]
        expected, _, _ = crypto.compute_response_v1(
            auth.flags, nt_hash, b"\0" * 16, server_challenge, client_challenge
        )
        return hmac.compare_digest(expected, response)

    def _mic_matches(self, auth: Any, session_base: bytes) -> bool:
        crypto, m = self._setup.crypto, self._setup.messages
        key = session_base
        if auth.flags & m.NegotiateFlags.key_exch and auth.flags & (
            m.NegotiateFlags.sign | m.NegotiateFlags.seal
        ):
            key = crypto.rc4k(session_base, auth.encrypted_random_session_key or b"")
        mic = auth.mic or b""
        auth.mic = b"\0" * 16
        expected = crypto.hmac_md5(key, self._negotiate + self._challenge + auth.pack())
        return hmac.compare_digest(expected, mic)


class NTLMMechanism(ServerMechanism):
    """NTLM, server side: NEGOTIATE in, CHALLENGE out, AUTHENTICATE in."""

    name = b"NTLM"
    plaintext = False
    setup: NTLMSetup

    def __init__(self, portal: Any, setup: Any = None) -> None:
        super().__init__(portal, setup)
        self._negotiate = b""
        self._challenge = b""

    @classmethod
    def available(cls, portal: Any, setup: Any = None) -> bool:
        checkers = getattr(portal, "checkers", {}) or {}
        return isinstance(setup, NTLMSetup) and INTLMCredentials in checkers

    def step(self, response: bytes) -> Step:
        if self.done:
            raise MechanismRefused("NTLM: the exchange is already complete")
        if not response or len(response) > _MAX_TOKEN:
            raise MechanismRefused("NTLM: empty or oversized message")
        if not self._negotiate:
            return self._negotiated(response)
        return self._authenticated(response)

    def _negotiated(self, token: bytes) -> Step:
        m = self.setup.messages
        try:
            negotiate = m.Negotiate.unpack(token)
        except Exception:  # noqa: BLE001 - any parse failure is a bad token
            raise MechanismRefused("NTLM: malformed negotiate message") from None
        challenge = self.setup.challenge(negotiate).pack()
        self._negotiate, self._challenge = token, challenge
        return Challenge(challenge)

    def _authenticated(self, token: bytes) -> Step:
        m = self.setup.messages
        try:
            auth = m.Authenticate.unpack(token)
            user, domain = auth.user_name or "", auth.domain_name or ""
            response = auth.nt_challenge_response or b""
        except Exception:  # noqa: BLE001 - any parse failure is a bad token
            raise MechanismRefused("NTLM: malformed authenticate message") from None
        account = self.setup.account_for(domain, user)
        if account is None:
            raise MechanismRefused("NTLM: no account for this user and domain")
        if len(response) == _V1_LENGTH and not self.setup.config.allow_ntlmv1:
            raise MechanismRefused("NTLM: NTLMv1 is refused (ntlm.allow_ntlmv1)", account)
        if len(response) < _V1_LENGTH:
            raise MechanismRefused("NTLM: no NT response (LM is refused)", account)
        return self._finish(
            NTLMCredentials(self.setup, account.encode("utf-8"), self._negotiate, self._challenge, token)
        )
