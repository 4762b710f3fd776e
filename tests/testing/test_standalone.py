"""``exchmail serve --ephemeral`` and ``exchmail control``: the standalone test server.

The server runs as a real subprocess; every wait is bounded.  The control
requests themselves are also tested in-process on a ServerCore.
"""

from __future__ import annotations

import imaplib
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exchmail.cli import main
from exchmail.testing.control import Controller
from exchmail.testing.reactor import in_reactor
from exchmail.testing.server import ServerCore

# exchmail.testing starts the reactor thread unless it runs already: start the
# suite's own (tests/conftest.py) first, so that the reactor has one owner.
pytestmark = pytest.mark.usefixtures("reactor_thread")

TIMEOUT = 10
MBOX = (
    b"From alice@example.org Mon Jan  1 00:00:00 2024\nSubject: seeded one\n\nbody one\n"
    b">From here on\n\n"
    b"From bob@example.org Mon Jan  1 00:00:00 2024\nSubject: seeded two\n\nbody two\n"
)


def exchmail(*args: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from exchmail.cli import main; sys.exit(main())",
        *args,
    ]


def wait_for(path: Path, process: subprocess.Popen) -> dict:
    for _ in range(300):  # 30 s at most
        if path.exists():
            return json.loads(path.read_text())
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {process.communicate()}")
        time.sleep(0.1)
    raise AssertionError("serve did not write its port file")


@pytest.fixture
def standalone(tmp_path):
    (tmp_path / "seed.mbox").write_bytes(MBOX)
    port_file = tmp_path / "ports.json"
    process = subprocess.Popen(
        exchmail(
            "serve",
            "--ephemeral",
            "--user",
            "alice:secret",
            "--user",
            "bob:pw:with:colons",
            "--tls",
            "--profile",
            "exchange2007",
            "--seed",
            str(tmp_path / "seed.mbox"),
            "--setting",
            "imap.banner=Standalone ready",
            "--port-file",
            str(port_file),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = wait_for(port_file, process)
        yield process, info, port_file
    finally:
        if process.poll() is None:
            process.terminate()  # SIGTERM: the server removes its folders
            try:
                process.communicate(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


def control(info: dict, *requests: dict) -> list[dict]:
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(TIMEOUT)
        connection.connect(info["control_socket"])
        reader = connection.makefile("rb")
        answers = []
        for request in requests:
            connection.sendall(json.dumps(request).encode() + b"\n")
            answers.append(json.loads(reader.readline()))
        return answers


@pytest.mark.slow
def test_serve_announces_serves_and_cleans_up(standalone):
    process, info, port_file = standalone
    assert info["users"] == ["alice", "bob"] and info["profile"] == "exchange2007"
    assert info["pid"] == process.pid and Path(info["ca_file"]).is_file()
    context = ssl.create_default_context(cafile=info["ca_file"])
    client = imaplib.IMAP4_SSL("localhost", info["imaps_port"], ssl_context=context, timeout=TIMEOUT)
    assert client.welcome == b"* OK Standalone ready"
    client.login("bob", "pw:with:colons")
    assert client.select() == ("OK", [b"2"])
    _, data = client.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == b"Subject: seeded one\r\n\r\nbody one\r\n>From here on\r\n"
    client.logout()
    printed = json.loads(process.stdout.readline())
    assert printed == info
    folder = Path(info["control_socket"]).parent
    process.send_signal(signal.SIGTERM)
    assert process.wait(TIMEOUT) == 0
    assert not folder.exists() and not port_file.exists()


@pytest.mark.slow
def test_control_socket_requests(standalone):
    _, info, _ = standalone
    added, delivered, fault = control(
        info,
        {"op": "add_user", "user": "carol", "password": "pw"},
        {"op": "deliver", "user": "carol", "message": "Subject: x\n\nhi\n", "flags": ["\\Seen"]},
        {
            "op": "fault",
            "action": "reply",
            "command": "SELECT",
            "status": "NO",
            "text": "[UNAVAILABLE] offline",
            "user": "carol",
        },
    )
    assert added == {"ok": True} and delivered == {"ok": True, "uid": 1}
    assert fault["rule"]["fired"] == 0
    client = imaplib.IMAP4("127.0.0.1", info["imap_port"], timeout=TIMEOUT)
    client.starttls(ssl.create_default_context(cafile=info["ca_file"]))
    client.login("carol", "pw")
    assert client.select() == ("NO", [b"[UNAVAILABLE] offline"])
    client.logout()
    rules, mailbox, transcript = control(
        info, {"op": "faults"}, {"op": "mailbox", "user": "carol"}, {"op": "transcript", "user": "carol"}
    )
    assert rules["rules"][0]["fired"] == 1
    (message,) = mailbox["messages"]
    assert message["message"] == "Subject: x\r\n\r\nhi\r\n" and message["flags"] == ["\\Seen"]
    assert any(line.endswith("LOGIN carol ****") for line in transcript["lines"])
    assert any(line.endswith("NO [UNAVAILABLE] offline") for line in transcript["lines"])


@pytest.mark.slow
def test_exchmail_control_command_and_stop(standalone, capsys):
    process, info, _ = standalone
    assert main(["control", info["control_socket"], '{"op": "describe"}', '{"op": "nonsense"}']) == 1
    out = capsys.readouterr().out.splitlines()
    assert json.loads(out[0])["imap_port"] == info["imap_port"]
    assert json.loads(out[1]) == {"ok": False, "error": "unknown op 'nonsense'"}
    assert main(["control", info["control_socket"], '{"op": "stop"}']) == 0
    assert process.wait(TIMEOUT) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve"], "only 'serve --ephemeral' exists"),
        (["serve", "--ephemeral", "--user", "alice"], "expected NAME:PASSWORD"),
        (["serve", "--ephemeral", "--setting", "no_such_setting=1"], "unknown setting"),
        (["serve", "--ephemeral", "--seed", "/nonexistent.mbox"], "no such file"),
        (["control", "/nonexistent.sock", "not json"], "not a JSON request"),
    ],
)
def test_usage_errors(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_control_without_a_server(tmp_path, capsys):
    assert main(["control", str(tmp_path / "missing.sock"), "{}"]) == 1
    assert "missing.sock" in capsys.readouterr().err


@pytest.fixture
def controller():
    core = in_reactor(lambda: ServerCore(users={"alice": "pw"}).start())
    yield Controller(core, lambda: None, None)
    in_reactor(core.stop)


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        ([], "a request is a JSON object"),
        ({}, "missing field 'op'"),
        ({"op": "add_user", "user": "x"}, "missing field 'password'"),
        ({"op": "add_user", "user": 1, "password": "x"}, "field 'user' has the wrong type"),
        ({"op": "deliver", "user": "alice", "message_base64": "***"}, "not valid base64"),
        ({"op": "fault", "action": "reply", "status": "MAYBE"}, "status must be one of"),
        ({"op": "mailbox", "user": "alice", "folder": "Nope"}, "no mailbox"),
    ],
)
def test_controller_refuses_bad_requests(controller, request_, error):
    answer = in_reactor(controller.handle, request_)
    assert answer["ok"] is False and error in answer["error"]


def test_controller_store_changes(controller):
    handle = controller.handle
    for _ in range(2):
        in_reactor(handle, {"op": "deliver", "user": "alice", "message_base64": "U3ViamVjdDogYQ0KDQo="})
    assert in_reactor(handle, {"op": "expunge", "user": "alice", "uids": [1]}) == {"ok": True, "uids": [1]}
    changed = in_reactor(handle, {"op": "uidvalidity", "user": "alice"})
    assert changed["ok"] and changed["uid_validity"] > 0
    rule = in_reactor(handle, {"op": "fault", "action": "drop", "when": "before"})["rule"]
    assert in_reactor(handle, {"op": "remove_fault", "id": rule["id"]}) == {"ok": True}
    assert in_reactor(handle, {"op": "faults"}) == {"ok": True, "rules": []}
    assert in_reactor(handle, {"op": "folders", "user": "alice"}) == {"ok": True, "folders": ["INBOX"]}
