"""ENABLE (RFC 5161): UTF8=ACCEPT (RFC 6855), CONDSTORE and QRESYNC (RFC 7162),
IMAP4rev2 (RFC 9051).

:data:`ENABLERS` maps a capability name to a function that switches it on
for one session and says whether it did; ENABLE answers ``* ENABLED``
with the names switched on by this command (unknown names and names
already enabled are ignored, RFC 5161 §3.1).  Another extension that
needs ENABLE (CONDSTORE, QRESYNC) adds one entry.

UTF8=ACCEPT is enabled only in the authenticated state (RFC 6855 §3);
asked for in the selected state it is ignored (not listed in ENABLED).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from exchmail.imap import commands as syntax

if TYPE_CHECKING:
    from exchmail.imap.session import IMAPSession

Enabler = Callable[["IMAPSession"], bool]


def _utf8_accept(session: IMAPSession) -> bool:
    return session.context.profile.imap.utf8_accept and session.state == "auth"


def _condstore(session: IMAPSession) -> bool:
    if not session.context.profile.imap.condstore:
        return False
    from exchmail.imap.handlers.condstore import enable_condstore

    enable_condstore(session)
    return True


def _qresync(session: IMAPSession) -> bool:
    # RFC 7162 §3.2.3: QRESYNC implies CONDSTORE.
    return session.context.profile.imap.qresync and _condstore(session)


def _imap4rev2(session: IMAPSession) -> bool:
    return session.context.profile.imap.imap4rev2


#: capability name (upper case) -> enabler
ENABLERS: dict[bytes, Enabler] = {
    b"UTF8=ACCEPT": _utf8_accept,
    b"CONDSTORE": _condstore,
    b"QRESYNC": _qresync,
    b"IMAP4REV2": _imap4rev2,
}


def enable(command: syntax.Enable, session: IMAPSession) -> bytes:
    done = []
    for name in command.capabilities:
        enabler = ENABLERS.get(name)
        if enabler is None or name in session.enabled or name in done:
            continue
        if enabler(session):
            session.enabled.add(name)
            done.append(name)
    session.untagged(b"ENABLED" + b"".join(b" " + name for name in done))
    return b"ENABLE completed."
