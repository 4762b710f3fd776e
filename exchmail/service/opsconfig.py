"""The operations tables of the configuration: ``[metrics]`` and ``[logging]``.

::

    [metrics]
    listen = ["tcp:9143:interface=127.0.0.1"]   # Prometheus /metrics and /healthz; [] = off
    health_timeout = 10                          # seconds a /healthz check may take

    [logging]
    protocol_log = false  # Exchange's ProtocolLogEnabled; files in protocol_log_dir
    format = "text"       # or "json": one JSON object per line (twistd's main log)
    access = true         # session start/end and login lines (exchmail.session.access)

Parsing only: reading these tables imports neither ``prometheus_client``
nor ``twisted.web``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchmail.errors import ConfigError

#: The keys of ``[metrics]``.
METRICS_KEYS = ("listen", "health_timeout")
#: ``[logging] format`` values.
LOG_FORMATS = ("text", "json")
#: The keys of ``[logging]``.
LOGGING_KEYS = ("protocol_log", "protocol_log_dir", "format", "access")
#: ``[auth] password_min_length`` when not given: ``exchmail user add/passwd``
#: refuse shorter passwords.
DEFAULT_PASSWORD_MIN_LENGTH = 8


@dataclass(frozen=True)
class MetricsConfig:
    """The ``[metrics]`` table: no listener (the default) means no metrics at all."""

    listen: tuple[str, ...] = ()
    health_timeout: float = 10.0


def parse_metrics_table(table: Mapping[str, Any], check_endpoint: Any) -> MetricsConfig:
    """The :class:`MetricsConfig` of a ``[metrics]`` table.

    :param check_endpoint: ``check_endpoint(where, description)`` raises
        :class:`ConfigError` for an unusable endpoint string.
    """
    for key in table:
        if key not in METRICS_KEYS:
            raise ConfigError(f"metrics.{key}: unknown key")
    listen = table.get("listen", [])
    if isinstance(listen, str):
        listen = [listen]
    if not isinstance(listen, list) or not all(isinstance(v, str) for v in listen):
        raise ConfigError(f"metrics.listen: expected a list of endpoint strings, got {listen!r}")
    for i, description in enumerate(listen):
        check_endpoint(f"metrics.listen[{i}]", description)
    timeout = table.get("health_timeout", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ConfigError(f"metrics.health_timeout: expected a positive number of seconds, got {timeout!r}")
    return MetricsConfig(listen=tuple(listen), health_timeout=float(timeout))


@dataclass(frozen=True)
class LoggingConfig:
    """The ``[logging]`` table: protocol logs (Exchange's ProtocolLogEnabled), off by default.

    ``protocol_log_dir`` ``None`` means ``<data_dir>/protocol-logs``.
    """

    protocol_log: bool = False
    protocol_log_dir: Path | None = None
    #: The main log's format under twistd: "text" or "json" (JSON lines).
    format: str = "text"
    #: Session start/end and login lines in the main log (the access log).
    access: bool = True


def parse_logging_table(table: Mapping[str, Any], protocol_log_dir: Path | None) -> LoggingConfig:
    """The :class:`LoggingConfig` of a ``[logging]`` table.

    ``protocol_log_dir`` is the table's ``protocol_log_dir`` already resolved
    against the configuration file's folder (or ``None``).
    """
    enabled = table.get("protocol_log", False)
    if not isinstance(enabled, bool):
        raise ConfigError(f"logging.protocol_log: expected true or false, got {enabled!r}")
    log_format = table.get("format", "text")
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"logging.format: unknown format {log_format!r} (choose {', '.join(LOG_FORMATS)})")
    access = table.get("access", True)
    if not isinstance(access, bool):
        raise ConfigError(f"logging.access: expected true or false, got {access!r}")
    return LoggingConfig(
        protocol_log=enabled, protocol_log_dir=protocol_log_dir, format=log_format, access=access
    )


def parse_password_min_length(table: Mapping[str, Any]) -> int:
    """``[auth] password_min_length`` (0 turns the floor off)."""
    value = table.get("password_min_length", DEFAULT_PASSWORD_MIN_LENGTH)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1024:
        raise ConfigError(f"auth.password_min_length: expected an integer from 0 to 1024, got {value!r}")
    return value
