"""The ``[lmtp]`` table: where LMTP listens and how recipients are delivered.

See ``examples/exchmail.toml``::

    [lmtp]
    listen = ["unix:/run/exchmail/lmtp:mode=660", "tcp:24:interface=127.0.0.1"]
    hostname = "mail.example.org"   # in the greeting and the Received: header
    domains = ["example.org"]       # accepted recipient domains (default: any)
    recipient_delimiter = "+"       # alice+lists@... -> folder "lists" ("" turns it off)
    detail_folder = "existing"      # "existing" | "create" | "off"
    over_quota = 552                # 552 (permanent, as Exchange) or 452 (temporary)
    max_message_size = 104857600    # octets (SIZE); larger messages get 552
    max_recipients = 1000           # per transaction; further RCPTs get 452
    timeout = 600                   # seconds of client silence before 421

Kept apart from :mod:`exchmail.lmtp.server` so that reading a configuration
never imports the protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exchmail.errors import ConfigError

#: ``[lmtp] detail_folder`` values: deliver ``user+detail`` into the folder
#: ``detail`` if it exists (else INBOX), create it if needed, or ignore details.
DETAIL_MODES = ("existing", "create", "off")
#: ``[lmtp] over_quota`` values: Exchange's permanent 552 or a temporary 452.
OVER_QUOTA_CODES = (552, 452)
DEFAULT_MAX_MESSAGE_SIZE = 100 * 1024 * 1024
KEYS = (
    "listen",
    "hostname",
    "domains",
    "recipient_delimiter",
    "detail_folder",
    "over_quota",
    "max_message_size",
    "max_recipients",
    "timeout",
)


@dataclass(frozen=True)
class LMTPSettings:
    """The ``[lmtp]`` table (no listener by default: LMTP is off).

    :ivar listen: Twisted server endpoint strings (``unix:PATH``, ``tcp:PORT``).
    :ivar hostname: the name in the greeting and ``Received:`` ("": the host's name).
    :ivar domains: recipient domains accepted (lower case); empty: any domain.
    :ivar recipient_delimiter: separates the user from the detail ("": no details).
    :ivar detail_folder: one of :data:`DETAIL_MODES`.
    :ivar over_quota: the reply code for a recipient over quota (552 or 452).
    :ivar max_message_size: the largest message accepted, in octets.
    :ivar max_recipients: the most recipients of one transaction.
    :ivar timeout: seconds a client may stay silent.
    """

    listen: tuple[str, ...] = ()
    hostname: str = ""
    domains: tuple[str, ...] = ()
    recipient_delimiter: str = "+"
    detail_folder: str = "existing"
    over_quota: int = 552
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_recipients: int = 1000
    timeout: float = 600.0


def _integer(table: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"lmtp.{key}: expected an integer from {low} to {high}, got {value!r}")
    return value


def _text(table: Mapping[str, Any], key: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"lmtp.{key}: expected a string, got {value!r}")
    return value


def parse_lmtp_table(table: Mapping[str, Any], listen: tuple[str, ...]) -> LMTPSettings:
    """The :class:`LMTPSettings` of an ``[lmtp]`` table whose ``listen`` strings
    the caller has checked already.

    :raises ConfigError: naming the key.
    """
    for key in table:
        if key not in KEYS:
            raise ConfigError(f"lmtp.{key}: unknown key")
    domains = table.get("domains", [])
    if not isinstance(domains, list) or not all(isinstance(d, str) and d for d in domains):
        raise ConfigError(f"lmtp.domains: expected a list of domain names, got {domains!r}")
    delimiter = _text(table, "recipient_delimiter", "+")
    if len(delimiter) > 1 or delimiter in ("@", '"', "\\", " "):
        raise ConfigError(
            f"lmtp.recipient_delimiter: expected one character other than "
            f'@, quote, backslash and space (or ""), got {delimiter!r}'
        )
    detail = _text(table, "detail_folder", "existing")
    if detail not in DETAIL_MODES:
        raise ConfigError(f"lmtp.detail_folder: unknown mode {detail!r} (choose {', '.join(DETAIL_MODES)})")
    over_quota = table.get("over_quota", 552)
    if over_quota not in OVER_QUOTA_CODES or isinstance(over_quota, bool):
        raise ConfigError(f"lmtp.over_quota: expected 552 or 452, got {over_quota!r}")
    timeout = table.get("timeout", 600)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"lmtp.timeout: expected a positive number of seconds, got {timeout!r}")
    return LMTPSettings(
        listen=listen,
        hostname=_text(table, "hostname", ""),
        domains=tuple(d.lower() for d in domains),
        recipient_delimiter=delimiter,
        detail_folder=detail,
        over_quota=over_quota,
        max_message_size=_integer(table, "max_message_size", DEFAULT_MAX_MESSAGE_SIZE, 1024, 2**40),
        max_recipients=_integer(table, "max_recipients", 1000, 1, 100_000),
        timeout=float(timeout),
    )
