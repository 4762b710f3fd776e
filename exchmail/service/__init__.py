"""Service assembly: configuration, ``make_service`` and twistd.

- :mod:`~exchmail.service.config`: the TOML file in, a frozen ``Config`` out
  (parsing only: no backend or plugin is imported while reading it);
- :mod:`~exchmail.service.build`: ``make_service(config, realm=None, ...)``, the
  ``MultiService`` tree that ``twistd exchmail`` and embedders run;
- :mod:`~exchmail.service.backends`: resolving ``[store]``/``[auth]`` backends;
- :mod:`~exchmail.service.tap`: the twistd options.

The ``exchmail`` command (:mod:`exchmail.cli`) is the layer above, with
:mod:`exchmail.testing` between them.

The names below are imported on first use: the command-line tools read
the configuration (:mod:`~exchmail.service.config`, a submodule of this
package) without importing the protocols, listeners and TLS that
:mod:`~exchmail.service.build` brings in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exchmail.service.build import listening_ports, make_service
    from exchmail.service.config import default_config, load_config

__all__ = ["default_config", "listening_ports", "load_config", "make_service"]

_HOMES = {
    "listening_ports": "exchmail.service.build",
    "make_service": "exchmail.service.build",
    "default_config": "exchmail.service.config",
    "load_config": "exchmail.service.config",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
