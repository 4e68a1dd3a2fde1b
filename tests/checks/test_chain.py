"""A chain of revisions runs each state once per revision, and gives every pair (each
patch, and the whole series) exactly the result a pairwise run gives it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from checks import engine
from checks.plan import Chain
from checks.space import all_checks
from mmuci import proc
from tests.checks.conftest import Scratch
from tests.checks.edits import BEHAVIOUR, CRASH, HANG, REFACTORS

pytestmark = pytest.mark.slow


def _case(cases, name):
    return next(c for c in cases if c.t.name == name).t


def _stack(s: Scratch, ts) -> list:
    """Extractions of the base and of each of ``ts`` applied on the one before."""
    proc.git(s.path, "checkout", "-q", "--force", "--detach", s.base)
    revs = [s.base]
    for t in ts:
        t.apply(s.path)
        proc.git(s.path, "commit", "-q", "-a", "-m", t.subject)
        revs.append(proc.git(s.path, "rev-parse", "HEAD"))
    return [s.extraction(r) for r in revs]


def _bare(r):
    return replace(r, timings={}, pruned=0, pruning="")


def _same_as_pairwise(s: Scratch, name: str, exs: list, pairs) -> list:
    chk = all_checks([name])[0]
    chained = engine.run(Chain(chk, tuple(exs), tuple(pairs)), cache_dir=s.cache_dir)
    assert all(r.timings["chain"] == len(exs) for r in chained)
    for (i, j), got in zip(pairs, chained, strict=True):
        want = engine.compare(chk, exs[i], exs[j], cache_dir=s.cache_dir)
        # how many states a revision did not run depends on the chain it is in
        assert _bare(got) == _bare(want), (i, j)
    return chained


def test_a_behaviour_change_in_the_middle_of_a_chain(scratch) -> None:
    s = scratch["6.12"]
    exs = _stack(
        s,
        [
            _case(REFACTORS, "bubble-up-while"),
            _case(BEHAVIOUR, "lru-rotation"),
            _case(REFACTORS, "merge-early-returns"),
        ],
    )
    pairs = [(0, 1), (1, 2), (2, 3), (0, 3)]
    got = _same_as_pairwise(s, "pgd_switch", exs, pairs)
    assert [r.verdict for r in got] == ["same", "differs", "same", "differs"]
    assert got[1].groups and got[3].groups  # the whole series shows the patch-2 change


def test_a_crash_in_one_revision_goes_to_the_pairs_it_is_in(scratch) -> None:
    s = scratch["6.12"]
    reorder = _case(REFACTORS, "reorder-root-reset")
    read_lock = _case(BEHAVIOUR, "shadow-read-lock")
    exs = _stack(s, [reorder, CRASH.t, read_lock])
    pairs = [(0, 1), (1, 2), (2, 3), (0, 3)]
    got = _same_as_pairwise(s, "free_roots", exs, pairs)
    assert got[0].verdict == "same" and got[0].crash is None
    assert got[1].verdict == "crash" and got[3].verdict == "crash"
    assert got[2].crash is None  # the crash is patch 2's; patch 3 only runs over it


def test_a_hang_stops_only_the_pairs_it_is_in(scratch) -> None:
    s = scratch["6.12"]
    exs = _stack(s, [_case(REFACTORS, "reorder-root-reset"), HANG.t])
    got = _same_as_pairwise(s, "free_roots", exs, [(0, 1), (1, 2), (0, 2)])
    # the chain child stops at the hangs; the pair without them is run again on its own
    assert got[0].verdict == "same" and got[0].error is None
    assert got[0].states == all_checks(["free_roots"])[0].size
    assert got[1].verdict == got[2].verdict == "crash" and "hung" in got[1].error


def test_a_dying_chain_child_is_bisected_and_each_pair_told(scratch) -> None:
    from tests.checks import dying

    s = scratch["6.12"]
    chk = all_checks(["obsolete_roots"])[0]
    base = s.extraction(s.base)
    bb, _ = engine.build_one(chk, base, s.cache_dir)
    raws = engine.run_states(
        chk, [bb, bb, bb], [(0, 1), (1, 2)], hi=3000, chunk=256,
        call="tests.checks.dying:run_chain",
    )  # fmt: skip
    for raw in raws:
        assert [d.index for d in raw.died] == [dying.DIE_AT]
        assert raw.ran == 3000
