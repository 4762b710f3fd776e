"""The ``pytest11`` entry point ``exchmail``: inert until a test suite asks for it.

pytest loads every installed ``pytest11`` entry point into every test run.
A test server plugin must not change test runs of projects that merely have
exchmail installed, so the entry point is this small gate: it only adds the
``--exchmail-timings`` option, and registers the real plugin
(:mod:`exchmail.testing.pytest_plugin`, with the fixtures and markers) when
the run names it with ``-p exchmail`` -- on the command line, in
``addopts`` or in ``PYTEST_ADDOPTS``.  With plugin autoloading disabled
(``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``, ``--disable-plugin-autoload``),
``-p exchmail`` loads this gate by its entry-point name and works the same.

A project can also import the plugin itself, the way pytest documents for
requiring a plugin, in its top-level ``conftest.py``::

    pytest_plugins = ["exchmail.testing.pytest_plugin"]
"""

from __future__ import annotations

import pytest

#: The entry-point name, for ``-p``.
NAME = "exchmail"
PLUGIN = "exchmail.testing.pytest_plugin"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("exchmail", "exchmail test servers")
    group.addoption(
        "--exchmail-timings",
        action="store_true",
        default=False,
        help="report how long exchmail test servers took to start and stop "
        "(median over the run; without xdist)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if NAME in (config.getoption("plugins", default=None) or []):
        config.pluginmanager.import_plugin(PLUGIN)
