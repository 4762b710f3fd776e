"""Fault injection hooks: how a session applies a fault to one command.

A service built for client tests (:mod:`exchmail.testing`) puts a
:class:`SessionFaults` object into its
:class:`~exchmail.session.context.SessionContext`; before each command the
session core asks it for a :class:`FaultAction` (or ``None``, the normal
case) and :func:`apply_fault` carries it out.  A context without faults
(``faults=None``, every production service) never reaches this module.

What an action can do, in this order:

1. wait ``delay`` seconds (on the context's reactor);
2. run ``before()`` and wait for it (a change made "by another session",
   e.g. an expunge, between the previous command and this one);
3. close the connection without an answer (``drop="before"``), or answer
   the command with ``reply`` instead of running it (the protocol renders
   it: IMAP ``tag NO ...``/``tag BAD ...``/``* BYE ...``, POP3 ``-ERR ...``;
   ``BYE`` closes the connection), or run it: with ``drop="during"`` the
   connection is closed after ``cut_after`` octets of its response (in the
   middle of a literal or of a RETR), with ``drop="after"`` once it is
   answered;
4. run ``after()`` once the command is done, whatever its outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet import defer, task

if TYPE_CHECKING:
    from exchmail.session.core import Session
    from exchmail.session.observe import SessionInfo
    from exchmail.session.reader import Command

#: ``drop`` values.
DROP_BEFORE, DROP_DURING, DROP_AFTER = "before", "during", "after"


@dataclass(frozen=True)
class FaultAction:
    """What to do to one command instead of (or around) running it normally.

    :ivar delay: seconds to wait before the command runs (0: none).
    :ivar before: called before the command runs; may return a Deferred.
    :ivar reply: ``(status, text)`` to answer instead of running the
        command; status ``"NO"``, ``"BAD"`` or ``"BYE"`` (POP3 answers all
        three ``-ERR text``; BYE also closes the connection).
    :ivar drop: ``"before"``, ``"during"`` or ``"after"`` (see the module
        docstring), or None.
    :ivar cut_after: with ``drop="during"``: the octets of the response the
        client gets before the connection closes.
    :ivar after: called once the command is done (also when it failed).
    """

    delay: float = 0.0
    before: Callable[[], Any] | None = None
    reply: tuple[str, str] | None = None
    drop: str | None = None
    cut_after: int = 0
    after: Callable[[], Any] | None = None


class SessionFaults(Protocol):
    """What a :class:`~exchmail.session.context.SessionContext` ``faults`` provides."""

    def command_starting(self, session: SessionInfo, name: str) -> FaultAction | None:
        """The action for the command ``name`` (``"FETCH"``, ``"UID FETCH"``,
        ``"RETR"``; ``""`` if it cannot be parsed) that ``session`` is about
        to run, or None.  Called on the reactor thread; must not raise."""


def apply_fault(session: Session, command: Command, action: FaultAction) -> defer.Deferred[Any]:
    """Run ``command`` on ``session`` as ``action`` says; the Deferred fires when done."""
    d: defer.Deferred[Any] = defer.succeed(None)
    if action.delay > 0:
        reactor = session.context.reactor
        d.addCallback(lambda _: task.deferLater(reactor, action.delay, lambda: None))
    if action.before is not None:
        before = action.before
        d.addCallback(lambda _: before())
    d.addCallback(lambda _: _act(session, command, action))
    if action.after is not None:
        after = action.after

        def done(result: object) -> object:
            after()
            return result

        d.addBoth(done)
    return d


def _act(session: Session, command: Command, action: FaultAction) -> Any:
    if session.closing:  # the client left while the fault waited
        return None
    if action.drop == DROP_BEFORE:
        session.close()
        return None
    if action.reply is not None:
        status, text = action.reply
        session.answer_fault(command, status, text)
        return None
    if action.drop == DROP_DURING:
        session.cut_output_after(action.cut_after)
    elif action.drop == DROP_AFTER:
        session.close_after_command()
    return session.execute(command)
