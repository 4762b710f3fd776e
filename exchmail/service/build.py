"""Service assembly: a :class:`Config` in, a ``MultiService`` out.

Used by the twistd plugin (:mod:`exchmail.service.tap`), by embedders
(``make_service(config).setServiceParent(application)``) and by tests.
The tree is::

    MultiService "exchmail"
      StoreService            thread pools for blocking store work and for content
                              parsing; closes the store
      ListeningService * N    one per [imap].listen endpoint string (IMAPFactory)
      ListeningService * N    one per [pop3].listen endpoint string (POP3Factory)
      TLSService "tls"        with [tls]: the certificates (reload() on SIGHUP), and a
                              ListeningService per [imap]/[pop3].tls_listen (implicit TLS)
      ProtocolLogService      with [logging] protocol_log: flushes the logs at stop
      ListeningService * N    one per [lmtp].listen endpoint string (LMTPFactory), with
                              its own protocol log service when protocol_log is on
      MetricsService          with [metrics] listen: /metrics and /healthz (twisted.web)
      RetentionService        when [retention.folders] is set

Each protocol factory gets one frozen
:class:`~exchmail.session.context.SessionContext` (profile, portal, limits,
SASL mechanisms, TLS, throttle, observers, message cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from twisted.application import service
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.portal import IRealm, Portal
from twisted.internet import defer, endpoints, threads
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from exchmail.auth.accounts import ensure_first_account
from exchmail.auth.realm import MailRealm
from exchmail.auth.verified import verified_checkers
from exchmail.errors import ConfigError
from exchmail.imap.factory import IMAPFactory
from exchmail.interfaces import IAccountListing, IStore
from exchmail.mailbox.cache import MessageCache
from exchmail.pop3.factory import POP3Factory
from exchmail.service.backends import make_checker, make_store, open_store, with_quota
from exchmail.service.config import Config
from exchmail.service.listen import ListenFailed, ListeningService
from exchmail.service.operations import Operations
from exchmail.session.admission import ConnectionLimits
from exchmail.session.context import SessionContext
from exchmail.session.protolog import ProtocolLog, ProtocolLogObserver, ProtocolLogService
from exchmail.tls.context import ServerTLS, wrap_factory
from exchmail.tls.service import TLSService

if TYPE_CHECKING:
    from exchmail.session.faults import SessionFaults
    from exchmail.session.observe import SessionObserver

log = Logger(namespace="exchmail.service")


class StoreService(service.Service):
    """Owns the thread pools: one for blocking store work (file I/O, fsync,
    scans), one for CPU work on message content (parsing and rendering
    large messages), so that neither kind can starve the other."""

    name = "store"

    def __init__(self, reactor: Any, threads: int = 4, compute_threads: int = 2) -> None:
        self.reactor = reactor
        self.pool = ThreadPool(minthreads=1, maxthreads=threads, name="exchmail-store")
        self.compute_pool = ThreadPool(minthreads=0, maxthreads=compute_threads, name="exchmail-compute")
        self.store: IStore | None = None

    def run_blocking(self, f: Any, *args: Any) -> defer.Deferred[Any]:
        """Run ``f(*args)`` in the store pool; a Deferred of its result on the reactor thread."""
        return threads.deferToThreadPool(self.reactor, self.pool, f, *args)

    def run_compute(self, f: Any, *args: Any) -> defer.Deferred[Any]:
        """Run ``f(*args)`` in the compute pool; a Deferred of its result."""
        return threads.deferToThreadPool(self.reactor, self.compute_pool, f, *args)

    def startService(self) -> None:
        super().startService()
        self.pool.start()
        self.compute_pool.start()

    def stopService(self) -> defer.Deferred[None]:
        super().stopService()
        d: defer.Deferred[Any] = (
            defer.maybeDeferred(self.store.close) if self.store is not None else defer.succeed(None)
        )
        return d.addBoth(self._stop_pools)

    def _stop_pools(self, result: object) -> None:
        self.pool.stop()
        self.compute_pool.stop()


def make_service(
    config: Config,
    reactor: Any = None,
    store: IStore | None = None,
    realm: IRealm | None = None,
    create_first_account: bool = False,
    strict: bool = False,
    *,
    checker: ICredentialsChecker | None = None,
    observers: Sequence[SessionObserver] = (),
    faults: SessionFaults | None = None,
) -> service.MultiService:
    """Build the exchmail service tree for ``config``.

    :param reactor: the reactor to use (the global one when ``None``).
    :param store: a store to serve instead of the one ``[store]`` names
        (embedders, tests, custom backends).
    :param realm: a ``twisted.cred`` realm handing out
        :class:`~exchmail.interfaces.IStoreAccount` avatars, instead of a
        :class:`~exchmail.auth.realm.MailRealm` over the store.  With a realm
        and no ``store``, no store is built: quota and retention, which
        work on the store, are then the realm's business.
    :param create_first_account: create and log a first account when the
        accounts file has none (the newcomer set-up of ``twistd exchmail``).
    :param strict: refuse (:class:`ConfigError`) the dead ends that are only
        warned about otherwise: a service nobody can log in to, an accounts
        file that cannot be read (``twistd exchmail`` is strict).
    :param checker: a credentials checker to use instead of the one
        ``[auth]`` names (embedders, :mod:`exchmail.testing`).
    :param observers: more session observers for both services (after the
        protocol log's).
    :param faults: fault injection for both services (:mod:`exchmail.testing`).
    """
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    top = service.MultiService()
    top.setName("exchmail")
    store_service = StoreService(reactor)
    store_service.setServiceParent(top)
    if store is None and realm is None:  # [store] backend: Maildir by default, or custom
        store = make_store(config, reactor, store_service.run_blocking)
    if store is not None:
        store = with_quota(config, store)
        store_service.store = store
    if create_first_account and config.auth.backend == "accounts":
        _announce_first_account(config)
    ops = Operations(config, reactor, strict)  # checks; access log, metrics, health
    # [auth] backend: the accounts file, LDAP (adds its own thread pool), or custom.
    if checker is None:
        checker = make_checker(config, reactor, store_service.run_blocking, top)
    if realm is None:
        assert store is not None
        realm = MailRealm(store)
    # Logins GSSAPI or a bearer token proved go to a checker that confirms the account;
    # the timed checker measures how long the directory takes (metrics).
    portal = Portal(realm, verified_checkers(ops.timed_checker(checker)))
    tls = ServerTLS(config.tls, reactor) if config.tls is not None else None  # bad: ConfigError
    if tls is not None:
        TLSService(tls, reactor).setServiceParent(top)
    contexts = _session_contexts(
        config, reactor, portal, tls, store_service, top, ops, tuple(observers), faults
    )
    ops.check_login_paths(contexts)
    factories = {"imap": IMAPFactory(contexts["imap"]), "pop3": POP3Factory(contexts["pop3"])}
    for name, section in (("imap", config.imap), ("pop3", config.pop3)):
        _add_listeners(top, reactor, name, section.listen, factories[name])
        if section.tls_listen and tls is None:
            raise ConfigError(f"{name}.tls_listen: needs a [tls] table")
        if tls is not None:
            _add_listeners(top, reactor, name + "s", section.tls_listen, wrap_factory(tls, factories[name]))
    if store is not None:
        _add_retention(config, store, store_service, reactor, top)
    _add_lmtp(config, reactor, store, checker, top, ops)
    ops.add_services(top, store_service, checker)
    return top


def _session_contexts(
    config: Config,
    reactor: Any,
    portal: Portal,
    tls: ServerTLS | None,
    store_service: StoreService,
    top: service.MultiService,
    ops: Operations | None = None,
    extra_observers: tuple[SessionObserver, ...] = (),
    faults: SessionFaults | None = None,
) -> dict[str, SessionContext]:
    """One :class:`SessionContext` per service: limits, SASL, throttle, logs, cache."""
    from exchmail.auth.sasl import MECHANISMS, challengers
    from exchmail.auth.saslsetup import mechanism_setups, offered_mechanisms
    from exchmail.auth.throttle import LoginThrottle

    profile = config.profile
    throttle = LoginThrottle(config.throttle, reactor)  # one budget for IMAP and POP3
    cache = MessageCache()  # computed message structure, shared by every session
    logs = _protocol_logs(config, reactor, top)
    # [gssapi]/[ntlm]/[oauth]; GSSAPI accepts tokens in the store pool (keytab, replay cache).
    setups = mechanism_setups(config, reactor, store_service.run_blocking)
    contexts = {}
    for name, settings in (("imap", profile.imap), ("pop3", profile.pop3)):
        for mechanism in settings.sasl_mechanisms:
            if mechanism.upper().encode("ascii", "replace") not in MECHANISMS:
                known = ", ".join(m.decode() for m in MECHANISMS)
                raise ConfigError(
                    f"profile.{name}.sasl_mechanisms: unknown SASL mechanism {mechanism!r} (choose {known})"
                )
        limits = ConnectionLimits(
            settings.max_connections,
            settings.max_connection_from_single_ip,
            settings.max_connections_per_user,
        )
        observers: tuple[Any, ...] = (ProtocolLogObserver(logs[name]),) if name in logs else ()
        if ops is not None:
            observers += ops.observers(name)
        observers += extra_observers
        contexts[name] = SessionContext(
            protocol=name,
            profile=profile,
            portal=portal,
            reactor=reactor,
            limits=limits,
            mechanisms=challengers(offered_mechanisms(settings), portal, setups[name]),
            tls=tls,
            throttle=throttle,
            run_blocking=store_service.run_compute,
            observers=observers,
            cache=cache,
            faults=faults,
        )
    return contexts


def _protocol_logs(config: Config, reactor: Any, top: service.MultiService) -> dict[str, ProtocolLog]:
    """``[logging] protocol_log``: one log per service, flushed when the server stops."""
    if not config.logging.protocol_log:
        return {}
    directory = config.logging.protocol_log_dir or config.server.data_dir / "protocol-logs"
    logs = {name: ProtocolLog(directory, name, reactor) for name in ("imap", "pop3")}
    ProtocolLogService(list(logs.values())).setServiceParent(top)
    return logs


def _add_listeners(
    top: service.MultiService, reactor: Any, kind: str, descriptions: tuple[str, ...], factory: Any
) -> None:
    """One :class:`ListeningService` per endpoint string, named ``kind:description``."""
    for description in descriptions:
        listener = ListeningService(endpoints.serverFromString(reactor, description), factory, description)
        listener.setName(f"{kind}:{description}")
        listener.setServiceParent(top)


def _add_lmtp(
    config: Config,
    reactor: Any,
    store: IStore | None,
    directory: Any,
    top: service.MultiService,
    ops: Operations | None = None,
) -> None:
    """``[lmtp] listen``: local delivery into ``store`` for the users of ``directory``."""
    if not config.lmtp.listen:
        return
    from exchmail.lmtp.server import LMTPFactory, make_context

    if store is None:
        raise ConfigError("lmtp.listen: LMTP delivers into a store, and this service was given only a realm")
    observers: tuple[Any, ...] = ()
    if config.logging.protocol_log:
        directory_ = config.logging.protocol_log_dir or config.server.data_dir / "protocol-logs"
        lmtp_log = ProtocolLog(directory_, "lmtp", reactor)
        log_service = ProtocolLogService([lmtp_log])
        log_service.setName("lmtp-protocol-log")
        log_service.setServiceParent(top)
        observers = (ProtocolLogObserver(lmtp_log),)
    if ops is not None:  # the access log and the delivery counters
        observers += ops.observers("lmtp")
    context = make_context(config.lmtp, store, directory, reactor, observers)
    _add_listeners(top, reactor, "lmtp", config.lmtp.listen, LMTPFactory(context))


def _add_retention(
    config: Config, store: IStore, store_service: StoreService, reactor: Any, top: service.MultiService
) -> None:
    """Add the periodic retention run of ``[retention]`` (E0005) over every account
    the store holds (or, for a store that cannot list them, the accounts file's users)."""
    if not config.retention.folders:
        return
    from exchmail.auth.accounts import AccountsFile
    from exchmail.store.retention import RetentionPolicy, RetentionService

    def file_users() -> list[str]:
        accounts = AccountsFile(config.auth.users_file)
        accounts.load()
        return accounts.users()

    def users() -> defer.Deferred[list[str]]:
        if IAccountListing.providedBy(store):
            return defer.maybeDeferred(store.account_names)
        return store_service.run_blocking(file_users)

    policy = RetentionPolicy(
        {name: days * 86400.0 for name, days in config.retention.folders.items()}, config.retention.interval
    )
    RetentionService(store, users, policy, reactor).setServiceParent(top)


def _announce_first_account(config: Config) -> None:
    created = ensure_first_account(config.auth.users_file)
    if created is not None:
        name, password = created
        log.warn(
            "Created the first account: user {name!r}, password {password!r} "
            "(shown once; change it with 'exchmail user passwd {name}')",
            name=name,
            password=password,
        )


def listening_ports(top: service.MultiService) -> defer.Deferred[list[Any]]:
    """Once started, the bound ports of every listener (for tests and embedders)."""
    listeners = [s for s in top if isinstance(s, ListeningService)]
    return defer.gatherResults([s.listening for s in listeners])


__all__ = [
    "make_service",
    "listening_ports",
    "open_store",
    "StoreService",
    "ListeningService",
    "ListenFailed",
]
