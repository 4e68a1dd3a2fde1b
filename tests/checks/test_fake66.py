"""The checks on a fake tree of the 6.6+ shape (root_to_sp, dummy root, is_root_usable that
WARNs on a root without an sp, 2-argument kvm_tdp_mmu_put_root, read_lock for TDP):
every check runs, and pgd_switch judges edits of is_root_usable there."""

from __future__ import annotations

import pytest

from checks import engine
from checks.plan import Chain
from checks.space import all_checks
from mmuci import proc
from mmucore import extract
from mmukit.transforms import Transformation, insert_after, replace_once, within_function
from tests.mmucore import fakelinux_66, treeedit

MMU = "arch/x86/kvm/mmu/mmu.c"


def _t(name: str, old: str, new: str) -> Transformation:
    return Transformation(
        name, MMU, within_function("is_root_usable", replace_once(old, new)), name
    )


REORDER = _t(
    "reorder",
    "\tif (!want.direct && r->pgd != pgd)\n\t\treturn false;\n\tpage = root_to_sp(r->hpa);\n",
    "\tpage = root_to_sp(r->hpa);\n\tif (!want.direct && r->pgd != pgd)\n\t\treturn false;\n",
)
DIRECT_PGD = _t("direct-pgd", "!want.direct && r->pgd != pgd", "r->pgd != pgd")
NO_SP_TEST = _t("no-sp-test", "\tif (WARN_ON_ONCE(!page))\n\t\treturn false;\n", "")


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    d = tmp_path_factory.mktemp("fake66")
    tree = fakelinux_66.make(d / "tree")
    return tree, proc.git(tree, "rev-parse", "HEAD"), extract.extract(tree), d / "cache"


def _diff(fake, t: Transformation, check: str):
    tree, rev0, base, cache = fake
    patched = extract.extract(tree, treeedit.commit(tree, t, base=rev0))
    (res,) = engine.compare_each(base, patched, cache_dir=cache, names=[check])
    return res


def test_the_generation_is_detected(fake) -> None:
    ex = fake[2]
    assert {"root_to_sp", "dummy_root", "roots_all_bounded", "tdp_read_lock_free"} <= ex.features
    assert "tdp_put_root_shared_arg" not in ex.features
    assert "pgd_switch_takes_mmu" in ex.features and "new_pgd_caller" not in ex.features
    assert "fast_pgd_switch" in ex.entry_points and not ex.missing


def test_every_check_runs(fake) -> None:
    ex = fake[2]
    for chk in all_checks():
        assert chk.skip_reason(ex) is None, chk.name


def test_a_refactor_of_is_root_usable_is_same(fake) -> None:
    res = _diff(fake, REORDER, "pgd_switch")
    assert res.verdict == "same", res.groups[:1]
    assert res.states > 0 and not res.skipped


def test_a_direct_mmu_that_compares_pgds_differs(fake) -> None:
    res = _diff(fake, DIRECT_PGD, "pgd_switch")
    assert res.verdict == "differs", res
    assert any("root" in g.what for g in res.groups if g.inside_invariants)


def test_dropping_the_sp_test_faults_only_outside_the_invariants(fake) -> None:
    res = _diff(fake, NO_SP_TEST, "pgd_switch")
    assert res.crash is not None and "I3" in res.crash.invariants_violated, res.crash
    assert res.differing_inside == 0 and res.differing_outside > 0, res
    assert res.crash_inside == 0 and res.verdict == "differs-outside-invariants", res


# A caller of the 5.17 shape added on top of the 5.18+ lookup: the two revisions would be
# entered at different functions.
WITH_CALLER = Transformation(
    "with-caller",
    MMU,
    insert_after(
        "return cached_root_find_without_current(vm, m, pgd, want);\n}\n",
        "\nstatic void __kvm_mmu_new_pgd(struct kvm_vcpu *vcpu, gpa_t pgd,\n"
        "\t\t\t      union kvm_mmu_page_role want)\n{\n"
        "\tif (fast_pgd_switch(vcpu->kvm, vcpu->arch.mmu, pgd, want))\n"
        "\t\tkvm_make_request(13, vcpu);\n}\n",
    ),
    "with-caller",
)


def test_revisions_entered_at_different_functions_are_not_compared(fake) -> None:
    res = _diff(fake, WITH_CALLER, "pgd_switch")
    assert res.verdict == "skipped", res
    assert "__kvm_mmu_new_pgd" in res.skipped and "fast_pgd_switch" in res.skipped
    tree, rev0, base, cache = fake
    patched = extract.extract(tree, treeedit.commit(tree, WITH_CALLER, base=rev0))
    (chk,) = all_checks(["pgd_switch"])
    (chained,) = engine.run(Chain(chk, (base, patched), ((0, 1),)), cache_dir=cache)
    assert chained.verdict == "skipped" and chained.skipped == res.skipped
