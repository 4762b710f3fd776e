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


def test_the_twistd_process_freezes_start_up_objects() -> None:
    import gc

    from exchmail.service.tap import tune_interpreter

    try:
        tune_interpreter()
        assert gc.get_freeze_count() > 1000  # modules, classes, functions of the process
    finally:
        gc.unfreeze()


# -- in process: the options, the JSON log's stream, listen failures ---------------------------


def test_version_option_prints_and_exits(capsys):
    from exchmail import __version__
    from exchmail.service.tap import Options

    with pytest.raises(SystemExit) as exited:
        Options().parseOptions(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"exchmail {__version__}\n"


def json_config(tmp_path: Path) -> Path:
    from exchmail.auth.accounts import AccountsFile

    config = tmp_path / "exchmail.toml"
    config.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\n[auth]\nlogin_type = "PlainTextLogin"\n'
        '[imap]\nlisten = ["tcp:0:interface=127.0.0.1"]\n[pop3]\nlisten = []\n[logging]\nformat = "json"\n'
    )
    AccountsFile(tmp_path / "data" / "users").add("alice", "pw")
    return config


def test_json_format_installs_the_json_observer_in_the_application(tmp_path):
    from twisted.application.service import Application
    from twisted.logger import ILogObserver

    from exchmail.service.logs import JSONLinesObserver
    from exchmail.service.tap import Options, makeService

    options = Options()
    options.parseOptions(["--config", str(json_config(tmp_path))])
    options.parent = {"logfile": "-", "nodaemon": True}  # what twistd -n --logfile - gives
    process = makeService(options)
    assert process.log_stream is sys.stdout
    application = Application("exchmail")
    process.setServiceParent(application)  # as twistd does, before it starts logging
    observer = application.getComponent(ILogObserver)
    assert isinstance(observer, JSONLinesObserver) and observer.stream is sys.stdout


def test_json_stream_follows_twistds_log_options(tmp_path, monkeypatch):
    import signal

    from twisted.python.logfile import LogFile

    from exchmail.service import tap

    class Sub:
        def __init__(self, parent):
            self.parent = parent

    assert tap._json_stream(Sub({"logfile": "-", "nodaemon": False})) is sys.stdout
    assert tap._json_stream(Sub({"logfile": None, "nodaemon": True})) is sys.stdout
    # No SIGUSR1 handler yet: one is installed (recorded here, not installed for real).
    installed: list = []
    monkeypatch.setattr(signal, "signal", lambda *a: installed.append(a))
    monkeypatch.setattr(signal, "getsignal", lambda signum: signal.SIG_DFL)
    stream = tap._json_stream(Sub({"logfile": str(tmp_path / "server.log"), "nodaemon": False}))
    try:
        assert isinstance(stream, LogFile) and stream.path == str(tmp_path / "server.log")
        assert [signum for signum, _ in installed] == [signal.SIGUSR1]  # rotated on SIGUSR1
        rotated: list = []
        monkeypatch.setattr("twisted.internet.reactor.callFromThread", rotated.append)
        installed[0][1](signal.SIGUSR1, None)
        assert rotated == [stream.rotate]
    finally:
        stream.close()


def test_listen_failure_ends_the_start_with_one_line(capfd):
    from twisted.application.service import MultiService, Service

    from exchmail.service.listen import ListenFailed
    from exchmail.service.tap import ServerProcess

    class Refused(Service):
        def privilegedStartService(self):
            raise ListenFailed("cannot listen on 127.0.0.1:1143: address in use")

    top = MultiService()
    Refused().setServiceParent(top)
    with pytest.raises(SystemExit) as exited:
        ServerProcess(top).privilegedStartService()
    assert exited.value.code == 1
    # (Before twistd begins logging, Twisted also echoes critical events to stderr.)
    err = capfd.readouterr().err
    assert err.endswith("\nexchmail: cannot listen on 127.0.0.1:1143: address in use\n")
    assert "Traceback" not in err


def test_config_error_in_process_is_one_line_and_status_2(tmp_path, capsys):
    from exchmail.service.tap import Options, makeService

    config = tmp_path / "exchmail.toml"
    config.write_text("[server]\nprofile = 'nope'\n")
    options = Options()
    options.parseOptions(["--config", str(config)])
    with pytest.raises(SystemExit) as exited:
        makeService(options)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("exchmail: configuration error: server.profile: unknown profile 'nope'")
    assert err.count("\n") == 1
