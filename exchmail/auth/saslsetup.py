"""The configured SASL mechanisms: registration, per-service set-ups, the offer.

:func:`mechanism_setups` turns ``[gssapi]``, ``[ntlm]`` and ``[oauth]`` into
the set-up objects :func:`exchmail.auth.sasl.challengers` hands the
mechanisms, one per service, and stops start-up (``ConfigError``, one line
naming the key) when a configured set-up cannot work: the extra is not
installed, the keytab is unreadable or holds no key for the service's
principal, a key file is unusable.  :func:`offered_mechanisms` applies the
profile's switches (``EnableGSSAPIAndNTLMAuth``, ``enable_oauth``) to
``sasl_mechanisms``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from exchmail.auth import sasl
from exchmail.auth.kerberos import GSSAPIMechanism, GSSAPISetup
from exchmail.auth.ntlm import NTLMMechanism, NTLMSetup
from exchmail.auth.oauth import OAuthBearer, TokenValidator, XOAuth2

for _mechanism in (NTLMMechanism, GSSAPIMechanism, XOAuth2, OAuthBearer):
    sasl.register(_mechanism)

#: The mechanisms Exchange's EnableGSSAPIAndNTLMAuth switches.
WINDOWS = ("NTLM", "GSSAPI")
#: The bearer-token mechanisms ``enable_oauth`` switches, in the order added.
BEARER = ("XOAUTH2", "OAUTHBEARER")


def offered_mechanisms(settings: Any) -> tuple[str, ...]:
    """``settings.sasl_mechanisms`` under the switches: NTLM and GSSAPI only with
    ``enable_gssapi_and_ntlm_auth``; bearer tokens only with ``enable_oauth``
    (appended when the list does not place them)."""
    names = [
        n
        for n in settings.sasl_mechanisms
        if (settings.enable_gssapi_and_ntlm_auth or n.upper() not in WINDOWS)
        and (settings.enable_oauth or n.upper() not in BEARER)
    ]
    if settings.enable_oauth and not any(n.upper() in BEARER for n in names):
        names.extend(BEARER)
    return tuple(names)


def mechanism_setups(
    config: Any, reactor: Any, run_blocking: Callable[..., Any]
) -> dict[str, dict[bytes, Any]]:
    """Service (``imap``, ``pop3``) -> mechanism name -> set-up, for the configured
    mechanisms each service offers.  :raises ConfigError: for unusable set-ups."""
    out: dict[str, dict[bytes, Any]] = {}
    ntlm = NTLMSetup(config.ntlm) if config.ntlm is not None else None
    tokens = TokenValidator(config.oauth, reactor) if config.oauth is not None else None
    for service in ("imap", "pop3"):
        offered = {n.upper() for n in offered_mechanisms(getattr(config.profile, service))}
        setups: dict[bytes, Any] = {}
        if ntlm is not None and "NTLM" in offered:
            setups[b"NTLM"] = ntlm
        if config.gssapi is not None and "GSSAPI" in offered:
            principal = getattr(config.gssapi, f"{service}_principal")
            if principal:
                setups[b"GSSAPI"] = GSSAPISetup(
                    config.gssapi, principal, f"gssapi.{service}_principal", run_blocking
                )
        if tokens is not None:
            setups.update({name.encode("ascii"): tokens for name in BEARER if name in offered})
        out[service] = setups
    return out
