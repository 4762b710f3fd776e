"""Embedding exchmail in an existing Twisted application.

An application that already serves a web site with ``twisted.web`` adds
exchmail's IMAP service to its own ``Application``.  Run it with::

    twistd -ny examples/embed.py

Environment variables (all optional): ``EMBED_DATA_DIR`` (default
``./embed-data``), ``EMBED_WEB`` and ``EMBED_IMAP`` (endpoint strings,
default ``tcp:8080:interface=127.0.0.1`` and ``tcp:1143:interface=127.0.0.1``).
"""

import os
from dataclasses import replace
from pathlib import Path

from twisted.application import service, strports
from twisted.web import resource, server

from exchmail.service import make_service
from exchmail.service.config import IMAPConfig, POP3Config, default_config
from exchmail.tls.config import newcomer_tls


class Hello(resource.Resource):
    """The application's own web site (stands for any existing Twisted app)."""

    isLeaf = True

    def render_GET(self, request):
        return b"the application is up; its mail is served over IMAP by exchmail\n"


def build_application() -> service.Application:
    """The application: its web site plus exchmail's IMAP service."""
    application = service.Application("web-with-mail")
    web = strports.service(os.environ.get("EMBED_WEB", "tcp:8080:interface=127.0.0.1"), server.Site(Hello()))
    web.setServiceParent(application)

    data_dir = Path(os.environ.get("EMBED_DATA_DIR", "embed-data")).absolute()
    config = default_config(data_dir.parent)
    config = replace(
        config,
        server=replace(config.server, data_dir=data_dir),
        auth=replace(config.auth, users_file=data_dir / "users"),
        imap=IMAPConfig(listen=(os.environ.get("EMBED_IMAP", "tcp:1143:interface=127.0.0.1"),)),
        pop3=POP3Config(listen=()),
        # STARTTLS with a self-signed certificate for localhost made in <data_dir>/tls
        # (login_type SecureLogin: passwords only after STARTTLS).
        tls=newcomer_tls(data_dir),
    )
    make_service(config, create_first_account=True).setServiceParent(application)
    return application


application = build_application()
