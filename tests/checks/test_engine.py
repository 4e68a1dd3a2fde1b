"""checks/engine.py: the children share a run's states in interleaved spans, and what
they find together is exactly what one child finds over the whole range."""

from __future__ import annotations

from dataclasses import replace

import pytest

from checks import engine
from checks.budget import Budget
from checks.space import all_checks
from tests.checks.edits import BEHAVIOUR


@pytest.mark.parametrize(("lo", "hi", "jobs"), [(0, 22_032_000, 2), (5, 3000, 2), (0, 7, 2),
                                                (0, 1, 2), (0, 1000, 3), (10, 11, 1)])  # fmt: skip
def test_spans_cover_the_range_once_and_are_dealt_out_in_turn(lo, hi, jobs) -> None:
    got = engine._spans(lo, hi, jobs)
    assert 1 <= len(got) <= jobs
    flat = sorted(s for spans in got for s in spans)
    assert flat[0][0] == lo and flat[-1][1] == hi
    assert all(a[1] == b[0] for a, b in zip(flat, flat[1:], strict=False))  # no gap, no overlap
    assert all(a < b for a, b in flat)
    if hi - lo >= 2 * jobs * engine.SPANS_PER_JOB:
        # every child gets a share of both halves, and the shares are even
        mid = (lo + hi) // 2
        for spans in got:
            assert any(b <= mid for _, b in spans) and any(a >= mid for a, _ in spans)
        sizes = [sum(b - a for a, b in spans) for spans in got]
        assert max(sizes) - min(sizes) <= engine.SPANS_PER_JOB


def _bare(raw):
    return replace(raw, seconds=0.0, cpu=0.0)


@pytest.mark.slow
def test_two_children_over_spans_find_what_one_child_over_the_range_finds(scratch) -> None:
    case = next(c for c in BEHAVIOUR if c.tree == "6.12" and c.check == "pgd_switch")
    s = scratch[case.tree]
    chk = all_checks([case.check])[0]
    base, patched = s.extraction(s.base), s.extraction(s.commit(case.t))
    builds = [engine.build_one(chk, e, s.cache_dir)[0] for e in (base, patched)]
    hi = 60_000
    (spread,) = engine.run_states(chk, builds, hi=hi, chunk=1000, jobs=2)
    lim = engine._limits(None, hi)
    (whole,) = engine._run_range(
        chk.name, 0, hi, builds, [(0, 1)], lim, 1000, engine.CALL, Budget()
    )
    assert spread.groups, "the edit must differ in these states for the test to mean much"
    assert spread.ran == whole.ran == hi and not spread.stopped and not whole.stopped
    key = lambda g: (g.what, g.inside, g.benign, g.inv_and)  # noqa: E731
    assert sorted(spread.groups, key=key) == sorted(whole.groups, key=key)
    assert (spread.crash, spread.crash_outside, spread.base_faults) == (
        whole.crash, whole.crash_outside, whole.base_faults
    )  # fmt: skip
    firsts = {g.first for g in whole.groups}
    assert {k: spread.traces[k] for k in firsts} == {k: whole.traces[k] for k in firsts}


def test_after_a_timeout_each_span_gets_its_share_of_the_child_s_time() -> None:
    from mmucore.sandbox import Outcome

    out = Outcome(False, None, "timeout", None, "timed out", "", 80.0)
    spans = [(0, 100), (300, 400)]  # a child's two spans of 100 states each
    walls = [engine._share_wall(out, b - a, 200) for a, b in spans]
    assert walls == [85.0, 85.0]  # half the states: twice half the child's 80 s, and 5 s
    assert engine._sub_wall(out, 0, 200, 100) == 85.0  # bisecting halves: the same rule
    crashed = Outcome(False, None, "crash", 11, "SIGSEGV", "", 80.0)
    assert engine._sub_wall(crashed, 0, 200, 100) is None  # only a timeout narrows the wall
