"""The state space holds what real KVM can hold at entry (issue 9.1), and the seed commit's
one reachable difference shows inside the invariants, named as the benign normalisation."""

from __future__ import annotations

import pytest

from checks import render
from checks.space import IGNORE_INVALID_PGD, Check, all_checks
from checks.world import SLOT_CODES
from tests.checks.edits import SEED_PRE_PATCH

OWN = ("free_roots", "guest_mode_roots", "obsolete_roots")


def _index(chk: Check, **labels: str) -> int:
    """The state index of the given labels (by dimension name; value 0 elsewhere)."""
    idx, scale = 0, 1
    for d in chk.dims:
        if d.name in labels:
            idx += d.labels.index(labels[d.name]) * scale
        scale *= len(d.labels)
    return idx


@pytest.mark.parametrize("name", OWN)
def test_every_dimension_says_which_values_real_kvm_holds(name) -> None:
    (chk,) = all_checks([name])
    for d in chk.dims:
        assert d.why and "\n" not in d.why, f"{name}: dimension {d.name!r} has no why"


def test_the_space_renders_with_its_reasons() -> None:
    (chk,) = all_checks(["free_roots"])
    text = render.render_space(chk)
    assert text.startswith("free_roots: 22,032,000 states")
    for d in chk.dims:
        assert f"  {d.name} ({len(d.labels)}): " in text and f"    why: {d.why}" in text
    assert "INVALID_PAGE (stale pgd 0x33000)" in text and "  I2: " in text


def test_invalid_slots_take_every_pgd_real_kvm_leaves_there() -> None:
    invalid = {SLOT_CODES[k] for k in ("INVALID", "INVALID_INFO", "INVALID_STALE")}
    for name in OWN:
        (chk,) = all_checks([name])
        cur = next(d for d in chk.dims if d.name == "mmu->root")
        # pgd 0, INVALID_PAGE and a stale gpa for an invalid mmu->root
        assert {cur.code(i) for i in range(len(cur.labels))} >= invalid, name
        prev = [d for d in chk.dims if d.name.startswith("prev_roots[")]
        got = {d.code(i) for d in prev for i in range(len(d.labels))} & invalid
        # INVALID_PAGE and stale for an invalid prev slot, spread over the three slots
        assert got == {SLOT_CODES["INVALID_INFO"], SLOT_CODES["INVALID_STALE"]}, name


def test_state_counts_grow_little() -> None:
    sizes = {c.name: c.size for c in all_checks(list(OWN))}
    assert sizes == {
        "free_roots": 22_032_000,  # was 17,136,000: x 9/7
        "guest_mode_roots": 864_000,  # was 576,000: x 6/4
        "obsolete_roots": 1_296_000,  # was 1,008,000: x 9/7
    }


@pytest.mark.slow
def test_an_invalid_slot_enters_with_the_pgd_its_label_names(scratch) -> None:
    """The world writes the pgd each label names (run in the real sandbox on 6.1)."""
    from checks import engine
    from mmucore import sandbox

    s = scratch["6.1"]
    (chk,) = all_checks(["free_roots"])
    base = s.extraction(s.base)
    bb, _ = (engine.build_one(chk, e, s.cache_dir)[0] for e in (base, base))
    want = {  # (mmu->root, prev_roots[0], prev_roots[1], prev_roots[2]) -> (hpa, pgd) each
        "INVALID_PAGE (pgd 0)": 0,
        "INVALID_PAGE (pgd INVALID_PAGE)": render.INVALID_PAGE,
        "INVALID_PAGE (stale pgd 0x33000)": 0x33000,
    }
    indices = [_index(chk, **{"mmu->root": label}) for label in want]
    out = sandbox.run(
        "tests.checks.probe:fields_before",
        {"check": "free_roots", "indices": indices},
        [bb],
    )
    assert out.ok, out.message
    inv, stale = render.INVALID_PAGE, 0x33000
    for before, pgd in zip(out.value["before"], want.values(), strict=True):
        # root.hpa, root.pgd, then prev_roots[0..2].hpa/.pgd
        assert before[:8] == [inv, pgd, inv, stale, inv, inv, inv, stale], before[:8]


@pytest.mark.slow
def test_seed_commit_in_its_pre_patch_shape(scratch) -> None:
    """594bef79 reproduced on 6.1: the pre-patch kvm_mmu_free_roots as the baseline, the
    real 6.1 code as patched."""
    res = scratch["6.1"].diff_from(SEED_PRE_PATCH.t, "free_roots")
    text = render.render_result(res)
    assert res.verdict == "differs-outside-invariants", f"{SEED_PRE_PATCH.why}\n{text[:4000]}"
    assert res.differing_inside == 0 and res.differing_outside > 0

    # inside: the old code's `mmu->root.pgd = 0` on an invalid current root when a previous
    # root is freed; benign, and named so
    (pgd,) = [g for g in res.groups if g.inside_invariants]
    assert pgd.benign == IGNORE_INVALID_PGD.name and pgd.what == ("root",), text[:4000]
    ex = pgd.example
    assert (
        ex.state["mmu->root"].startswith("INVALID_PAGE (") and "pgd 0)" not in ex.state["mmu->root"]
    )
    assert not ex.invariants_violated
    assert any(ln.startswith("!") and "mmu->root.pgd = 0x0  (was" in ln for ln in ex.baseline)
    assert not any("mmu->root.pgd = 0x0" in ln for ln in ex.patched)
    # both take and drop mmu_lock: the old code walks pae_root too, with nothing in it
    assert "write_lock(&kvm->mmu_lock)" in ex.baseline and "write_lock(&kvm->mmu_lock)" in (
        ex.patched
    )
    assert "benign: vanishes under the normalisation 'ignore the pgd of an invalid slot'" in text

    # outside: the WARN (the level predicate sends __pa(pae_root) to mmu_free_root_page in a
    # 64-bit mode) needs I2; the root counts need I2 (the predicate and the root kind
    # disagree) or I1 (the old code walks pae_root for an invalid root whose entries are set)
    outside = [g for g in res.groups if not g.inside_invariants and g.benign is None]
    warn = [g for g in outside if "warn" in g.what]
    count = [g for g in outside if "root_count" in g.what]
    assert warn and count, text[:4000]
    assert all("I2" in g.invariants_needed for g in warn), text[:4000]
    assert all({"I1", "I2"} & set(g.invariants_needed) for g in count), text[:4000]
    assert any(g.invariants_needed == ("I2",) for g in count if "warn" not in g.what)
    assert any("WARN_ON(!sp) at mmu.c:" in ln for g in warn for ln in g.example.baseline)
    assert "needs I2 broken" in text
