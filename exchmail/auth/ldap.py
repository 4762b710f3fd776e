"""Directory accounts over LDAP (ldap3): search, then bind as the user.

:class:`LDAPChecker` is a ``twisted.cred`` checker and an
:class:`~exchmail.interfaces.IDirectory`.  A login goes:

1. refuse empty passwords (an LDAP simple bind with an empty password is
   an *unauthenticated* bind that succeeds without checking anything,
   RFC 4513 5.1.2) and names with control characters;
2. search ``base_dn`` with ``user_filter``, where ``{user}`` is replaced by
   the login name escaped per RFC 4515 (so ``*)(uid=*`` matches only a user
   literally called that), over a pooled connection bound as ``bind_dn``
   (or anonymous);
3. exactly one entry must match; bind as its DN with the given password
   on a second pooled connection.  The directory checks the password:
   exchmail never sees a hash and never stores the password;
4. for each protocol with a required group (``imap_group``,
   ``pop3_group``), look the user's DN up among the group's
   ``member`` values; the result is a :class:`DirectoryUser` whose
   ``protocols`` the realm enforces per protocol.

ldap3 is blocking, so all of this runs through ``run_blocking`` (a bounded
thread pool of its own, see :class:`LDAPService`), with
one pair of connections per pool thread that is reused across logins.
Servers are tried in the configured order, starting with the one that
last answered; a connection that fails is dropped and the next server is
tried.  When none answers (refused, TLS failure, timeout, busy), the login
fails with :class:`~exchmail.errors.DirectoryUnavailable` -- a temporary
failure, never "wrong password" -- and the outage and the recovery are
logged.

An optional cache of *positive* results (``cache_ttl`` seconds, off by
default; the :class:`~exchmail.auth.cache.CredentialsCache` the accounts
file uses too, at most 10,000 users) lets a user who logged in recently
log in again without a directory round trip, even during an outage.  Its
trade-off: the directory cannot tell exchmail about changes, and an entry
is never extended, so a changed password, a disabled account or a removed
group membership takes effect at most ``cache_ttl`` seconds late (the old
password keeps working that long) -- which is why it is off by default
here, while the accounts file, whose changes exchmail sees, caches by
default.  Only an HMAC of user name and password (with a key random per
process) is kept, in memory.
"""

from __future__ import annotations

import math
import queue
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.application.service import Service
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, threads
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from exchmail.auth.cache import DEFAULT_MAX_ENTRIES, CredentialsCache
from exchmail.auth.checker import RunBlocking
from exchmail.auth.directory import IMAP, POP3, DirectoryUser
from exchmail.auth.ldapconfig import LDAPConfig
from exchmail.auth.ldapfilter import escape_filter_value, user_filter
from exchmail.errors import DirectoryUnavailable, InvalidUserName
from exchmail.interfaces import IDirectory, IVerifiedLogin
from exchmail.store.names import check_user_name

#: Bind result codes that mean "these credentials are refused" (RFC 4511
#: appendix A): inappropriateAuthentication, invalidCredentials,
#: insufficientAccessRights, unwillingToPerform, constraintViolation
#: (password policy lock-outs).  Every other failure is temporary.
_REFUSED = {48, 49, 50, 53, 19}
_NO_SUCH_OBJECT = 32
_SIZE_LIMIT_EXCEEDED = 4
_MAX_NAME_LENGTH = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

#: Logins that may wait for each LDAP pool thread before new ones are turned away.
WAITING_PER_THREAD = 16


class _Unavailable(Exception):
    """Internal: this server failed; try the next one."""


@dataclass
class _Slot:
    """One pool thread's connections: searching (as bind_dn) and user binds."""

    search: Any = None
    bind: Any = None
    server: int = -1


@implementer(ICredentialsChecker, IDirectory)
class LDAPChecker:
    """Checks user name/password credentials against an LDAP directory.

    :param config: the ``[ldap]`` table.
    :param run_blocking: runs the blocking directory work off the reactor
        thread (a pool of at most ``config.pool_size`` threads); ``None``
        runs it synchronously (tests, tools).
    :param clock: a monotonic clock for the positive cache (tests replace it).
    """

    credentialInterfaces = (IUsernamePassword, IVerifiedLogin)
    log = Logger(namespace="exchmail.auth.ldap")

    def __init__(
        self,
        config: LDAPConfig,
        run_blocking: RunBlocking | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import ldap3  # imported here so that exchmail runs without ldap3 unless it is used

        self._ldap3 = ldap3
        self.config = config
        self._run_blocking = run_blocking
        # Logins waiting for a pool thread; past the cap a slow directory
        # answers "try again later" instead of queueing without bound.
        self._waiting = 0
        self.max_waiting = config.pool_size * WAITING_PER_THREAD
        self._clock = clock
        self._servers = list(config.servers)
        self._preferred = 0
        self._slots: queue.LifoQueue[_Slot] = queue.LifoQueue()
        for _ in range(config.pool_size):
            self._slots.put(_Slot())
        self._state_lock = threading.Lock()
        self._down = False
        #: Positive results (``config.cache_ttl``; off when 0), as the accounts checker's.
        self.cache = CredentialsCache(config.cache_ttl, DEFAULT_MAX_ENTRIES, clock)
        self._names: dict[str, str] = {}
        self._closed = False
        attrs = [
            config.login_attribute,
            config.mail_attribute,
            config.mailbox_attribute,
            config.quota_attribute,
        ]
        self._attributes = sorted({a for a in attrs if a})

    # -- connections ---------------------------------------------------
    def _server(self, uri: str) -> Any:
        ldap3 = self._ldap3
        tls = None
        if uri.lower().startswith("ldaps://") or self.config.start_tls:
            tls = ldap3.Tls(
                validate=ssl.CERT_REQUIRED,
                ca_certs_file=str(self.config.ca_file) if self.config.ca_file else None,
                valid_names=None if self.config.verify_hostname else ["*"],
                version=None,
            )
        return ldap3.Server(uri, tls=tls, get_info=ldap3.NONE, connect_timeout=self.config.connect_timeout)

    def _connect(self, index: int, user: str | None, password: str | None) -> Any:
        """A new connection to server ``index``, TLS started and bound; raises _Unavailable."""
        ldap3 = self._ldap3
        # A new Server object each time: ldap3 marks a Server's addresses as
        # unusable after a failure and would not try them again for minutes.
        conn = ldap3.Connection(
            self._server(self._servers[index]),
            user=user or None,
            password=password if user else None,
            authentication=ldap3.SIMPLE if user else ldap3.ANONYMOUS,
            auto_bind=ldap3.AUTO_BIND_NONE,
            receive_timeout=max(1, math.ceil(self.config.timeout)),  # ldap3 wants an int
            read_only=True,
            raise_exceptions=False,
            auto_escape=False,
            auto_encode=True,
            check_names=True,
        )
        try:
            conn.open()
            if self.config.start_tls and not self.config.servers[index].lower().startswith("ldaps://"):
                if not conn.start_tls():
                    raise _Unavailable(f"StartTLS refused: {conn.result}")
            if not conn.bind():
                code = (conn.result or {}).get("result")
                reason = (conn.result or {}).get("description") or conn.last_error
                raise _Unavailable(f"bind as {user or 'anonymous'!r} failed: {reason} ({code})")
        except ldap3.core.exceptions.LDAPException as e:
            self._discard(conn)
            raise _Unavailable(f"{type(e).__name__}: {e}") from None
        except _Unavailable:
            self._discard(conn)
            raise
        return conn

    @staticmethod
    def _discard(conn: Any) -> None:
        if conn is None:
            return
        try:
            conn.unbind()
        except Exception:  # noqa: BLE001 - a broken connection may fail to unbind
            pass

    def _drop(self, slot: _Slot) -> None:
        self._discard(slot.search)
        self._discard(slot.bind)
        slot.search = slot.bind = None
        slot.server = -1

    def _ensure(self, slot: _Slot) -> None:
        """Give ``slot`` open connections, trying the servers in order; raises
        DirectoryUnavailable if none answers."""
        if slot.search is not None and slot.bind is not None:
            return
        self._drop(slot)
        count = len(self._servers)
        reasons = []
        for step in range(count):
            index = (self._preferred + step) % count
            try:
                slot.search = self._connect(index, self.config.bind_dn, self.config.bind_password)
                slot.bind = self._connect(index, None, None)
            except _Unavailable as e:
                self._drop(slot)
                reasons.append(f"{self.config.servers[index]}: {e}")
                continue
            slot.server = index
            self._preferred = index
            return
        self._went_down("; ".join(reasons))
        raise DirectoryUnavailable("no LDAP server answered")

    def _went_down(self, reason: str) -> None:
        with self._state_lock:
            first, self._down = not self._down, True
        if first:
            self.log.error("LDAP directory unavailable: {reason}", reason=reason)
        else:
            self.log.warn("LDAP directory still unavailable: {reason}", reason=reason)

    def _came_back(self, slot: _Slot) -> None:
        with self._state_lock:
            was_down, self._down = self._down, False
        if was_down:
            self.log.info(
                "LDAP directory available again ({server})", server=self.config.servers[slot.server]
            )

    def _with_slot(self, work: Callable[[_Slot], Any]) -> Any:
        """Run ``work(slot)`` on a pooled slot; on a connection failure retry once
        on fresh connections (the pooled ones may predate a directory restart)."""
        if self._closed:
            raise DirectoryUnavailable("the LDAP checker is closed")
        try:
            slot = self._slots.get(timeout=self.config.connect_timeout + self.config.timeout)
        except queue.Empty:
            raise DirectoryUnavailable("all LDAP connections are busy") from None
        try:
            for attempt in (1, 2):
                reused = slot.search is not None
                self._ensure(slot)
                try:
                    result = work(slot)
                except (_Unavailable, self._ldap3.core.exceptions.LDAPException) as e:
                    server = self.config.servers[slot.server]
                    self._drop(slot)
                    if attempt == 1 and reused:
                        continue
                    if len(self._servers) > 1 and attempt == 1:
                        self._preferred = (self._preferred + 1) % len(self._servers)
                        continue
                    self._went_down(f"{server}: {type(e).__name__}: {e}")
                    raise DirectoryUnavailable("the LDAP directory did not answer") from None
                self._came_back(slot)
                return result
            raise DirectoryUnavailable("the LDAP directory did not answer")  # pragma: no cover
        finally:
            self._slots.put(slot)

    # -- directory operations (blocking; run in the pool) -------------------
    def _search_user(self, slot: _Slot, name: str, search: str = "") -> Any | None:
        """The one entry ``name`` (or the filter ``search``) finds, or ``None``;
        raises _Unavailable on errors."""
        return self._search_one(slot, search or user_filter(self.config.user_filter, name), name)

    def _search_one(self, slot: _Slot, search_filter: str, name: str) -> Any | None:
        """The one entry ``search_filter`` finds, or ``None``; raises _Unavailable on errors."""
        ldap3 = self._ldap3
        scope = {"subtree": ldap3.SUBTREE, "level": ldap3.LEVEL, "base": ldap3.BASE}
        conn = slot.search
        ok = conn.search(
            self.config.base_dn,
            search_filter,
            search_scope=scope[self.config.scope],
            attributes=self._attributes,
            size_limit=2,
            time_limit=max(1, int(self.config.timeout)),
        )
        code = (conn.result or {}).get("result")
        entries = [e for e in (conn.response or []) if e.get("type") == "searchResEntry"]
        if code == _SIZE_LIMIT_EXCEEDED or len(entries) > 1:
            self.log.error("LDAP search matches several entries for {name!r}; refusing", name=name)
            return None
        if not ok and code not in (0, None):
            if code == _NO_SUCH_OBJECT:
                raise _Unavailable(f"base_dn {self.config.base_dn!r} does not exist")
            raise _Unavailable(f"search failed: {conn.result}")
        return entries[0] if entries else None

    def _bind_as(self, slot: _Slot, dn: str, password: str) -> bool:
        """Whether the directory accepts ``password`` for ``dn``."""
        conn = slot.bind
        if conn.rebind(user=dn, password=password):
            return True
        code = (conn.result or {}).get("result")
        if code in _REFUSED:
            return False
        raise _Unavailable(f"bind as {dn!r} failed: {conn.result}")

    def _member_of(self, slot: _Slot, group: str, dn: str) -> bool:
        ldap3 = self._ldap3
        conn = slot.search
        attribute = self.config.group_member_attribute
        ok = conn.search(
            group,
            f"({attribute}={escape_filter_value(dn)})",
            search_scope=ldap3.BASE,
            attributes=["1.1"],
            size_limit=1,
            time_limit=max(1, int(self.config.timeout)),
        )
        code = (conn.result or {}).get("result")
        if code == _NO_SUCH_OBJECT:
            self.log.error("LDAP group {group!r} does not exist; nobody is a member", group=group)
            return False
        if not ok and code not in (0, None):
            raise _Unavailable(f"group search failed: {conn.result}")
        return any(e.get("type") == "searchResEntry" for e in (conn.response or []))

    def _first(self, entry: Any, attribute: str) -> str | None:
        if not attribute:
            return None
        values = entry.get("attributes", {}).get(attribute)
        if isinstance(values, list):
            values = values[0] if values else None
        if values is None or values == []:
            return None
        return values.decode("utf-8", "replace") if isinstance(values, bytes) else str(values)

    def _user(self, slot: _Slot, entry: Any, name: str) -> DirectoryUser:
        dn = entry["dn"]
        canonical = (
            self._first(entry, self.config.mailbox_attribute)
            or self._first(entry, self.config.login_attribute)
            or name
        )
        try:
            check_user_name(canonical)
        except InvalidUserName:
            self.log.error(
                "LDAP entry {dn!r} gives the mailbox name {name!r}, which is not "
                "a safe user name; refusing the login",
                dn=dn,
                name=canonical,
            )
            raise UnauthorizedLogin("unusable mailbox name") from None
        quota = None
        quota_text = self._first(entry, self.config.quota_attribute)
        if quota_text is not None:
            try:
                quota = int(quota_text)
            except ValueError:
                self.log.warn("LDAP entry {dn!r}: quota {value!r} is not an integer", dn=dn, value=quota_text)
        groups = {IMAP: self.config.imap_group, POP3: self.config.pop3_group}
        protocols = None
        if any(groups.values()):
            protocols = frozenset(
                p for p, group in groups.items() if not group or self._member_of(slot, group, dn)
            )
        return DirectoryUser(
            canonical,
            dn=dn,
            mail=self._first(entry, self.config.mail_attribute),
            quota=quota,
            protocols=protocols,
        )

    def authenticate(self, name: str, password: str) -> DirectoryUser:
        """Search-then-bind (blocking).  The user, or UnauthorizedLogin /
        DirectoryUnavailable."""

        def work(slot: _Slot) -> DirectoryUser:
            entry = self._search_user(slot, name)
            if entry is None:
                raise UnauthorizedLogin("invalid user name or password")
            if not self._bind_as(slot, entry["dn"], password):
                raise UnauthorizedLogin("invalid user name or password")
            return self._user(slot, entry, name)

        return self._with_slot(work)

    def identify(self, name: str, principal: str) -> DirectoryUser:
        """The entry of a login GSSAPI or a token proved (blocking): found by
        ``principal_filter`` (``{principal}``, ``{user}``), else by ``user_filter``
        with the mapped ``name``; no bind.  UnauthorizedLogin if none."""
        template = self.config.principal_filter
        search = (
            template.replace("{principal}", escape_filter_value(principal)).replace(
                "{user}", escape_filter_value(name)
            )
            if template
            else ""
        )

        def work(slot: _Slot) -> DirectoryUser:
            entry = self._search_user(slot, name, search)
            if entry is None:
                raise UnauthorizedLogin(f"no directory entry for {principal!r}")
            return self._user(slot, entry, name)

        return self._with_slot(work)

    def lookup(self, name: str) -> str | None:
        """The canonical (mailbox) name of ``name`` in the directory, or ``None`` (blocking)."""
        if not self._valid_name(name):
            return None

        def work(slot: _Slot) -> str | None:
            entry = self._search_user(slot, name)
            if entry is None:
                return None
            return (
                self._first(entry, self.config.mailbox_attribute)
                or self._first(entry, self.config.login_attribute)
                or name
            )

        return self._with_slot(work)

    def find_address(self, address: str) -> str | None:
        """The mailbox name for a recipient ``address``, or ``None`` (blocking).

        The entry whose ``mail_attribute`` equals ``address`` (any case, as
        the directory compares it); failing that, the entry whose login name
        is the whole address, then its part before ``@``.  Used by LMTP.
        """
        if not self._valid_name(address):
            return None
        local = address.rpartition("@")[0]
        mail = self.config.mail_attribute

        def work(slot: _Slot) -> str | None:
            entry = None
            if local and mail:
                entry = self._search_one(slot, f"({mail}={escape_filter_value(address)})", address)
            for name in dict.fromkeys((address, local) if local else (address,)):
                if entry is None:
                    entry = self._search_user(slot, name)
            if entry is None:
                return None
            return (
                self._first(entry, self.config.mailbox_attribute)
                or self._first(entry, self.config.login_attribute)
                or local
                or address
            )

        return self._with_slot(work)

    def mailbox_for_address(self, address: str) -> defer.Deferred[str | None]:
        """:meth:`find_address` off the reactor thread; a Deferred
        (DirectoryUnavailable if the directory does not answer)."""
        if self._run_blocking is not None:
            return self._run_blocking(self.find_address, address)
        return defer.maybeDeferred(self.find_address, address)

    @staticmethod
    def _valid_name(name: str) -> bool:
        return 0 < len(name) <= _MAX_NAME_LENGTH and not _CONTROL.search(name)

    # -- ICredentialsChecker -------------------------------------------
    def _cached(self, folded: str, password: str) -> DirectoryUser | None:
        return self.cache.get(folded, password.encode("utf-8", "surrogatepass"))

    def _remember(self, folded: str, password: str, user: DirectoryUser) -> DirectoryUser:
        self._names[folded] = str(user)
        self.cache.remember(folded, password.encode("utf-8", "surrogatepass"), user)
        return user

    def requestAvatarId(self, credentials: Any) -> defer.Deferred[Any]:
        """A Deferred firing with a :class:`DirectoryUser`, or failing with
        UnauthorizedLogin (refused) or DirectoryUnavailable (try again later)."""
        if IVerifiedLogin.providedBy(credentials):
            return self._verified(credentials)
        try:
            name = credentials.username
            password = credentials.password
            name = name.decode("utf-8") if isinstance(name, bytes) else name
            password = password.decode("utf-8") if isinstance(password, bytes) else password
        except UnicodeDecodeError:
            return defer.fail(UnauthorizedLogin("invalid user name or password"))
        if not password or not self._valid_name(name):
            return defer.fail(UnauthorizedLogin("invalid user name or password"))
        folded = name.lower()
        cached = self._cached(folded, password)
        if cached is not None:
            return defer.succeed(cached)
        if self._run_blocking is None:
            d = defer.maybeDeferred(self.authenticate, name, password)
            return d.addCallback(lambda user: self._remember(folded, password, user))
        if self._waiting >= self.max_waiting:
            return defer.fail(DirectoryUnavailable("too many logins are waiting for the directory"))
        self._waiting += 1
        d = self._run_blocking(self.authenticate, name, password)
        d.addBoth(self._done_waiting)
        return d.addCallback(lambda user: self._remember(folded, password, user))

    def _verified(self, credentials: Any) -> defer.Deferred[Any]:
        """A login GSSAPI or a bearer token proved: find its entry (never cached)."""
        name = credentials.username.decode("utf-8", "replace")
        if not self._valid_name(name):
            return defer.fail(UnauthorizedLogin("unusable account name"))
        if self._run_blocking is None:
            return defer.maybeDeferred(self.identify, name, credentials.identity)
        if self._waiting >= self.max_waiting:
            return defer.fail(DirectoryUnavailable("too many logins are waiting for the directory"))
        self._waiting += 1
        d = self._run_blocking(self.identify, name, credentials.identity)
        return d.addBoth(self._done_waiting)

    def _done_waiting(self, result: Any) -> Any:
        self._waiting -= 1
        return result

    # -- IDirectory ----------------------------------------------------
    def user_exists(self, name: str) -> defer.Deferred[bool]:
        """Whether the directory has ``name``; a Deferred (DirectoryUnavailable if down)."""
        if self._run_blocking is not None:
            d = self._run_blocking(self.lookup, name)
        else:
            d = defer.maybeDeferred(self.lookup, name)
        return d.addCallback(lambda found: found is not None)

    def canonical_name(self, name: str) -> str | None:
        """The mailbox name of ``name`` as of its last successful login, else ``None``.

        This method must not block, so it answers from memory; use
        :meth:`user_exists` or :meth:`lookup` to ask the directory.
        """
        return self._names.get(name.lower())

    def close(self) -> None:
        """Unbind every pooled connection (blocking; call after the pool stopped)."""
        self._closed = True
        while True:
            try:
                slot = self._slots.get_nowait()
            except queue.Empty:
                return
            self._drop(slot)


class LDAPService(Service):
    """Owns the bounded thread pool that LDAP logins run in, and the checker.

    A pool of its own (``pool_size`` threads, one pair of pooled connections
    each) keeps a slow directory from taking the store's threads; the
    reactor thread never waits for the directory.
    """

    name = "ldap"

    def __init__(self, reactor: Any, config: LDAPConfig) -> None:
        self.reactor = reactor
        self.pool = ThreadPool(minthreads=0, maxthreads=config.pool_size, name="exchmail-ldap")
        self.checker = LDAPChecker(config, run_blocking=self.run_blocking)

    def run_blocking(self, f: Any, *args: Any) -> defer.Deferred[Any]:
        """Run ``f(*args)`` in the LDAP pool; a Deferred of its result on the reactor thread."""
        return threads.deferToThreadPool(self.reactor, self.pool, f, *args)

    def startService(self) -> None:
        super().startService()
        self.pool.start()

    def stopService(self) -> defer.Deferred[None] | None:
        super().stopService()
        self.pool.stop()
        self.checker.close()
        return None
