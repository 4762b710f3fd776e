"""The exchmail pytest plugin: an Exchange-like IMAP/POP3 server per test.

Turn it on in one of two ways (it is inert otherwise, see
:mod:`exchmail.testing.pytest_entry`)::

    pytest -p exchmail                  # or addopts = "-p exchmail" in the ini file
    pytest_plugins = ["exchmail.testing.pytest_plugin"]   # in the top conftest.py

Fixtures:

``exchmail_server``
    a fresh, running :class:`~exchmail.testing.server.ExchmailServer` for the
    test (function scope): in-memory store, ``127.0.0.1`` port 0, no users.
    Options come from the ``exchmail_profile`` and ``exchmail_options``
    markers, or from indirect parametrization (a profile name or a dict)::

        @pytest.mark.exchmail_profile("exchange2007")
        @pytest.mark.exchmail_options(tls=True, login_type="SecureLogin")
        def test_x(exchmail_server): ...

        @pytest.mark.parametrize("exchmail_server", ["exchange2007", "exchange2010"],
                                 indirect=True)
        def test_both(exchmail_server): ...

``exchmail_server_factory``
    a callable taking :class:`~exchmail.testing.server.ServerCore`'s options
    (``profile``, ``tls``, ``login_type``, ``settings``, ``store``,
    ``users``, ``config``) that starts another server; every server it made
    is stopped when the test ends.

The servers run in-process on Twisted's reactor in one daemon thread per
test process (started on first use): starting and stopping one costs a
few milliseconds, and pytest-xdist workers each have their own reactor,
ports and temporary folders.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from exchmail.testing.server import ExchmailServer

MARKERS = (
    "exchmail_profile(name): the conformance profile of the exchmail_server fixture "
    "(exchange2010, exchange2007, rfc3501)",
    "exchmail_options(**options): options of the exchmail_server fixture (tls, login_type, "
    "settings, store, users, config)",
)

#: Seconds each server took to start and to stop (for --exchmail-timings).
_timings: list[tuple[float, float]] = []


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)


ServerFactory = Callable[..., ExchmailServer]


@pytest.fixture
def exchmail_server_factory() -> Iterator[ServerFactory]:
    """Start test servers with options; all are stopped when the test ends."""
    started: list[tuple[ExchmailServer, float]] = []

    def factory(**options: Any) -> ExchmailServer:
        began = time.perf_counter()
        server = ExchmailServer(**options).start()
        started.append((server, time.perf_counter() - began))
        return server

    yield factory
    for server, start_time in started:
        began = time.perf_counter()
        server.stop()
        _timings.append((start_time, time.perf_counter() - began))


def server_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The options of ``exchmail_server`` for this test: markers, then the parameter."""
    options: dict[str, Any] = {}
    profile = request.node.get_closest_marker("exchmail_profile")
    if profile is not None:
        options["profile"] = profile.args[0] if profile.args else profile.kwargs["name"]
    for marker in reversed(list(request.node.iter_markers("exchmail_options"))):
        options.update(marker.kwargs)  # the closest marker wins
    param = getattr(request, "param", None)
    if isinstance(param, str):
        options["profile"] = param
    elif isinstance(param, dict):
        options.update(param)
    return options


@pytest.fixture
def exchmail_server(request: pytest.FixtureRequest, exchmail_server_factory: ServerFactory) -> ExchmailServer:
    """A running test server for this test (see the module docstring)."""
    return exchmail_server_factory(**server_options(request))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if not _timings or not config.getoption("exchmail_timings", default=False):
        return
    starts = [start for start, _ in _timings]
    totals = [start + stop for start, stop in _timings]
    terminalreporter.write_line(
        f"exchmail: {len(_timings)} test servers; start+stop median "
        f"{statistics.median(totals) * 1000:.2f} ms (start {statistics.median(starts) * 1000:.2f} "
        f"ms), max {max(totals) * 1000:.2f} ms"
    )
