"""IndexSnapshot: a copy of a Maildir folder's index for a UID list rewrite.

Taken on the reactor thread (copies of the arrays, no strings), serialized
in the thread that writes the file.
"""

from __future__ import annotations

from array import array

from exchmail.store.maildir import uidlist
from exchmail.store.maildir.scan import decode_base


class IndexSnapshot:
    """What a rewritten UID list holds: its header, and for each message its
    UID, MODSEQ and base name (``blob[start:start + len]``)."""

    def __init__(
        self,
        header: uidlist.UidList,
        uids: array[int],
        modseqs: array[int],
        starts: array[int],
        lens: array[int],
        blob: bytes,
    ) -> None:
        self.header = header
        self.uids, self.modseqs = uids, modseqs
        self.starts, self.lens, self.blob = starts, lens, blob

    def serialize(self) -> bytes:
        blob = self.blob
        self.header.entries = [
            (uid, decode_base(blob[start : start + size]))
            for uid, start, size in zip(self.uids, self.starts, self.lens, strict=True)
        ]
        self.header.modseqs = {uid: m for uid, m in zip(self.uids, self.modseqs, strict=True) if m > 1}
        return self.header.serialize()
