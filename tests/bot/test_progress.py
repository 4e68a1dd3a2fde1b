"""The one progress display: silent, quarter lines, or bars."""

from __future__ import annotations

import pytest

from bot.progress import progress_bars


def test_off_a_terminal_it_is_silent(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bars(False) as progress:
        progress("apply", 1, 2)
    assert capsys.readouterr() == ("", "")


def test_lines_are_one_per_quarter_of_each_stage(capsys: pytest.CaptureFixture[str]) -> None:
    with progress_bars(False, lines=True) as progress:
        for done in range(0, 101, 5):
            progress("extracting 6.1", done, 100)
        progress("other", 7, 7)
    err = capsys.readouterr().err.splitlines()
    want = [f"extracting 6.1: {p}%" for p in (0, 25, 50, 75, 100)] + ["other: 100%"]
    assert err == want


def test_bars_take_stages_in_any_order() -> None:
    with progress_bars(True) as progress:
        progress("apply", 0, 3)
        progress("build", 1, 2)
        progress("apply", 3, 3)
