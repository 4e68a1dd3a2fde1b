"""bench/bench_scale.py's helpers: the derived check, the goals it prints, the sampler."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

from bench.bench_scale import (
    ChildMemory,
    Point,
    differing_revision,
    linear,
    memory_ok,
    per_m,
    scaled_check,
    step_growth,
    steps,
    typical,
)
from checks import free_roots, pgd_switch, world
from mmuci import proc
from mmucore.extract import extract

MIB = 1024  # KiB


def test_scaled_check_is_free_roots_times_two_call_only_dimensions() -> None:
    chk, fr = scaled_check(), free_roots.CHECK
    assert chk.size == math.prod(len(d.labels) for d in chk.dims) == 132_192_000
    assert chk.size == fr.size * 3 * 2 >= 10**8
    assert sorted(d.name for d in chk.dims) == sorted([*(d.name for d in fr.dims),
                                                       "new_pgd", "new_role"])  # fmt: skip
    assert chk.dims[-2:] == (pgd_switch.NEW_PGD, pgd_switch.NEW_ROLE)
    assert not any(world.read_by_setup(d.world) for d in chk.dims[-2:])
    # the mask varies fastest, as in free_roots: the setup is reused between the same states
    assert chk.dims[0] == fr.dims[0] == free_roots.ROOTS_TO_FREE
    assert (chk.call, chk.invariants, chk.entry) == (fr.call, fr.invariants, fr.entry)
    assert chk.name != fr.name  # its own module, never mistaken for the registered check


def test_every_prefix_of_a_million_states_covers_every_mode() -> None:
    chk = scaled_check()
    seen = {(s["MMU mode"], s["tdp_mmu_enabled"], s["special roots"], s["sp attributes"])
            for s in map(chk.decode, range(0, 10**6, 17))}  # fmt: skip
    assert len(seen) == 6 * 2 * 2 * 3


def _pt(states: int, wall: float, children_kib: int = 90 * MIB, self_kib: int = 35 * MIB) -> Point:
    return Point(states, wall, wall / 2, 40 * MIB, children_kib, self_kib, 0)


def test_per_m_is_relative_to_the_first_size_and_linear_allows_the_slack() -> None:
    pts = [_pt(10**6, 1.0), _pt(10**7, 9.0), _pt(10**8, 95.0)]
    assert per_m(pts, "wall") == pytest.approx([1.0, 0.9, 0.95])
    assert per_m(pts, "cpu") == pytest.approx([1.0, 0.9, 0.95])
    assert linear(pts, "wall")
    worse = [*pts[:2], _pt(10**8, 130.0)]
    assert per_m(worse, "wall")[-1] == pytest.approx(1.3)
    assert not linear(worse, "wall")
    assert linear(worse, "wall", slack=1.3)


def test_memory_counts_the_children_at_once_and_the_bench() -> None:
    assert memory_ok(_pt(10**8, 1.0))
    assert not memory_ok(_pt(10**8, 1.0, children_kib=1024 * MIB - 35 * MIB))
    assert memory_ok(_pt(10**8, 1.0, children_kib=1024 * MIB - 36 * MIB))


def test_child_memory_sees_a_child_that_touches_80_mib() -> None:
    with ChildMemory(interval=0.05) as mem:
        proc.run([sys.executable, "-c", "x = b'x' * (80 << 20); import time; time.sleep(1)"])
    assert mem.one >= 80 * MIB and mem.total >= 80 * MIB
    assert mem.one < 200 * MIB


def test_steps_take_out_the_fixed_cost_of_the_first_size() -> None:
    # 0.5 s to start the children, then 0.3 s per million states
    pts = [_pt(n, 0.5 + 0.3 * n / 1e6) for n in (10**6, 10**7, 10**8)]
    assert steps(pts, "wall") == pytest.approx([0.8, 0.3, 0.3])
    assert per_m(pts, "wall")[-1] == pytest.approx(30.5 / 100 / 0.8)
    assert pts[0].cores == pytest.approx(0.5)
    assert step_growth(pts, "wall") == pytest.approx(1.0)
    bent = [*pts[:2], _pt(10**8, 0.5 + 3.0 + 0.5 * 90)]  # 0.5 s/M from 10^7 on
    assert step_growth(bent, "wall") == pytest.approx(0.5 / 0.3)


def test_typical_takes_median_seconds_and_largest_memory() -> None:
    tries = [_pt(10**7, 3.0), _pt(10**7, 9.0, children_kib=95 * MIB), _pt(10**7, 4.0)]
    t = typical(tries)
    assert (t.states, t.wall, t.cpu) == (10**7, 4.0, 2.0)
    assert t.children_kib == 95 * MIB and t.self_kib == 35 * MIB


def test_differing_revision_changes_mmu_free_root_page_only(tree_61, tmp_path: Path) -> None:
    base = extract(tree_61.path, "HEAD")
    patched = differing_revision(tree_61.path, tmp_path)
    a = {(p.kind, p.name): p.text for p in base.pieces}
    b = {(p.kind, p.name): p.text for p in patched.pieces}
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == [("function", "mmu_free_root_page")]
    assert " && sp->role.invalid" in a[("function", "mmu_free_root_page")]
    assert " && sp->role.invalid" not in b[("function", "mmu_free_root_page")]
    assert proc.git(tree_61.path, "status", "--porcelain") == ""  # the prepared tree untouched
