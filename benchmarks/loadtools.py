"""Where the shared load tools are, and a copy of them with pop3load.py's client race fixed.

``/work/shared/tools/load/pop3load.py`` (at the time of writing) loses
clients silently: ``POP3Conn.cmd`` stores a new future in ``self.waiter``,
calls ``_check()``, then awaits ``self.waiter``.  When the reply is already
buffered (typically the greeting, which can arrive before the client's
first ``cmd(None)``), ``_check()`` resolves the future *and sets
``self.waiter`` to None*, so the ``await`` raises ``TypeError``.  That is not
among the exceptions ``client_loop`` counts, so the client task ends and
is never counted as an error: a run may go on with fewer clients, or with
none (0 sessions/s, 0 errors, idle server).  Seen here in about one run in
three right after a server start.

:func:`load_dir` returns a folder with a copy of the load tools whose
``pop3load.py`` awaits the future it created (a one-line change), unless
``stock`` is set or the shared file no longer has that line.  The shared
folder is never modified.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from peer_server import SHARED_TOOLS

LOAD = SHARED_TOOLS / "load"

_RACY = """        self.waiter = asyncio.get_running_loop().create_future()
        self._check()
        return await self.waiter
"""
_FIXED = """        waiter = self.waiter = asyncio.get_running_loop().create_future()
        self._check()
        return await waiter  # benchmarks/loadtools.py: _check() may have reset self.waiter
"""


def load_dir(into: Path, stock: bool = False) -> tuple[Path, str]:
    """(folder with the load tools to run, a note saying which copy it is).

    The copy is made in ``into``/loadtools (the caller removes ``into``).
    """
    source = (LOAD / "pop3load.py").read_text()
    if stock:
        return LOAD, "stock load tools"
    if _RACY not in source:
        return LOAD, "stock load tools (pop3load.py no longer has the client race)"
    folder = into / "loadtools"
    folder.mkdir(parents=True, exist_ok=True)
    for item in LOAD.iterdir():
        if item.is_file():
            shutil.copy2(item, folder / item.name)
    fixed = folder / "pop3load.py"
    fixed.unlink()
    fixed.write_text(source.replace(_RACY, _FIXED))
    fixed.chmod(0o755)
    return folder, f"copy of the load tools with pop3load.py's client race fixed ({folder})"


def import_procstat():
    """The shared tools' procstat module (read-only /proc helpers)."""
    if str(LOAD) not in sys.path:
        sys.path.insert(0, str(LOAD))
    import procstat

    return procstat
