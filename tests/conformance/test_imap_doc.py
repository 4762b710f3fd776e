"""docs/conformance-imap.md stays complete and true to the code and the tests.

- every statement of the seed MS-STANXIMAP appears exactly once (72 rows);
- the statements are exactly those decided by IMAPSettings fields (``ids``
  metadata) and IMAP_FACTS, no more, no fewer;
- every setting named in a row exists and lists that row's ID; a row
  marked "fact" is in IMAP_FACTS, and a fact owned by another issue says so;
- every test named in a row exists under tests/ and contains the row's ID;
- a row without tests is marked "pending: <issue> issue".
"""

from __future__ import annotations

import ast
import dataclasses
import re
from functools import cache
from pathlib import Path

import pytest

from exchmail.profile.facts import IMAP_FACTS
from exchmail.profile.settings import IMAPSettings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "conformance-imap.md"
SEED = Path("/work/shared/seeds/MS-STANXIMAP.txt")

#: The statements of MS-STANXIMAP (the seed's table of contents and body).
SECTIONS = [f"2.1.{i}" for i in range(1, 9)]
EXPECTED_IDS = (
    SECTIONS + ["C0001"] + [f"V{i:04d}" for i in range(1, 59)] + [f"E{i:04d}" for i in range(1, 5)] + ["2.3"]
)

#: Facts owned by other issues, as the table must mark them.
OWNED = {"2.1.8": "TLS", "V0056": "TLS", "V0057": "TLS"}

ID_RE = re.compile(r"^(2\.1\.[1-8]|2\.3|C\d{4}|V\d{4}|E\d{4})$")
COLUMNS = ("ID", "RFC 3501 says", "exchange2010", "rfc3501", "Setting", "Tests")


@dataclasses.dataclass
class Row:
    id: str
    rfc: str
    exchange: str
    strict: str
    setting: str
    tests: str

    @property
    def settings(self) -> list[str]:
        return re.findall(r"`([a-z_0-9]+)`", self.setting)

    @property
    def test_names(self) -> list[str]:
        return re.findall(r"`(test_[A-Za-z0-9_]+)`", self.tests)


def split_row(line: str) -> list[str]:
    """The cells of a Markdown table row ('|' inside backticks does not split)."""
    cells, cell, code = [], "", False
    for ch in line.strip()[1:]:
        if ch == "`":
            code = not code
        if ch == "|" and not code:
            cells.append(cell.strip())
            cell = ""
        else:
            cell += ch
    return cells


@cache
def rows() -> tuple[Row, ...]:
    out = []
    header_seen = False
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        cells = split_row(line)
        if tuple(cells) == COLUMNS:
            header_seen = True
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        assert header_seen, f"table row before the header: {line}"
        assert len(cells) == len(COLUMNS), f"expected {len(COLUMNS)} cells: {line}"
        assert ID_RE.match(cells[0]), f"not a statement ID: {cells[0]!r}"
        out.append(Row(*cells))
    return tuple(out)


def seed_ids() -> list[str]:
    text = SEED.read_text(encoding="utf-8")
    found = set(re.findall(r"^([CVE]\d{4}):", text, re.M))
    found |= set(re.findall(r"^#+ \**(2\.1\.\d) ", text, re.M))
    if re.search(r"^#+ \**2\.3 ", text, re.M):
        found.add("2.3")
    return sorted(found)


def setting_ids() -> dict[str, tuple[str, ...]]:
    return {f.name: f.metadata["ids"] for f in dataclasses.fields(IMAPSettings)}


#: Where a file may define a test function (a superset of what ast finds).
DEF_RE = re.compile(r"\bdef\s+(test_\w+)")


@cache
def defined_tests() -> dict[str, list[Path]]:
    """Every test function name defined in tests/conformance or in a file that
    defines a test named in the table, with the files defining it.

    Only those files are parsed (DEF_RE picks them): parsing all of tests/
    took a second, in each xdist worker that runs one of these tests.
    """
    listed = {name for row in rows() for name in row.test_names}
    here = Path(__file__).parent
    found: dict[str, list[Path]] = {}
    for path in (ROOT / "tests").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.parent != here and not listed.intersection(DEF_RE.findall(text)):
            continue
        tree = ast.parse(text, filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                found.setdefault(node.name, []).append(path)
    return found


def test_doc_ids_match_the_seed():
    ids = [r.id for r in rows()]
    assert len(ids) == 72 == len(EXPECTED_IDS)
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"IDs listed more than once: {duplicates}"
    assert sorted(ids) == sorted(EXPECTED_IDS)
    if SEED.exists():
        assert sorted(EXPECTED_IDS) == seed_ids()


def test_doc_ids_are_settings_or_facts():
    decided = {i for ids in setting_ids().values() for i in ids}
    facts = set(IMAP_FACTS)
    covered = decided | facts
    listed = {r.id for r in rows()}
    assert sorted(listed - covered) == [], "rows that neither a setting nor a fact decides"
    assert sorted(covered - listed) == [], "settings/facts IDs missing from the table"
    assert sorted(covered - set(EXPECTED_IDS)) == [], "unknown IDs in settings.py/facts.py"
    assert sorted(decided & facts) == [], "IDs that are both a setting and a fact"


@pytest.mark.parametrize("row", rows(), ids=lambda r: r.id)
def test_doc_row_setting_column(row):
    known = setting_ids()
    if row.setting.startswith("fact"):
        assert row.id in IMAP_FACTS, f"{row.id} is marked fact but is not in IMAP_FACTS"
        assert not row.settings, f"{row.id}: a fact names settings {row.settings}"
        if row.id in OWNED:
            assert row.setting == f"fact — owned by issue: {OWNED[row.id]}", row.setting
        else:
            assert row.setting == "fact", row.setting
        return
    assert row.settings, f"{row.id}: no setting named"
    for name in row.settings:
        assert name in known, f"{row.id}: {name} is not an IMAPSettings field"
        assert row.id in known[name], f"{row.id}: {name}'s ids are {known[name]}"
    deciding = sorted(n for n, ids in known.items() if row.id in ids)
    assert deciding == sorted(row.settings), f"{row.id} is decided by {deciding}"


@pytest.mark.parametrize("row", rows(), ids=lambda r: r.id)
def test_doc_row_tests_exist(row):
    names = row.test_names
    if not names:
        assert re.fullmatch(r"pending: (TLS|Windows auth) issue", row.tests), (
            f"{row.id}: no test and not marked pending with an issue: {row.tests!r}"
        )
        return
    defined = defined_tests()
    tag = row.id.replace(".", "_")
    for name in names:
        assert name in defined, f"{row.id}: no test function {name} under tests/"
        assert re.search(rf"_{re.escape(tag)}(_|$)", name), f"{row.id}: {name} lacks the ID"
    leftover = re.sub(r"`test_[A-Za-z0-9_]+`", "", row.tests)
    leftover = re.sub(r"pending: (TLS|Windows auth) issue", "", leftover)
    assert set(leftover) <= set(", ;"), f"{row.id}: unexpected text in the tests column: {row.tests!r}"


def test_doc_test_names_unique():
    """Each named test is defined once, so the table names one function."""
    defined = defined_tests()
    for row in rows():
        for name in row.test_names:
            assert len(defined[name]) == 1, (name, defined[name])


def test_doc_every_conformance_test_is_listed():
    """Every statement test in tests/conformance is referenced by the row(s) of its IDs."""
    listed = {n for r in rows() for n in r.test_names}
    here = Path(__file__).parent
    for name, paths in defined_tests().items():
        if any(p.parent == here and p.name.startswith("test_imap_conformance") for p in paths):
            assert name in listed, f"{name} is not in docs/conformance-imap.md"


def test_doc_no_empty_cells():
    for row in rows():
        for field in dataclasses.fields(Row):
            assert getattr(row, field.name), f"{row.id}: empty {field.name}"
