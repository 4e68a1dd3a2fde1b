"""Dimensions and invariants shared by the root-management checks.

World slot codes are those of checks/world.py (SLOT_CODES); invariants are C over
`w` (const struct drv_world *), true when the fact holds.
"""

from __future__ import annotations

from typing import Any

from checks.space import Dim, Invariant
from checks.world import MODES, SLOT_CODES

C = SLOT_CODES

# mmu->root, prev_roots[i]: labels and their world codes.
CURRENT_KINDS = (
    ("INVALID_PAGE", C["INVALID"]),
    ("shadow sp#3", C["SP_G1_R1"]),
    ("TDP root sp#3", C["TDP"]),
    ("__pa(pae_root)", C["PAE"]),
    ("__pa(pml4_root)", C["PML4"]),
    ("__pa(pml5_root)", C["PML5"]),
    ("dummy root", C["DUMMY"]),
)


def prev_kinds(i: int) -> tuple[tuple[str, int], ...]:
    """The kinds a prev_roots[i] slot takes (its own page is sp#(4+i))."""
    return (
        ("INVALID", C["INVALID"]),
        (f"shadow sp#{4 + i}", C["SP_G1_R1"]),
        (f"TDP root sp#{4 + i}", C["TDP"]),
        ("sp#3 (shared with mmu->root)", C["ALIAS"]),
        ("__pa(pae_root) (no sp)", C["PAE"]),
    )


def slot_dim(name: str, world: str, kinds: tuple[tuple[str, int], ...]) -> Dim:
    return Dim(name, tuple(k for k, _ in kinds), world, tuple(c for _, c in kinds))


def current_dim(kinds: tuple[tuple[str, int], ...] = CURRENT_KINDS) -> Dim:
    return slot_dim("mmu->root", "slot0", kinds)


def prev_dims() -> tuple[Dim, ...]:
    return tuple(slot_dim(f"prev_roots[{i}]", f"slot{i + 1}", prev_kinds(i)) for i in range(3))


ATTRS = Dim(
    "sp attributes",
    (
        "valid, root_count = its references",
        "role.invalid, root_count = its references",
        "role.invalid, one more reference held elsewhere",
    ),
    "attrs",
)
MODE = Dim("MMU mode", MODES, "mode")
TDP_MMU = Dim("tdp_mmu_enabled", ("false", "true"), "tdp")
SPECIALS = Dim(
    "special roots", ("pae_root, pml4_root, pml5_root allocated", "none allocated"), "specials"
)


def _bits_label(mask: int, names: list[str]) -> str:
    got = [n for i, n in enumerate(names) if mask >> i & 1]
    return "|".join(got) if got else "none"


ROOT_SLOTS = ["mmu->root", "prev_roots[0]", "prev_roots[1]", "prev_roots[2]"]


def root_slot_set_dim(label: str, key: str) -> Dim:
    """A dimension over the 16 subsets of {mmu->root, prev_roots[0..2]}: which slots have
    some attribute (bit 0 the current root, bit 1+i prev_roots[i])."""
    return Dim(label, tuple(_bits_label(m, ROOT_SLOTS) for m in range(16)), key)


PAE = Dim(
    "pae_root entries set",
    tuple(_bits_label(m, [f"[{i}]" for i in range(4)]) for m in range(16)),
    "pae",
)

# A TDP page in slot s (an alias shares slot 0's page).
_TDP_SLOT = "(w->slot[{s}] == 4 || (w->slot[{s}] == 5 && w->slot[0] == 4))"
_SHADOW_SLOT = (
    "((w->slot[{s}] >= 1 && w->slot[{s}] <= 3) || (w->slot[{s}] >= 10 && !(w->mode == 1 && "
    "w->tdp)) || (w->slot[{s}] == 5 && w->slot[0] != 4))"
)

I1 = Invariant(
    "I1",
    "pae_root entries are set only while mmu->root is pae_root, pml4_root or pml5_root",
    "w->pae == 0 || (w->slot[0] >= 6 && w->slot[0] <= 8)",
)
I2 = Invariant(
    "I2",
    "mmu->root matches the MMU mode (one sp-backed root only for 64-bit paging, pae_root "
    "for PAE, pml4_root/pml5_root for 32-bit NPT under 4/5-level NPT, dummy only for "
    "shadow paging) and those modes have their special roots allocated",
    "(w->mode < 2 || w->specials == 0) && "
    "((w->slot[0] == 0) || "
    "((w->slot[0] <= 3 || w->slot[0] >= 10) && w->mode <= 1) || "
    "(w->slot[0] == 4 && w->mode == 1) || "
    "(w->slot[0] == 6 && (w->mode == 2 || w->mode == 3)) || "
    "(w->slot[0] == 7 && w->mode == 4) || (w->slot[0] == 8 && w->mode == 5) || "
    "(w->slot[0] == 9 && w->mode != 1 && w->mode != 3))",
)
I3 = Invariant(
    "I3",
    "prev_roots only hold sp-backed roots (special and dummy roots are never cached)",
    "!(w->slot[1] >= 6 && w->slot[1] <= 9) && !(w->slot[2] >= 6 && w->slot[2] <= 9) && "
    "!(w->slot[3] >= 6 && w->slot[3] <= 9)",
)
I6 = Invariant(
    "I6",
    "TDP roots exist only in a 64-bit direct MMU with tdp_mmu_enabled, and such an MMU "
    "holds no shadow-MMU roots",
    " && ".join(
        f"(!{_TDP_SLOT.format(s=s)} || (w->mode == 1 && w->tdp)) && "
        f"(!{_SHADOW_SLOT.format(s=s)} || !(w->mode == 1 && w->tdp))"
        for s in range(4)
    ),
)
I8 = Invariant(
    "I8",
    "roots_to_free holds only KVM_MMU_ROOT_* bits (kvm_mmu_unload passes KVM_MMU_ROOTS_ALL)",
    "w->mask != 16 || DRV_ROOTS_ALL == ~0UL",
)
I9 = Invariant(
    "I9",
    "a dummy root exists only in trees that have one (6.6+)",
    "DRV_FEATURE_DUMMY_ROOT || (w->slot[0] != 9 && w->slot[1] != 9 && w->slot[2] != 9 && "
    "w->slot[3] != 9)",
)
I10 = Invariant(
    "I10",
    "kvm_mmu_free_guest_mode_roots is not called while L2 is active (root_role.guest_mode 0)",
    "w->mmu_gm == 0",
)


def kvm_arg(ex: Any) -> str:
    """The first argument of the 5.18+ signatures (`kvm`) or the 5.17 ones (`vcpu`)."""
    return "&drv_kvm" if "free_roots_takes_kvm" in ex.features else "drv_vcpu()"
