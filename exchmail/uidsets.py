"""Compact UID sets as text: ``1:3,7`` for [1, 2, 3, 7].

One spelling serves IMAP responses (APPENDUID, COPYUID, ESEARCH, [MODIFIED])
and the MODSEQ lines of the Maildir store's UID list.
"""

from __future__ import annotations

from collections.abc import Iterable


def format_uid_set(uids: Iterable[int]) -> str:
    """``1:3,7`` for ascending [1, 2, 3, 7]."""
    ranges: list[list[int]] = []
    for uid in uids:
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1][1] = uid
        else:
            ranges.append([uid, uid])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in ranges)


def parse_uid_set(text: str) -> list[int]:
    """The UIDs of ``format_uid_set``'s output (garbage parts are skipped)."""
    out: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition(":")
        if low.isdigit() and (not high or high.isdigit()):
            out.extend(range(int(low), int(high or low) + 1))
    return out
