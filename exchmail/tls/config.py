"""The ``[tls]`` table: certificate files, protocol versions, ciphers and SNI.

See ``examples/exchmail.toml``::

    [tls]
    certificate = "cert.pem"        # PEM: the server certificate (may be followed by its chain)
    private_key = "key.pem"         # PEM: its private key (not encrypted)
    chain = "chain.pem"             # optional PEM: intermediate certificates
    min_version = "TLSv1.2"         # "TLSv1", "TLSv1.1", "TLSv1.2" or "TLSv1.3"
    ciphers = "ECDHE+AESGCM:..."    # OpenSSL cipher string for TLS 1.2 and older
    self_signed = "localhost"       # make a self-signed pair for this name if both are missing
    [tls.sni."mail.example.org"]    # another certificate for clients asking for this name
    certificate = "mail.pem"
    private_key = "mail.key"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from OpenSSL import SSL

from exchmail.errors import ConfigError

#: ``[tls] min_version`` values and their OpenSSL protocol versions.
TLS_VERSIONS: Mapping[str, int] = {
    "TLSv1": SSL.TLS1_VERSION,
    "TLSv1.1": SSL.TLS1_1_VERSION,
    "TLSv1.2": SSL.TLS1_2_VERSION,
    "TLSv1.3": SSL.TLS1_3_VERSION,
}
DEFAULT_MIN_VERSION = "TLSv1.2"
#: TLS 1.2: forward secrecy (ECDHE) and AEAD ciphers only; TLS 1.3 suites are
#: OpenSSL's own (all of them are both).
DEFAULT_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
#: The default when ``min_version`` lets TLS 1.0/1.1 in: those versions have no
#: AEAD suites, so ECDHE with CBC is added for them (still forward secret).
LEGACY_CIPHERS = DEFAULT_CIPHERS + ":ECDHE+AES"
#: Appended to every cipher string: these are never offered, whatever the configuration.
NEVER = ":!aNULL:!eNULL:!RC4:!EXP:!LOW"
_KEYS = ("certificate", "private_key", "chain", "min_version", "ciphers", "sni", "self_signed")
_SNI_KEYS = ("certificate", "private_key", "chain")


@dataclass(frozen=True)
class TLSIdentity:
    """One certificate with its private key and optional chain file."""

    certificate: Path
    private_key: Path
    chain: Path | None = None


@dataclass(frozen=True)
class TLSConfig:
    """The ``[tls]`` table.

    ``sni`` maps a server name (lower case; ``*.example.org`` matches one
    label) to the identity offered to clients that ask for it.
    ``self_signed`` (the newcomer set-up, or the ``self_signed`` key): create
    a self-signed certificate for that host name when the files do not
    exist yet.
    """

    identity: TLSIdentity
    min_version: str = DEFAULT_MIN_VERSION
    ciphers: str = DEFAULT_CIPHERS
    sni: Mapping[str, TLSIdentity] = field(default_factory=dict)
    self_signed: str | None = None


# -- configuration ------------------------------------------------------------------


def _path(table: Mapping[str, Any], where: str, key: str, base: Path, required: bool) -> Path | None:
    if key not in table:
        if required:
            raise ConfigError(f"{where}.{key}: required (a PEM file)")
        return None
    value = table[key]
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}.{key}: expected a file name, got {value!r}")
    return base / Path(value).expanduser()


def _identity(table: Mapping[str, Any], where: str, base: Path) -> TLSIdentity:
    certificate = _path(table, where, "certificate", base, True)
    private_key = _path(table, where, "private_key", base, True)
    assert certificate is not None and private_key is not None
    return TLSIdentity(certificate, private_key, _path(table, where, "chain", base, False))


def parse_tls_table(table: Mapping[str, Any], base: Path) -> TLSConfig:
    """The :class:`TLSConfig` of a ``[tls]`` table; paths relative to ``base``.

    Only the table's shape is checked here; the files are read by
    :class:`ServerTLS` when the service is made.
    """
    for key in table:
        if key not in _KEYS:
            raise ConfigError(f"tls.{key}: unknown key")
    identity = _identity(table, "tls", base)
    min_version = table.get("min_version", DEFAULT_MIN_VERSION)
    if min_version not in TLS_VERSIONS:
        raise ConfigError(
            f"tls.min_version: unknown version {min_version!r} (choose {', '.join(TLS_VERSIONS)})"
        )
    modern = TLS_VERSIONS[min_version] >= SSL.TLS1_2_VERSION
    ciphers = table.get("ciphers", DEFAULT_CIPHERS if modern else LEGACY_CIPHERS)
    if not isinstance(ciphers, str) or not ciphers:
        raise ConfigError(f"tls.ciphers: expected an OpenSSL cipher string, got {ciphers!r}")
    self_signed = table.get("self_signed")
    if self_signed is not None and (not isinstance(self_signed, str) or not self_signed):
        raise ConfigError(f"tls.self_signed: expected a host name, got {self_signed!r}")
    sni_table = table.get("sni", {})
    if not isinstance(sni_table, Mapping):
        raise ConfigError(f"tls.sni: expected a table of server names, got {sni_table!r}")
    sni: dict[str, TLSIdentity] = {}
    for name, entry in sni_table.items():
        where = f'tls.sni."{name}"'
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where}: expected a table with certificate and private_key")
        for key in entry:
            if key not in _SNI_KEYS:
                raise ConfigError(f"{where}.{key}: unknown key")
        sni[name.lower().rstrip(".")] = _identity(entry, where, base)
    return TLSConfig(
        identity=identity, min_version=min_version, ciphers=ciphers, sni=sni, self_signed=self_signed
    )


def newcomer_tls(data_dir: Path) -> TLSConfig:
    """The newcomer's TLS: a self-signed certificate for localhost in ``<data_dir>/tls``."""
    folder = Path(data_dir) / "tls"
    return TLSConfig(identity=TLSIdentity(folder / "cert.pem", folder / "key.pem"), self_signed="localhost")
