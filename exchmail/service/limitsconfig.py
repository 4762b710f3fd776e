"""The limits tables of the configuration: ``[quota]``, ``[retention]`` and ``[throttle]``.

::

    [quota]
    limit = 104857600          # octets per account; 0 = none (MS-STANXPOP3 E0003-E0005)
    warning = 94371840
    [quota.users.alice]
    limit = 0

    [retention]
    interval = 3600            # seconds between runs
    [retention.folders]
    "Deleted Items" = 30       # largest age in days

    [throttle]
    window = 300               # the budgets of exchmail.auth.throttle

Each parser takes its table and returns a frozen value, or raises
:class:`~exchmail.errors.ConfigError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from exchmail.auth.throttle import ThrottleSettings
from exchmail.errors import ConfigError

#: ``[throttle]`` keys of earlier versions, and what to use instead.
REMOVED_THROTTLE_KEYS = {
    "account_block_after": "accounts are no longer blocked from everywhere (anyone could "
    "lock anyone out); use pair_block_after (per account and address) "
    "and account_delay_after",
}

#: The keys of each table this module reads.
KEYS: dict[str, tuple[str, ...]] = {
    "quota": ("limit", "warning", "users"),
    "retention": ("interval", "folders"),
    "throttle": (*(f.name for f in fields(ThrottleSettings)), *REMOVED_THROTTLE_KEYS),
}


@dataclass(frozen=True)
class QuotaConfig:
    """The ``[quota]`` table: storage limits in octets per account (0: none).

    ``users`` maps a user name to its own ``(limit, warning)``.
    """

    limit: int = 0
    warning: int = 0
    users: Mapping[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class RetentionConfig:
    """The ``[retention]`` table: folder name -> largest age in days; run every ``interval`` s."""

    interval: float = 3600.0
    folders: Mapping[str, float] = field(default_factory=dict)


def _octets(table: Mapping[str, Any], where: str, key: str, default: int) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}.{key}: expected a number of octets (0 or more), got {value!r}")
    return value


def parse_quota_table(table: Mapping[str, Any]) -> QuotaConfig:
    """The :class:`QuotaConfig` of a ``[quota]`` table."""
    limit = _octets(table, "quota", "limit", 0)
    warning = _octets(table, "quota", "warning", 0)
    users_table = table.get("users", {})
    if not isinstance(users_table, Mapping):
        raise ConfigError(f"quota.users: expected a table, got {users_table!r}")
    users: dict[str, tuple[int, int]] = {}
    for user, entry in users_table.items():
        where = f"quota.users.{user}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: expected a table with limit/warning, got {entry!r}")
        for key in entry:
            if key not in ("limit", "warning"):
                raise ConfigError(f"{where}.{key}: unknown key")
        users[user] = (
            _octets(entry, where, "limit", limit),
            _octets(entry, where, "warning", warning),
        )
    return QuotaConfig(limit=limit, warning=warning, users=users)


def parse_retention_table(table: Mapping[str, Any]) -> RetentionConfig:
    """The :class:`RetentionConfig` of a ``[retention]`` table."""
    interval = table.get("interval", 3600)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
        raise ConfigError(f"retention.interval: expected a positive number of seconds, got {interval!r}")
    folders_table = table.get("folders", {})
    if not isinstance(folders_table, Mapping):
        raise ConfigError(f"retention.folders: expected a table, got {folders_table!r}")
    folders: dict[str, float] = {}
    for folder, days in folders_table.items():
        if isinstance(days, bool) or not isinstance(days, (int, float)) or days <= 0:
            raise ConfigError(f"retention.folders.{folder}: expected a positive number of days, got {days!r}")
        folders[folder] = float(days)
    return RetentionConfig(interval=float(interval), folders=folders)


def _throttle_value(name: str, kind: object, value: object) -> Any:
    where = f"throttle.{name}"
    if kind in (bool, "bool"):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind in (int, "int"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where}: expected a count (0 or more), got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{where}: expected a number of seconds (0 or more), got {value!r}")
    return float(value)


def parse_throttle_table(table: Mapping[str, Any]) -> ThrottleSettings:
    """``[throttle]``: the failed-login budgets of :mod:`exchmail.auth.throttle`."""
    for key, instead in REMOVED_THROTTLE_KEYS.items():
        if key in table:
            raise ConfigError(f"throttle.{key}: no longer supported: {instead}")
    values = {
        f.name: _throttle_value(f.name, f.type, table[f.name])
        for f in fields(ThrottleSettings)
        if f.name in table
    }
    settings = ThrottleSettings(**values)
    if settings.window <= 0:
        raise ConfigError(f"throttle.window: must be positive, got {settings.window!r}")
    return settings
