"""The special uses clients gave a user's folders (RFC 6154 CREATE-SPECIAL-USE).

One small text file per maildir, ``exchmail-special-use``: a line per
folder, ``name<TAB>\\Use[ \\Use...]``, written atomically.  Run in a thread.
"""

from __future__ import annotations

from pathlib import Path

from exchmail.errors import InvalidMailboxName
from exchmail.store import names
from exchmail.store.maildir import layout

FILENAME = "exchmail-special-use"
MAX_SIZE = 1 << 20


def read(user: Path) -> dict[str, frozenset[str]]:
    """``{name: uses}``; hand-edited garbage is ignored."""
    try:
        with open(user / FILENAME, "rb") as source:
            text = source.read(MAX_SIZE).decode("utf-8", "replace")
    except FileNotFoundError:
        return {}
    found = {}
    for line in text.splitlines():
        name, _, uses = line.partition("\t")
        try:
            name = names.normalize_mailbox(name)
        except InvalidMailboxName:
            continue
        attributes = frozenset(use for use in uses.split() if use.startswith("\\"))
        if attributes:
            found[name] = attributes
    return found


def write(user: Path, uses: dict[str, frozenset[str]]) -> None:
    text = "".join(f"{name}\t{' '.join(sorted(attrs))}\n" for name, attrs in sorted(uses.items()) if attrs)
    layout.atomic_write(user / FILENAME, text.encode("utf-8"))


def renamed(uses: dict[str, frozenset[str]], old: str, new: str) -> dict[str, frozenset[str]]:
    """``uses`` after ``old`` (and its inferiors) became ``new``."""
    out = {}
    for name, attrs in uses.items():
        if name == old or names.is_inferior(name, old):
            name = new + name[len(old) :]
        out[name] = attrs
    return out
