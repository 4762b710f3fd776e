"""``twistd exchmail``: command-line options and ``makeService``.

Start-up problems end twistd with one line on standard error and a
non-zero status, never with tracebacks or a server without its listeners:

- a configuration error, a service nobody can log in to, an unreadable or
  malformed accounts file: ``exchmail: configuration error: ...``, status 2;
- an endpoint that cannot listen (port in use, invalid, privileged):
  ``exchmail: cannot listen on 127.0.0.1:1143: address in use``, status 1.

``[logging] format = "json"`` makes the main log JSON lines
(:mod:`exchmail.service.logs`), written where twistd writes its log
(``--logfile``; standard output with ``-n``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from twisted.application import service
from twisted.logger import ILogObserver, Logger
from twisted.python import components, usage

from exchmail import __version__
from exchmail.errors import ConfigError
from exchmail.service.config import Config, default_config, load_config
from exchmail.service.listen import ListenFailed

log = Logger(namespace="exchmail.service")


class Options(usage.Options):
    """Options of ``twistd exchmail``."""

    synopsis = "[--config FILE]"
    longdesc = (
        "Serve IMAP4rev1 with Exchange 2007/2010 behaviour. Without --config, "
        "data lives in ./exchmail-data and the server listens on 127.0.0.1:1143."
    )
    optParameters = [
        ["config", "c", None, "TOML configuration file (see examples/exchmail.toml)."],
    ]

    def opt_version(self) -> None:
        """Print the exchmail version and exit."""
        print(f"exchmail {__version__}")
        sys.exit(0)


class ServerProcess(service.MultiService):
    """The service twistd runs: the exchmail tree, with one-line listen failures
    and, for ``[logging] format = "json"``, the JSON log observer.

    :param log_stream: where JSON lines go (None: the text log of twistd).
    """

    def __init__(self, top: service.IService, log_stream: Any = None) -> None:
        super().__init__()
        self.log_stream = log_stream
        top.setServiceParent(self)

    def setServiceParent(self, parent: Any) -> None:
        # twistd consults the application's ILogObserver component when it
        # starts logging, which is after makeService and before the start.
        if self.log_stream is not None and isinstance(parent, components.Componentized):
            from exchmail.service.logs import JSONLinesObserver

            parent.setComponent(ILogObserver, JSONLinesObserver(self.log_stream))
        super().setServiceParent(parent)

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except ListenFailed as error:
            log.critical("exchmail: {error}", error=str(error))
            stderr = sys.__stderr__
            if stderr is not None:
                stderr.write(f"exchmail: {error}\n")
                stderr.flush()
            raise SystemExit(1) from None

    def startService(self) -> None:
        super().startService()
        from twisted.internet import reactor

        reactor.callWhenRunning(tune_interpreter)


def tune_interpreter() -> None:
    """Move what start-up made (modules, classes, the service tree) out of the
    garbage collector's sight: they live as long as the process, and a full
    collection that walks them all holds the GIL for tens of milliseconds --
    a stall of every session while a big SELECT or SEARCH makes many objects.

    Only the twistd process does this; an application embedding exchmail
    decides for itself.  (A shorter GIL switch interval, 1 ms, was measured
    too: it did not shorten the stalls beyond the noise and cost IMAP
    throughput under imaptest's mix, so the default 5 ms stays.)
    """
    import gc

    gc.collect()
    gc.freeze()


def _json_stream(options: usage.Options) -> Any:
    """Where twistd would write its log: ``--logfile`` (``-``: stdout), or stdout with -n."""
    from twisted.python.logfile import LogFile

    parent: Any = getattr(options, "parent", None) or {}
    logfile = parent.get("logfile") or ""
    if logfile == "-" or (not logfile and parent.get("nodaemon", True)):
        return sys.stdout
    stream = LogFile.fromFullPath(logfile or "twistd.log")  # rotated at 1 MB, as twistd's
    _rotate_on_sigusr1(stream)
    return stream


def _rotate_on_sigusr1(stream: Any) -> None:
    """SIGUSR1 rotates the log file now, as it does twistd's own text log."""
    import signal

    from twisted.internet import reactor

    def rotate(signum: int, frame: Any) -> None:
        reactor.callFromThread(stream.rotate)  # type: ignore[attr-defined]

    if not signal.getsignal(signal.SIGUSR1):
        signal.signal(signal.SIGUSR1, rotate)


def makeService(options: Options) -> service.IService:
    """Build the service tree; a configuration error ends twistd with one line."""
    try:
        config: Config
        if options["config"]:
            config = load_config(Path(options["config"]))
        else:
            config = default_config(Path.cwd())
        # Imported only now: a configuration error (the common start-up
        # problem) ends twistd without importing the protocols first.
        from exchmail.service.build import make_service

        # make_service builds custom backends, whose factories may refuse too;
        # strict: a server nobody can log in to, or a broken accounts file, is refused.
        top = make_service(config, create_first_account=options["config"] is None, strict=True)
    except ConfigError as error:
        sys.stderr.write(f"exchmail: configuration error: {error}\n")
        raise SystemExit(2) from None
    stream = _json_stream(options) if config.logging.format == "json" else None
    return ServerProcess(top, stream)
