"""Service assembly: a :class:`Config` in, a ``MultiService`` out.

Used by the twistd plugin (:mod:`exchmail.tap`), by embedders
(``make_service(config).setServiceParent(application)``) and by tests.
The tree is::

    MultiService "exchmail"
      StoreService            thread pool for blocking store/auth work; closes the store
      ListeningService * N    one per [imap].listen endpoint string (IMAPFactory)
"""

from __future__ import annotations

from typing import Any

from twisted.application import service
from twisted.application.internet import StreamServerEndpointService
from twisted.cred.portal import Portal
from twisted.internet import defer, endpoints, threads
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from exchmail.auth.accounts import AccountsChecker, ensure_first_account
from exchmail.auth.realm import MailRealm
from exchmail.config import Config
from exchmail.imap.factory import IMAPFactory
from exchmail.interfaces import IStore
from exchmail.store.maildir import MaildirStore

log = Logger(namespace="exchmail.service")


class StoreService(service.Service):
    """Owns the thread pool that blocking work (fsync, scans, hashing) runs in."""

    name = "store"

    def __init__(self, reactor: Any, threads: int = 4) -> None:
        self.reactor = reactor
        self.pool = ThreadPool(minthreads=1, maxthreads=threads, name="exchmail-store")
        self.store: IStore | None = None

    def run_blocking(self, f: Any, *args: Any) -> defer.Deferred[Any]:
        """Run ``f(*args)`` in the pool; a Deferred of its result on the reactor thread."""
        return threads.deferToThreadPool(self.reactor, self.pool, f, *args)

    def startService(self) -> None:
        super().startService()
        self.pool.start()

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        d = defer.maybeDeferred(self.store.close) if self.store is not None else defer.succeed(None)
        d.addBoth(lambda _: self.pool.stop())
        return d


class ListeningService(StreamServerEndpointService):
    """An endpoint service whose ``listening`` Deferred gives the bound port."""

    def __init__(self, endpoint: Any, factory: Any) -> None:
        super().__init__(endpoint, factory)
        self.listening: defer.Deferred[Any] = defer.Deferred()

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        waiting: Any = self._waitingForPort
        waiting.addCallback(self._bound)

    def _bound(self, port: Any) -> Any:
        self.listening.callback(port)
        return port


def make_service(config: Config, reactor: Any = None, store: IStore | None = None,
                 create_first_account: bool = False) -> service.MultiService:
    """Build the exchmail service tree for ``config``.

    :param reactor: the reactor to use (the global one when ``None``).
    :param store: a store to serve instead of the Maildir store under
        ``config.server.data_dir`` (embedders, tests, custom backends).
    :param create_first_account: create and log a first account when the
        accounts file has none (the newcomer set-up of ``twistd exchmail``).
    """
    if reactor is None:
        from twisted.internet import reactor as global_reactor
        reactor = global_reactor
    top = service.MultiService()
    top.setName("exchmail")
    store_service = StoreService(reactor)
    store_service.setServiceParent(top)
    if store is None:
        config.server.data_dir.mkdir(parents=True, exist_ok=True)
        store = MaildirStore(config.server.data_dir / "mail", run_blocking=store_service.run_blocking)
    store_service.store = store
    if create_first_account:
        _announce_first_account(config)
    checker = AccountsChecker(config.auth.users_file, run_blocking=store_service.run_blocking)
    portal = Portal(MailRealm(store), [checker])
    factory = IMAPFactory(portal, config.profile, reactor, login_type=config.auth.login_type)
    for description in config.imap.listen:
        endpoint = endpoints.serverFromString(reactor, description)
        listener = ListeningService(endpoint, factory)
        listener.setName("imap:" + description)
        listener.setServiceParent(top)
    return top


def _announce_first_account(config: Config) -> None:
    created = ensure_first_account(config.auth.users_file)
    if created is not None:
        name, password = created
        log.warn("Created the first account: user {name!r}, password {password!r} "
                 "(shown once; change it with 'exchmail user passwd {name}')",
                 name=name, password=password)


def listening_ports(top: service.MultiService) -> defer.Deferred[list[Any]]:
    """Once started, the bound ports of every listener (for tests and embedders)."""
    listeners = [s for s in top if isinstance(s, ListeningService)]
    return defer.gatherResults([s.listening for s in listeners])


__all__ = ["make_service", "listening_ports", "StoreService", "ListeningService"]
