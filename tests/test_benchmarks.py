"""The benchmark scripts still run (tiny sizes; their figures are not checked)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

# Each test runs a benchmark script.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "script, args",
    [
        ("imap_bench.py", ["--messages", "5", "--big-mb", "2", "--idle-sessions", "3"]),
        ("literal_memory.py", ["--oversized-mb", "60", "--append-mb", "1"]),  # 60 > the 50 MiB limit
    ],
)
def test_benchmark_script_runs(script, args, tmp_path):
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RSS" in result.stdout


def test_sort_thread_benchmark_runs(tmp_path):
    """benchmarks/sort_thread.py against exchmail alone, 50 messages: every
    command answers OK and the QRESYNC SELECT reports each changed message."""
    import json

    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "sort_thread.py"),
            "--exchmail-venv",
            sys.prefix,
            "--messages",
            "50",
            "--changes",
            "10",
            "--no-dovecot",
            "--json-out",
            str(tmp_path / "r.json"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = json.loads((tmp_path / "r.json").read_text())["exchmail1"]
    assert run["qresync"]["fetches"] == 10
    assert all(
        run[command]["ok"]
        for command in ("SELECT INBOX", "SORT (DATE) US-ASCII ALL", "THREAD REFERENCES US-ASCII ALL")
    )
