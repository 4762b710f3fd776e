"""Postfix from Debian delivering to exchmail through LMTP, over TCP and a Unix socket.

A private Postfix instance (``postfix -c DIR start-fg``, see
:mod:`postfix_support`) takes mail over SMTP on a loopback port and hands
``example.org`` to exchmail with ``virtual_transport = lmtp:inet:...`` or
``lmtp:unix:...``.  Bounces for refused recipients go back to the sender,
who is an exchmail user too, so they arrive by LMTP as well.
"""

from __future__ import annotations

import shutil
import smtplib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lmtp_support import LMTPServerUnderTest, lmtp_server, shared_folder
from postfix_support import PrivatePostfix, postfix_available

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(postfix_available() is not None, reason=postfix_available() or ""),
]

MESSAGE = b"From: carol@example.org\r\nSubject: via Postfix\r\n\r\nHello through Postfix.\r\n"


def wait_for(check: Callable[[], bool], postfix: PrivatePostfix, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not delivered in {seconds} s; Postfix's log:\n{postfix.log()}")


@pytest.fixture
def lmtp(reactor_thread: Any, tmp_path: Path) -> Iterator[LMTPServerUnderTest]:
    yield from lmtp_server(tmp_path, over_quota=552)


@pytest.fixture(params=["inet", "unix"])
def postfix(request: pytest.FixtureRequest, lmtp: LMTPServerUnderTest) -> Iterator[PrivatePostfix]:
    if request.param == "inet":
        transport = f"lmtp:inet:127.0.0.1:{lmtp.port}"
    else:
        transport = f"lmtp:unix:{lmtp.socket}"
    folder = shared_folder()
    instance = PrivatePostfix(folder, transport)
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow(waits=True)
def test_postfix_delivers_and_bounces_through_lmtp(
    lmtp: LMTPServerUnderTest, postfix: PrivatePostfix
) -> None:
    with smtplib.SMTP("127.0.0.1", postfix.port) as client:
        refused = client.sendmail(
            "carol@example.org", ["alice@example.org", "bob+x@example.org", "nobody@example.org"], MESSAGE
        )
    assert refused == {}  # Postfix queues first; exchmail refuses nobody later
    wait_for(lambda: bool(lmtp.messages("alice")) and bool(lmtp.messages("bob")), postfix)
    (alice,) = lmtp.messages("alice")
    assert alice.endswith(MESSAGE.split(b"\r\n\r\n")[1])
    assert b"Received: from mx.example.org" in alice and b"with LMTP" in alice
    # The 550 for nobody@ comes back to the sender as a bounce, by LMTP too.
    wait_for(lambda: any(b"nobody@example.org" in m for m in lmtp.messages("carol")), postfix)
    assert "dsn=5.1.1, status=bounced" in postfix.log()
    assert "to=<alice@example.org>, relay=" in postfix.log()
