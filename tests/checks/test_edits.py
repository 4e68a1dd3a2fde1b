"""Every edit of tests/checks/edits.py gets the verdict it must get, for the reason given."""

from __future__ import annotations

import pytest

from checks import engine, explain, render
from checks.raw import Crash
from checks.space import all_checks
from mmukit.transforms import Transformation, rename, within_function
from tests.checks.edits import BEHAVIOUR, BENIGN, CRASH, HANG, MMU, OUTSIDE, REFACTORS, Case

pytestmark = pytest.mark.slow


def _explain(res) -> str:
    return render.render_result(res)[:4000]


def _run(scratch, case: Case):
    return scratch[case.tree].diff(case.t, case.check)


@pytest.mark.parametrize("case", BEHAVIOUR, ids=lambda c: f"{c.tree}-{c.t.name}")
def test_behaviour_change_is_found_inside_the_invariants(scratch, case: Case) -> None:
    res = _run(scratch, case)
    assert res.verdict == "differs", f"{case.why}\n{_explain(res)}"
    inside = [g for g in res.groups if g.inside_invariants and g.benign is None]
    assert inside and res.differing_inside == sum(g.count for g in inside)
    assert any(set(case.what) <= set(g.what) for g in inside), (case.what, _explain(res))
    ex = inside[0].example
    assert ex.baseline != ex.patched and not ex.invariants_violated


@pytest.mark.parametrize("case", REFACTORS, ids=lambda c: f"{c.tree}-{c.t.name}")
def test_refactor_is_same(scratch, case: Case) -> None:
    res = _run(scratch, case)
    assert res.verdict == "same", f"{case.why}\n{_explain(res)}"
    assert res.groups == () and res.crash is None
    assert res.states + res.stood_for == all_checks([case.check])[0].size


@pytest.mark.parametrize("case", OUTSIDE, ids=lambda c: f"{c.tree}-{c.t.name}")
def test_difference_only_outside_the_invariants_names_the_invariant(scratch, case) -> None:
    res = _run(scratch, case)
    assert res.verdict == "differs-outside-invariants", f"{case.why}\n{_explain(res)}"
    assert res.differing_inside == 0 and res.differing_outside > 0
    for g in res.groups:
        assert not g.inside_invariants
        assert set(case.needs) & set(g.invariants_needed), _explain(res)
        violated = set(g.example.invariants_violated)
        if g.needs_any:  # every state breaks one of them
            assert set(g.invariants_needed) & violated
        else:  # every state breaks all of them
            assert set(g.invariants_needed) <= violated
    assert set(case.needs) <= {n for g in res.groups for n in g.invariants_needed}
    text = render.render_result(res)
    assert "needs " in text and "broken:" in text


def test_seed_case_explains_the_pae_root_under_a_64_bit_mode(scratch) -> None:
    """The reviewer's "we'd try to free garbage" case, answered with a concrete state."""
    (case,) = [c for c in OUTSIDE if c.t.name == "seed-level-predicate"]
    res = _run(scratch, case)
    text = render.render_result(res)
    assert "WARN_ON(!sp) at mmu.c:" in text  # the level predicate frees pae_root as one root
    assert "mmu->root = __pa(pae_root)" in text


def test_normalised_difference_is_benign_and_shown(scratch) -> None:
    res = _run(scratch, BENIGN)
    assert res.verdict == "same", BENIGN.why
    assert res.groups and res.differing_inside == res.differing_outside == 0
    for g in res.groups:
        assert g.benign == "ignore the pgd of an invalid slot" and g.what == ("root",)
        assert any(line.startswith("!") and "mmu->root.pgd" in line for line in g.example.patched)
    assert any(g.inside_invariants for g in res.groups)  # reachable, yet only the stale pgd
    assert "benign: vanishes under the normalisation" in render.render_result(res)


def test_null_dereference_is_a_crash_at_its_first_state_and_the_run_goes_on(scratch) -> None:
    s = scratch[CRASH.tree]
    res = s.diff(CRASH.t, CRASH.check)
    assert res.verdict == "crash", CRASH.why
    assert res.crash is not None
    assert any("fault" in line for line in res.crash.patched)
    assert not any("fault" in line for line in res.crash.baseline)
    assert res.states == all_checks(["free_roots"])[0].size  # every state ran
    assert any("fault" in g.what for g in res.groups)
    # no state before the reported one faults: it is the first
    chk = all_checks(["free_roots"])[0]
    base = s.extraction(s.base)
    patched = s.extraction(s.commit(CRASH.t))
    bb, pb = (engine.build_one(chk, e, s.cache_dir)[0] for e in (base, patched))
    (before,) = engine.run_states(chk, [bb, pb], hi=res.crash.index, jobs=1)
    assert before.crash is None and not before.died
    (at,) = engine.run_states(chk, [bb, pb], lo=res.crash.index, hi=res.crash.index + 1, jobs=1)
    assert at.crash == Crash(res.crash.index, 1)


def test_hang_is_a_crash_and_the_run_stops_after_a_few(scratch) -> None:
    res = _run(scratch, HANG)
    assert res.verdict == "crash", HANG.why
    assert any("hang" in line for line in res.crash.patched)
    assert not any("hang" in line for line in res.crash.baseline)
    assert res.error and "hung" in res.error
    assert res.states < all_checks([HANG.check])[0].size  # the run stopped


@pytest.mark.parametrize("version", ["6.1", "6.12"])
def test_free_roots_covers_ten_million_states(scratch, version) -> None:
    case = next(c for c in REFACTORS if c.tree == version and c.check == "free_roots")
    res = _run(scratch, case)
    assert res.states >= 10**7
    assert res.timings["run"] > 0


def test_a_dying_child_is_bisected_to_its_state(scratch) -> None:
    from tests.checks import dying

    s = scratch["6.12"]
    chk = all_checks(["obsolete_roots"])[0]
    base = s.extraction(s.base)
    bb, pb = (engine.build_one(chk, e, s.cache_dir)[0] for e in (base, base))
    call = "tests.checks.dying:run_range"
    (raw,) = engine.run_states(chk, [bb, pb], hi=3000, chunk=256, call=call)
    assert [d.index for d in raw.died] == [dying.DIE_AT]
    assert raw.ran == 3000  # every other state ran
    res = explain.result_from_raw(chk, base, base, raw, 3000, {})
    # the state it dies in has a previous root with no sp (I3): a crash only outside the
    # invariants (tests/checks/test_crash_rank.py ranks one inside them too)
    assert res.verdict == "differs-outside-invariants" and res.crash.index == dying.DIE_AT
    assert "I3" in res.crash.invariants_violated
    assert "died" in res.crash.patched[0]


def test_a_check_whose_entry_is_gone_is_skipped_with_the_reason(scratch) -> None:
    gone = Transformation(
        "rename-obsolete-entry", MMU, rename("__kvm_mmu_free_obsolete_roots", "__free_stale"), "x"
    )
    res = scratch["6.12"].diff(gone, "obsolete_roots")
    assert res.verdict == "skipped" and res.states == 0
    assert res.skipped.startswith("patched: __kvm_mmu_free_obsolete_roots is not in this tree")
    assert "skipped: patched:" in render.render_result(res)


def test_code_whose_result_is_not_a_function_of_the_state_is_never_same(scratch) -> None:
    """A patch keeping a counter across calls skips every fifth call: the states whose words
    differ run again for their rows (phase 2), where the counter has moved on. Each such
    state is marked as a fault of the revision (its second run did not give its first
    word), so none of them folds back into `same` (6.1)."""
    from mmukit.transforms import regex_once

    t = Transformation(
        "count-calls",
        MMU,
        within_function(
            "kvm_mmu_free_roots",
            regex_once(r"\{\n", "{\n\tstatic unsigned int mmu_ci_calls;\n\n"
                       "\tif (++mmu_ci_calls % 5 == 0)\n\t\treturn;\n"),
        ),
        "KVM: x86/mmu: count calls",
    )  # fmt: skip
    res = scratch["6.1"].diff(t, "free_roots")
    assert res.verdict != "same", _explain(res)
    assert any("fault" in g.what for g in res.groups), _explain(res)
