"""free_roots: `kvm_mmu_free_roots` (with `mmu_free_root_page`) over every roots_to_free.

State: the roots_to_free mask, the current root's kind (an invalid one with each pgd
real KVM leaves there), each previous root, the PAE entries, the sps' role.invalid/root
counts, the MMU mode (levels, direct), whether the TDP MMU is enabled, and whether the
special roots are allocated. 17 x 9 x 5^3 x 16 x 3 x 6 x 2 x 2 = 22,032,000 states.
Each dimension's `why` says which values real KVM holds there at entry (see checks/common.py
for the shared ones); the fields kvm_mmu_free_roots reads are the mask, root.hpa (and,
since it may write it, root.pgd), prev_roots[i].hpa, pae_root and its entries, the sps'
role, root_count / tdp_mmu_root_count and tdp_mmu_page, and the levels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checks import common
from checks.space import Check, Dim, needs_functions

if TYPE_CHECKING:
    from mmucore.extract import Extraction

_ROOT_BITS = ["KVM_MMU_ROOT_CURRENT"] + [f"KVM_MMU_ROOT_PREVIOUS({i})" for i in range(3)]
ROOTS_TO_FREE = Dim(
    "roots_to_free",
    tuple(
        "0" if m == 0 else "|".join(b for i, b in enumerate(_ROOT_BITS) if m >> i & 1)
        for m in range(16)
    )
    + ("~0UL",),  # fmt: skip
    "mask",
    why=(
        "callers pass combinations of KVM_MMU_ROOT_* (all 16) or KVM_MMU_ROOTS_ALL, which is "
        "~0UL up to 6.3 and exactly the four bits from 6.4 (I8): other bits are never set"
    ),
)


def _call(ex: Extraction) -> str:
    mask = "(w_mask == MASK_ALL_ONES ? ~0UL : (unsigned long)w_mask)"
    return (
        f"int w_mask = drv_w.mask;\n\tkvm_mmu_free_roots({common.kvm_arg(ex)}, &drv_mmu, {mask});"
    )


def _skip_reason(ex: Extraction) -> str | None:
    return needs_functions(ex, ("kvm_mmu_free_roots",))


CHECK = Check(
    name="free_roots",
    entry=("kvm_mmu_free_roots", "mmu_free_root_page"),
    dims=(
        ROOTS_TO_FREE,
        common.current_dim(),
        *common.prev_dims(),
        common.PAE,
        common.ATTRS,
        common.MODE,
        common.TDP_MMU,
        common.SPECIALS,
    ),
    invariants=(common.I1, common.I2, common.I3, common.I6, common.I8, common.I9),
    call=_call,
    skip_reason=_skip_reason,
    description="kvm_mmu_free_roots frees the selected roots and their pages",
)
