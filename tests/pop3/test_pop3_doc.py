"""docs/conformance-pop3.md: one row per MS-STANXPOP3 statement, each naming real tests."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IDS = (
    ["2.1.1", "2.1.2", "2.1.3", "2.1.4", "2.1.5"]
    + [f"C{n:04d}" for n in range(1, 12)]
    + [f"V{n:04d}" for n in range(1, 13)]
    + [f"E{n:04d}" for n in range(1, 6)]
)


def test_every_statement_has_one_row_with_existing_tests():
    rows = [
        line
        for line in (ROOT / "docs/conformance-pop3.md").read_text().splitlines()
        if re.match(r"\| [0-9CVE][0-9.]+ \|", line)
    ]
    ids = [row.split("|")[1].strip() for row in rows]
    assert sorted(ids) == sorted(IDS) and len(ids) == 33
    sources = "".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    defined = set(re.findall(r"def (test_\w+)", sources))
    for row in rows:
        named = re.findall(r"`(test_\w+)`", row)
        assert named, row
        assert set(named) <= defined, (row.split("|")[1], set(named) - defined)
