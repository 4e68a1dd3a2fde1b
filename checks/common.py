"""Dimensions and invariants shared by the root-management checks.

World slot codes are those of checks/world.py (SLOT_CODES); invariants are C over
`w` (const struct drv_world *), true when the fact holds, written with the names the
generated header gives those codes (SLOT_DUMMY, MODE_TDP64, ...).

Each dimension's `why` (checks/space.py Dim.why) says which values real KVM holds there at
entry. The invariants of KERNEL-NOTES.md 6.3 that are not checked here hold by
construction of the world: I4 (root_count = one per reference, plus the "held elsewhere"
attribute), I5 (every modelled sp is referenced, so never invalid with root_count 0), I7
(direct roots get pgd 0, shadow roots g1/g2; an invalid slot takes 0, INVALID_PAGE or a
stale gpa, all reachable).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checks.space import Dim, Invariant
from checks.world import GUEST_PGDS, INVALID_CODES, MODES, SLOT_CODES

if TYPE_CHECKING:
    from mmucore.extract import Extraction

C = SLOT_CODES

# mmu->root, prev_roots[i]: labels and their world codes. The invalid variants come last,
# so the smallest example of a difference that any invalid slot shows keeps pgd 0.
CURRENT_KINDS = (
    ("INVALID_PAGE (pgd 0)", C["INVALID"]),
    ("shadow sp#3", C["SP_G1_R1"]),
    ("TDP root sp#3", C["TDP"]),
    ("__pa(pae_root)", C["PAE"]),
    ("__pa(pml4_root)", C["PML4"]),
    ("__pa(pml5_root)", C["PML5"]),
    ("dummy root", C["DUMMY"]),
    ("INVALID_PAGE (pgd INVALID_PAGE)", C["INVALID_INFO"]),
    (f"INVALID_PAGE (stale pgd {GUEST_PGDS['G3']:#x})", C["INVALID_STALE"]),
)
CURRENT_INVALID = tuple(k for k in CURRENT_KINDS if k[1] in INVALID_CODES)
CURRENT_WHY = (
    "invalid: pgd 0 after kvm_mmu_free_roots freed it, INVALID_PAGE when a cache miss "
    "rotated KVM_MMU_ROOT_INFO_INVALID in, a stale gpa when it rotated in a slot freed "
    "earlier (cached_root_find_and_keep_current then frees CURRENT, which leaves an "
    "invalid root's pgd alone since 594bef79); valid: one sp (shadow or TDP), the special "
    "roots, the dummy root (6.6+); pgd g1 for shadow roots, 0 for direct ones (I7)"
)


def _prev_invalid(i: int) -> tuple[str, int]:
    """An invalid prev_roots[i]: prev_roots[1] as KVM_MMU_ROOT_INFO_INVALID left it, the
    others with the stale pgd a freed slot (or the last slot after a hit in
    cached_root_find_without_current) keeps. pgd_switch varies this with its `stale` dim."""
    if i == 1:
        return ("INVALID (pgd INVALID_PAGE)", C["INVALID_INFO"])
    return (f"INVALID (stale pgd {GUEST_PGDS['G3']:#x})", C["INVALID_STALE"])


def prev_kinds(i: int) -> tuple[tuple[str, int], ...]:
    """The kinds a prev_roots[i] slot takes (its own page is sp#(4+i))."""
    return (
        _prev_invalid(i),
        (f"shadow sp#{4 + i}", C["SP_G1_R1"]),
        (f"TDP root sp#{4 + i}", C["TDP"]),
        ("sp#3 (shared with mmu->root)", C["ALIAS"]),
        ("__pa(pae_root) (no sp)", C["PAE"]),
    )


PREV_WHY = (
    "an sp-backed root (shadow or TDP; the same sp as mmu->root when kvm_mmu_get_page "
    "found the cached root's sp again), or invalid with pgd INVALID_PAGE "
    "(KVM_MMU_ROOT_INFO_INVALID) or stale (mmu_free_root_page sets only the hpa): both "
    "pgds appear, one per slot, since the modelled code reads an invalid slot's hpa only; "
    "__pa(pae_root) is unreachable (I3), kept to show what a patch does with it"
)


def slot_dim(name: str, world: str, kinds: tuple[tuple[str, int], ...], why: str = "") -> Dim:
    return Dim(name, tuple(k for k, _ in kinds), world, tuple(c for _, c in kinds), why)


def current_dim(kinds: tuple[tuple[str, int], ...] = CURRENT_KINDS) -> Dim:
    return slot_dim("mmu->root", "slot0", kinds, CURRENT_WHY)


def prev_dims() -> tuple[Dim, ...]:
    return tuple(
        slot_dim(f"prev_roots[{i}]", f"slot{i + 1}", prev_kinds(i), PREV_WHY) for i in range(3)
    )


ATTRS = Dim(
    "sp attributes",
    (
        "valid, root_count = its references",
        "role.invalid, root_count = its references",
        "role.invalid, one more reference held elsewhere",
    ),
    "attrs",
    why=(
        "per sp, one root_count per slot or PAE entry that holds it (I4) plus any other "
        "vCPU's; the code only tests `!--root_count`, so +1 stands for +N; a TDP root holds "
        "one more reference while valid (the TDP MMU's own, 6.1.192+: a tree without it only "
        "changes what the shim's kvm_tdp_mmu_put_root does after the call, which is compared "
        "as that call); role.invalid is set on every sp at once: each sp is freed on its own, "
        "by its own slot, so a mix of valid and invalid sps shows nothing the uniform cases "
        "do not; a valid sp with another holder is not zapped either way"
    ),
)
MODE = Dim(
    "MMU mode",
    MODES,
    "mode",
    why=(
        "every pairing of root level, guest level and direct the modelled code can tell "
        "apart: it tests only level >= PT64_ROOT_4LEVEL and direct, so 5-level TDP/shadow "
        "pass as their 4-level twins and a 2-level guest under shadow PAE as PAE shadow"
    ),
)
TDP_MMU = Dim(
    "tdp_mmu_enabled",
    ("false", "true"),
    "tdp",
    why="a module parameter: either; with a shadow (nested) MMU too, as on real hosts",
)
SPECIALS = Dim(
    "special roots",
    ("pae_root, pml4_root, pml5_root allocated", "none allocated"),
    "specials",
    why=(
        "pae_root is NULL for a 4/5-level TDP root_mmu and allocated otherwise; pml4/pml5 "
        "only for 32-bit NPT: the free path reads mmu->pae_root only, so all or none covers "
        "it (I2 ties the PAE and NPT modes to allocated)"
    ),
)


def _bits_label(mask: int, names: list[str]) -> str:
    got = [n for i, n in enumerate(names) if mask >> i & 1]
    return "|".join(got) if got else "none"


ROOT_SLOTS = ["mmu->root", "prev_roots[0]", "prev_roots[1]", "prev_roots[2]"]


def root_slot_set_dim(label: str, key: str, why: str = "") -> Dim:
    """A dimension over the 16 subsets of {mmu->root, prev_roots[0..2]}: which slots have
    some attribute (bit 0 the current root, bit 1+i prev_roots[i])."""
    return Dim(label, tuple(_bits_label(m, ROOT_SLOTS) for m in range(16)), key, why=why)


PAE = Dim(
    "pae_root entries set",
    tuple(_bits_label(m, [f"[{i}]" for i in range(4)]) for m in range(16)),
    "pae",
    why=(
        "any subset: PAE shadow leaves the entry of a non-present PDPTE 0, direct PAE sets "
        "all four; each entry a distinct level-2 sp (its own quadrant) with PRESENT set; "
        "entries are set only while mmu->root is a special root (I1)"
    ),
)


def one_of(lhs: str, *names: str) -> str:
    """C: ``lhs`` is one of the named codes (`one_of("w->slot[0]", "SLOT_PAE", ...)`)."""
    return "(" + " || ".join(f"{lhs} == {n}" for n in names) + ")"


def _slot(s: int) -> str:
    return f"w->slot[{s}]"


_SP_CODES = ("SLOT_SP_G1_R1", "SLOT_SP_G2_R1", "SLOT_SP_G1_R2")
_KIND_CODES = ("SLOT_KIND_G1_R1", "SLOT_KIND_G2_R1", "SLOT_KIND_G1_R2")
_SPECIAL_CODES = ("SLOT_PAE", "SLOT_PML4", "SLOT_PML5")
_INVALID_NAMES = tuple(f"SLOT_{k}" for k, v in SLOT_CODES.items() if v in INVALID_CODES)
_TDP_MMU = "(w->mode == MODE_TDP64 && w->tdp)"  # a 64-bit direct MMU with the TDP MMU on


def _tdp_slot(s: int) -> str:
    """A TDP page in slot s (an alias shares slot 0's page)."""
    return f"({_slot(s)} == SLOT_TDP || ({_slot(s)} == SLOT_ALIAS && w->slot[0] == SLOT_TDP))"


def _shadow_slot(s: int) -> str:
    """A shadow-MMU page in slot s (a root of the MMU's kind is one unless the TDP MMU runs)."""
    return (
        f"({one_of(_slot(s), *_SP_CODES)} || ({one_of(_slot(s), *_KIND_CODES)} && "
        f"!{_TDP_MMU}) || ({_slot(s)} == SLOT_ALIAS && w->slot[0] != SLOT_TDP))"
    )


I1 = Invariant(
    "I1",
    "pae_root entries are set only while mmu->root is pae_root, pml4_root or pml5_root",
    f"w->pae == 0 || {one_of('w->slot[0]', *_SPECIAL_CODES)}",
)
I2 = Invariant(
    "I2",
    "mmu->root matches the MMU mode (one sp-backed root only for 64-bit paging, pae_root "
    "for PAE, pml4_root/pml5_root for 32-bit NPT under 4/5-level NPT, dummy only for "
    "shadow paging) and those modes have their special roots allocated",
    "(w->mode == MODE_SHADOW64 || w->mode == MODE_TDP64 || w->specials == SPECIALS_ALLOCATED)"
    f" && ({one_of('w->slot[0]', *_INVALID_NAMES)} || "
    f"({one_of('w->slot[0]', *_SP_CODES, *_KIND_CODES)} && "
    "(w->mode == MODE_SHADOW64 || w->mode == MODE_TDP64)) || "
    "(w->slot[0] == SLOT_TDP && w->mode == MODE_TDP64) || "
    "(w->slot[0] == SLOT_PAE && (w->mode == MODE_PAE_SHADOW || w->mode == MODE_PAE_DIRECT)) || "
    "(w->slot[0] == SLOT_PML4 && w->mode == MODE_NPT32_4) || "
    "(w->slot[0] == SLOT_PML5 && w->mode == MODE_NPT32_5) || "
    "(w->slot[0] == SLOT_DUMMY && w->mode != MODE_TDP64 && w->mode != MODE_PAE_DIRECT))",
)
I3 = Invariant(
    "I3",
    "prev_roots only hold sp-backed roots (special and dummy roots are never cached)",
    " && ".join(f"!{one_of(_slot(s), *_SPECIAL_CODES, 'SLOT_DUMMY')}" for s in (1, 2, 3)),
)
I6 = Invariant(
    "I6",
    "TDP roots exist only in a 64-bit direct MMU with tdp_mmu_enabled, and such an MMU "
    "holds no shadow-MMU roots",
    " && ".join(
        f"(!{_tdp_slot(s)} || {_TDP_MMU}) && (!{_shadow_slot(s)} || !{_TDP_MMU})" for s in range(4)
    ),
)
I8 = Invariant(
    "I8",
    "roots_to_free holds only KVM_MMU_ROOT_* bits (kvm_mmu_unload passes KVM_MMU_ROOTS_ALL)",
    "w->mask != MASK_ALL_ONES || DRV_ROOTS_ALL == ~0UL",
)
I9 = Invariant(
    "I9",
    "a dummy root exists only in trees that have one (6.6+)",
    "DRV_FEATURE_DUMMY_ROOT || ("
    + " && ".join(f"{_slot(s)} != SLOT_DUMMY" for s in range(4))
    + ")",
)
I10 = Invariant(
    "I10",
    "kvm_mmu_free_guest_mode_roots is not called while L2 is active (root_role.guest_mode 0)",
    "w->mmu_gm == 0",
)


def kvm_arg(ex: Extraction) -> str:
    """The first argument of the 5.18+ signatures (`kvm`) or the 5.17 ones (`vcpu`)."""
    return "&drv_kvm" if "free_roots_takes_kvm" in ex.features else "drv_vcpu()"
