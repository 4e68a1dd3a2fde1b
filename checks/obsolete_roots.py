"""obsolete_roots: `__kvm_mmu_free_obsolete_roots` with `is_obsolete_root`.

State: every slot's kind (an invalid current root with each pgd real KVM leaves there),
which sps have a stale mmu_valid_gen, PAE entries (none or all four), attributes, mode,
tdp_mmu_enabled: 9 x 5^3 x 16 x 2 x 3 x 6 x 2 = 1,296,000. is_obsolete_root reads a slot's
hpa, its sp's role.invalid, tdp_mmu_page and mmu_valid_gen and kvm->arch.mmu_valid_gen;
the rest goes through kvm_mmu_free_roots. Each dimension's `why` says which values real KVM
holds there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checks import common
from checks.space import Check, Dim, needs_functions

if TYPE_CHECKING:
    from mmucore.extract import Extraction

STALE_GEN = common.root_slot_set_dim(
    "stale mmu_valid_gen on",
    "obs",
    why=(
        "any subset (a zap of all pages bumps kvm->arch.mmu_valid_gen; roots made before "
        "it are stale, later ones not); the code only compares for equality, so one "
        "stale value stands for all; TDP sps ignore it (they use role.invalid)"
    ),
)
PAE_ALL = Dim(
    "pae_root entries set",
    ("none", "[0]|[1]|[2]|[3]"),
    "pae",
    (0, 15),
    why=(
        "is_obsolete_root never reads the entries: they matter only in kvm_mmu_free_roots's "
        "PAE loop, which free_roots runs over all 16 subsets"
    ),
)


def _call(ex: Extraction) -> str:
    return "__kvm_mmu_free_obsolete_roots(&drv_kvm, &drv_mmu);"


def _skip_reason(ex: Extraction) -> str | None:
    return needs_functions(ex, ("__kvm_mmu_free_obsolete_roots",))


CHECK = Check(
    name="obsolete_roots",
    entry=("__kvm_mmu_free_obsolete_roots", "is_obsolete_root"),
    dims=(
        common.current_dim(),
        *common.prev_dims(),
        STALE_GEN,
        PAE_ALL,
        common.ATTRS,
        common.MODE,
        common.TDP_MMU,
    ),
    invariants=(common.I1, common.I2, common.I3, common.I6, common.I9),
    call=_call,
    skip_reason=_skip_reason,
    description="__kvm_mmu_free_obsolete_roots frees invalid, stale and sp-less roots",
)
