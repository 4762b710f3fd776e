"""The non-Python client's suite (shell/curl_client_test.sh: curl against
``exchmail serve --ephemeral``), run as part of this project's tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "shell" / "curl_client_test.sh"


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl (apt-get install curl)")
def test_curl_client_suite():
    exchmail = Path(sys.executable).parent / "exchmail"  # installed with exchmail
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "EXCHMAIL": str(exchmail)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith(" passed, 0 failed")
