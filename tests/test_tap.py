"""`twistd exchmail` as a newcomer and an operator start it."""

import imaplib
import poplib
import re
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

TWISTD = str(Path(sys.executable).parent / "twistd")

# Each test starts twistd.
pytestmark = pytest.mark.slow


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_twistd_without_config_serves_the_newcomer(tmp_path):
    """The README quick start: data in ./exchmail-data, 127.0.0.1:1143 (STARTTLS) and 1993
    (IMAPS) with a self-signed certificate for localhost, a first account in the log."""
    for port in (1143, 1110, 1993, 1995):
        if not port_is_free(port):
            pytest.skip(f"port {port} is in use on this machine")
    log = tmp_path / "twistd.log"
    proc = subprocess.Popen([TWISTD, "-n", "--pidfile=", "--logfile", str(log), "exchmail"], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        match = None
        while match is None and time.monotonic() < deadline:
            time.sleep(0.1)
            text = log.read_text() if log.exists() else ""
            match = re.search(r"user '(\w+)', password '([^']+)'", text)
        assert match, log.read_text()
        client = None
        while client is None and time.monotonic() < deadline:
            try:
                client = imaplib.IMAP4("127.0.0.1", 1143, timeout=10)
            except OSError:
                time.sleep(0.1)
        assert client is not None
        tls = ssl.create_default_context(cafile=str(tmp_path / "exchmail-data" / "tls" / "cert.pem"))
        assert client.starttls(ssl_context=tls)[0] == "OK"  # SecureLogin: no LOGIN before TLS
        assert client.login(match.group(1), match.group(2))[0] == "OK"
        assert client.append("INBOX", None, None, b"Subject: hi\r\n\r\nhello\r\n")[0] == "OK"
        client.logout()
        with imaplib.IMAP4_SSL("localhost", 1993, ssl_context=tls, timeout=10) as client:
            assert client.login(match.group(1), match.group(2))[0] == "OK"
        pop = poplib.POP3_SSL("localhost", 1995, context=tls, timeout=10)
        assert pop.user(match.group(1)).startswith(b"+OK")
        assert pop.pass_(match.group(2)).startswith(b"+OK")
        pop.quit()
        assert (tmp_path / "exchmail-data" / "users").stat().st_mode & 0o777 == 0o600
        inbox = tmp_path / "exchmail-data" / "mail" / match.group(1) / "cur"
        assert len(list(inbox.iterdir())) == 1
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.parametrize(
    "content, message",
    [
        ("[server]\nprofile = 'nope'\n", "server.profile: unknown profile 'nope'"),
        ("[server]\ndata_dr = 'x'\n", "server.data_dr: unknown key"),
        ("[imap]\nlisten = ['bogus:1']\n", "imap.listen[0]: bad endpoint 'bogus:1'"),
        ("[server\n", "exchmail.toml"),
    ],
)
def test_config_error_stops_startup_with_one_line(tmp_path, content, message):
    config = tmp_path / "exchmail.toml"
    config.write_text(content)
    result = subprocess.run(
        [TWISTD, "-n", "--pidfile=", "exchmail", "--config", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith("exchmail: configuration error: ")
    assert message in errors[0]
    assert "Traceback" not in result.stdout + result.stderr
