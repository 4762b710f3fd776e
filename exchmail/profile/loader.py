"""Load a named profile, apply validated overrides, and describe the result.

Override keys (the ``[profile]`` table of the configuration file) may be

- ``"imap.<field>"`` or ``"pop3.<field>"``: one service's setting;
- ``"<field>"``: the field of whichever service has it, or of both when
  both have it (``exact_rfc822_size``, like Exchange's
  ``EnableExactRFC822Size``, exists on both services);
- the Exchange administration name of a setting, bare or prefixed
  (``"EnableExactRFC822Size"``, ``"pop3.MaxCommandSize"``);
- a nested mapping under ``"imap"`` or ``"pop3"`` (a ``[profile.imap]``
  TOML table), equivalent to prefixed keys.

Values are checked against the field's declared type; TOML's real booleans
and integers are required (``"true"`` or ``1`` is not a bool, ``True`` is
not an int).  Any problem raises :class:`~exchmail.errors.ConfigError`
with a one-line message naming the key, e.g.
``profile.max_command_size: expected an integer, got 'abc'``.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import typing
from collections.abc import Iterator, Mapping
from typing import Any

from exchmail.errors import ConfigError
from exchmail.profile.builtin import PROFILE_NAMES, PROFILES
from exchmail.profile.settings import SECTIONS, Profile

_PREFIX = "profile"


@functools.cache
def _hints(section: str) -> dict[str, Any]:
    return typing.get_type_hints(SECTIONS[section])


def _fields(section: str) -> Iterator[dataclasses.Field[Any]]:
    return iter(dataclasses.fields(SECTIONS[section]))


def _lookup(key: str) -> list[tuple[str, str]]:
    """Resolve an override key to ``(section, field name)`` pairs ([] if unknown)."""
    section, dot, name = key.partition(".")
    sections = [section] if dot else list(SECTIONS)
    if not dot:
        name = key
    elif section not in SECTIONS:
        return []
    found = []
    for sec in sections:
        for f in _fields(sec):
            # Admin names match without regard to case, as PowerShell's parameters do.
            admin = f.metadata["admin"]
            if name == f.name or (admin and name.lower() == admin.lower()):
                found.append((sec, f.name))
                break
    return found


#: Exchange administration names that are no profile setting here, by their
#: lower-case name, with the configuration key that does the same (the
#: ``unknown setting`` error points to it).  A name the profile knows is
#: never looked up here.
ELSEWHERE = {
    "x509certificatename": "the certificate is a file here: set [tls] certificate and "
    'private_key ([tls.sni."name"] for more host names)',
    "protocollogenabled": "set [logging] protocol_log = true (protocol_log_dir for the folder)",
    "protocollogpath": "set [logging] protocol_log_dir",
    "enablegssapiandntlmauth": "this build offers no GSSAPI or NTLM: the offered SASL "
    "mechanisms are imap.sasl_mechanisms and pop3.sasl_mechanisms",
    "unencryptedortlsbindings": "set [imap] listen / [pop3] listen (STARTTLS/STLS with [tls])",
    "sslbindings": "set [imap] tls_listen / [pop3] tls_listen (with [tls])",
    "internalconnectionsettings": "exchmail publishes no connection settings: see [imap] "
    "listen and tls_listen",
    "externalconnectionsettings": "exchmail publishes no connection settings: see [imap] "
    "listen and tls_listen",
}


def unknown_setting(key: str) -> str:
    """The ``unknown setting`` error for override ``key``, pointing to the configuration
    key that does the same when ``key`` is an Exchange name exchmail sets elsewhere."""
    bare = key.rpartition(".")[2].lower()
    hint = ELSEWHERE.get(bare)
    if hint is None:
        return f"{_PREFIX}.{key}: unknown setting"
    return f"{_PREFIX}.{key}: not a profile setting here; {hint}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_str_tuple(hint: Any) -> bool:
    return typing.get_origin(hint) is tuple and typing.get_args(hint) == (str, ...)


def coerce(key: str, hint: Any, value: Any, minimum: int | None = None) -> Any:
    """Check ``value`` against the type ``hint`` and return it in field form.

    ``key`` is used in the error message only.  Supports ``bool``, ``int``,
    ``str``, ``tuple[str, ...]`` (from a list or tuple of strings) and
    :class:`enum.Enum` subclasses (from a member name, any case, or value).
    """
    where = f"{_PREFIX}.{key}"
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_short(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_short(value)}")
        if minimum is not None and value < minimum:
            raise ConfigError(f"{where}: must be at least {minimum}, got {value}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_short(value)}")
        return value
    if _is_str_tuple(hint):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, got {_short(value)}")
        return tuple(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if isinstance(value, hint):
            return value
        for member in hint:
            if isinstance(value, str) and value.lower() == member.name.lower():
                return member
            if value == member.value and type(value) is type(member.value):
                return member
        choices = ", ".join(m.name.lower() for m in hint)
        raise ConfigError(f"{where}: expected one of {choices}, got {_short(value)}")
    raise ConfigError(f"{where}: settings of type {hint!r} cannot be overridden")


def _flatten(overrides: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, value in overrides.items():
        if not isinstance(key, str):
            raise ConfigError(f"{_PREFIX}.{key!r}: setting names must be strings")
        if key in SECTIONS and isinstance(value, Mapping):
            for sub, subvalue in value.items():
                yield f"{key}.{sub}", subvalue
        else:
            yield key, value


def load_profile(name: str, overrides: Mapping[str, Any] | None = None) -> Profile:
    """The built-in profile ``name`` with ``overrides`` applied.

    :raises ConfigError: for an unknown profile name, an unknown override
        key or a value of the wrong type; the message names the key.
    """
    try:
        profile = PROFILES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown profile {name!r} (choose {', '.join(PROFILE_NAMES)})") from None
    changes: dict[str, dict[str, Any]] = {section: {} for section in SECTIONS}
    for key, value in _flatten(overrides or {}):
        targets = _lookup(key)
        if not targets:
            raise ConfigError(unknown_setting(key))
        for section, field_name in targets:
            field = next(f for f in _fields(section) if f.name == field_name)
            hint = _hints(section)[field_name]
            changes[section][field_name] = coerce(key, hint, value, field.metadata["minimum"])
    return dataclasses.replace(
        profile,
        imap=dataclasses.replace(profile.imap, **changes["imap"]),
        pop3=dataclasses.replace(profile.pop3, **changes["pop3"]),
    )


def format_value(value: Any) -> str:
    """A value in TOML syntax, so that it can be pasted into ``[profile]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return json.dumps(value.name.lower())
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def describe(profile: Profile) -> str:
    """A human-readable table of every setting of ``profile``.

    One row per setting: its override key, its value (in TOML syntax), the
    statement IDs it decides, the Exchange administration name and what it
    does.  Values that differ from the built-in profile of the same name
    are marked with ``*``.
    """
    base = PROFILES.get(profile.name)
    header = ("setting", "value", "statements", "admin", "description")
    rows: list[tuple[str, ...]] = []
    for section in SECTIONS:
        settings = getattr(profile, section)
        for f in dataclasses.fields(settings):
            value = getattr(settings, f.name)
            changed = base is not None and getattr(getattr(base, section), f.name) != value
            rows.append(
                (
                    f"{section}.{f.name}",
                    format_value(value) + (" *" if changed else ""),
                    ", ".join(f.metadata["ids"]) or "-",
                    f.metadata["admin"] or "-",
                    f.metadata["doc"],
                )
            )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = [
        f"profile {profile.name}" + (" (* = overridden)" if any(r[1].endswith(" *") for r in rows) else "")
    ]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"
