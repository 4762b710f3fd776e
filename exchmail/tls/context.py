"""Server TLS connections from a :class:`~exchmail.tls.config.TLSConfig`.

:class:`ServerTLS` turns it into OpenSSL (pyOpenSSL) server connections.
It is what IMAP STARTTLS, POP3 STLS and the implicit TLS listeners use, so
:meth:`ServerTLS.reload` (SIGHUP) gives every new connection the files'
current certificates while the existing ones keep theirs.  Cipher suites
and protocol versions come from OpenSSL (MS-STANXIMAP 2.1.8, V0056, V0057):
RC4, export-grade and NULL ciphers are always excluded.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator, ISSLTransport
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from zope.interface import implementer

from exchmail.errors import ConfigError
from exchmail.tls.config import NEVER, TLS_VERSIONS, TLSConfig, TLSIdentity
from exchmail.tls.selfsigned import make_self_signed

_KEY_TYPES = (
    rsa.RSAPrivateKey,
    ec.EllipticCurvePrivateKey,
    dsa.DSAPrivateKey,
    ed25519.Ed25519PrivateKey,
    ed448.Ed448PrivateKey,
)


# -- loading ------------------------------------------------------------------------------


def _read(path: Path, where: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{where}: cannot read {path}: {e.strerror or e}") from None


def _certificates(path: Path, where: str) -> list[x509.Certificate]:
    data = _read(path, where)
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(f"{where}: {path} holds no PEM certificate") from None


def _check_dates(cert: x509.Certificate, path: Path, where: str) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    if cert.not_valid_after_utc < now:
        raise ConfigError(
            f"{where}: the certificate in {path} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        )
    if cert.not_valid_before_utc > now:
        raise ConfigError(
            f"{where}: the certificate in {path} is not valid before "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )


def _context(config: TLSConfig, identity: TLSIdentity, where: str) -> SSL.Context:
    """An OpenSSL server context serving ``identity`` with ``config``'s versions and ciphers."""
    certs = _certificates(identity.certificate, f"{where}.certificate")
    _check_dates(certs[0], identity.certificate, f"{where}.certificate")
    if identity.chain is not None:
        certs += _certificates(identity.chain, f"{where}.chain")
    key_data = _read(identity.private_key, f"{where}.private_key")
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            f"{where}.private_key: {identity.private_key} holds no unencrypted PEM private key"
        ) from None
    if not isinstance(key, _KEY_TYPES):
        raise ConfigError(
            f"{where}.private_key: {identity.private_key}: unsupported key type {type(key).__name__}"
        )
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(TLS_VERSIONS[config.min_version])
    ctx.set_options(
        SSL.OP_NO_COMPRESSION
        | SSL.OP_CIPHER_SERVER_PREFERENCE
        | SSL.OP_SINGLE_ECDH_USE
        | SSL.OP_SINGLE_DH_USE
    )
    ciphers = config.ciphers + NEVER
    if TLS_VERSIONS[config.min_version] < SSL.TLS1_2_VERSION:
        ciphers += ":@SECLEVEL=0"  # OpenSSL 3 refuses TLS 1.0/1.1 at higher levels
    try:
        ctx.set_cipher_list(ciphers.encode("ascii"))
    except (SSL.Error, UnicodeEncodeError):
        raise ConfigError(f"tls.ciphers: OpenSSL knows no cipher in {config.ciphers!r}") from None
    ctx.use_certificate(certs[0])
    for extra in certs[1:]:
        ctx.add_extra_chain_cert(extra)
    try:
        ctx.use_privatekey(key)
        ctx.check_privatekey()
    except SSL.Error:
        raise ConfigError(
            f"{where}.private_key: {identity.private_key} does not match the "
            f"certificate in {identity.certificate}"
        ) from None
    ctx.set_session_id(b"exchmail")
    return ctx


def _sni_lookup(contexts: Mapping[str, SSL.Context], name: str) -> SSL.Context | None:
    name = name.lower().rstrip(".")
    if name in contexts:
        return contexts[name]
    head, _, rest = name.partition(".")
    return contexts.get("*." + rest) if head and rest else None


def build_context(config: TLSConfig) -> SSL.Context:
    """The default context of ``config``, choosing its SNI contexts by server name.

    :raises ConfigError: one line naming the key and the file at fault.
    """
    default = _context(config, config.identity, "tls")
    contexts = {
        name: _context(config, identity, f'tls.sni."{name}"') for name, identity in config.sni.items()
    }
    if contexts:

        def servername(connection: SSL.Connection) -> None:
            name = connection.get_servername()
            if name:
                chosen = _sni_lookup(contexts, name.decode("ascii", "replace"))
                if chosen is not None:
                    connection.set_context(chosen)

        default.set_tlsext_servername_callback(servername)
    return default


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLS:
    """Makes the server side of every TLS connection from the current certificates.

    Pass it to ``transport.startTLS`` or :func:`wrap_factory`.  Each
    connection is made from the context current at accept/STARTTLS time,
    so :meth:`reload` affects new connections only.
    """

    #: Seconds a closing connection may wait for the client's TLS close_notify.
    close_timeout = 5.0

    def __init__(self, config: TLSConfig, reactor: Any = None) -> None:
        self.config = config
        self.reactor = reactor
        if config.self_signed and not config.identity.certificate.exists():
            make_self_signed(config.self_signed, config.identity.certificate, config.identity.private_key)
        self._context = build_context(config)

    def reload(self) -> None:
        """Read the files again; on any error keep the current certificates and raise ConfigError."""
        self._context = build_context(self.config)

    def context(self) -> SSL.Context:
        return self._context

    def serverConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        self._bound_close(tlsProtocol)
        return SSL.Connection(self._context, None)

    def _bound_close(self, tlsProtocol: Any) -> None:
        """Abort a closing connection whose client never answers the TLS close_notify.

        Twisted closes a TLS connection once both sides sent close_notify; a
        client that does not would otherwise hold the socket open for ever.
        """
        lose = tlsProtocol.loseConnection
        reactor = self.reactor
        if reactor is None:
            from twisted.internet import reactor

        def abort_if_open() -> None:
            if not getattr(tlsProtocol.transport, "disconnected", True):
                tlsProtocol.abortConnection()

        def loseConnection() -> None:
            lose()
            reactor.callLater(self.close_timeout, abort_if_open)

        tlsProtocol.loseConnection = loseConnection


def wrap_factory(tls: ServerTLS, factory: Any) -> TLSMemoryBIOFactory:
    """``factory`` behind implicit TLS (IMAPS on 993, POP3S on 995)."""
    return TLSMemoryBIOFactory(tls, False, factory)


def is_tls(transport: Any) -> bool:
    """Whether ``transport`` is TLS (an implicit TLS listener or after STARTTLS/STLS)."""
    return isinstance(transport, TLSMemoryBIOProtocol) or ISSLTransport(transport, None) is not None
