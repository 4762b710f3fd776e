"""Prometheus metrics and /healthz: scraped with prometheus_client's parser while real
clients (imaplib, poplib) work against a running server."""

from __future__ import annotations

import imaplib
import json
import poplib
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from twisted.logger import Logger  # noqa: E402

from exchmail.auth.ldapconfig import LDAPConfig  # noqa: E402
from exchmail.auth.throttle import ThrottleSettings  # noqa: E402
from exchmail.service.opsconfig import MetricsConfig  # noqa: E402

METRICS = MetricsConfig(listen=("tcp:0:interface=127.0.0.1",), health_timeout=5.0)


def start(tmp_path: Path, **changes: Any) -> tuple[Any, int]:
    from conftest import in_reactor, start_server

    server = start_server(tmp_path, config_changes={"metrics": METRICS, **changes})
    listener = next(iter(server.service.getServiceNamed("metrics")))
    port = in_reactor(lambda: listener.listening).getHost().port
    return server, port


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=15) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample, keyed by name and sorted labels."""
    status, body = get(port, "/metrics")
    assert status == 200
    samples = {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: dict[Any, float], after: dict[Any, float], name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def wait_for(port: int, name: str, expected: float, **labels: str) -> dict[Any, float]:
    """Scrape until ``name`` reaches ``expected`` (the server sees a close a moment later)."""
    deadline = time.monotonic() + 10
    while True:
        samples = scrape(port)
        if value(samples, name, **labels) == expected or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


def test_a_scrape_shows_the_metrics_moving(reactor_thread, tmp_path):
    from conftest import PASSWORD

    server, port = start(tmp_path)
    try:
        before = scrape(port)
        imap = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=15)
        during = wait_for(port, "exchmail_sessions_open", 1, protocol="imap")
        assert value(during, "exchmail_sessions_open", protocol="imap") == 1
        with pytest.raises(imaplib.IMAP4.error):
            imap.login("alice", "wrong")
        imap.login("alice", PASSWORD)
        imap.append("INBOX", None, None, b"Subject: hi\r\n\r\nhello\r\n")
        imap.select("INBOX")
        imap.fetch("1", "(BODY[])")
        imap.logout()
        pop = poplib.POP3("127.0.0.1", server.pop3_port, timeout=15)
        pop.user("bob")
        pop.pass_(PASSWORD)
        pop.stat()
        pop.quit()
        after = wait_for(port, "exchmail_sessions_open", 0, protocol="pop3")
    finally:
        server.stop()
    assert moved(before, after, "exchmail_sessions_total", protocol="imap") == 1
    assert moved(before, after, "exchmail_sessions_total", protocol="pop3") == 1
    assert value(after, "exchmail_sessions_open", protocol="imap") == 0
    logins = "exchmail_logins_total"
    assert moved(before, after, logins, protocol="imap", mechanism="LOGIN", result="failure") == 1
    assert moved(before, after, logins, protocol="imap", mechanism="LOGIN", result="success") == 1
    assert moved(before, after, logins, protocol="pop3", mechanism="USER", result="success") == 1
    commands = "exchmail_commands_total"
    assert moved(before, after, commands, protocol="imap", command="APPEND", status="OK") == 1
    assert moved(before, after, commands, protocol="imap", command="LOGIN", status="NO") == 1
    # POP3 sessions do not report their commands to observers yet (pop3/session.py).
    assert moved(before, after, "exchmail_command_seconds_count", protocol="imap", command="FETCH") == 1
    assert moved(before, after, "exchmail_deliveries_total", path="imap_append", result="ok") == 1
    assert moved(before, after, "exchmail_received_bytes_total", protocol="imap") > 50
    assert moved(before, after, "exchmail_sent_bytes_total", protocol="imap") > 100
    assert moved(before, after, "exchmail_sent_bytes_total", protocol="pop3") > 20
    checks = sum(
        v
        for (name, labels), v in after.items()
        if name == "exchmail_directory_seconds_count" and ("backend", "accounts") in labels
    )
    assert checks == 3  # alice twice, bob once: the accounts file's latency


def test_throttle_blocks_and_logged_errors_are_counted(reactor_thread, tmp_path):
    throttle = ThrottleSettings(
        pair_delay_after=0,
        pair_block_after=2,
        base_delay=0.0,
        max_delay=0.01,
        ip_delay_after=0,
        account_delay_after=0,
    )
    server, port = start(tmp_path, throttle=throttle)
    try:
        before = scrape(port)
        imap = imaplib.IMAP4("127.0.0.1", server.imap_port, timeout=15)
        for _ in range(3):  # two failures start a block; the third is refused by it
            with pytest.raises(imaplib.IMAP4.error):
                imap.login("alice", "wrong")
        imap.logout()
        Logger(namespace="exchmail.store.maildir").error("disk trouble (test)")
        after = scrape(port)
    finally:
        server.stop()
    assert moved(before, after, "exchmail_throttle_blocks_total") == 1
    assert (
        moved(before, after, "exchmail_logins_total", protocol="imap", mechanism="LOGIN", result="blocked")
        == 1
    )
    assert moved(before, after, "exchmail_errors_total", component="store") == 1


def test_healthz_is_ok_with_a_writable_store_and_a_readable_accounts_file(reactor_thread, tmp_path):
    server, port = start(tmp_path)
    try:
        status, body = get(port, "/healthz")
    finally:
        server.stop()
    assert status == 200
    assert json.loads(body) == {"status": "ok", "checks": {"store": "ok", "directory": "ok"}}
    assert not list((tmp_path / "exchmail-data" / "mail").glob(".healthz-*"))  # cleaned up


def test_healthz_fails_when_the_directory_is_unreachable(reactor_thread, tmp_path):
    pytest.importorskip("ldap3")
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    from conftest import start_server  # noqa: F401 - for the default auth table

    from exchmail.service.config import default_config

    auth = replace(default_config(tmp_path).auth, backend="ldap")
    ldap = LDAPConfig(
        servers=(f"ldap://127.0.0.1:{closed}",), base_dn="dc=example,dc=org", connect_timeout=1.0, timeout=1.0
    )
    server, port = start(tmp_path, auth=auth, ldap=ldap)
    try:
        status, body = get(port, "/healthz")
    finally:
        server.stop()
    assert status == 503
    answer = json.loads(body)
    assert answer["status"] == "fail" and answer["checks"]["store"] == "ok"
    assert answer["checks"]["directory"].startswith("fail: ")


def test_no_metrics_configured_means_no_observer_and_no_listener(reactor_thread, tmp_path):
    from conftest import start_server

    from exchmail.session.access import AccessLogObserver

    server = start_server(tmp_path)
    try:
        names = [s.name for s in server.service]
        factories = [s.factory for s in server.service if (s.name or "").startswith("imap:")]
        observers = factories[0].context.observers
    finally:
        server.stop()
    assert "metrics" not in names
    assert [type(o) for o in observers] == [AccessLogObserver]
