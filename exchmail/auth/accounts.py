"""The accounts file: salted password hashes, and a checker that reads them.

One account per line::

    name:$scrypt$n=16384,r=8,p=1$<salt>$<hash>[:<extra>...]

``<salt>`` and ``<hash>`` are base64 (written without padding; read with
or without).  ``$pbkdf2-sha256$i=<iterations>$<salt>$<hash>`` hashes are
accepted for verification too.  Lines that are blank or start with ``#``
are ignored and kept on rewrite, as are extra ``:``-separated fields after
the hash.  One such field holds the account's SCRAM-SHA-256 keys
(``$scram-sha-256$i=<iterations>$<salt>$<StoredKey>$<ServerKey>``, see
:mod:`exchmail.auth.sasl`); :meth:`AccountsFile.add` and
:meth:`~AccountsFile.set_password` write it, so accounts created before it
existed can use SCRAM once their password is set again.  With NTLM
configured, another field holds the NT hash (``$nt$<hex>``, see
:mod:`exchmail.auth.ntlm`): it is password-equivalent, so it is written
only when asked for (``nt_hash=True``) and dropped at every other change of
the password.

User names are those of :func:`exchmail.store.names.check_user_name` and
are matched case-insensitively, as Exchange matches them; the spelling in
the file is the canonical one.  Rewrites are atomic (temporary file in the
same folder, fsync, rename) and the file is created with mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from exchmail.auth.sasl import SCRAMKeys, scram_keys
from exchmail.errors import AccountError
from exchmail.store.names import check_user_name

SCRYPT_N, SCRYPT_R, SCRYPT_P = 16384, 8, 1
SALT_BYTES = 16
HASH_BYTES = 32
_MAX_SCRYPT_MEMORY = 256 * 1024 * 1024
_MAX_PBKDF2_ITERATIONS = 10_000_000

#: The user created by :func:`ensure_first_account`.
FIRST_USER = "newcomer"

#: A hash that matches no password, verified for unknown users so that a
#: failed login takes as long whether or not the user exists.
DUMMY_HASH = "$scrypt$n=16384,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    text = text.replace(".", "+")  # passlib's "adapted base64"
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def hash_password(password: str) -> str:
    """A new salted scrypt hash of ``password`` in the accounts-file format."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=HASH_BYTES
    )
    return f"$scrypt$n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}${_b64encode(salt)}${_b64encode(digest)}"


def _params(text: str) -> dict[str, int]:
    params = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        params[key] = int(value)
    return params


def _compute(password: bytes, encoded: str) -> tuple[bytes, bytes]:
    """The (computed, expected) digests for ``encoded``; ValueError if malformed."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0]:
        raise ValueError("not a $scheme$params$salt$hash string")
    scheme, params, salt, expected = parts[1], _params(parts[2]), _b64decode(parts[3]), _b64decode(parts[4])
    if not expected:
        raise ValueError("empty hash")
    if scheme == "scrypt":
        n, r, p = params["n"], params["r"], params["p"]
        if 128 * n * r * p > _MAX_SCRYPT_MEMORY:
            raise ValueError("scrypt parameters too large")
        return hashlib.scrypt(
            password, salt=salt, n=n, r=r, p=p, dklen=len(expected), maxmem=_MAX_SCRYPT_MEMORY + 1024 * 1024
        ), expected
    if scheme == "pbkdf2-sha256":
        iterations = params["i"]
        if not 0 < iterations <= _MAX_PBKDF2_ITERATIONS:
            raise ValueError("bad iteration count")
        return hashlib.pbkdf2_hmac("sha256", password, salt, iterations, dklen=len(expected)), expected
    raise ValueError(f"unknown scheme {scheme!r}")


def verify_password(password: str | bytes, encoded: str) -> bool:
    """Whether ``password`` matches the ``encoded`` hash (False if malformed).

    ``bytes`` passwords are used as they are; ``str`` ones are UTF-8 encoded.
    """
    if isinstance(password, str):
        password = password.encode("utf-8")
    try:
        computed, expected = _compute(password, encoded)
    except (ValueError, KeyError, TypeError, binascii.Error, MemoryError):
        return False
    return hmac.compare_digest(computed, expected)


@dataclass
class _Account:
    name: str
    encoded: str
    extra: tuple[str, ...] = ()

    def line(self) -> str:
        return ":".join((self.name, self.encoded, *self.extra))

    def scram(self) -> SCRAMKeys | None:
        for field in self.extra:
            if field.startswith(_SCRAM_PREFIX):
                try:
                    return SCRAMKeys.decode(field)
                except ValueError:
                    return None
        return None

    def nt_hash(self) -> bytes | None:
        for field in self.extra:
            if field.startswith(_NT_PREFIX):
                try:
                    value = bytes.fromhex(field[len(_NT_PREFIX) :])
                except ValueError:
                    return None
                return value if len(value) == 16 else None
        return None

    def set_secret(self, password: str, nt_hash: bool = False) -> None:
        """Hash ``password`` and replace the SCRAM keys (dropped if SASLprep refuses it)
        and the NT hash (written only with ``nt_hash``)."""
        self.encoded = hash_password(password)
        extra = [f for f in self.extra if not f.startswith((_SCRAM_PREFIX, _NT_PREFIX))]
        try:
            extra.insert(0, scram_keys(password).encode())
        except ValueError:
            pass  # SASLprep prohibits the password: no SCRAM for this account
        if nt_hash:
            from exchmail.auth.ntlm import nt_hash as compute_nt_hash

            try:
                extra.append(_NT_PREFIX + compute_nt_hash(password).hex())
            except ImportError:
                raise AccountError(
                    "NT hashes need the pyspnego package (pip install 'exchmail[ntlm]')"
                ) from None
        self.extra = tuple(extra)


_SCRAM_PREFIX = "$scram-sha-256$"
_NT_PREFIX = "$nt$"


class AccountsFile:
    """The accounts file at ``path``; a missing file holds no accounts.

    Every change re-reads the file first and then rewrites it atomically,
    so separate processes (the CLI, a running server) see each other's
    complete versions.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lines: list[str | _Account] = []
        self._index: dict[str, _Account] = {}  # folded name -> account

    def load(self) -> None:
        """(Re-)read the file.  :raises AccountError: if it cannot be read or parsed."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise AccountError(f"cannot read accounts file {self.path}: {reason}") from None
        lines: list[str | _Account] = []
        seen: set[str] = set()
        for number, raw in enumerate(text.splitlines(), 1):
            if not raw.strip() or raw.lstrip().startswith("#"):
                lines.append(raw)
                continue
            name, *fields = raw.split(":")
            if not fields or not fields[0].startswith("$"):
                raise AccountError(f"{self.path}:{number}: expected 'name:$scheme$...'")
            if name.lower() in seen:
                raise AccountError(f"{self.path}:{number}: duplicate user {name!r}")
            seen.add(name.lower())
            lines.append(_Account(name, fields[0], tuple(fields[1:])))
        self._lines = lines
        self._reindex()

    def _reindex(self) -> None:
        self._index = {a.name.lower(): a for a in self._accounts()}

    def _accounts(self) -> list[_Account]:
        return [line for line in self._lines if isinstance(line, _Account)]

    def _find(self, name: str) -> _Account | None:
        return self._index.get(name.lower())

    def lines_by_user(self) -> dict[str, str]:
        """Folded user name -> the account's whole line (hash, SCRAM keys, extras)."""
        return {folded: account.line() for folded, account in self._index.items()}

    def users(self) -> list[str]:
        """The user names, in file order (as last loaded or written)."""
        return [a.name for a in self._accounts()]

    def exists(self, name: str) -> bool:
        """Whether ``name`` (any case) has an account (as last loaded or written)."""
        return self._find(name) is not None

    def canonical_name(self, name: str) -> str | None:
        """The spelling of ``name`` in the file, or ``None`` if it has no account."""
        account = self._find(name)
        return account.name if account else None

    def password_hash(self, name: str) -> str | None:
        """The encoded hash of ``name``, or ``None`` if it has no account."""
        account = self._find(name)
        return account.encoded if account else None

    def scram_keys(self, name: str) -> SCRAMKeys | None:
        """The SCRAM-SHA-256 keys of ``name``, or ``None`` (unknown user, or no keys)."""
        account = self._find(name)
        return account.scram() if account else None

    def nt_hash(self, name: str) -> bytes | None:
        """The NT hash of ``name``, or ``None`` (unknown user, or none stored)."""
        account = self._find(name)
        return account.nt_hash() if account else None

    def add(self, name: str, password: str, nt_hash: bool = False) -> None:
        """Add an account (with its NT hash if ``nt_hash``, for NTLM).

        :raises AccountError: if ``name`` exists (any case).
        :raises InvalidUserName: if ``name`` is not a safe user name.
        """
        check_user_name(name)
        self.load()
        if self._find(name):
            raise AccountError(f"user {name!r} already exists")
        account = _Account(name, "")
        account.set_secret(password, nt_hash)
        self._lines.append(account)
        self._reindex()
        self._write()

    def set_password(self, name: str, password: str, nt_hash: bool = False) -> None:
        """Replace the password of ``name`` (and its NT hash, kept only if
        ``nt_hash``).  :raises AccountError: if unknown."""
        self.load()
        account = self._find(name)
        if account is None:
            raise AccountError(f"no such user {name!r}")
        account.set_secret(password, nt_hash)
        self._write()

    def remove(self, name: str) -> None:
        """Delete the account of ``name``.  :raises AccountError: if unknown."""
        self.load()
        account = self._find(name)
        if account is None:
            raise AccountError(f"no such user {name!r}")
        self._lines.remove(account)
        self._reindex()
        self._write()

    def _write(self) -> None:
        text = "".join((line.line() if isinstance(line, _Account) else line) + "\n" for line in self._lines)
        folder = self.path.parent
        tmp = folder / f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            _fsync_dir(folder)
        except OSError as e:
            raise AccountError(f"cannot write accounts file {self.path}: {e.strerror or e}") from None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def ensure_first_account(path: Path) -> tuple[str, str] | None:
    """Create the account ``newcomer`` with a random password if there is none.

    :return: ``(name, password)`` if an account was created (the caller
        shows it once), else ``None``.
    :raises AccountError: if the file cannot be read or written.
    """
    accounts = AccountsFile(path)
    accounts.load()
    if accounts.users():
        return None
    password = secrets.token_urlsafe(12)
    accounts.add(FIRST_USER, password)
    return FIRST_USER, password
