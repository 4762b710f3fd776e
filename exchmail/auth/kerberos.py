"""SASL GSSAPI (RFC 4752) over Kerberos V5 (RFC 4121), with the ``gssapi`` package.

Exchange offers it as ``AUTH=GSSAPI`` (MS-STANXIMAP E0003, MS-STANXPOP3
E0002).  The exchange, server side:

1. the client's initial token (an AP-REQ) goes to ``gss_accept_sec_context``
   with the acceptor credentials of the service's principal
   (``imap/HOST``, ``pop/HOST``) from the configured keytab; further tokens
   until the context is established; the server's last token, if any, is
   sent as a challenge whose (empty) answer is ignored;
2. the server sends ``wrap(0x01 0 0 0)``: security layer "none" only, as
   RFC 4752 allows and Exchange does (MS-STANXIMAP V0021);
3. the client answers ``wrap(layer, max size, authzid)``; it must choose
   "none".  The authenticated principal maps to an account by the
   :class:`~exchmail.auth.verified.IdentityMap` rule (``[gssapi] realms``,
   ``[gssapi.principals]``).  An authorization identity other than the
   account or the principal is refused unless ``[gssapi.authorize]``
   lets that principal act for it.

Expired or not-yet-valid tickets, clock skew, replays (the replay cache, or
with mutual authentication the acceptor subkey), foreign realms and bad
tokens are refused by the Kerberos library or the mapping and answered like
a wrong password.  Tokens are never logged.  Accepting a token reads the
keytab and the replay cache, so it runs off the reactor thread
(``run_blocking``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from exchmail.auth.sasl import Challenge, MalformedResponse, MechanismRefused, ServerMechanism, Step
from exchmail.auth.saslconfig import GSSAPIConfig
from exchmail.auth.verified import IdentityMap, VerifiedLogin, find_verifier
from exchmail.errors import ConfigError

#: Security layer bit masks (RFC 4752 §3.3).
LAYER_NONE = 0x01
#: Kerberos tokens with a large PAC (Active Directory) exceed SASL's usual sizes.
MAX_TOKEN = 48 * 1024

log = Logger(namespace="exchmail.auth.kerberos")


class GSSAPISetup:
    """One service's acceptor: the credentials of ``principal`` from the keytab.

    :raises ConfigError: (one line naming the key) if the ``gssapi`` package
        is missing, the keytab cannot be read or holds no key for the principal.
    """

    def __init__(
        self, config: GSSAPIConfig, principal: str, key: str, run_blocking: Callable[..., defer.Deferred[Any]]
    ) -> None:
        try:
            import gssapi
        except ImportError:
            raise ConfigError(
                f"{key}: GSSAPI needs the gssapi package (pip install 'exchmail[gssapi]')"
            ) from None
        self.gssapi = gssapi
        self.config = config
        self.principal = principal
        self.run_blocking = run_blocking
        self.identities = IdentityMap(config.realms, config.principals)
        try:
            with open(config.keytab, "rb") as f:
                f.read(1)
        except OSError as e:
            raise ConfigError(f"gssapi.keytab: cannot read {config.keytab}: {e.strerror or e}") from None
        try:
            name = gssapi.Name(principal, gssapi.NameType.kerberos_principal)
            self.credentials = gssapi.Credentials(
                name=name, usage="accept", store={"keytab": str(config.keytab)}
            )
        except gssapi.exceptions.GSSError as e:
            reason = " ".join(str(e).split())
            raise ConfigError(
                f"{key}: no usable key for {principal!r} in {config.keytab}: {reason}"
            ) from None

    def account_for(self, principal: str, authzid: str) -> str | None:
        """The account ``principal`` logs in to (asking for ``authzid``), or ``None``."""
        account = self.identities.account(principal)
        if not authzid or account is None:
            return account
        if authzid.lower() in (account.lower(), principal.lower()):
            return account
        allowed = {p.lower(): names for p, names in self.config.authorize.items()}
        if authzid.lower() in {n.lower() for n in allowed.get(principal.lower(), ())}:
            return authzid
        return None


class GSSAPIMechanism(ServerMechanism):
    """RFC 4752 GSSAPI, server side, without a security layer."""

    name = b"GSSAPI"
    plaintext = False
    setup: GSSAPISetup

    def __init__(self, portal: Any, setup: Any = None) -> None:
        super().__init__(portal, setup)
        self._context = setup.gssapi.SecurityContext(creds=setup.credentials, usage="accept")
        self._state = "context"
        self._principal = ""

    @classmethod
    def available(cls, portal: Any, setup: Any = None) -> bool:
        return isinstance(setup, GSSAPISetup) and find_verifier(portal)

    def step(self, response: bytes) -> Step | defer.Deferred[Step]:
        if self.done:
            raise MalformedResponse("the exchange is already complete")
        if len(response) > MAX_TOKEN:
            raise MalformedResponse("token too long")
        if self._state == "context":
            d = self.setup.run_blocking(self._accept, response)
            return d.addCallback(self._accepted)
        if self._state == "acknowledged":  # the answer to our last context token
            return self._offer_layers()
        return self._choose_layer(response)

    def _accept(self, token: bytes) -> tuple[bytes, bool]:
        """(Blocking.)  One ``gss_accept_sec_context`` step: (output token, complete)."""
        gss = self.setup.gssapi
        if not token:
            raise MechanismRefused("GSSAPI: empty token")
        try:
            out = self._context.step(token) or b""
            # A failed step may return an error token and raise only here.
            complete = bool(self._context.complete)
            if complete:
                self._principal = str(self._context.initiator_name)
        except (gss.exceptions.GSSError, ValueError) as e:
            # Bad or truncated token, expired ticket, clock skew, replay, wrong key.
            log.info("GSSAPI refused: {reason}", reason=" ".join(str(e).split()))
            raise MechanismRefused("GSSAPI: the token was refused") from None
        return out, complete

    def _accepted(self, result: tuple[bytes, bool]) -> Step:
        out, complete = result
        if not complete:
            return Challenge(out)
        if out:
            self._state = "acknowledged"
            return Challenge(out)
        return self._offer_layers()

    def _offer_layers(self) -> Step:
        self._state = "layer"
        wrapped = self._context.wrap(bytes((LAYER_NONE, 0, 0, 0)), False).message
        return Challenge(wrapped)

    def _choose_layer(self, response: bytes) -> Step:
        gss = self.setup.gssapi
        try:
            message = self._context.unwrap(response).message
        except (gss.exceptions.GSSError, ValueError):
            raise MechanismRefused("GSSAPI: the final message does not unwrap") from None
        if len(message) < 4:
            raise MalformedResponse("GSSAPI: the final message is too short")
        if not message[0] & LAYER_NONE or message[0] & ~LAYER_NONE:
            raise MechanismRefused("GSSAPI: only 'no security layer' is offered")
        try:
            authzid = message[4:].decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedResponse("GSSAPI: the authorization identity is not UTF-8") from None
        account = self.setup.account_for(self._principal, authzid)
        if account is None:
            log.info(
                "GSSAPI: principal {principal!r} (authzid {authzid!r}) maps to no account",
                principal=self._principal,
                authzid=authzid,
            )
            raise MechanismRefused("GSSAPI: no account for this principal")
        return self._finish(VerifiedLogin(account.encode("utf-8"), self._principal, "GSSAPI"))
