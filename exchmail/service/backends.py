"""Choosing and building store and credential-checker backends.

``[store] backend`` and ``[auth] backend`` name either a built-in backend
(``maildir``/``memory``/``postgresql``; ``accounts``/``ldap``) or a *custom factory*,
written the way Python packaging writes object references:

``python:package.module:attribute``
    imported with :func:`pkgutil.resolve_name`; the module must be on
    ``sys.path`` (installed, or on ``PYTHONPATH``).
any other name
    the entry point of that name in the group ``exchmail.stores`` (stores)
    or ``exchmail.checkers`` (checkers), which an installed distribution
    declares in its packaging metadata, e.g. in ``setup.cfg``::

        [options.entry_points]
        exchmail.stores =
            appdb = myapp.mail:make_store

A factory is called with one :class:`BackendContext` and returns the
backend: an :class:`~exchmail.interfaces.IStore` provider for stores, a
``twisted.cred.checkers.ICredentialsChecker`` provider for checkers (which
may also provide :class:`~exchmail.interfaces.IDirectory`).  The result is
checked with :func:`zope.interface.verify.verifyObject` before use.  See
``docs/backends.md``.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from zope.interface import Interface
from zope.interface.exceptions import Invalid
from zope.interface.verify import verifyObject

from exchmail.errors import ConfigError

#: Entry-point groups searched for named custom backends.
ENTRY_POINT_GROUPS = {"store": "exchmail.stores", "checker": "exchmail.checkers"}
PYTHON_PREFIX = "python:"


@dataclass(frozen=True)
class BackendContext:
    """What a backend factory gets.

    :ivar config: the whole :class:`~exchmail.service.config.Config`.
    :ivar options: the backend's own ``[store.options]`` / ``[auth.options]`` table.
    :ivar data_dir: ``[server] data_dir`` (created before the factory runs).
    :ivar reactor: the reactor the service runs on.
    :ivar run_blocking: runs ``f(*args)`` in exchmail's store thread pool and
        returns a Deferred (see :data:`exchmail.auth.checker.RunBlocking`);
        results and errors arrive on the reactor thread.
    """

    config: Any
    options: Mapping[str, Any]
    data_dir: Path
    reactor: Any
    run_blocking: Callable[..., Any]


def resolve_factory(spec: str, kind: str, where: str) -> Callable[[BackendContext], Any]:
    """The factory named by ``spec`` (``python:mod:attr`` or an entry-point name).

    :param kind: ``"store"`` or ``"checker"``.
    :param where: the configuration key, for error messages.
    :raises ConfigError: naming ``where`` if it cannot be found or is not callable.
    """
    if spec.startswith(PYTHON_PREFIX):
        reference = spec[len(PYTHON_PREFIX) :]
        if ":" not in reference:
            raise ConfigError(f"{where}: expected 'python:package.module:factory', got {spec!r}")
        try:
            factory = pkgutil.resolve_name(reference)
        except Exception as e:  # noqa: BLE001 - any import failure is a config error
            raise ConfigError(f"{where}: cannot load {reference!r}: {type(e).__name__}: {e}") from None
    else:
        group = ENTRY_POINT_GROUPS[kind]
        found = [ep for ep in metadata.entry_points(group=group) if ep.name == spec]
        if not found:
            raise ConfigError(
                f"{where}: unknown backend {spec!r} (not built in, no "
                f"{group!r} entry point; custom factories are written "
                f"'python:package.module:factory')"
            )
        try:
            factory = found[0].load()
        except Exception as e:  # noqa: BLE001
            raise ConfigError(f"{where}: cannot load entry point {spec!r}: {type(e).__name__}: {e}") from None
    if not callable(factory):
        raise ConfigError(f"{where}: {spec!r} is not callable")
    return factory


def build(spec: str, kind: str, where: str, context: BackendContext, interface: type[Interface]) -> Any:
    """Resolve ``spec``, call it with ``context`` and check the result provides ``interface``.

    :raises ConfigError: naming ``where`` if the factory fails or returns
        something that does not provide ``interface``.
    """
    factory = resolve_factory(spec, kind, where)
    backend = factory(context)
    try:
        verifyObject(interface, backend)
    except Invalid as e:
        raise ConfigError(
            f"{where}: {spec!r} returned {backend!r}, which does not provide "
            f"{interface.__name__}: {e}".replace("\n", " ")
        ) from None
    return backend


def make_store(config: Any, reactor: Any, run_blocking: Callable[..., Any]) -> Any:
    """The store that ``config.store`` names (Maildir under ``data_dir`` by default)."""
    from exchmail.interfaces import IStore

    backend = config.store.backend
    if backend == "memory":
        from exchmail.store.memory import MemoryStore

        return MemoryStore()
    if backend == "postgresql":
        from exchmail.store.postgresql.settings import PostgreSQLSettings
        from exchmail.store.postgresql.store import PostgreSQLStore

        # Queries run in the store thread pool; other frontends' changes
        # arrive by LISTEN/NOTIFY on the reactor.
        settings = config.store.postgresql or PostgreSQLSettings()
        return PostgreSQLStore.from_settings(settings, reactor, run_blocking)
    config.server.data_dir.mkdir(parents=True, exist_ok=True)
    if backend == "maildir":
        from exchmail.store.maildir import MaildirStore

        # With the reactor, the store watches open mailboxes for outside
        # deliveries (inotify or polling) and releases idle ones.
        return MaildirStore(config.server.data_dir / "mail", run_blocking=run_blocking, reactor=reactor)
    context = BackendContext(config, config.store.options, config.server.data_dir, reactor, run_blocking)
    return build(backend, "store", "store.backend", context, IStore)


def make_checker(config: Any, reactor: Any, run_blocking: Callable[..., Any], parent: Any) -> Any:
    """The credential checker that ``config.auth`` names.

    ``ldap`` adds an :class:`~exchmail.auth.ldap.LDAPService` (its thread
    pool) to the ``parent`` service.
    """
    from twisted.cred.checkers import ICredentialsChecker

    backend = config.auth.backend
    if backend == "accounts":
        # Hashing runs in the AccountsService's own pool, so logins never
        # queue in front of the store's file work (APPEND, delivery).
        from exchmail.auth.checker import AccountsService

        accounts = AccountsService(
            reactor,
            config.auth.users_file,
            run_blocking,
            cache_ttl=config.auth.cache_ttl,
            cache_size=config.auth.cache_size,
            threads=config.auth.hash_threads,
        )
        accounts.setServiceParent(parent)
        return accounts.checker
    if backend == "ldap":
        from exchmail.auth.ldap import LDAPService

        if config.ldap is None:
            raise ConfigError("ldap: missing table (auth.backend is 'ldap')")
        ldap_service = LDAPService(reactor, config.ldap)
        ldap_service.setServiceParent(parent)
        return ldap_service.checker
    context = BackendContext(config, config.auth.options, config.server.data_dir, reactor, run_blocking)
    return build(backend, "checker", "auth.backend", context, ICredentialsChecker)


def open_store(config: Any, reactor: Any = None, run_blocking: Any = None) -> Any:
    """The store ``config`` names, with the ``[quota]`` wrapper, as the service
    builds it (for tools that work on the store without a server, such as
    ``exchmail deliver``); ``run_blocking`` ``None`` runs disk work at once.

    It lives here rather than in :mod:`exchmail.service.build` so that those
    tools do not import the protocols and listeners."""
    from exchmail.store.runner import run_sync

    return with_quota(config, make_store(config, reactor, run_blocking or run_sync))


def with_quota(config: Any, store: Any) -> Any:
    """Wrap ``store`` so that every addition honours ``[quota]`` (E0003/E0004)."""
    from exchmail.store.quota import QuotaLimits, QuotaPolicy, QuotaStore

    quota = config.quota
    policy = QuotaPolicy(
        QuotaLimits(quota.limit, quota.warning),
        {user: QuotaLimits(*limits) for user, limits in quota.users.items()},
    )
    # An LDAP quota attribute supplies limits at login, so the wrapper is needed then too.
    directory_quotas = config.ldap is not None and bool(config.ldap.quota_attribute)
    return QuotaStore(store, policy) if policy.active or directory_quotas else store
