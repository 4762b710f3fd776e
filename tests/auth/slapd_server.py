"""A throw-away OpenLDAP ``slapd`` for the LDAP tests.

:class:`Slapd` writes a ``slapd.conf``, a test CA and server certificate
and a small directory tree into a temporary folder, loads the tree with
``slapadd`` and runs ``slapd`` in the foreground on two free loopback
ports: ``ldap://`` (with StartTLS) and ``ldaps://``.  It can be stopped
and started again on the same ports, for outage tests.

The tree (``dc=example,dc=org``)::

    cn=exchmail,ou=services     the search account (password SERVICE_PASSWORD)
    uid=alice,ou=people         in mailusers and popusers; employeeNumber 1048576
    uid=bob,ou=people           in mailusers only
    uid=carol,ou=people         in no group
    uid=dave,ou=people          in mailusers; mailbox attribute "dave.mbox"
    cn=mailusers,ou=groups      groupOfNames: alice, bob, dave
    cn=popusers,ou=groups       groupOfNames: alice
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")

BASE_DN = "dc=example,dc=org"
PEOPLE = f"ou=people,{BASE_DN}"
SERVICE_DN = f"cn=exchmail,ou=services,{BASE_DN}"
SERVICE_PASSWORD = "service secret"
MAIL_GROUP = f"cn=mailusers,ou=groups,{BASE_DN}"
POP_GROUP = f"cn=popusers,ou=groups,{BASE_DN}"
PASSWORDS = {"alice": "alice pw", "bob": "bob pw", "carol": "carol pw", "dave": "dave pw"}
START_TIMEOUT = 15.0


def unavailable_reason() -> str | None:
    """Why slapd cannot run here, or ``None`` if it can."""
    for program in (SLAPD, SLAPADD):
        if not os.access(program, os.X_OK):
            return f"{program} not installed (apt-get install slapd ldap-utils)"
    if not (SCHEMA_DIR / "inetorgperson.schema").exists():
        return f"{SCHEMA_DIR}/inetorgperson.schema missing (slapd package incomplete)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ssha(password: str) -> str:
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def make_ca_and_cert(folder: Path, name: str = "test") -> tuple[Path, Path, Path]:
    """A CA certificate and a server key/certificate for IP 127.0.0.1 (files)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"exchmail {name} CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, key_file, cert_file = (
        folder / f"{name}-ca.pem",
        folder / f"{name}-key.pem",
        folder / f"{name}-cert.pem",
    )
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_file.chmod(0o600)
    return ca_file, key_file, cert_file


def _ldif() -> str:
    entries = [
        f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
        f"dn: ou=people,{BASE_DN}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: ou=groups,{BASE_DN}\nobjectClass: organizationalUnit\nou: groups\n",
        f"dn: ou=services,{BASE_DN}\nobjectClass: organizationalUnit\nou: services\n",
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: exchmail\nuserPassword: {ssha(SERVICE_PASSWORD)}\n",
    ]
    for user, password in PASSWORDS.items():
        entry = (
            f"dn: uid={user},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {user}\n"
            f"cn: {user.title()}\nsn: {user.title()}\nmail: {user}@example.org\n"
            f"userPassword: {ssha(password)}\n"
        )
        if user == "dave":
            entry += "description: dave.mbox\n"
        if user == "alice":
            entry += "employeeNumber: 1048576\n"
        entries.append(entry)
    members = {MAIL_GROUP: ["alice", "bob", "dave"], POP_GROUP: ["alice"]}
    for dn, users in members.items():
        cn = dn.split(",")[0][3:]
        entries.append(
            f"dn: {dn}\nobjectClass: groupOfNames\ncn: {cn}\n"
            + "".join(f"member: uid={u},{PEOPLE}\n" for u in users)
        )
    return "\n".join(entries)


class _ExitedEarly(RuntimeError):
    """slapd ended before it listened (a port taken meanwhile, a broken configuration)."""


class Slapd:
    """One slapd instance in ``folder``; :meth:`start` / :meth:`stop` it at will."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ldap_port = free_port()
        self.ldaps_port = free_port()
        self.ca_file, self.key_file, self.cert_file = make_ca_and_cert(folder)
        self.other_ca_file = make_ca_and_cert(folder, "other")[0]
        self.db_dir = folder / "db"
        self.db_dir.mkdir()
        self.conf = folder / "slapd.conf"
        self.conf.write_text(self._conf())
        self.log_file = folder / "slapd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        ldif = folder / "tree.ldif"
        ldif.write_text(_ldif())
        subprocess.run(
            [SLAPADD, "-f", str(self.conf), "-l", str(ldif)], check=True, capture_output=True, timeout=60
        )

    @property
    def ldap_uri(self) -> str:
        return f"ldap://127.0.0.1:{self.ldap_port}"

    @property
    def ldaps_uri(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    def _conf(self) -> str:
        schemas = "".join(
            f"include {SCHEMA_DIR / name}.schema\n" for name in ("core", "cosine", "inetorgperson")
        )
        return (
            f"{schemas}"
            f"pidfile {self.folder / 'slapd.pid'}\n"
            f"argsfile {self.folder / 'slapd.args'}\n"
            f"modulepath {MODULE_DIR}\nmoduleload back_mdb\n"
            f"TLSCACertificateFile {self.ca_file}\n"
            f"TLSCertificateFile {self.cert_file}\n"
            f"TLSCertificateKeyFile {self.key_file}\n"
            "access to attrs=userPassword\n  by anonymous auth\n  by * none\n"
            "access to *\n  by * read\n"
            "database mdb\n"
            f'suffix "{BASE_DN}"\n'
            f'rootdn "cn=admin,{BASE_DN}"\n'
            f"directory {self.db_dir}\n"
            "maxsize 16777216\n"
            "index objectClass eq\nindex uid eq\nindex member eq\n"
        )

    def start(self) -> None:
        """Start slapd and wait (bounded) until both ports accept connections.

        The ports come from :func:`free_port`, so another program (a slapd of
        another test worker) may take one before slapd binds it: slapd then
        exits at once.  Its first start then tries again on other ports; a
        restart keeps them, as the tests expect.
        """
        for attempt in range(3):
            try:
                self._start()
                return
            except _ExitedEarly:
                if self.starts > 1 or attempt == 2:
                    raise
                self.starts = 0
                self.ldap_port, self.ldaps_port = free_port(), free_port()

    def _start(self) -> None:
        assert self.process is None
        urls = f"{self.ldap_uri}/ {self.ldaps_uri}/"
        log = open(self.log_file, "ab")
        self.process = subprocess.Popen(
            [SLAPD, "-d", "0", "-h", urls, "-f", str(self.conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        self.starts += 1
        deadline = time.monotonic() + START_TIMEOUT
        for port in (self.ldap_port, self.ldaps_port):
            while True:
                if self.process.poll() is not None:
                    code, self.process = self.process.returncode, None
                    raise _ExitedEarly(
                        f"slapd exited with {code}: " + self.log_file.read_text(errors="replace")[-2000:]
                    )
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"slapd did not listen on port {port} in time") from None
                    time.sleep(0.05)

    def stop(self) -> None:
        """Stop slapd (SIGTERM, then SIGKILL after 10 s) and wait for it."""
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(signal.SIGCONT)  # in case it was paused
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def pause(self) -> None:
        """Freeze slapd (SIGSTOP): connections open, nothing answers (a hung directory)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        # The signal is delivered asynchronously: wait until every thread
        # has stopped, or a request already in flight may still be answered.
        stat = Path(f"/proc/{self.process.pid}/stat")
        deadline = time.monotonic() + 5
        while stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "T":
            assert time.monotonic() < deadline, "slapd did not stop"
            time.sleep(0.01)

    def resume(self) -> None:
        """Let a paused slapd run again (SIGCONT)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


def ldap_config(slapd: Slapd, **overrides: Any) -> Any:
    """An ``[ldap]`` configuration for ``slapd``: ldaps://, the test CA, the
    search account, short timeouts; ``overrides`` replace fields."""
    from exchmail.auth.ldapconfig import LDAPConfig

    values: dict[str, Any] = dict(
        servers=(slapd.ldaps_uri,),
        base_dn=PEOPLE,
        ca_file=slapd.ca_file,
        bind_dn=SERVICE_DN,
        bind_password=SERVICE_PASSWORD,
        connect_timeout=2.0,
        timeout=2.0,
        pool_size=2,
    )
    values.update(overrides)
    return LDAPConfig(**values)


@pytest.fixture(name="slapd")
def slapd_fixture(tmp_path: Path) -> Iterator[Slapd]:
    """A running slapd with the test tree, TLS on (ldaps:// and StartTLS).

    Test modules import it (``from slapd_server import slapd_fixture``) and
    ask for ``slapd``.
    Skips only when slapd is not installed, saying why.
    """
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"OpenLDAP slapd is not available: {reason}")
    server = Slapd(tmp_path / "slapd")
    server.start()
    yield server
    server.stop()
