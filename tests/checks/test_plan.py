"""checks/plan.py: a trailing dimension no revision reads runs at its first value only,
and that changes no verdict nor count."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from checks import engine, explain, plan
from checks.space import all_checks
from tests.checks.edits import BEHAVIOUR

(PGD_SWITCH,) = all_checks(["pgd_switch"])


def _fake(*names: str) -> SimpleNamespace:
    """Just what plan.states_to_run reads of an extraction: the names it holds."""
    return SimpleNamespace(shimmed=(), pieces=[SimpleNamespace(name=n) for n in names])


def test_flush_is_fixed_only_when_no_revision_names_the_module_parameter() -> None:
    n, fixed = plan.states_to_run(PGD_SWITCH, (_fake("fast_pgd_switch"), _fake()))
    assert n * 2 == PGD_SWITCH.size
    assert [f.name for f in fixed] == ["flush_on_reuse (module parameter)"]
    assert "force_flush_and_sync_on_reuse" in str(fixed[0]) and fixed[0].label == "false"
    # one revision of the chain naming it: every revision runs both values
    both = (_fake(), _fake("force_flush_and_sync_on_reuse"))
    assert plan.states_to_run(PGD_SWITCH, both) == (PGD_SWITCH.size, ())


def test_a_dim_without_reads_is_never_fixed() -> None:
    for chk in all_checks():
        if not any(d.reads for d in chk.dims):
            assert plan.states_to_run(chk, (_fake(),)) == (chk.size, ())


@pytest.mark.slow
def test_the_fixed_run_finds_what_the_whole_space_finds(scratch) -> None:
    """On 6.1 (no force_flush_and_sync_on_reuse): the whole space, both values of the
    dimension, differs in exactly twice the states of the fixed run, in the same groups
    with the same first states, and the verdict is the same."""
    case = next(c for c in BEHAVIOUR if c.check == "pgd_switch" and c.tree == "6.1")
    s = scratch[case.tree]
    base, patched = s.extraction(s.base), s.extraction(s.commit(case.t))
    fixed = s.diff(case.t, case.check)
    assert fixed.fixed_dims and fixed.states * 2 == PGD_SWITCH.size == 2 * fixed.stood_for
    bb, pb = (engine.build_one(PGD_SWITCH, e, s.cache_dir)[0] for e in (base, patched))
    (raw,) = engine.run_states(PGD_SWITCH, [bb, pb])
    whole = explain.result_from_raw(PGD_SWITCH, base, patched, raw, PGD_SWITCH.size, {})
    assert whole.states == PGD_SWITCH.size and whole.verdict == fixed.verdict
    assert whole.differing_inside == 2 * fixed.differing_inside > 0
    assert whole.differing_outside == 2 * fixed.differing_outside
    halved = [
        replace(g, count=g.count // 2, also_outside=g.also_outside // 2) for g in whole.groups
    ]
    assert halved == list(fixed.groups)
