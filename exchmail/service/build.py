"""Service assembly: a :class:`Config` in, a ``MultiService`` out.

Used by the twistd plugin (:mod:`exchmail.service.tap`), by embedders
(``make_service(config).setServiceParent(application)``) and by tests.
The tree is::

    MultiService "exchmail"
      StoreService            thread pool for blocking store/auth work; closes the store
      ListeningService * N    one per [imap].listen endpoint string (IMAPFactory)
      ListeningService * N    one per [pop3].listen endpoint string (POP3Factory)
      TLSService "tls"        with [tls]: the certificates (reload() on SIGHUP), and a
                              ListeningService per [imap]/[pop3].tls_listen (implicit TLS)
      RetentionService        when [retention.folders] is set
"""

from __future__ import annotations

from typing import Any

from twisted.application import service
from twisted.application.internet import StreamServerEndpointService
from twisted.cred.portal import Portal
from twisted.internet import defer, endpoints, threads
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from exchmail.auth.accounts import ensure_first_account
from exchmail.auth.realm import MailRealm
from exchmail.errors import ConfigError
from exchmail.imap.factory import IMAPFactory
from exchmail.interfaces import IAccountListing, IStore
from exchmail.pop3.factory import POP3Factory
from exchmail.service.backends import make_checker, make_store
from exchmail.service.config import Config
from exchmail.tls.context import ServerTLS, wrap_factory
from exchmail.tls.service import TLSService

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
    if store is None:  # [store] backend: Maildir by default, or a custom factory
        store = make_store(config, reactor, store_service.run_blocking)
    store = _with_quota(config, store)
    store_service.store = store
    if create_first_account and config.auth.backend == "accounts":
        _announce_first_account(config)
    # [auth] backend: the accounts file, LDAP (adds its own thread pool), or custom.
    checker = make_checker(config, reactor, store_service.run_blocking, top)
    portal = Portal(MailRealm(store), [checker])
    tls = ServerTLS(config.tls, reactor) if config.tls is not None else None  # bad: ConfigError
    if tls is not None:
        TLSService(tls, reactor).setServiceParent(top)
    factory = IMAPFactory(portal, config.profile, reactor, login_type=config.auth.login_type)
    factory.tls = tls
    pop3_factory = POP3Factory(portal, config.profile, reactor, login_type=config.auth.login_type)
    pop3_factory.tls = tls
    _add_auth_policy(config, reactor, top, factory, pop3_factory)
    for name, section, protocol_factory in (("imap", config.imap, factory),
                                            ("pop3", config.pop3, pop3_factory)):
        _add_listeners(top, reactor, name, section.listen, protocol_factory)
        if section.tls_listen and tls is None:
            raise ConfigError(f"{name}.tls_listen: needs a [tls] table")
        if tls is not None:
            _add_listeners(top, reactor, name + "s", section.tls_listen,
                           wrap_factory(tls, protocol_factory))
    _add_retention(config, store, store_service, reactor, top)
    return top


def _add_listeners(top: service.MultiService, reactor: Any, kind: str,
                   descriptions: tuple[str, ...], factory: Any) -> None:
    """One :class:`ListeningService` per endpoint string, named ``kind:description``."""
    for description in descriptions:
        listener = ListeningService(endpoints.serverFromString(reactor, description), factory)
        listener.setName(f"{kind}:{description}")
        listener.setServiceParent(top)


def _add_auth_policy(config: Config, reactor: Any, top: service.MultiService,
                     imap_factory: IMAPFactory, pop3_factory: POP3Factory) -> None:
    """SASL mechanism names, the shared login throttle, and ``[logging]`` protocol logs."""
    from exchmail.auth.sasl import MECHANISMS
    from exchmail.auth.throttle import LoginThrottle
    from exchmail.session.protolog import ProtocolLog, ProtocolLogService

    for section, settings in (("imap", config.profile.imap), ("pop3", config.profile.pop3)):
        for name in settings.sasl_mechanisms:
            if name.upper().encode("ascii", "replace") not in MECHANISMS:
                known = ", ".join(m.decode() for m in MECHANISMS)
                raise ConfigError(f"profile.{section}.sasl_mechanisms: unknown SASL mechanism "
                                  f"{name!r} (choose {known})")
    throttle = LoginThrottle(config.throttle, reactor)  # one budget for IMAP and POP3
    imap_factory.throttle = pop3_factory.throttle = throttle
    if config.logging.protocol_log:
        directory = config.logging.protocol_log_dir or config.server.data_dir / "protocol-logs"
        imap_factory.protocol_log = ProtocolLog(directory, "imap", reactor)
        pop3_factory.protocol_log = ProtocolLog(directory, "pop3", reactor)
        ProtocolLogService([imap_factory.protocol_log,
                            pop3_factory.protocol_log]).setServiceParent(top)


def _with_quota(config: Config, store: IStore) -> IStore:
    """Wrap ``store`` so that every addition honours ``[quota]`` (E0003/E0004)."""
    from exchmail.store.quota import QuotaLimits, QuotaPolicy, QuotaStore

    quota = config.quota
    policy = QuotaPolicy(QuotaLimits(quota.limit, quota.warning),
                         {user: QuotaLimits(*limits) for user, limits in quota.users.items()})
    # An LDAP quota attribute supplies limits at login, so the wrapper is needed then too.
    directory_quotas = config.ldap is not None and bool(config.ldap.quota_attribute)
    return QuotaStore(store, policy) if policy.active or directory_quotas else store


def _add_retention(config: Config, store: IStore, store_service: StoreService,
                   reactor: Any, top: service.MultiService) -> None:
    """Add the periodic retention run of ``[retention]`` (E0005) over every account
    the store holds (or, for a store that cannot list them, the accounts file's users)."""
    if not config.retention.folders:
        return
    from exchmail.auth.accounts import AccountsFile
    from exchmail.store.retention import RetentionPolicy, RetentionService

    def users() -> list[str]:
        if IAccountListing.providedBy(store):
            return list(store.account_names())
        accounts = AccountsFile(config.auth.users_file)
        accounts.load()
        return accounts.users()

    policy = RetentionPolicy({name: days * 86400.0 for name, days in config.retention.folders.items()},
                             config.retention.interval)
    RetentionService(store, lambda: store_service.run_blocking(users), policy,
                     reactor).setServiceParent(top)


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
