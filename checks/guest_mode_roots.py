"""guest_mode_roots: `kvm_mmu_free_guest_mode_roots` frees the cached roots of L2.

State: each previous root (kind, role.guest_mode), the current root, the MMU's own
root_role.guest_mode, attributes, mode, tdp_mmu_enabled: 5^3 x 16 x 4 x 2 x 3 x 6 x 2.
"""

from __future__ import annotations

from typing import Any

from checks import common
from checks.space import Check, Dim, needs_functions

GUEST_MODE = common.root_slot_set_dim("role.guest_mode set on", "gm")
MMU_GUEST_MODE = Dim("the MMU's root_role.guest_mode", ("0", "1 (L2 active)"), "mmu_gm")


def _call(ex: Any) -> str:
    return f"kvm_mmu_free_guest_mode_roots({common.kvm_arg(ex)}, &drv_mmu);"


def _applies(ex: Any) -> str | None:
    return needs_functions(ex, ("kvm_mmu_free_guest_mode_roots",))


CHECK = Check(
    name="guest_mode_roots",
    entry=("kvm_mmu_free_guest_mode_roots",),
    dims=(
        *common.prev_dims(),
        GUEST_MODE,
        common.current_dim(common.CURRENT_KINDS[:4]),
        MMU_GUEST_MODE,
        common.ATTRS,
        common.MODE,
        common.TDP_MMU,
    ),
    invariants=(common.I2, common.I3, common.I6, common.I10),
    call=_call,
    applies=_applies,
    description="kvm_mmu_free_guest_mode_roots frees the previous roots used by L2",
)
