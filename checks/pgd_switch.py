"""pgd_switch: `fast_pgd_switch` with the cached-root functions.

A new pgd/role against the current root and the three cached roots: hits, misses, LRU
rotation, eviction of the LRU root, and freeing a current root without an sp first.
Roots are of the MMU's own kind (TDP pages for a TDP-MMU, shadow pages otherwise).
"""

from __future__ import annotations

from typing import Any

from checks import common
from checks.space import Check, Dim, needs_functions
from checks.world import SLOT_CODES as C

NEW_PGD = Dim("new_pgd", ("g1 (0x11000)", "g2 (0x22000)", "g3 (0x33000)"), "new_pgd")
NEW_ROLE = Dim("new_role", ("the MMU's role r1", "r2 (r1 with efer_nx)"), "new_role")
_ROOTS = (
    ("root(g1, r1)", C["KIND_G1_R1"]),
    ("root(g2, r1)", C["KIND_G2_R1"]),
    ("root(g1, r2)", C["KIND_G1_R2"]),
)
CURRENT = common.slot_dim(
    "mmu->root",
    "slot0",
    (("INVALID_PAGE", C["INVALID"]), *_ROOTS, ("__pa(pae_root)", C["PAE"]),
     ("__pa(pml4_root)", C["PML4"]), ("dummy root", C["DUMMY"])),
)  # fmt: skip
PREV = tuple(
    common.slot_dim(
        f"prev_roots[{i}]",
        f"slot{i + 1}",
        (("INVALID", C["INVALID"]), *_ROOTS, ("__pa(pae_root) (no sp)", C["PAE"])),
    )
    for i in range(3)
)
STALE = Dim("pgd of an invalid prev root", ("INVALID_PAGE", "stale g3"), "stale")


def _call(ex: Any) -> str:
    return (
        "union kvm_mmu_page_role role = { .word = 0 };\n\t"
        "gpa_t pgd = drv_w.new_pgd == 0 ? DRV_G1 : drv_w.new_pgd == 1 ? DRV_G2 : DRV_G3;\n\t"
        "role.word = drv_role_word(drv_w.new_role, drv_modes[drv_w.mode].direct);\n\t"
        "drv_ret = fast_pgd_switch(&drv_kvm, &drv_mmu, pgd, role);"
    )


def _applies(ex: Any) -> str | None:
    why = needs_functions(ex, ("fast_pgd_switch",))
    if why:
        return why
    params = ex.functions["fast_pgd_switch"].params
    if len(params) != 4:
        return "fast_pgd_switch(vcpu, pgd, role) of 5.17 and older is not modelled"
    return None


CHECK = Check(
    name="pgd_switch",
    entry=("fast_pgd_switch",),
    dims=(NEW_PGD, NEW_ROLE, CURRENT, *PREV, STALE, common.ATTRS, common.MODE, common.TDP_MMU),
    invariants=(common.I2, common.I3, common.I9),
    call=_call,
    applies=_applies,
    description="fast_pgd_switch finds a cached root for the new pgd/role or evicts the LRU",
)
