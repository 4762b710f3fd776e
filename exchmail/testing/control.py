"""The control socket of a standalone test server: JSON lines over a Unix socket.

A test suite in any language sets up and inspects ``exchmail serve
--ephemeral`` through it (or through ``exchmail control SOCKET REQUEST``).
Each request is one JSON object on one line, with an ``op``; each answer is
one JSON object on one line, ``{"ok": true, ...}`` or ``{"ok": false,
"error": "..."}``.  Requests on one connection are answered in order.

==================  =====================================================  ==================
op                  fields                                                 answer fields
==================  =====================================================  ==================
``describe``                                                               ports, ``ca_file``...
``add_user``        ``user``, ``password``
``remove_user``     ``user``
``deliver``         ``user``, ``message`` (text) or ``message_base64``,    ``uid``
                    ``folder`` (INBOX), ``flags`` ([]), ``internal_date``
                    (seconds since the epoch)
``mailbox``         ``user``, ``folder`` (INBOX)                           ``messages``: uid,
                                                                           flags, internal_date,
                                                                           size, message (text or
                                                                           null),
                                                                           message_base64
``folders``         ``user``                                               ``folders``
``create_folder``   ``user``, ``folder``
``expunge``         ``user``, ``folder``, ``uids`` ([]: all)               ``uids``
``uidvalidity``     ``user``, ``folder``                                   ``uid_validity``
``fault``           the rule's fields (see :mod:`exchmail.testing.faults`)  ``rule`` (with ``id``)
``faults``                                                                 ``rules`` (with
                                                                           ``seen``/``fired``)
``remove_fault``    ``id``
``clear_faults``
``transcript``      ``user`` (optional), ``protocol`` (optional)           ``lines``
``stop``                                                                   (then the server exits)
==================  =====================================================  ==================

For example (with ``socat``, or ``exchmail control``)::

    {"op": "add_user", "user": "carol", "password": "pw"}
    {"op": "fault", "action": "reply", "command": "SELECT", "status": "NO",
     "text": "[UNAVAILABLE] Mailbox database offline"}
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineOnlyReceiver

from exchmail.errors import ExchmailError
from exchmail.testing.faults import FaultRule
from exchmail.testing.server import ServerCore

#: The longest request line (a message to deliver is in it).
MAX_REQUEST = 64 * 1024 * 1024

log = Logger(namespace="exchmail.testing.control")


class RequestError(Exception):
    """A request the control socket refuses (the message says why)."""


def _field(
    request: dict[str, Any], name: str, kind: type | tuple[type, ...] = str, default: Any = ...
) -> Any:
    if name not in request:
        if default is ...:
            raise RequestError(f"missing field {name!r}")
        return default
    value = request[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise RequestError(f"field {name!r} has the wrong type")
    return value


def _message_of(request: dict[str, Any]) -> bytes:
    if "message_base64" in request:
        try:
            return base64.b64decode(_field(request, "message_base64"), validate=True)
        except ValueError:
            raise RequestError("message_base64 is not valid base64") from None
    return str(_field(request, "message")).encode("utf-8")


def _message_json(message: Any) -> dict[str, Any]:
    try:
        text: str | None = message.content.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {
        "uid": message.uid,
        "flags": sorted(message.flags),
        "internal_date": message.internal_date,
        "size": message.size,
        "message": text,
        "message_base64": base64.b64encode(message.content).decode("ascii"),
    }


class Controller:
    """Carries out control requests on a :class:`ServerCore` (on the reactor thread).

    :param on_stop: called (by ``reactor``) after a ``stop`` request is answered.
    """

    def __init__(self, core: ServerCore, on_stop: Callable[[], Any], reactor: Any) -> None:
        self.core = core
        self.on_stop = on_stop
        self.reactor = reactor

    def handle(self, request: Any) -> defer.Deferred[dict[str, Any]]:
        """The answer to one decoded request."""
        d = defer.maybeDeferred(self._dispatch, request)
        d.addCallback(lambda fields: {"ok": True, **(fields or {})})
        d.addErrback(self._error)
        return d

    def _error(self, failure: Any) -> dict[str, Any]:
        if failure.check(RequestError, ValueError, TypeError, ExchmailError):
            return {"ok": False, "error": str(failure.value)}
        log.failure("control request failed", failure)
        return {"ok": False, "error": f"internal error: {failure.value!r}"}

    def _dispatch(self, request: Any) -> Any:
        if not isinstance(request, dict):
            raise RequestError("a request is a JSON object")
        op = _field(request, "op")
        handler = getattr(self, "op_" + op, None)
        if handler is None:
            raise RequestError(f"unknown op {op!r}")
        return handler(request)

    # -- the operations -------------------------------------------------------------------------
    def op_describe(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.core.describe()

    def op_add_user(self, request: dict[str, Any]) -> None:
        self.core.add_user(_field(request, "user"), _field(request, "password"))

    def op_remove_user(self, request: dict[str, Any]) -> None:
        self.core.users.remove(_field(request, "user"))

    def op_deliver(self, request: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
        flags = _field(request, "flags", list, [])
        d = self.core.deliver(
            _field(request, "user"),
            _message_of(request),
            _field(request, "folder", default="INBOX"),
            [str(flag) for flag in flags],
            _field(request, "internal_date", (int, float), None),
        )
        return d.addCallback(lambda uid: {"uid": uid})

    def op_mailbox(self, request: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
        d = self.core.messages(_field(request, "user"), _field(request, "folder", default="INBOX"))
        return d.addCallback(lambda messages: {"messages": [_message_json(m) for m in messages]})

    def op_folders(self, request: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
        return self.core.folders(_field(request, "user")).addCallback(lambda f: {"folders": f})

    def op_create_folder(self, request: dict[str, Any]) -> defer.Deferred[None]:
        return self.core.create_folder(_field(request, "user"), _field(request, "folder"))

    def op_expunge(self, request: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
        uids = tuple(int(uid) for uid in _field(request, "uids", list, []))
        d = self.core.faults.expunge_now(
            _field(request, "user"), _field(request, "folder", default="INBOX"), uids
        )
        return d.addCallback(lambda removed: {"uids": list(removed)})

    def op_uidvalidity(self, request: dict[str, Any]) -> defer.Deferred[dict[str, Any]]:
        d = self.core.faults.change_uidvalidity_now(
            _field(request, "user"), _field(request, "folder", default="INBOX")
        )
        return d.addCallback(lambda value: {"uid_validity": value})

    def op_fault(self, request: dict[str, Any]) -> dict[str, Any]:
        fields = {key: value for key, value in request.items() if key != "op"}
        rule = self.core.faults.add(FaultRule.from_dict(fields))
        return {"rule": rule.to_dict()}

    def op_faults(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"rules": [rule.to_dict() for rule in self.core.faults.rules]}

    def op_remove_fault(self, request: dict[str, Any]) -> None:
        self.core.faults.remove(_field(request, "id", int))

    def op_clear_faults(self, request: dict[str, Any]) -> None:
        self.core.faults.clear()

    def op_transcript(self, request: dict[str, Any]) -> dict[str, Any]:
        lines = self.core.transcript(
            _field(request, "user", default=None), _field(request, "protocol", default=None)
        )
        return {"lines": lines}

    def op_stop(self, request: dict[str, Any]) -> None:
        self.reactor.callLater(0, self.on_stop)


class ControlProtocol(LineOnlyReceiver):
    """One control connection: a JSON request per line, answered in order."""

    delimiter = b"\n"
    MAX_LENGTH = MAX_REQUEST

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self._queue: defer.Deferred[Any] = defer.succeed(None)

    def lineReceived(self, line: bytes) -> None:
        line = line.strip()
        if not line:
            return
        self._queue.addCallback(lambda _: self._answer(line))

    def _answer(self, line: bytes) -> defer.Deferred[None]:
        try:
            request = json.loads(line)
        except ValueError as e:
            self._send({"ok": False, "error": f"not JSON: {e}"})
            return defer.succeed(None)
        return self.controller.handle(request).addCallback(self._send)

    def _send(self, answer: dict[str, Any]) -> None:
        if self.transport is not None:
            self.transport.write(json.dumps(answer).encode("utf-8") + b"\n")

    def lineLengthExceeded(self, line: bytes) -> None:
        self._send({"ok": False, "error": f"request longer than {MAX_REQUEST} octets"})
        if self.transport is not None:
            self.transport.loseConnection()


class ControlFactory(Factory):
    """Builds :class:`ControlProtocol` connections for one :class:`Controller`."""

    noisy = False

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    def buildProtocol(self, addr: Any) -> ControlProtocol:
        return ControlProtocol(self.controller)
