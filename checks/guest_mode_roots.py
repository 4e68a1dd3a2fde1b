"""guest_mode_roots: `kvm_mmu_free_guest_mode_roots` frees the cached roots of L2.

State: each previous root (kind, role.guest_mode), the current root (an invalid one with
each pgd real KVM leaves there), the MMU's own root_role.guest_mode, attributes, mode,
tdp_mmu_enabled: 5^3 x 16 x 6 x 2 x 3 x 6 x 2 = 864,000. The function reads prev_roots[i].hpa,
each sp's role.guest_mode and the MMU's root_role.guest_mode, and frees through
kvm_mmu_free_roots (which reads what free_roots lists); each dimension's `why` says
which values real KVM holds there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checks import common
from checks.space import Check, Dim, needs_functions

if TYPE_CHECKING:
    from mmucore.extract import Extraction

GUEST_MODE = common.root_slot_set_dim(
    "role.guest_mode set on",
    "gm",
    why=(
        "any subset: a nested MMU caches L1 and L2 roots side by side; the bit of an invalid "
        "or sp-less slot has no sp to live on and is ignored"
    ),
)
MMU_GUEST_MODE = Dim(
    "the MMU's root_role.guest_mode",
    ("0", "1 (L2 active)"),
    "mmu_gm",
    why="0 for every caller (I10); 1 only to show the WARN_ON_ONCE that guards it",
)
# the shadow, TDP and PAE roots the function can meet, and every invalid pgd
CURRENT = common.current_dim(common.CURRENT_KINDS[:4] + common.CURRENT_INVALID[1:])


def _call(ex: Extraction) -> str:
    return f"kvm_mmu_free_guest_mode_roots({common.kvm_arg(ex)}, &drv_mmu);"


def _skip_reason(ex: Extraction) -> str | None:
    return needs_functions(ex, ("kvm_mmu_free_guest_mode_roots",))


CHECK = Check(
    name="guest_mode_roots",
    entry=("kvm_mmu_free_guest_mode_roots",),
    dims=(
        *common.prev_dims(),
        GUEST_MODE,
        CURRENT,
        MMU_GUEST_MODE,
        common.ATTRS,
        common.MODE,
        common.TDP_MMU,
    ),
    invariants=(common.I2, common.I3, common.I6, common.I10),
    call=_call,
    skip_reason=_skip_reason,
    description="kvm_mmu_free_guest_mode_roots frees the previous roots used by L2",
)
