"""Shared pieces of the TLS tests: a test CA, server certificates, a TLS-enabled server.

The CA and certificates are made once per test session with ``cryptography``;
clients verify the server against the CA (``pki.ca``).
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import ssl
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from conftest import RunningServer, in_reactor, start_server
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from exchmail.service.config import IMAPConfig, POP3Config
from exchmail.tls.config import TLSConfig, TLSIdentity
from exchmail.tls.context import ServerTLS

TIMEOUT = 20
LOOPBACK = "tcp:0:interface=127.0.0.1"
NOW = datetime.datetime.now(datetime.timezone.utc)


def _write_key(key: Any, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


@dataclass
class PKI:
    """A test CA and certificates it issued, in ``folder``."""

    folder: Path
    ca: Path
    ca_key: Any
    ca_cert: Any

    def issue(
        self,
        name: str,
        hostnames: tuple[str, ...] = ("localhost", "127.0.0.1"),
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> TLSIdentity:
        """A certificate for ``hostnames`` signed by the CA: ``<name>.pem`` and ``<name>.key``."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for host in hostnames:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or NOW - datetime.timedelta(days=1))
            .not_valid_after(not_after or NOW + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )
        cert_path, key_path = self.folder / f"{name}.pem", self.folder / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_path)
        return TLSIdentity(cert_path, key_path)


def make_pki(folder: Path) -> PKI:
    folder.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "exchmail test CA")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=2))
        .not_valid_after(NOW + datetime.timedelta(days=60))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    ca = folder / "ca.pem"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return PKI(folder, ca, key, cert)


@pytest.fixture(scope="session", name="pki")
def pki_fixture(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    """The test CA, with ``server`` (localhost, 127.0.0.1) and ``other`` (mail.example.org)."""
    made = make_pki(tmp_path_factory.mktemp("pki"))
    made.issue("server")
    made.issue("other", ("mail.example.org",))
    return made


@dataclass
class TLSServer:
    """A running server with STARTTLS/STLS and implicit TLS listeners."""

    running: RunningServer
    imaps_port: int
    pop3s_port: int

    @property
    def imap_port(self) -> int:
        return self.running.imap_port

    @property
    def pop3_port(self) -> int:
        return self.running.pop3_port

    def tls_service(self) -> Any:
        return self.running.service.getServiceNamed("tls")

    def stop(self) -> None:
        self.running.stop()


def tls_config(pki: PKI, **changes: Any) -> TLSConfig:
    return replace(
        TLSConfig(identity=TLSIdentity(pki.folder / "server.pem", pki.folder / "server.key")), **changes
    )


def start_tls_server(
    tmp_path: Path, tls: TLSConfig, login_type: str = "SecureLogin", profile_overrides: dict | None = None
) -> TLSServer:
    running = start_server(
        tmp_path,
        login_type=login_type,
        profile_overrides=profile_overrides,
        config_changes={
            "tls": tls,
            "imap": IMAPConfig(listen=(LOOPBACK,), tls_listen=(LOOPBACK,)),
            "pop3": POP3Config(listen=(LOOPBACK,), tls_listen=(LOOPBACK,)),
        },
    )

    def port(prefix: str) -> int:
        listener = next(s for s in running.service if (s.name or "").startswith(prefix))
        return in_reactor(lambda: listener.listening).getHost().port

    return TLSServer(running, port("imaps:"), port("pop3s:"))


@pytest.fixture(name="tls_server")
def tls_server_fixture(reactor_thread: Any, tmp_path: Path, pki: PKI, monkeypatch: Any) -> Any:
    """A server with the ``server`` certificate and login_type SecureLogin.

    ``openssl s_client -ign_eof`` never answers the server's close_notify
    after LOGOUT/QUIT: the connection ends only when the server gives up
    waiting (:attr:`ServerTLS.close_timeout`), shortened here from 5 s.
    """
    monkeypatch.setattr(ServerTLS, "close_timeout", 0.5)
    server = start_tls_server(tmp_path, tls_config(pki))
    yield server
    server.stop()


def client_context(pki: PKI) -> ssl.SSLContext:
    """A client context that verifies the server against the test CA."""
    return ssl.create_default_context(cafile=str(pki.ca))


def peer_certificate(port: int, pki: PKI, server_hostname: str = "localhost") -> x509.Certificate:
    """The certificate the implicit TLS listener on ``port`` shows for ``server_hostname``."""
    ctx = client_context(pki)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def recv_until(sock: Any, marker: bytes, limit: float = TIMEOUT) -> bytes:
    """Read from ``sock`` until ``marker`` is in what was read (or the timeout)."""
    sock.settimeout(limit)
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def openssl(args: list[str], stdin: bytes) -> str:
    """Run the openssl CLI with a timeout; its output as text."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl program is not installed")
    result = subprocess.run(["openssl", *args], input=stdin, capture_output=True, timeout=TIMEOUT)
    return (result.stdout + result.stderr).decode("utf-8", "replace")


def curl() -> str:
    path = shutil.which("curl")
    if path is None:
        pytest.skip("curl is not installed")
    return path
