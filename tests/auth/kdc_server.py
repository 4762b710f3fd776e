"""A throw-away MIT Kerberos KDC for the GSSAPI tests.

:class:`KDC` writes ``krb5.conf`` and ``kdc.conf`` into a temporary folder
(realm ``EXCHMAIL.TEST``, the KDC on a free loopback port, TCP), creates the
database with ``kdb5_util``, the principals with ``kadmin.local`` and runs
``krb5kdc`` in the foreground.  Principals::

    alice@EXCHMAIL.TEST          password ALICE_PASSWORD (also in alice.keytab)
    bob@EXCHMAIL.TEST            password BOB_PASSWORD
    carol/admin@EXCHMAIL.TEST    an instance: never stripped to "carol"
    imap/localhost, pop/localhost  the service principals (server.keytab)

:meth:`KDC.kinit` gets a ticket into a private credential cache;
:meth:`KDC.env` is the environment client programs run with
(``KRB5_CONFIG``, ``KRB5CCNAME``).  One KDC serves the whole test session
(the ``kdc`` and ``alice_ccache`` fixtures, imported by the test modules);
once it runs, the test process's ``KRB5_CONFIG`` points at it, so the
in-process acceptor and Python clients use this realm too.  The realm
allows 2 seconds of clock skew, so that expired tickets are seen soon.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

REALM = "EXCHMAIL.TEST"
ALICE_PASSWORD = "alice kerberos pw"
BOB_PASSWORD = "bob kerberos pw"
PROGRAMS = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit", "klist")
START_TIMEOUT = 15.0


def unavailable_reason() -> str | None:
    """Why the KDC cannot run here, or ``None``."""
    for program in PROGRAMS:
        if shutil.which(program) is None and not os.access(f"/usr/sbin/{program}", os.X_OK):
            return f"{program} not installed (apt-get install krb5-kdc krb5-admin-server krb5-user)"
    return None


def _program(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class KDC:
    """One realm in ``folder``; see the module docstring."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.krb5_conf = folder / "krb5.conf"
        self.kdc_conf = folder / "kdc.conf"
        self.keytab = folder / "server.keytab"
        self.alice_keytab = folder / "alice.keytab"
        self.process: subprocess.Popen[bytes] | None = None
        self._write_configs()
        self._create_realm()

    def _write_configs(self) -> None:
        f = self.folder
        self.krb5_conf.write_text(f"""[libdefaults]
    default_realm = {REALM}
    dns_lookup_kdc = false
    dns_lookup_realm = false
    dns_canonicalize_hostname = false
    rdns = false
    udp_preference_limit = 1
    default_ccache_name = FILE:{f}/default.ccache
    forwardable = false
    clockskew = 2
[realms]
    {REALM} = {{
        kdc = 127.0.0.1:{self.port}
    }}
[domain_realm]
    localhost = {REALM}
""")
        self.kdc_conf.write_text(f"""[kdcdefaults]
    kdc_listen = 127.0.0.1:{self.port}
    kdc_tcp_listen = 127.0.0.1:{self.port}
[realms]
    {REALM} = {{
        database_name = {f}/principal
        key_stash_file = {f}/stash
        acl_file = {f}/kadm5.acl
        max_life = 10h 0m 0s
        max_renewable_life = 0
        supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
    }}
[logging]
    kdc = FILE:{f}/kdc.log
""")
        (f / "kadm5.acl").write_text("")

    def env(self, ccache: Path | None = None) -> dict[str, str]:
        """The environment of a client program (its own credential cache)."""
        env = dict(
            os.environ,
            KRB5_CONFIG=str(self.krb5_conf),
            KRB5_KDC_PROFILE=str(self.kdc_conf),
            KRB5RCACHEDIR=str(self.folder),
            KRB5_TRACE="/dev/null",
        )
        if ccache is not None:
            env["KRB5CCNAME"] = f"FILE:{ccache}"
        return env

    def _run(
        self, *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        result = subprocess.run(args, input=stdin, capture_output=True, timeout=60, env=env or self.env())
        if result.returncode:
            raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.decode()}")
        return result

    def kadmin(self, query: str) -> None:
        self._run(_program("kadmin.local"), "-r", REALM, "-q", query)

    def _create_realm(self) -> None:
        self._run(_program("kdb5_util"), "-r", REALM, "create", "-s", "-P", "master key pw")
        self.kadmin(f'addprinc -pw "{ALICE_PASSWORD}" alice')
        self.kadmin(f'addprinc -pw "{BOB_PASSWORD}" bob')
        self.kadmin('addprinc -pw "carol admin pw" carol/admin')
        for service in ("imap/localhost", "pop/localhost", "smtp/localhost"):
            self.kadmin(f"addprinc -randkey {service}")
        self.kadmin(f"ktadd -k {self.keytab} imap/localhost pop/localhost")
        self.kadmin(f"ktadd -k {self.alice_keytab} -norandkey alice")

    # -- the daemon ------------------------------------------------------------------
    def start(self) -> None:
        self.process = subprocess.Popen(
            [_program("krb5kdc"), "-n", "-r", REALM],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"krb5kdc exited: {self.process.stderr.read().decode()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("krb5kdc did not start listening in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    # -- clients ---------------------------------------------------------------------
    def kinit(
        self, ccache: Path, principal: str = "alice", password: str = ALICE_PASSWORD, lifetime: str = ""
    ) -> None:
        """A ticket for ``principal`` in the credential cache ``ccache``."""
        args = [_program("kinit"), "-c", f"FILE:{ccache}"]
        if lifetime:
            args += ["-l", lifetime]
        self._run(*args, principal, stdin=password.encode() + b"\n", env=self.env(ccache))


_RUNNING: dict[str, Any] = {}


def _shared(tmp_path_factory: pytest.TempPathFactory) -> KDC:
    """The one KDC of this test session (started on first use, stopped at exit)."""
    if "kdc" not in _RUNNING:
        reason = unavailable_reason()
        if reason is not None:
            pytest.skip(reason)
        kdc = KDC(tmp_path_factory.mktemp("kdc"))
        kdc.start()
        atexit.register(kdc.stop)
        # The in-process acceptor and Python clients use this realm from now on.
        os.environ["KRB5_CONFIG"] = str(kdc.krb5_conf)
        os.environ["KRB5RCACHEDIR"] = str(kdc.folder)
        ccache = kdc.folder / "alice.ccache"
        kdc.kinit(ccache)
        _RUNNING.update(kdc=kdc, ccache=ccache)
    return _RUNNING["kdc"]


@pytest.fixture(name="kdc", scope="session")
def kdc_fixture(tmp_path_factory: pytest.TempPathFactory) -> KDC:
    """A running KDC shared by every module that imports this fixture."""
    return _shared(tmp_path_factory)


@pytest.fixture(name="alice_ccache", scope="session")
def alice_ccache_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alice's ticket-granting ticket (10 hours), for the whole session."""
    _shared(tmp_path_factory)
    return _RUNNING["ccache"]
