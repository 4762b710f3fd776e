"""``twistd exchmail``: command-line options and ``makeService``."""

from __future__ import annotations

import sys
from pathlib import Path

from twisted.application import service
from twisted.python import usage

from exchmail.errors import ConfigError
from exchmail.service import make_service
from exchmail.service.config import default_config, load_config


class Options(usage.Options):
    """Options of ``twistd exchmail``."""

    synopsis = "[--config FILE]"
    longdesc = ("Serve IMAP4rev1 with Exchange 2007/2010 behaviour. Without --config, "
                "data lives in ./exchmail-data and the server listens on 127.0.0.1:1143.")
    optParameters = [
        ["config", "c", None, "TOML configuration file (see examples/exchmail.toml)."],
    ]


def makeService(options: Options) -> service.IService:
    """Build the service tree; a configuration error ends twistd with one line."""
    try:
        if options["config"]:
            config = load_config(Path(options["config"]))
        else:
            config = default_config(Path.cwd())
        # make_service builds custom backends, whose factories may refuse too
        return make_service(config, create_first_account=options["config"] is None)
    except ConfigError as error:
        sys.stderr.write(f"exchmail: configuration error: {error}\n")
        raise SystemExit(2) from None

