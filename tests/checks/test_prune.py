"""Pruning (checks/prune.py) changes no result: over the whole edit corpus on 6.1 and
6.12, a chain of three, and a type change, which is never pruned."""

from __future__ import annotations

from dataclasses import replace

import pytest

from checks import engine, render
from checks.plan import Chain, Comparison
from checks.result import SAME_CODE, CheckResult
from checks.space import Check, all_checks
from mmucore.extract import Extraction
from mmukit.transforms import Transformation, replace_once
from tests.checks import edits as e
from tests.checks.conftest import Scratch
from tests.checks.edits import Case
from tests.checks.test_chain import _case, _stack

Scratches = dict[str, Scratch]

pytestmark = pytest.mark.slow

CORPUS = [
    *e.BEHAVIOUR, *e.REFACTORS, *e.OUTSIDE, e.BENIGN, e.CRASH, e.CRASH_OUTSIDE, e.ROTATE_61,
    e.HANG, e.SEED_PRE_PATCH,
]  # fmt: skip


def _bare(r: CheckResult) -> CheckResult:
    return replace(r, timings={}, pruned=0, pruning="")


def _unpruned(s: Scratch, chk: Check, before: Extraction, after: Extraction) -> CheckResult:
    plan = Comparison(chk, before, after, prune=False, twins=False)  # the plain reference
    (r,) = engine.run(plan, cache_dir=s.cache_dir)
    return r


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: f"{c.tree}-{c.check}-{c.t.name}")
def test_pruned_and_unpruned_results_are_identical(scratch: Scratches, case: Case) -> None:
    s = scratch[case.tree]
    pruned = s.diff(case.t, case.check)  # the default: pruned
    chk = all_checks([case.check])[0]
    full = _unpruned(s, chk, s.extraction(s.base), s.extraction(s.commit(case.t)))
    assert full.pruned == 0 and full.pruning.startswith("off: ")
    assert render.result_to_json(_bare(pruned)) == render.result_to_json(_bare(full))
    assert pruned.verdict == case.verdict
    assert pruned.pruning in ("on", SAME_CODE) or pruned.pruning.startswith("off: "), pruned.pruning
    if pruned.pruning == SAME_CODE:  # the same machine code: only a faulting state runs again
        assert pruned.verdict == "same" and 0 < pruned.pruned <= pruned.states
    else:  # the baseline runs every state
        assert 0 <= pruned.pruned < max(pruned.states, 1)
    line = render.pruning_line(pruned)
    assert line in render.render_result(pruned)
    assert line.startswith("not pruned: " if pruned.pruning.startswith("off: ") else "pruned: ")


def test_the_corpus_prunes_states_of_most_local_edits(scratch: Scratches) -> None:
    """Not a speed test: that pruning happens at all, so the equality above means something."""
    results = [scratch[c.tree].diff(c.t, c.check) for c in CORPUS]
    pruned = [r for r in results if r.pruned]
    assert len(pruned) * 2 > len(results), [(r.name, r.pruning) for r in results]
    assert sum(r.pruned for r in results) > 0


@pytest.mark.parametrize(
    ("check", "edits", "verdicts"),
    [
        ("pgd_switch", [(e.REFACTORS, "bubble-up-while"), (e.BEHAVIOUR, "lru-rotation"),
                        (e.REFACTORS, "merge-early-returns")],
         ["same", "differs", "same", "differs"]),
        ("free_roots", [(e.REFACTORS, "reorder-root-reset"), ([e.CRASH], "null-deref-current"),
                        (e.BEHAVIOUR, "shadow-read-lock")], ["same", "crash", "differs", "crash"]),
    ],
    ids=["pgd_switch", "free_roots-crash"],
)  # fmt: skip
def test_a_chain_of_three_pruned_is_the_chain_unpruned(
    scratch: Scratches, check: str, edits: list[tuple[list[Case], str]], verdicts: list[str]
) -> None:
    s = scratch["6.12"]
    exs = tuple(_stack(s, [_case(cases, name) for cases, name in edits]))
    chk = all_checks([check])[0]
    pairs = ((0, 1), (1, 2), (2, 3), (0, 3))
    got = engine.run(Chain(chk, exs, pairs), cache_dir=s.cache_dir)
    want = engine.run(Chain(chk, exs, pairs, prune=False, twins=False), cache_dir=s.cache_dir)
    assert [_bare(r) for r in got] == [_bare(r) for r in want]
    assert [r.verdict for r in got] == verdicts
    assert all(r.pruning in ("on", SAME_CODE) for r in got) and sum(r.pruned for r in got) > 0


def test_a_type_change_is_never_pruned(scratch: Scratches) -> None:
    s = scratch["6.12"]
    swap = Transformation(
        "swap-root-info-fields", "arch/x86/include/asm/kvm_host.h",
        replace_once("struct kvm_mmu_root_info {\n\tgpa_t pgd;\n\thpa_t hpa;\n};",
                     "struct kvm_mmu_root_info {\n\thpa_t hpa;\n\tgpa_t pgd;\n};"),
        "KVM: x86: hpa first",
    )  # fmt: skip
    res = s.diff(swap, "pgd_switch")
    assert res.pruned == 0
    assert res.pruning == "off: a type changes: struct kvm_mmu_root_info", res.pruning
    assert "not pruned: a type changes: struct kvm_mmu_root_info" in render.render_result(res)
    chk = all_checks(["pgd_switch"])[0]
    full = _unpruned(s, chk, s.extraction(s.base), s.extraction(s.commit(swap)))
    assert _bare(res) == _bare(full)
