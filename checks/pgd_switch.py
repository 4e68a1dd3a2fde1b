"""pgd_switch: switching to a new pgd/role through the cached roots.

A new pgd/role against the current root and the three cached roots: hits, misses, LRU
rotation, eviction of the LRU root, and freeing a current root without an sp first.
Roots are of the MMU's own kind (TDP pages for a TDP-MMU, shadow pages otherwise).

Where the check enters, per API generation (facts detected from the code, see
mmucore/generations.py: `pgd_switch_takes_mmu`, `new_pgd_caller`):

* 5.18+ `fast_pgd_switch(kvm, mmu, pgd, role)`: the lookup itself frees the evicted LRU
  root (`cached_root_find_and_keep_current`) and a current root without an sp; its
  caller `kvm_mmu_new_pgd` only adds the requests of a hit.
* 5.15-5.17 `__kvm_mmu_new_pgd(vcpu, pgd, role)`, the caller of `fast_pgd_switch(vcpu,
  pgd, role)`: there `cached_root_available` only rotates (on a miss the evicted LRU root
  comes back as the current root) and the *caller* frees it, then on a hit makes the
  requests (KVM_REQ_LOAD_MMU_PGD; with flush_on_reuse also KVM_REQ_MMU_SYNC and
  KVM_REQ_TLB_FLUSH_CURRENT), clears the MMIO cache and resets the write-flooding count
  of the reused root. Entering at `fast_pgd_switch` would call a miss "same" whether or
  not the evicted root is ever freed, and a patch moving that free from the caller into
  the lookup (as 5.18 did) would differ only in where the free happens, not in what KVM
  does. `__kvm_mmu_new_pgd` is the smallest function at which the whole behaviour
  (rotation, free, requests) is observable, so it is the entry wherever a tree has it
  (also the 5.18 trees between the lookup rewrite and the caller's removal).
  A 5.17-shaped tree without `__kvm_mmu_new_pgd` is skipped (its caller is not modelled).
  Measured on the fake 5.17 tree (tests/checks/test_pgd_switch_old.py): entered at
  `fast_pgd_switch`, dropping the caller's free or the flush_on_reuse sync is "same" and
  moving the free into the lookup differs in 228,432 states; entered at
  `__kvm_mmu_new_pgd` the first two differ and the move is "same" (also on a real 5.15.85).

The state, one line per dimension: which values real KVM can hold there at entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checks import common
from checks.space import Check, Dim, needs_functions
from checks.world import GUEST_PGDS
from checks.world import SLOT_CODES as C

if TYPE_CHECKING:
    from mmucore.extract import Extraction

# new_pgd: the CR3/EPTP/nCR3 being loaded is any guest value: the pgd of a cached root
# (g1, g2) or of none (g3, which is also the stale pgd an invalid slot may carry below).
NEW_PGD = Dim("new_pgd", tuple(f"{k.lower()} ({v:#x})" for k, v in GUEST_PGDS.items()), "new_pgd")
# new_role: the role of the new mode; equal to the cached roots' role (r1) or differing in
# one bit (r2: an EFER.NX/CR0.WP/SMEP... change gives a different role.word); direct is
# the MMU mode's (a direct MMU ignores the pgd).
NEW_ROLE = Dim("new_role", ("the MMU's role r1", "r2 (r1 with efer_nx)"), "new_role")
_ROOTS = (
    ("root(g1, r1)", C["KIND_G1_R1"]),
    ("root(g2, r1)", C["KIND_G2_R1"]),
    ("root(g1, r2)", C["KIND_G1_R2"]),
)
# mmu->root: invalid, with each pgd an invalid current root can carry (0 after
# kvm_mmu_free_roots(CURRENT) in every version; INVALID_PAGE or a stale pgd when 5.17's
# miss rotates an invalid LRU slot into it, or 5.18+'s miss leaves the evicted slot
# there and kvm_mmu_free_roots skips an invalid current root, until the next load); a
# root of the MMU's kind for a cached pgd/role; or a root with no sp (pae_root for PAE,
# pml4_root for 32-bit NPT under 4-level NPT, the dummy root of 6.6+ for an invisible
# guest root) - each outside I2 in the modes that do not allocate it.
CURRENT = common.slot_dim(
    "mmu->root",
    "slot0",
    (("INVALID_PAGE (pgd 0)", C["INVALID"]), *_ROOTS, ("__pa(pae_root)", C["PAE"]),
     ("__pa(pml4_root)", C["PML4"]), ("dummy root", C["DUMMY"]),
     ("INVALID_PAGE (pgd INVALID_PAGE)", C["INVALID_INFO"]),
     ("INVALID_PAGE (stale pgd g3)", C["INVALID_STALE"])),
)  # fmt: skip
# prev_roots[i]: invalid (KVM_MMU_ROOT_INFO_INVALID, or freed: see `stale`), a root of the
# MMU's kind for g1/g2 and r1/r2 (aliases are not modelled here: one root per slot), or a
# root with no sp, which real KVM never caches (outside I3: 5.17 caches only in 64-bit
# modes, 5.18+ frees such a root before the lookup).
PREV = tuple(
    common.slot_dim(
        f"prev_roots[{i}]",
        f"slot{i + 1}",
        (("INVALID", C["INVALID"]), *_ROOTS, ("__pa(pae_root) (no sp)", C["PAE"])),
    )
    for i in range(3)
)
# the pgd of an invalid prev root: INVALID_PAGE (kvm_mmu_create, KVM_MMU_ROOT_INFO_INVALID),
# stale (mmu_free_root_page invalidates only the hpa; 5.18+ find_without_current leaves
# the last slot's pgd): g3, the one pgd that new_pgd can match with no valid root; or 0
# (a freed direct root, or 5.17's freed current root rotated into the cache).
STALE = Dim("pgd of an invalid prev root", ("INVALID_PAGE", "stale g3", "0"), "stale")
# flush_on_reuse: the module parameter force_flush_and_sync_on_reuse (default false, root
# can set it at any time); only 5.17's __kvm_mmu_new_pgd reads it (5.18+ fast_pgd_switch
# does not, and both values run the same there: a run whose revisions all lack the name
# runs it at false only, see checks/plan.py).
FLUSH = Dim(
    "flush_on_reuse (module parameter)", ("false", "true"), "flush",
    reads=("force_flush_and_sync_on_reuse",),
)  # fmt: skip
# common.ATTRS: the roots' sps valid, role.invalid with exactly their references, or
# role.invalid and one more reference held elsewhere (a zapped root still in use).
# common.MODE: the six MMU modes, i.e. the level fields / root_role that 5.17's 64-bit test
# and the lookups read (5.17's nested NPT/EPT init passes a role of the new mode while the
# level fields still describe the old one: such a role differs in its word, as r2 does).
# common.TDP_MMU: the TDP MMU on or off, i.e. which kind of page a direct MMU's roots are.

# I2 of common.py counts every invalid spelling of mmu->root (INVALID_CODES) as invalid.
I2 = common.I2


def _call(ex: Extraction) -> str:
    head = (
        "union kvm_mmu_page_role role = { .word = 0 };\n\t"
        "gpa_t pgd = drv_w.new_pgd == NEW_PGD_G1 ? DRV_G1 : drv_w.new_pgd == NEW_PGD_G2 ? DRV_G2 "
        ": DRV_G3;\n\t"
        "role.word = drv_role_word(drv_w.new_role, drv_modes[drv_w.mode].direct);\n\t"
    )
    if "new_pgd_caller" in ex.features:  # returns nothing: a hit shows as its requests
        return head + "__kvm_mmu_new_pgd(drv_vcpu(), pgd, role);\n\tdrv_ret = 0;"
    return head + "drv_ret = fast_pgd_switch(&drv_kvm, &drv_mmu, pgd, role);"


def _entered(ex: Extraction) -> str:
    if "new_pgd_caller" in ex.features:
        return "__kvm_mmu_new_pgd(vcpu, pgd, role)"
    return "fast_pgd_switch(kvm, mmu, pgd, role)"


def _skip_reason(ex: Extraction) -> str | None:
    why = needs_functions(ex, ("fast_pgd_switch",))
    if why:
        return why
    if {"new_pgd_caller", "pgd_switch_takes_mmu"} & ex.features:
        return None
    return (
        "fast_pgd_switch(vcpu, pgd, role) without __kvm_mmu_new_pgd(vcpu, pgd, role): the "
        "caller that frees the evicted root is not in this tree, so a miss cannot be judged"
    )


CHECK = Check(
    name="pgd_switch",
    entry=("__kvm_mmu_new_pgd", "fast_pgd_switch"),
    dims=(
        NEW_PGD,
        NEW_ROLE,
        CURRENT,
        *PREV,
        STALE,
        common.ATTRS,
        common.MODE,
        common.TDP_MMU,
        FLUSH,
    ),  # fmt: skip
    invariants=(I2, common.I3, common.I9),
    call=_call,
    skip_reason=_skip_reason,
    entered=_entered,
    description="a new pgd/role finds a cached root (requests on a hit) or evicts the LRU",
)
