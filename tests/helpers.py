"""Small helpers shared by the store tests (Deferreds that fire synchronously).

They live in :mod:`exchmail.testing` (with the store compliance kit) so that
backend authors can use them too; this module keeps the short import path.
In-memory protocol sessions are in :mod:`harness`.
"""

from __future__ import annotations

from exchmail.testing import Recorder, call, result

__all__ = ["Recorder", "call", "result"]
