"""benchmarks/scale_out.py runs end to end (its cheap sections, small counts)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exchmail.testing import postgres

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
@pytest.mark.skipif(postgres.unavailable_reason() is not None, reason=str(postgres.unavailable_reason()))
def test_scale_out_latency_and_burst(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "scale_out.py"),
            "--sections",
            "latency,burst",
            "--frontends",
            "2",
            "--samples",
            "10",
            # Two connections storming for half a second still make and
            # show hundreds of changes; the default eight for one second
            # only spent CPU the other tests wait for.
            "--burst-secs",
            "0.5",
            "--burst-connections",
            "2",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "| postgresql-2 |" in result.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    for label in ("maildir-1", "postgresql-2"):
        assert results[label]["latency"]["missed"] == 0
        burst = results[label]["burst"]
        assert burst["changes"] > 0 and burst["seen"] == burst["changes"]
