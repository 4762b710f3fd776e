"""The pytest plugin, as a client project uses it: pytest runs in a subprocess on a
small test suite written into a temporary folder (the installed entry point
is what loads it there)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Each test runs pytest (or unittest) in a subprocess.
pytestmark = pytest.mark.slow

SUITE = """
import imaplib, poplib, ssl
import pytest

def test_server(exchmail_server):
    exchmail_server.add_user("alice", "secret")
    exchmail_server.deliver("alice", b"Subject: one\\r\\n\\r\\nbody\\r\\n")
    client = imaplib.IMAP4("127.0.0.1", exchmail_server.imap_port, timeout=10)
    client.login("alice", "secret")
    assert client.select() == ("OK", [b"1"])
    client.logout()

@pytest.mark.exchmail_profile("exchange2007")
@pytest.mark.exchmail_options(tls=True, users={"bob": "pw"})
def test_markers(exchmail_server):
    assert exchmail_server.profile.name == "exchange2007"
    context = ssl.create_default_context(cafile=str(exchmail_server.ca_file))
    client = poplib.POP3_SSL("localhost", exchmail_server.pop3s_port, context=context, timeout=10)
    client.user("bob")
    client.pass_("pw")
    client.quit()

@pytest.mark.parametrize("exchmail_server", ["exchange2007", {"profile": "rfc3501"}],
                         indirect=True)
def test_parametrized(exchmail_server):
    assert exchmail_server.profile.name in ("exchange2007", "rfc3501")

def test_factory(exchmail_server_factory):
    first = exchmail_server_factory()
    second = exchmail_server_factory(profile="exchange2007", login_type="SecureLogin")
    assert first.imap_port != second.imap_port
    assert second.profile.imap.login_type.value == "SecureLogin"
"""


def run_pytest(
    folder: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env={**clean, **(env or {})},
    )


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    (tmp_path / "test_client.py").write_text(SUITE)
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --strict-markers\n")
    return tmp_path


def test_inert_unless_asked(suite):
    result = run_pytest(suite)
    assert "'exchmail_profile' not found in `markers`" in result.stdout, result.stdout
    (suite / "pytest.ini").write_text("[pytest]\n")
    result = run_pytest(suite)
    assert "fixture 'exchmail_server' not found" in result.stdout, result.stdout
    assert result.returncode != 0


def test_enabled_with_p_exchmail(suite):
    result = run_pytest(suite, "-p", "exchmail", "--exchmail-timings")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout
    assert "exchmail: 6 test servers; start+stop median" in result.stdout


def test_enabled_with_p_exchmail_without_autoload(suite):
    result = run_pytest(suite, "-p", "exchmail", env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_enabled_by_import_in_conftest(suite):
    (suite / "conftest.py").write_text('pytest_plugins = ["exchmail.testing.pytest_plugin"]\n')
    result = run_pytest(suite, "-p", "exchmail")  # both at once are fine too
    assert result.returncode == 0, result.stdout + result.stderr
    result = run_pytest(suite)
    assert result.returncode == 0, result.stdout + result.stderr


def test_with_xdist(suite):
    pytest.importorskip("xdist")
    (suite / "pytest.ini").write_text("[pytest]\naddopts = --strict-markers -p exchmail\n")
    result = run_pytest(suite, "-n", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


def test_unittest_context_manager(tmp_path):
    (tmp_path / "test_unit.py").write_text(
        textwrap.dedent("""
        import imaplib, unittest
        from exchmail.testing import ExchmailServer

        class ClientTest(unittest.TestCase):
            def setUp(self):
                self.server = self.enterContext(ExchmailServer(users={"alice": "pw"}))

            def test_login(self):
                client = imaplib.IMAP4("127.0.0.1", self.server.imap_port, timeout=10)
                self.assertEqual(client.login("alice", "pw")[0], "OK")
                client.logout()
        """)
    )
    result = subprocess.run(
        [sys.executable, "-m", "unittest", "-q", "test_unit"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Ran 1 test" in result.stderr
