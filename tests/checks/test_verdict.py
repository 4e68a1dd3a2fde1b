"""The one verdict vocabulary: words, severity order, exit statuses, internal errors."""

from __future__ import annotations

import pytest

from checks.verdict import (
    SEVERITY_ORDER,
    Verdict,
    exit_status,
    internal_error_reason,
    worst,
)

WORDS = (
    "same", "differs", "differs-outside-invariants", "crash", "not-covered", "build-error",
    "apply-error", "internal-error", "out-of-scope", "skipped",
)  # fmt: skip


def test_the_words_and_their_exit_statuses() -> None:
    assert {str(v) for v in Verdict} == set(WORDS)
    exits = {v: v.exit_status for v in Verdict if v != Verdict.SKIPPED}
    assert exits == {
        "same": 0, "out-of-scope": 0,
        "differs": 1, "differs-outside-invariants": 1, "crash": 1,
        "apply-error": 2, "build-error": 2, "not-covered": 2,
        "internal-error": 3,
    }  # fmt: skip
    for v in Verdict:
        assert v.meaning and v.colour and v == str(v)  # a StrEnum compares equal to its word


def test_severity_order() -> None:
    assert [str(v) for v in SEVERITY_ORDER[:-1]] == [
        "crash", "differs", "internal-error", "build-error", "apply-error", "not-covered",
        "differs-outside-invariants", "same", "out-of-scope",
    ]  # fmt: skip
    assert worst(["same", "not-covered", "differs-outside-invariants"]) == "not-covered"
    assert worst(["crash", "build-error"]) == "crash"
    assert worst(["skipped"]) == "same" and worst([], empty=Verdict.OUT_OF_SCOPE) == "out-of-scope"
    with pytest.raises(ValueError):
        worst(["mostly-same"])


def test_exit_status_is_decided_by_precedence_over_all_verdicts() -> None:
    assert exit_status(["differs", "apply-error"]) == 1  # a finding is never hidden
    assert exit_status(["differs-outside-invariants", "internal-error"]) == 1
    assert exit_status(["apply-error", "internal-error", "same"]) == 3
    assert exit_status(["not-covered", "same"]) == 2
    assert exit_status(["same", "out-of-scope", "skipped"]) == 0
    assert exit_status([]) == 0


def _ours() -> None:
    {}["root_role"]  # noqa: B018 - a bug of ours, for the test


def test_an_internal_error_says_it_is_ours_where_and_how_to_report() -> None:
    try:
        _ours()
    except KeyError as e:
        why = internal_error_reason(e, "running free_roots")
    assert why.startswith("mmu-ci internal error while running free_roots: KeyError at ")
    assert "checks/test_verdict.py:" in why and "'root_role'" in why
    assert "bug in mmu-ci, not in the patch" in why and "please report it" in why


def test_the_readme_table_is_this_vocabulary() -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Verdicts", 1)[1]
    rows = re.findall(r"(?m)^\| `([a-z-]+)` \|.*\| (\d) \|$", section)
    assert [(w, int(code)) for w, code in rows] == [
        (str(v), v.exit_status) for v in SEVERITY_ORDER if v != Verdict.SKIPPED
    ]
