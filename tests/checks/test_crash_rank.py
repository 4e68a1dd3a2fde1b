"""A crash in a state outside the invariants never masks a reachable change (issue 9.3):
a crash inside them is `crash`; one only outside them ranks with
`differs-outside-invariants`, and both are reported with their state and invariants."""

from __future__ import annotations

import pytest

from checks import engine, explain, render
from checks.result import DiffGroup, Example, verdict_for
from checks.space import all_checks
from tests.checks.edits import CRASH, CRASH_OUTSIDE, ROTATE_61

pytestmark = pytest.mark.slow


def test_verdict_ranks_an_outside_crash_below_a_reachable_difference() -> None:
    ex = Example(state={}, baseline=[], patched=[])
    inside = DiffGroup(("root",), 1, True, (), None, ex)
    outside = DiffGroup(("fault",), 1, False, ("I3",), None, ex)
    assert verdict_for([inside, outside], True, crash_inside=False) == "differs"
    assert verdict_for([outside], True, crash_inside=False) == "differs-outside-invariants"
    assert verdict_for([inside, outside], True, crash_inside=True) == "crash"
    assert verdict_for([inside, outside], True) == "crash"  # unknown: as reachable


def test_rotation_from_the_lru_end_differs_and_reports_its_outside_crash(scratch) -> None:
    res = scratch[ROTATE_61.tree].diff(ROTATE_61.t, ROTATE_61.check)
    text = render.render_result(res)
    assert res.verdict == "differs", f"{ROTATE_61.why}\n{text[:4000]}"
    assert res.differing_inside > 0
    assert res.crash_inside == 0 and res.crash_outside > 0, text[:4000]
    assert res.crash is not None and "I3" in res.crash.invariants_violated
    assert any("no sp" in v for k, v in res.crash.state.items() if k.startswith("prev_roots"))
    assert any("fault" in line for line in res.crash.patched)
    assert not any("fault" in line for line in res.crash.baseline)
    assert "crashes only outside the invariants (I3" in text
    assert f"state #{res.crash.index}:" in text


def test_a_crash_only_outside_the_invariants_is_not_the_verdict(scratch) -> None:
    res = scratch[CRASH_OUTSIDE.tree].diff(CRASH_OUTSIDE.t, CRASH_OUTSIDE.check)
    text = render.render_result(res)
    assert res.verdict == "differs-outside-invariants", f"{CRASH_OUTSIDE.why}\n{text[:4000]}"
    assert res.differing_inside == 0 and res.crash_inside == 0 and res.crash_outside > 0
    assert "I3" in res.crash.invariants_violated
    assert "crashes only outside the invariants (I3" in text
    # every state ran (or a fixed dimension's first value stood for it)
    assert res.states + res.stood_for == all_checks([CRASH_OUTSIDE.check])[0].size


def test_a_crash_inside_the_invariants_is_still_crash(scratch) -> None:
    res = scratch[CRASH.tree].diff(CRASH.t, CRASH.check)
    text = render.render_result(res)
    assert res.verdict == "crash", f"{CRASH.why}\n{text[:4000]}"
    assert res.crash_inside > 0 and not res.crash.invariants_violated
    assert res.crash.state["mmu->root"].startswith("__pa(")  # a special root, no sp behind it
    assert "inside the invariants" in text.split("state #")[0]


def test_a_dying_child_in_an_outside_state_is_ranked_by_its_invariants(scratch) -> None:
    """A child that dies is bisected to its state; that state's invariants are computed in
    a child of their own, and rank the crash."""
    from tests.checks import dying

    s = scratch["6.12"]
    chk = all_checks(["obsolete_roots"])[0]
    base = s.extraction(s.base)
    bb, pb = (engine.build_one(chk, e, s.cache_dir)[0] for e in (base, base))
    for call, at in (("run_range", dying.DIE_AT), ("run_range_inside", dying.DIE_INSIDE_AT)):
        (raw,) = engine.run_states(
            chk, [bb, pb], hi=3000, chunk=256, call=f"tests.checks.dying:{call}"
        )
        res = explain.result_from_raw(chk, base, base, raw, 3000, {})
        assert res.crash.index == at and "died" in res.crash.patched[0]
        if at == dying.DIE_AT:  # a previous root with no sp: I3 broken
            assert "I3" in res.crash.invariants_violated
            assert (res.crash_inside, res.crash_outside) == (0, 1)
            assert res.verdict == "differs-outside-invariants"
        else:
            assert not res.crash.invariants_violated
            assert (res.crash_inside, res.crash_outside) == (1, 0) and res.verdict == "crash"
