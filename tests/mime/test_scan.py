"""Bounded scans: same answers as one big call, whatever the window."""

from __future__ import annotations

import pytest

from exchmail.mime import scan


@pytest.fixture(params=[1, 2, 3, 7, 1 << 20])
def window(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(scan, "WINDOW", request.param)
    return int(request.param)


DATA = b"abc\n--xyz\r\n--b\nno\n--boundary--\r\n"


def test_find_matches_bytes_find(window: int) -> None:
    for sub in (b"\n--", b"--boundary", b"\n", b"zz", b"\r\n"):
        for start in range(len(DATA)):
            for end in (start, len(DATA) - 1, len(DATA)):
                assert scan.find(DATA, sub, start, end) == DATA.find(sub, start, end), (sub, start, end)


def test_find_any_is_the_first_of_any(window: int) -> None:
    needles = [b"\n--boundary", b"\n--b", b"\n--xyz"]
    for start in range(len(DATA)):
        want = min((p for p in (DATA.find(n, start) for n in needles) if p >= 0), default=-1)
        assert scan.find_any(DATA, needles, start, len(DATA)) == want


def test_count_and_line_end(window: int) -> None:
    assert scan.count_byte(DATA, b"\n", 0, len(DATA)) == DATA.count(b"\n")
    assert scan.count_byte(DATA, b"\n", 5, 20) == DATA.count(b"\n", 5, 20)
    assert scan.find_line_end(DATA, 0, len(DATA)) == 4
    assert scan.find_line_end(b"no end", 0, 6) == 6
