"""Test servers: a fresh exchmail on loopback port 0, set up and inspected in code.

:class:`ServerCore` is the server itself and lives on the reactor thread:
it builds the service tree with :func:`exchmail.service.make_service` over
an in-memory store (or a Maildir in a temporary folder), an in-memory user
list (:class:`~exchmail.testing.users.MemoryUsers`), a transcript observer
and fault rules, and starts it on ``127.0.0.1`` port 0.  Its methods return
Deferreds; the standalone server (``exchmail serve --ephemeral``) uses it
directly.

:class:`ExchmailServer` is the same server for synchronous test code (the
pytest fixtures, unittest): it runs the core on the shared reactor thread
(:mod:`exchmail.testing.reactor`) and waits for every call::

    with ExchmailServer(profile="exchange2007", tls=True) as server:
        server.add_user("alice", "secret")
        server.deliver("alice", b"Subject: hi\\r\\n\\r\\nHello\\r\\n")
        client = imaplib.IMAP4("127.0.0.1", server.imap_port)
        ...
        assert server.mailbox("alice")[0].flags == {"\\\\Seen"}
"""

from __future__ import annotations

import datetime
import email
import email.message
import email.policy
import functools
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from twisted.internet import defer, threads
from twisted.protocols.policies import WrappingFactory

from exchmail.auth.throttle import ThrottleSettings
from exchmail.errors import MailboxExists
from exchmail.profile import Profile, load_profile
from exchmail.service.build import ListeningService, make_service
from exchmail.service.config import AuthConfig, Config, IMAPConfig, POP3Config, ServerConfig
from exchmail.store.memory import MemoryStore
from exchmail.testing.certs import TestCertificates, shared_certificates
from exchmail.testing.faults import Faults
from exchmail.testing.faultstore import FaultStore
from exchmail.testing.reactor import in_reactor
from exchmail.testing.transcript import TranscriptObserver
from exchmail.testing.users import MemoryUsers
from exchmail.tls.config import TLSConfig, TLSIdentity

STORES = ("memory", "maildir")
#: The login type of test servers unless asked otherwise: passwords accepted
#: without TLS, so plain test clients can log in (Exchange's default is SecureLogin).
DEFAULT_LOGIN_TYPE = "PlainTextLogin"


@dataclass(frozen=True)
class Message:
    """A stored message as :meth:`ExchmailServer.mailbox` reads it back."""

    uid: int
    flags: frozenset[str]
    internal_date: float
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def email(self) -> email.message.EmailMessage:
        """The content parsed by the standard library (``email.policy.default``)."""
        parsed = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed

    @property
    def subject(self) -> str | None:
        value = self.email["Subject"]
        return None if value is None else str(value)


@functools.lru_cache(maxsize=16)
def _profile(name: str, login_type: str) -> Profile:
    return load_profile(name, {"login_type": login_type})


def make_profile(name: str, login_type: str, settings: Mapping[str, Any] | None) -> Profile:
    """The built-in profile ``name`` with ``login_type`` and ``settings`` (``[profile]`` overrides)."""
    if not settings:
        return _profile(name, login_type)
    return load_profile(name, {"login_type": login_type, **settings})


def _endpoint(host: str) -> str:
    if ":" in host:
        return "tcp6:0:interface=" + host.replace(":", "\\:")
    return f"tcp:0:interface={host}"


def _to_timestamp(value: float | datetime.datetime | None) -> float | None:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    return value


def to_wire(message: bytes | str | email.message.Message) -> bytes:
    """A message as the store keeps it: bytes with CRLF line ends."""
    if isinstance(message, email.message.Message):
        message = message.as_bytes(policy=email.policy.SMTP)
    elif isinstance(message, str):
        message = message.encode("utf-8")
    return message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class ServerCore:
    """One test server, on the reactor thread (see the module docstring).

    :param profile: ``"exchange2010"``, ``"exchange2007"`` or ``"rfc3501"``.
    :param tls: offer STARTTLS/STLS and listen for implicit TLS (IMAPS,
        POP3S) too, with the process's test CA (:attr:`ca_file`).
    :param login_type: ``"PlainTextLogin"`` (default here),
        ``"PlainTextAuthentication"`` or ``"SecureLogin"`` (Exchange's default).
    :param settings: profile overrides, as the ``[profile]`` table takes them.
    :param store: ``"memory"`` or ``"maildir"`` (in a temporary folder).
    :param config: :class:`~exchmail.service.config.Config` fields to
        replace (e.g. ``{"throttle": ThrottleSettings(...)}``; the failed-login
        throttle is off by default).
    :param users: users to add at once, name -> password.
    :param temp_parent: where the Maildir's temporary folder is made
        (default: the system's temporary folder).
    """

    def __init__(
        self,
        *,
        profile: str = "exchange2010",
        tls: bool = False,
        login_type: str = DEFAULT_LOGIN_TYPE,
        settings: Mapping[str, Any] | None = None,
        store: str = "memory",
        host: str = "127.0.0.1",
        config: Mapping[str, Any] | None = None,
        users: Mapping[str, str] | None = None,
        reactor: Any = None,
        temp_parent: Path | None = None,
    ) -> None:
        if store not in STORES:
            raise ValueError(f"store must be one of {', '.join(STORES)}, not {store!r}")
        self.profile = make_profile(profile, login_type, settings)  # ConfigError if bad
        self.profile_name = profile
        self.host = host
        self.tls = tls
        self.store_kind = store
        self.certificates: TestCertificates | None = shared_certificates() if tls else None
        self.directory: Path | None = None
        self._config_changes = dict(config or {})
        self._reactor = reactor
        self._temp_parent = temp_parent
        self.users = MemoryUsers()
        for name, password in (users or {}).items():
            self.users.add(name, password)
        self.faults = Faults()
        self.transcripts = TranscriptObserver()
        self.ports: dict[str, int] = {}
        self.service: Any = None
        self.store: Any = None  # the store without the fault wrapper
        self._factories: list[WrappingFactory] = []

    # -- life cycle ---------------------------------------------------------------------------
    def _config(self, data_dir: Path) -> Config:
        listen = (_endpoint(self.host),)
        tls_listen = listen if self.tls else ()
        tls = None
        if self.certificates is not None:
            tls = TLSConfig(TLSIdentity(self.certificates.cert_file, self.certificates.key_file))
        config = Config(
            server=ServerConfig(data_dir=data_dir, profile=self.profile_name),
            imap=IMAPConfig(listen=listen, tls_listen=tls_listen),
            pop3=POP3Config(listen=listen, tls_listen=tls_listen),
            auth=AuthConfig(users_file=data_dir / "users"),
            profile=self.profile,
            source=None,
            tls=tls,
            throttle=ThrottleSettings(enabled=False),
        )
        return replace(config, **self._config_changes) if self._config_changes else config

    def start(self) -> defer.Deferred[ServerCore]:
        """Build and start the service; the Deferred fires once every port is bound."""
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor
        if self.store_kind == "maildir":
            from exchmail.store.maildir import MaildirStore

            self.directory = Path(tempfile.mkdtemp(prefix="exchmail-test-", dir=self._temp_parent))
            pool = reactor.getThreadPool()
            self.store = MaildirStore(
                self.directory / "mail",
                reactor=reactor,
                run_blocking=lambda f, *a: threads.deferToThreadPool(reactor, pool, f, *a),
            )
        else:
            self.store = MemoryStore()
        self.faults.store = self.store
        data_dir = self.directory or Path(tempfile.gettempdir()) / "exchmail-unused"
        self.service = make_service(
            self._config(data_dir),
            reactor=reactor,
            store=FaultStore(self.store, self.faults),
            checker=self.users,
            observers=(self.transcripts,),
            faults=self.faults,
        )
        listeners = [s for s in self.service if isinstance(s, ListeningService)]
        for listener in listeners:
            # A wrapper per listener knows its open connections, so stop() can close them.
            listener.factory = WrappingFactory(listener.factory)
            self._factories.append(listener.factory)
        self.service.privilegedStartService()
        self.service.startService()
        d = defer.gatherResults([listener.listening for listener in listeners])

        def bound(ports: list[Any]) -> ServerCore:
            for listener, port in zip(listeners, ports, strict=True):
                kind = str(listener.name).split(":", 1)[0]  # imap, imaps, pop3, pop3s
                self.ports[kind] = port.getHost().port
            return self

        return d.addCallback(bound)

    def stop(self) -> defer.Deferred[None]:
        """Close every connection, stop the service and remove the temporary folder."""
        for factory in self._factories:
            for protocol in list(factory.protocols):
                protocol.transport.abortConnection()
        self._factories = []
        service, self.service = self.service, None
        d = defer.maybeDeferred(service.stopService) if service is not None else defer.succeed(None)

        def cleaned(_: object) -> None:
            if self.directory is not None:
                shutil.rmtree(self.directory, ignore_errors=True)
                self.directory = None

        return d.addCallback(cleaned)

    # -- what clients need --------------------------------------------------------------------
    @property
    def imap_port(self) -> int:
        return self.ports.get("imap", 0)

    @property
    def pop3_port(self) -> int:
        return self.ports.get("pop3", 0)

    @property
    def imaps_port(self) -> int:
        """The implicit TLS IMAP port (0 without ``tls``)."""
        return self.ports.get("imaps", 0)

    @property
    def pop3s_port(self) -> int:
        """The implicit TLS POP3 port (0 without ``tls``)."""
        return self.ports.get("pop3s", 0)

    @property
    def ca_file(self) -> Path | None:
        """The CA certificate (PEM) that clients verify the server with (None without ``tls``)."""
        return self.certificates.ca_file if self.certificates else None

    def describe(self) -> dict[str, Any]:
        """Ports, CA file, profile and users as plain values (the standalone server's JSON)."""
        return {
            "host": self.host,
            "imap_port": self.imap_port,
            "pop3_port": self.pop3_port,
            "imaps_port": self.imaps_port or None,
            "pop3s_port": self.pop3s_port or None,
            "ca_file": str(self.ca_file) if self.ca_file else None,
            "profile": self.profile_name,
            "login_type": self.profile.imap.login_type.value,
            "store": self.store_kind,
            "users": self.users.names(),
        }

    # -- setting up and reading back mail (on the reactor thread) ----------------------------
    def add_user(self, name: str, password: str) -> None:
        """Add a user (or change its password); its INBOX is created on first use."""
        self.users.add(name, password)

    def mailbox_of(self, user: str, folder: str = "INBOX", create: bool = False) -> defer.Deferred[Any]:
        """The store's mailbox (no faults), created first if ``create``."""
        d = defer.maybeDeferred(self.store.account, user)

        @defer.inlineCallbacks
        def open_box(account: Any) -> Any:
            if create:
                try:
                    yield defer.maybeDeferred(account.create, folder)
                except MailboxExists:
                    pass
            box = yield defer.maybeDeferred(account.mailbox, folder)
            return box

        return d.addCallback(open_box)

    def deliver(
        self,
        user: str,
        message: bytes | str | email.message.Message,
        folder: str = "INBOX",
        flags: Iterable[str] = (),
        internal_date: float | datetime.datetime | None = None,
    ) -> defer.Deferred[int]:
        """Put ``message`` into ``folder`` (created if missing); the Deferred has its UID."""
        data = to_wire(message)
        d = self.mailbox_of(user, folder, create=True)
        return d.addCallback(lambda box: box.append(data, frozenset(flags), _to_timestamp(internal_date)))

    def messages(self, user: str, folder: str = "INBOX") -> defer.Deferred[list[Message]]:
        """Every message of ``folder`` with its flags, by UID."""

        @defer.inlineCallbacks
        def read(box: Any) -> Any:
            out = []
            for uid in list(box.uids()):
                record = box.message(uid)
                if record is None:
                    continue
                content = yield defer.maybeDeferred(box.read_message, uid)
                out.append(Message(uid, frozenset(record.flags), record.internal_date, content))
            return out

        return self.mailbox_of(user, folder).addCallback(read)

    def folders(self, user: str) -> defer.Deferred[list[str]]:
        """The user's folder names, sorted."""
        d = defer.maybeDeferred(self.store.account, user)
        d.addCallback(lambda account: account.list_mailboxes())
        return d.addCallback(sorted)

    def create_folder(self, user: str, folder: str) -> defer.Deferred[None]:
        """Create ``folder`` (and its parents) for ``user``; no error if it exists."""
        return self.mailbox_of(user, folder, create=True).addCallback(lambda _: None)

    def transcript(self, user: str | None = None, protocol: str | None = None) -> list[str]:
        """The lines of ``user``'s sessions (see :mod:`exchmail.testing.transcript`)."""
        return self.transcripts.lines(user, protocol)


class ExchmailServer:
    """A test server for synchronous code: every call waits for the reactor thread.

    Takes :class:`ServerCore`'s arguments.  Start it with :meth:`start` or a
    ``with`` block (which stops it at the end); :meth:`stop` closes every
    connection and forgets everything.  ``server.faults`` adds fault rules
    (:class:`~exchmail.testing.faults.Faults`) and is safe to use directly.
    """

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.core: ServerCore | None = None

    def start(self) -> ExchmailServer:
        """Start the server (a no-op if it runs)."""
        if self.core is None:
            self.core = in_reactor(lambda: ServerCore(**self.options).start())
        return self

    def stop(self) -> None:
        """Stop the server; it can be started again, empty."""
        core, self.core = self.core, None
        if core is not None:
            in_reactor(core.stop)

    def __enter__(self) -> ExchmailServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> ServerCore:
        if self.core is None:
            raise RuntimeError("the exchmail test server is not running")
        return self.core

    # -- where it is ------------------------------------------------------------------------------
    host = property(lambda self: self.running.host, doc="The address it listens on.")
    imap_port = property(lambda self: self.running.imap_port, doc="The IMAP (STARTTLS) port.")
    pop3_port = property(lambda self: self.running.pop3_port, doc="The POP3 (STLS) port.")
    imaps_port = property(
        lambda self: self.running.imaps_port, doc="The implicit TLS IMAP port (0 without tls)."
    )
    pop3s_port = property(
        lambda self: self.running.pop3s_port, doc="The implicit TLS POP3 port (0 without tls)."
    )
    ca_file = property(
        lambda self: self.running.ca_file,
        doc="The CA file (PEM) that verifies the server (None without tls).",
    )
    profile = property(lambda self: self.running.profile, doc="The effective Profile.")
    faults = property(lambda self: self.running.faults, doc="The fault rules (thread-safe).")

    def describe(self) -> dict[str, Any]:
        return self.running.describe()

    # -- users and mail ------------------------------------------------------------------------------
    def add_user(self, name: str, password: str) -> None:
        """Add a user (or change its password)."""
        self.running.add_user(name, password)

    def remove_user(self, name: str) -> None:
        """Remove a user (its mail stays)."""
        self.running.users.remove(name)

    def deliver(
        self,
        user: str,
        message: bytes | str | email.message.Message,
        folder: str = "INBOX",
        flags: Iterable[str] = (),
        internal_date: float | datetime.datetime | None = None,
    ) -> int:
        """Put ``message`` (bytes, text or an ``email`` message; LF or CRLF) into
        ``folder`` (created if missing) with ``flags``; return its UID.  Sessions
        with the folder open hear of it as of a new delivery."""
        return int(in_reactor(self.running.deliver, user, message, folder, tuple(flags), internal_date))

    def mailbox(self, user: str, folder: str = "INBOX") -> list[Message]:
        """The messages of ``folder`` with their flags (as the store has them now)."""
        return list(in_reactor(self.running.messages, user, folder))

    def folders(self, user: str) -> list[str]:
        """The user's folder names, sorted."""
        return list(in_reactor(self.running.folders, user))

    def create_folder(self, user: str, folder: str) -> None:
        """Create ``folder`` for ``user`` (no error if it exists)."""
        in_reactor(self.running.create_folder, user, folder)

    def expunge(self, user: str, folder: str = "INBOX", uids: Iterable[int] = ()) -> list[int]:
        """Remove messages now, as another session would (all if ``uids`` is empty)."""
        return list(in_reactor(self.running.faults.expunge_now, user, folder, tuple(uids)))

    def change_uidvalidity(self, user: str, folder: str = "INBOX") -> int:
        """Give ``folder`` a new UIDVALIDITY now (clients see it at their next SELECT)."""
        return int(in_reactor(self.running.faults.change_uidvalidity_now, user, folder))

    def transcript(self, user: str | None = None, protocol: str | None = None) -> list[str]:
        """What ``user``'s sessions said, ``C: ``/``S: `` lines (None: every session)."""
        core = self.running
        return list(in_reactor(core.transcript, user, protocol))
