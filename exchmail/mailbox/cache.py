"""MessageCache: per-message data computed from content, bounded in memory.

Content never changes for a UID (RFC 3501 §2.3.1.1), so what is computed
from it -- a rendered BODYSTRUCTURE, an ENVELOPE, the header values SEARCH
and SORT compare -- can be kept and shared by every session.  Entries are
keyed by ``(account, mailbox name, UIDVALIDITY, UID, item)`` and evicted
least recently used first once their estimated size passes the budget.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

#: The default budget: enough for the structure of ~100,000 messages.
DEFAULT_BUDGET = 64 * 1024 * 1024
_OVERHEAD = 120  # dict slot, key tuple and entry bookkeeping, roughly


class MessageCache:
    """A least-recently-used map with a size budget in octets.

    Values are sized with ``len()`` when they have one (bytes, str) and
    counted as :data:`_OVERHEAD` otherwise; callers may pass ``size``.
    Only the reactor thread uses it.
    """

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self.used = 0
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> Any:
        """The value of ``key``, or None (and it becomes the most recently used)."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: Hashable, value: Any, size: int | None = None) -> None:
        """Keep ``value`` for ``key`` (values larger than a tenth of the budget are not kept)."""
        if size is None:
            size = len(value) if hasattr(value, "__len__") else 0
        size += _OVERHEAD
        if size > self.budget // 10:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.used -= old[1]
        self._entries[key] = (value, size)
        self.used += size
        while self.used > self.budget and self._entries:
            _, (_, freed) = self._entries.popitem(last=False)
            self.used -= freed

    def __len__(self) -> int:
        return len(self._entries)
