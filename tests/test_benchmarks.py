"""The benchmark scripts still run (tiny sizes; their figures are not checked)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("script, args", [
    ("imap_bench.py", ["--messages", "5", "--big-mb", "2", "--idle-sessions", "3"]),
    ("literal_memory.py", ["--oversized-mb", "60", "--append-mb", "1"]),  # 60 > the 50 MiB limit
])
def test_benchmark_script_runs(script, args, tmp_path):
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), *args], cwd=tmp_path,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RSS" in result.stdout
