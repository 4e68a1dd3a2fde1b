"""Endless runs (issue 10.8): abort() in many states, a wait in every state. The run of a
check is bounded (a deadline, a number of children) and ends in a clean crash verdict
with the first offending state; no child or temporary directory is left."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from checks import budget as budgets
from checks import engine, explain
from checks.space import all_checks
from mmucore import sandbox
from mmucore.sandbox import Limits


def _left_behind() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"{sandbox.TMP_PREFIX}{os.getpid()}-*"))


def _children() -> list[int]:
    """Jails whose parent is this test process, still running (other children of the
    test process, such as a test's inbox server, are not ours to count)."""
    me, out = os.getpid(), []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                comm = (d / "comm").read_text().strip()
            except (OSError, IndexError, ValueError):
                continue
            if int(fields[1]) == me and fields[0] != "Z" and comm == "bwrap":
                out.append(int(d.name))
    return out


def _pair(scratch):
    s = scratch["6.12"]
    chk = all_checks(["obsolete_roots"])[0]
    base = s.extraction(s.base)
    bb, pb = (engine.build_one(chk, e, s.cache_dir)[0] for e in (base, base))
    return chk, base, bb, pb


def test_abort_in_many_states_ends_with_the_first_in_few_children(scratch) -> None:
    from tests.checks import dying

    chk, base, bb, pb = _pair(scratch)
    budget = engine.Budget(seconds=300, children=200)
    hi = 40 * dying.EVERY  # 39 killing states: full bisection takes ~600 children
    (raw,) = engine.run_states(
        chk, [bb, pb], hi=hi, chunk=256, call="tests.checks.dying:run_range_often",
        budget=budget,
    )  # fmt: skip
    # bounded: deaths outside the invariants are bisected too (they may hide a reachable
    # one after them), but never more than the budget's children
    assert budget.used <= budget.children
    res = explain.gave_up_error(explain.result_from_raw(chk, base, base, raw, hi, {}), raw)
    assert res.verdict == "crash"
    # the first offending state inside the invariants, confirmed alone: every killing
    # state found before it is outside them (unreachable)
    # (or, when the budget ran out first, a death labelled as not narrowed down)
    if "not narrowed down" in res.crash.patched[0]:
        assert "the culprit may be any of them" in res.crash.patched[0]
    else:
        assert res.crash.index % dying.EVERY == 0
        before = [d for d in raw.died if d.index < res.crash.index]
        assert all(d.inv not in (0, None) for d in before), before
    assert res.error and "states not run" in res.error
    assert _children() == [] and _left_behind() == []


def test_a_spent_budget_says_the_death_is_not_narrowed_down(scratch) -> None:
    from tests.checks import dying

    chk, base, bb, pb = _pair(scratch)
    budget = engine.Budget(seconds=300, children=6)
    hi = 40 * dying.EVERY
    (raw,) = engine.run_states(
        chk, [bb, pb], hi=hi, chunk=256, call="tests.checks.dying:run_range_often",
        budget=budget,
    )  # fmt: skip
    assert budget.used == 6 and budget.exhausted()
    res = explain.gave_up_error(explain.result_from_raw(chk, base, base, raw, hi, {}), raw)
    assert res.verdict == "crash"
    assert "not narrowed down" in res.crash.patched[0] and "culprit" in res.crash.patched[0]
    assert "sandbox children" in res.error
    assert _children() == [] and _left_behind() == []


def test_a_wait_in_every_state_ends_at_the_deadline(scratch) -> None:
    chk, base, bb, pb = _pair(scratch)
    budget = engine.Budget(seconds=12, children=200)
    t0 = time.monotonic()
    (raw,) = engine.run_states(
        chk, [bb, pb], hi=3000, chunk=256, call="tests.checks.dying:run_range_blocked",
        limits=Limits(cpu_seconds=60, wall_seconds=300), budget=budget,
    )  # fmt: skip
    took = time.monotonic() - t0
    assert took < 12 + 10  # the deadline, not 300 s per child
    res = explain.gave_up_error(explain.result_from_raw(chk, base, base, raw, 3000, {}), raw)
    assert res.verdict == "crash"  # never `same` for states that did not run
    assert res.crash.index == 0
    assert "wall-clock" in res.crash.patched[0]
    assert "deadline" in res.error
    assert _children() == [] and _left_behind() == []


def test_the_series_deadline_bounds_every_check_after_it(scratch, monkeypatch) -> None:
    chk, base, bb, pb = _pair(scratch)
    monkeypatch.setattr(budgets, "_series_deadline", [])
    engine.start_series(0.0)  # spent: no child may start any more
    budget = engine.Budget()
    assert budget.exhausted() == "the series' deadline of 0s passed"
    (raw,) = engine.run_states(chk, [bb, pb], hi=3000, chunk=256, budget=budget)
    res = explain.gave_up_error(explain.result_from_raw(chk, base, base, raw, 3000, {}), raw)
    assert res.states == 0 and "3,000 states not run" in res.error
    assert res.verdict == "internal-error"  # nothing ran: never `same`
    assert "series' deadline" in res.error
