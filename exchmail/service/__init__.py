"""Service assembly: configuration, ``make_service`` and twistd.

- :mod:`~exchmail.service.config`: the TOML file in, a frozen ``Config`` out
  (parsing only: no backend or plugin is imported while reading it);
- :mod:`~exchmail.service.build`: ``make_service(config, realm=None, ...)``, the
  ``MultiService`` tree that ``twistd exchmail`` and embedders run;
- :mod:`~exchmail.service.backends`: resolving ``[store]``/``[auth]`` backends;
- :mod:`~exchmail.service.tap`: the twistd options.

The ``exchmail`` command (:mod:`exchmail.cli`) is the layer above, with
:mod:`exchmail.testing` between them.
"""

from exchmail.service.build import listening_ports, make_service
from exchmail.service.config import default_config, load_config

__all__ = ["default_config", "listening_ports", "load_config", "make_service"]
