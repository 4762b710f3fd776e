"""A remote IMAP account as an import source (``imaps://user@host[:port][/folder]``).

Python's :mod:`imaplib` does the talking (the import runs in its own
process, where blocking is fine).  ``imaps://`` is implicit TLS (port 993),
``imap://`` plain IMAP upgraded with STARTTLS (port 143), which must
succeed: passwords never go out in the clear.  Certificates are checked
against the system's CAs or ``ca_file``.

Every selectable folder is read (or only the one in the URL), read-only
(``EXAMINE``, ``BODY.PEEK``): flags, keywords, internal dates and the
UID order come along, the remote account stays as it was.
"""

from __future__ import annotations

import imaplib
import re
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from exchmail import mutf7
from exchmail.store import names
from exchmail.transfer.importer import SourceMessage

_LIST = re.compile(rb'^\((?P<flags>[^)]*)\) (?P<delimiter>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.*)$')
_FETCH_UID = re.compile(rb"UID (\d+)")
_FETCH_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_FETCH_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_FETCH_DATE = re.compile(rb'INTERNALDATE "[^"]+"')


@dataclass(frozen=True)
class IMAPLocation:
    """Where the remote account is."""

    host: str
    port: int
    user: str
    tls: bool
    folder: str | None = None


def parse_imap_url(url: str) -> IMAPLocation:
    """``imaps://user@host[:port][/folder]`` (or ``imap://``) as an :class:`IMAPLocation`.

    :raises ValueError: for anything else.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
        raise ValueError(f"expected imaps://user@host[:port][/folder], got {url!r}")
    tls = parts.scheme == "imaps"
    folder = unquote(parts.path.lstrip("/")) or None
    return IMAPLocation(
        parts.hostname, parts.port or (993 if tls else 143), unquote(parts.username), tls, folder
    )


def quote(name: str) -> str:
    """An IMAP quoted string."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(data: bytes) -> bytes:
    if data.startswith(b'"') and data.endswith(b'"'):
        return re.sub(rb"\\(.)", rb"\1", data[1:-1])
    return data


class IMAPSource:
    """A remote account's folders (see the module docstring).

    :param ca_file: trust these CAs instead of the system's.
    """

    def __init__(self, location: IMAPLocation, password: str, ca_file: str | None = None) -> None:
        self.location = location
        context = ssl.create_default_context(cafile=ca_file)
        if location.tls:
            self.conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                location.host, location.port, ssl_context=context, timeout=60
            )
        else:
            self.conn = imaplib.IMAP4(location.host, location.port, timeout=60)
            self.conn.starttls(context)
        self.conn.login(location.user, password)
        self._plan: list[tuple[str, str, list[tuple[int, frozenset[str], float | None, int]]]] = []

    def _folders(self) -> list[tuple[str, str]]:
        """``(local name, remote name)`` of every selectable folder."""
        if self.location.folder:
            return [(self.location.folder, mutf7.encode(self.location.folder))]
        typ, data = self.conn.list('""', "*")
        found = []
        for item in data:
            line = b" ".join(item) if isinstance(item, tuple) else item
            match = _LIST.match(line or b"")
            if match is None or b"\\noselect" in match.group("flags").lower():
                continue
            delimiter = (
                _unquote(match.group("delimiter")).decode() if match.group("delimiter") != b"NIL" else ""
            )
            remote = _unquote(match.group("name").strip()).decode("utf-8", "replace")
            local = mutf7.decode(remote)
            if delimiter and delimiter != names.DELIMITER:
                local = local.replace(delimiter, names.DELIMITER)
            found.append((names.INBOX if local.upper() == names.INBOX else local, remote))
        return found

    def totals(self) -> tuple[int, int]:
        self._plan = []
        for local, remote in self._folders():
            typ, _ = self.conn.select(quote(remote), readonly=True)
            if typ != "OK":
                continue
            typ, data = self.conn.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE)")
            found = []
            for item in data if typ == "OK" else []:
                line = item[0] if isinstance(item, tuple) else item
                if not line or not _FETCH_UID.search(line):
                    continue
                found.append(_metadata(line))
            self._plan.append((local, remote, sorted(found)))
        return (sum(len(m) for _, _, m in self._plan), sum(size for _, _, m in self._plan for *_, size in m))

    def messages(self) -> Iterator[SourceMessage]:
        for local, remote, found in self._plan:
            self.conn.select(quote(remote), readonly=True)
            for uid, flags, date, size in found:
                yield SourceMessage(local, flags, date, size, f"{remote} UID {uid}", self._reader(uid))

    def _reader(self, uid: int) -> Callable[[], bytes]:
        def read() -> bytes:
            typ, data = self.conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
            for item in data if typ == "OK" else []:
                if isinstance(item, tuple):
                    return bytes(item[1])
            raise OSError(f"the server did not send UID {uid}")

        return read

    def close(self) -> None:
        try:
            self.conn.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _metadata(line: bytes) -> tuple[int, frozenset[str], float | None, int]:
    uid = int(_FETCH_UID.search(line).group(1))  # type: ignore[union-attr]
    flags_match = _FETCH_FLAGS.search(line)
    flags = frozenset(
        f for f in (flags_match.group(1).decode().split() if flags_match else ()) if f.lower() != "\\recent"
    )
    size_match = _FETCH_SIZE.search(line)
    date_match = _FETCH_DATE.search(line)
    date = None
    if date_match:
        parsed = imaplib.Internaldate2tuple(date_match.group(0))
        date = time.mktime(parsed) if parsed else None
    return uid, flags, date, int(size_match.group(1)) if size_match else 0
