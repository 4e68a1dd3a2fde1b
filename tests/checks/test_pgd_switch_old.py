"""pgd_switch on the 5.15/5.17 API (fast_pgd_switch(vcpu, pgd, role) under
__kvm_mmu_new_pgd): fake trees of our own C in those shapes, edits made by code."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks import engine
from checks.pgd_switch import CHECK
from checks.result import CheckResult
from mmuci import proc
from mmucore import extract
from mmukit.transforms import Transformation, replace_once, within_function
from tests.mmucore import fakelinux, treeedit

MMU = "arch/x86/kvm/mmu/mmu.c"


def _t(name: str, func: str, old: str, new: str) -> Transformation:
    return Transformation(name, MMU, within_function(func, replace_once(old, new)), name)


# A refactor: the same test, its terms in another order.
REORDER = _t(
    "is-root-usable-reorder",
    "is_root_usable",
    "return (want.direct || r->pgd == pgd) && VALID_PAGE(r->hpa) &&",
    "return VALID_PAGE(r->hpa) && (want.direct || r->pgd == pgd) &&",
)
# A behaviour change: a direct MMU no longer ignores the pgd.
DIRECT_PGD = _t(
    "is-root-usable-pgd", "is_root_usable", "(want.direct || r->pgd == pgd)", "(r->pgd == pgd)"
)
# Dropping the validity test: an invalid slot with a stale pgd becomes a "hit".
NO_VALID = _t("is-root-usable-no-valid", "is_root_usable", "&& VALID_PAGE(r->hpa) &&", "&&")
# The caller no longer frees the evicted root: leaks a root_count on every miss.
NO_FREE = _t(
    "new-pgd-no-free",
    "__kvm_mmu_new_pgd",
    "kvm_mmu_free_roots(v, m, KVM_MMU_ROOT_CURRENT);",
    "(void)m;",
)
# 5.18's move, in the 5.17 shape: the free of a miss from the caller into the lookup.
MOVE_FREE = Transformation(
    "free-in-lookup",
    MMU,
    lambda text: within_function(
        "__kvm_mmu_new_pgd",
        replace_once("kvm_mmu_free_roots(v, m, KVM_MMU_ROOT_CURRENT);", "(void)m;"),
    )(
        within_function(
            "fast_pgd_switch",
            replace_once(
                "\t\treturn false;\n\treturn cached_root_available(vcpu, pgd, role);",
                "\t\tgoto miss;\n\tif (cached_root_available(vcpu, pgd, role))\n\t\treturn true;\n"
                "miss:\n\tkvm_mmu_free_roots(vcpu, m, KVM_MMU_ROOT_CURRENT);\n\treturn false;",
            ),
        )(text)
    ),
    "free-in-lookup",
)
# The requests of a hit: flush_on_reuse no longer forces the sync.
NO_SYNC = _t("new-pgd-no-sync", "__kvm_mmu_new_pgd", "kvm_make_request(KVM_REQ_MMU_SYNC, v);\n", "")
# A reused shadow root keeps its write-flooding count.
NO_FLOOD = _t(
    "new-pgd-no-flood",
    "__kvm_mmu_new_pgd",
    "__clear_sp_write_flooding_count(to_shadow_page(m->root_hpa));",
    "(void)0;",
)


class Fake:
    def __init__(self, path: Path, cache: Path) -> None:
        self.path, self.cache = path, cache
        self.rev0 = proc.git(path, "rev-parse", "HEAD")
        self.base = extract.extract(path)
        self._results: dict[str, CheckResult] = {}

    def diff(self, t: Transformation) -> CheckResult:
        if t.name not in self._results:
            rev = treeedit.commit(self.path, t, base=self.rev0)
            patched = extract.extract(self.path, rev)
            (res,) = engine.compare_each(
                self.base, patched, cache_dir=self.cache, names=["pgd_switch"]
            )
            self._results[t.name] = res
        return self._results[t.name]


@pytest.fixture(scope="module", params=["5.17", "5.15"])
def fake(request, tmp_path_factory) -> Fake:
    d = tmp_path_factory.mktemp(f"fake-{request.param}")
    tree = fakelinux.make(d / "tree", request.param)
    return Fake(tree, d / "cache")


def test_the_old_api_is_entered_at_its_caller(fake) -> None:
    assert CHECK.skip_reason(fake.base) is None
    assert "__kvm_mmu_new_pgd(drv_vcpu(), pgd, role)" in CHECK.call(fake.base)
    res = fake.diff(REORDER)
    assert res.verdict == "same", res
    assert res.states == CHECK.size and not res.skipped


@pytest.mark.parametrize(
    "t, what",
    [
        (DIRECT_PGD, "root"),
        (NO_VALID, "bad_page"),  # 5.17 still tests the sp: pfn_to_page(garbage)
        (NO_FREE, "root_count"),
        (NO_SYNC, "calls"),
        (NO_FLOOD, "calls"),
    ],
    ids=lambda x: getattr(x, "name", x),
)
def test_a_behaviour_change_differs(fake, t, what) -> None:
    res = fake.diff(t)
    assert res.differing_inside > 0, res
    assert any(what in g.what for g in res.groups if g.inside_invariants), res.groups
    # a 5.17 free of a root with no sp may fault, but only where real KVM cannot be: the
    # reachable difference is the verdict
    assert res.verdict == "differs", res
    if res.crash is not None:
        assert res.crash_inside == 0 and res.crash.invariants_violated, res.crash


def test_moving_the_free_into_the_lookup_is_same_where_it_is_observable(fake) -> None:
    res = fake.diff(MOVE_FREE)
    assert res.verdict == "same", res.groups[:1]


def test_a_hit_shows_its_requests_and_the_flooding_reset(fake) -> None:
    res = fake.diff(NO_FLOOD)
    g = next(g for g in res.groups if g.inside_invariants)
    base = "\n".join(g.example.baseline)
    assert "kvm_make_request(KVM_REQ_LOAD_MMU_PGD, vcpu)" in base
    assert "vcpu_clear_mmio_info(vcpu, MMIO_GVA_ANY)" in base
    assert "atomic_set(&sp#" in base and "write_flooding_count, 0)" in base
    assert "atomic_set" not in "\n".join(g.example.patched)


def test_without_the_caller_the_old_lookup_is_not_run(tmp_path: Path) -> None:
    files = fakelinux.files("5.17")
    mmu = files[MMU]
    start = mmu.index("static void __kvm_mmu_new_pgd")
    files[MMU] = mmu[:start]
    ex = extract.extract(fakelinux.write(tmp_path / "t", files, "no caller"))
    why = CHECK.skip_reason(ex)
    assert why and "__kvm_mmu_new_pgd" in why and "evicted root" in why
