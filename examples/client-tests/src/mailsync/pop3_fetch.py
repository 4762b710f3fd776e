"""Download a POP3 maildrop and delete what was downloaded: the other client under test.

Messages are known by their UIDL, so a download that was cut short (the
connection dropped in the middle of RETR; POP3 deletes nothing unless the
session ends with QUIT) is simply done again without keeping duplicates.
"""

from __future__ import annotations

import poplib
import ssl
from dataclasses import dataclass, field

from mailsync.imap_sync import Account


@dataclass
class FetchReport:
    """What :func:`fetch_all` did and met."""

    downloaded: dict[str, bytes] = field(default_factory=dict)  # UIDL -> message
    errors: list[str] = field(default_factory=list)
    attempts: int = 0


def _connect(account: Account) -> poplib.POP3:
    context = ssl.create_default_context(cafile=account.ca_file) if account.tls != "none" else None
    if account.tls == "implicit":
        client: poplib.POP3 = poplib.POP3_SSL(
            account.host, account.port, context=context, timeout=account.timeout
        )
    else:
        client = poplib.POP3(account.host, account.port, timeout=account.timeout)
        if account.tls == "starttls":
            client.stls(context)
    client.user(account.user)
    client.pass_(account.password)
    return client


def _describe(error: Exception) -> str:
    if isinstance(error, poplib.error_proto):
        reply = error.args[0] if error.args else ""
        # poplib reports the server's -ERR line as bytes, a closed connection as text
        return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else f"lost: {reply}"
    return f"lost: {error}"


def fetch_all(
    account: Account, known: dict[str, bytes] | None = None, retries: int = 2, delete: bool = True
) -> FetchReport:
    """Download every message not in ``known`` (by UIDL), then delete all and QUIT."""
    report = FetchReport(downloaded=dict(known or {}))
    for _ in range(retries + 1):
        report.attempts += 1
        try:
            _fetch_once(account, report, delete)
            return report
        except (poplib.error_proto, OSError) as error:
            report.errors.append(_describe(error))
    return report


def _fetch_once(account: Account, report: FetchReport, delete: bool) -> None:
    client = _connect(account)
    try:
        _, listing, _ = client.uidl()
        for entry in listing:
            number, uidl = entry.decode("ascii").split()
            if uidl not in report.downloaded:
                _, lines, _ = client.retr(int(number))
                report.downloaded[uidl] = b"\r\n".join(lines) + b"\r\n"
            if delete:
                client.dele(int(number))
        client.quit()
    except BaseException:
        client.close()
        raise
