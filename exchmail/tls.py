"""TLS for IMAP and POP3: certificates, the server context, SNI, reload, self-signed certs.

The ``[tls]`` table (see ``examples/exchmail.toml``)::

    [tls]
    certificate = "cert.pem"        # PEM: the server certificate (may be followed by its chain)
    private_key = "key.pem"         # PEM: its private key (not encrypted)
    chain = "chain.pem"             # optional PEM: intermediate certificates
    min_version = "TLSv1.2"         # "TLSv1", "TLSv1.1", "TLSv1.2" or "TLSv1.3"
    ciphers = "HIGH:..."            # OpenSSL cipher string for TLS 1.2 and older
    [tls.sni."mail.example.org"]    # another certificate for clients asking for this name
    certificate = "mail.pem"
    private_key = "mail.key"

:class:`ServerTLS` turns it into OpenSSL (pyOpenSSL) server connections.
It is what IMAP STARTTLS, POP3 STLS and the implicit TLS listeners use, so
:meth:`ServerTLS.reload` (SIGHUP) gives every new connection the files'
current certificates while the existing ones keep theirs.  Cipher suites
and protocol versions come from OpenSSL (MS-STANXIMAP 2.1.8, V0056, V0057):
RC4, export-grade and NULL ciphers are always excluded.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from OpenSSL import SSL
from twisted.application.service import Service
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator, ISSLTransport
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from zope.interface import implementer

from exchmail.errors import ConfigError

#: ``[tls] min_version`` values and their OpenSSL protocol versions.
TLS_VERSIONS: Mapping[str, int] = {
    "TLSv1": SSL.TLS1_VERSION, "TLSv1.1": SSL.TLS1_1_VERSION,
    "TLSv1.2": SSL.TLS1_2_VERSION, "TLSv1.3": SSL.TLS1_3_VERSION,
}
DEFAULT_MIN_VERSION = "TLSv1.2"
#: OpenSSL's strong ciphers (TLS 1.2 and older; TLS 1.3 suites are all strong).
DEFAULT_CIPHERS = "HIGH:!aNULL:!eNULL:!RC4:!3DES:!MD5:!PSK:!SRP"
#: Appended to every cipher string: these are never offered, whatever the configuration.
NEVER = ":!aNULL:!eNULL:!RC4:!EXP:!LOW"
_KEYS = ("certificate", "private_key", "chain", "min_version", "ciphers", "sni")
_SNI_KEYS = ("certificate", "private_key", "chain")
_KEY_TYPES = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, dsa.DSAPrivateKey,
              ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)


@dataclass(frozen=True)
class TLSIdentity:
    """One certificate with its private key and optional chain file."""

    certificate: Path
    private_key: Path
    chain: Path | None = None


@dataclass(frozen=True)
class TLSConfig:
    """The ``[tls]`` table.

    ``sni`` maps a server name (lower case; ``*.example.org`` matches one
    label) to the identity offered to clients that ask for it.
    ``self_signed`` (the newcomer set-up only): create a self-signed
    certificate for that host name when the files do not exist yet.
    """

    identity: TLSIdentity
    min_version: str = DEFAULT_MIN_VERSION
    ciphers: str = DEFAULT_CIPHERS
    sni: Mapping[str, TLSIdentity] = field(default_factory=dict)
    self_signed: str | None = None


# -- configuration ------------------------------------------------------------------

def _path(table: Mapping[str, Any], where: str, key: str, base: Path,
          required: bool) -> Path | None:
    if key not in table:
        if required:
            raise ConfigError(f"{where}.{key}: required (a PEM file)")
        return None
    value = table[key]
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}.{key}: expected a file name, got {value!r}")
    return base / Path(value).expanduser()


def _identity(table: Mapping[str, Any], where: str, base: Path) -> TLSIdentity:
    certificate = _path(table, where, "certificate", base, True)
    private_key = _path(table, where, "private_key", base, True)
    assert certificate is not None and private_key is not None
    return TLSIdentity(certificate, private_key, _path(table, where, "chain", base, False))


def parse_tls_table(table: Mapping[str, Any], base: Path) -> TLSConfig:
    """The :class:`TLSConfig` of a ``[tls]`` table; paths relative to ``base``.

    Only the table's shape is checked here; the files are read by
    :class:`ServerTLS` when the service is made.
    """
    for key in table:
        if key not in _KEYS:
            raise ConfigError(f"tls.{key}: unknown key")
    identity = _identity(table, "tls", base)
    min_version = table.get("min_version", DEFAULT_MIN_VERSION)
    if min_version not in TLS_VERSIONS:
        raise ConfigError(f"tls.min_version: unknown version {min_version!r} "
                          f"(choose {', '.join(TLS_VERSIONS)})")
    ciphers = table.get("ciphers", DEFAULT_CIPHERS)
    if not isinstance(ciphers, str) or not ciphers:
        raise ConfigError(f"tls.ciphers: expected an OpenSSL cipher string, got {ciphers!r}")
    sni_table = table.get("sni", {})
    if not isinstance(sni_table, Mapping):
        raise ConfigError(f"tls.sni: expected a table of server names, got {sni_table!r}")
    sni: dict[str, TLSIdentity] = {}
    for name, entry in sni_table.items():
        where = f'tls.sni."{name}"'
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: expected a table with certificate and private_key")
        for key in entry:
            if key not in _SNI_KEYS:
                raise ConfigError(f"{where}.{key}: unknown key")
        sni[name.lower().rstrip(".")] = _identity(entry, where, base)
    return TLSConfig(identity=identity, min_version=min_version, ciphers=ciphers, sni=sni)


def newcomer_tls(data_dir: Path) -> TLSConfig:
    """The newcomer's TLS: a self-signed certificate for localhost in ``<data_dir>/tls``."""
    folder = Path(data_dir) / "tls"
    return TLSConfig(identity=TLSIdentity(folder / "cert.pem", folder / "key.pem"),
                     self_signed="localhost")


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
        raise ConfigError(f"{where}: the certificate in {path} expired on "
                          f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if cert.not_valid_before_utc > now:
        raise ConfigError(f"{where}: the certificate in {path} is not valid before "
                          f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")


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
        raise ConfigError(f"{where}.private_key: {identity.private_key} holds no unencrypted "
                          f"PEM private key") from None
    if not isinstance(key, _KEY_TYPES):
        raise ConfigError(f"{where}.private_key: {identity.private_key}: unsupported key type "
                          f"{type(key).__name__}")
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(TLS_VERSIONS[config.min_version])
    ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE
                    | SSL.OP_SINGLE_ECDH_USE | SSL.OP_SINGLE_DH_USE)
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
        raise ConfigError(f"{where}.private_key: {identity.private_key} does not match the "
                          f"certificate in {identity.certificate}") from None
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
    contexts = {name: _context(config, identity, f'tls.sni."{name}"')
                for name, identity in config.sni.items()}
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
            make_self_signed(config.self_signed, config.identity.certificate,
                             config.identity.private_key)
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


# -- self-signed certificates -------------------------------------------------------------

def make_self_signed(hostname: str, cert_path: Path, key_path: Path, days: int = 365) -> None:
    """Write a new RSA key (mode 0600) and a self-signed certificate for ``hostname``.

    The certificate names ``hostname`` (and 127.0.0.1 and ::1 for
    ``localhost``) in its subjectAltName, so clients can verify it when
    given the certificate itself as their CA file.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names: list[x509.GeneralName] = []
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(hostname)))
    except ValueError:
        names.append(x509.DNSName(hostname))
    if hostname == "localhost":
        names += [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                  x509.IPAddress(ipaddress.ip_address("::1"))]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "exchmail self-signed")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    for path in (cert_path, key_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(key_pem)
    Path(cert_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))


# -- reload on SIGHUP -------------------------------------------------------------------------

class TLSService(Service):
    """Owns the :class:`ServerTLS` of a service tree; reloads it on SIGHUP.

    The signal handler is installed by :meth:`startService` when that runs
    on the main thread (``twistd``); embedders and tests call
    :meth:`reload` themselves.  Sessions keep the certificate they started
    with; new connections get the reloaded one.
    """

    name = "tls"
    log = Logger(namespace="exchmail.tls")

    def __init__(self, tls: ServerTLS, reactor: Any) -> None:
        self.tls = tls
        self.reactor = reactor
        self._previous_handler: Any = None
        self._installed = False

    def reload(self) -> bool:
        """Read the certificate files again; True on success (a failure is logged and kept out)."""
        try:
            self.tls.reload()
        except ConfigError as error:
            self.log.error("TLS reload failed; keeping the current certificates: {error}",
                           error=str(error))
            return False
        self.log.info("TLS certificates reloaded from {path}",
                      path=str(self.tls.config.identity.certificate))
        return True

    def _on_sighup(self, signum: int, frame: Any) -> None:
        self.reactor.callFromThread(self.reload)

    def startService(self) -> None:
        super().startService()
        if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGHUP, self._on_sighup)
            self._installed = True

    def stopService(self) -> Any:
        if self._installed:
            signal.signal(signal.SIGHUP, self._previous_handler or signal.SIG_DFL)
            self._installed = False
        return super().stopService()


__all__ = ["TLSConfig", "TLSIdentity", "ServerTLS", "TLSService", "build_context",
           "parse_tls_table", "newcomer_tls", "make_self_signed", "wrap_factory", "is_tls"]
