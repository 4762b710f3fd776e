"""What the ``exchmail`` subcommands share: one-line failures with an exit status."""

from __future__ import annotations

PROG = "exchmail"


class Failure(Exception):
    """An error to report in one line (``exchmail: error: ...``), with an exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
