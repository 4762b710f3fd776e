"""What the benchmark scripts share: an in-process exchmail and RSS readings.

The server is plain IMAP on 127.0.0.1 port 0 over a Maildir store, so the
figures measure the protocol and the store, not TLS: PlainTextLogin, no
POP3 or TLS listeners, no login throttling and no per-user session limit
(benchmarks open many sessions of one user).
"""

from __future__ import annotations

import resource
import threading
from dataclasses import replace
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.threads import blockingCallFromThread

from exchmail.auth.accounts import AccountsFile
from exchmail.auth.throttle import ThrottleSettings
from exchmail.profile import load_profile
from exchmail.service import listening_ports, make_service
from exchmail.service.config import IMAPConfig, POP3Config, default_config

USER = "bench"
PASSWORD = "bench-password"


def rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux; peak RSS elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_reactor() -> None:
    """Run the reactor in a daemon thread (stop it with reactor.callFromThread)."""
    threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False}, daemon=True).start()


def start_imap(data: Path) -> int:
    """Start exchmail with its data in ``data``; return the IMAP port."""
    config = default_config(data)
    config = replace(
        config,
        imap=IMAPConfig(listen=("tcp:0:interface=127.0.0.1",)),
        pop3=POP3Config(listen=()),
        tls=None,
        throttle=ThrottleSettings(enabled=False),
        profile=load_profile("exchange2010", {"max_connections_per_user": 0, "login_type": "PlainTextLogin"}),
    )
    config.server.data_dir.mkdir(parents=True)
    AccountsFile(config.auth.users_file).add(USER, PASSWORD)

    def go():  # type: ignore[no-untyped-def]
        top = make_service(config, reactor=reactor)
        top.privilegedStartService()
        top.startService()
        return listening_ports(top)

    ports = blockingCallFromThread(reactor, go)
    return int(ports[0].getHost().port)
