"""The modelled MMU world: its variables, codes and pages as Python tables, and the C
generated from them (our own C; the hand-written part is checks/c/world.c).

Every check's abstract state sets the variables of one `struct drv_world`; world.c
writes that world into whatever structs the extraction has (`mmu->root.hpa` or
`mmu->root_hpa`, `root_role` or the level fields, ...) and reads the observables back.
`world_header()` turns the tables below into named C constants (SLOT_DUMMY, MODE_TDP64,
PAGE_SLOT0, ...), so the C, the dimensions and the invariants share one spelling;
`glue_c(ex)` is the part that depends on the tree (`Extraction.features`, kept fields).

Pages: 0 pae_root, 1 pml4_root, 2 pml5_root (no sp behind them), 3..6 the own page of
slot 0..3 (slot 0 = mmu->root, 1..3 = prev_roots[0..2]), 7..10 the sps behind
pae_root[0..3].
"""

from __future__ import annotations

import re
import signal
from typing import TYPE_CHECKING, NamedTuple

from checks.space import COMPONENTS

if TYPE_CHECKING:
    from mmucore.extract import Extraction

# struct drv_world, in order: (field, number of ints); an array field `slot` of n is the
# world variables slot0..slot{n-1}.
WORLD_FIELDS = (
    ("mask", 1), ("mode", 1), ("tdp", 1), ("slot", 4), ("specials", 1), ("pae", 1),
    ("attrs", 1), ("gm", 1), ("mmu_gm", 1), ("obs", 1), ("new_pgd", 1), ("new_role", 1),
    ("stale", 1), ("flush", 1),
)  # fmt: skip
WORLD_VARS = tuple(name if n == 1 else f"{name}{i}" for name, n in WORLD_FIELDS for i in range(n))
# The world variables only a check's call reads, never drv_setup (world.c, glue_c): a
# state that differs from the one before only in these reuses its setup (runner_check.c).
# A variable not named here is taken to be read by setup (tests/checks/test_driver.py).
CALL_ONLY_VARS = ("mask", "new_pgd", "new_role")

# Slot codes (a slot is mmu->root or one prev_roots[i]): SLOT_<name> in C.
SLOT_CODES = {
    "INVALID": 0,
    "SP_G1_R1": 1,
    "SP_G2_R1": 2,
    "SP_G1_R2": 3,
    "TDP": 4,
    "ALIAS": 5,
    "PAE": 6,
    "PML4": 7,
    "PML5": 8,
    "DUMMY": 9,
    "KIND_G1_R1": 10,
    "KIND_G2_R1": 11,
    "KIND_G1_R2": 12,
    # invalid slots whose pgd is not the one code 0 gives (0 for mmu->root, `stale` for
    # prev_roots): KVM_MMU_ROOT_INFO_INVALID's INVALID_PAGE, or a stale guest address
    "INVALID_INFO": 13,
    "INVALID_STALE": 14,
}
# The codes of an invalid slot (hpa INVALID_PAGE), whatever its pgd.
INVALID_CODES = tuple(SLOT_CODES[k] for k in ("INVALID", "INVALID_INFO", "INVALID_STALE"))


class Mode(NamedTuple):
    """One MMU mode: MODE_<name> in C, its label, and the levels world.c sets."""

    name: str
    label: str
    root_level: int
    guest_level: int
    direct: int


MODE_TABLE = (
    Mode("SHADOW64", "64-bit shadow paging (root level 4, guest level 4)", 4, 4, 0),
    Mode("TDP64", "64-bit TDP (root level 4, direct)", 4, 4, 1),
    Mode("PAE_SHADOW", "PAE shadow paging (root level 3, guest level 3)", 3, 3, 0),
    Mode("PAE_DIRECT", "PAE direct (root level 3, direct)", 3, 2, 1),
    Mode("NPT32_4", "32-bit guest NPT under 4-level NPT (root level 4, guest level 3)", 4, 3, 0),
    Mode("NPT32_5", "32-bit guest NPT under 5-level NPT (root level 5, guest level 3)", 5, 3, 0),
)
MODES = tuple(m.label for m in MODE_TABLE)
MODE_CODES = {m.name: i for i, m in enumerate(MODE_TABLE)}

# The codes of the other world variables that C reads by value (positions of the labels).
MASK_ALL_ONES = 16  # roots_to_free ~0UL (free_roots.ROOTS_TO_FREE's last label)
VALUE_CODES = {
    "SPECIALS": {"ALLOCATED": 0, "NONE": 1},
    "ATTRS": {"VALID": 0, "INVALID": 1, "INVALID_HELD": 2},
    "STALE": {"INVALID_PAGE": 0, "G3": 1, "ZERO": 2},
    "NEW_PGD": {"G1": 0, "G2": 1, "G3": 2},
    "NEW_ROLE": {"R1": 0, "R2": 1},
}

PAGES = {"PAE_ROOT": 0, "PML4_ROOT": 1, "PML5_ROOT": 2, "SLOT0": 3, "PAE_SP0": 7}
PAGE_NAMES = {v: k.lower() for k, v in PAGES.items() if k.endswith("_ROOT")}  # 0: "pae_root"
NR_SP_PAGES = 11
# The guest pgds (CR3/EPTP values) of the states; G3 is also the stale pgd of an invalid slot.
GUEST_PGDS = {"G1": 0x11000, "G2": 0x22000, "G3": 0x33000}


def _kept(ex: Extraction, struct: str, fld: str) -> bool:
    kept = ex.structs.get(struct)
    return True if kept is None else fld in kept


def _names(ex: Extraction) -> set[str]:
    names = set(ex.shimmed)
    names |= {p.name for p in ex.pieces}
    return names


def field_labels(ex: Extraction) -> list[tuple[str, str]]:
    """(component, label) of every observed field, labels spelled as this tree spells them."""
    root = "mmu->root." if "root_info_struct" in ex.features else "mmu->root_"
    out = [("root", f"{root}hpa"), ("root", f"{root}pgd")]
    for i in range(3):
        out += [
            ("prev_roots", f"mmu->prev_roots[{i}].hpa"),
            ("prev_roots", f"mmu->prev_roots[{i}].pgd"),
        ]
    out.append(("pae_root", "mmu->pae_root"))
    out += [("pae_root", f"mmu->pae_root[{i}]") for i in range(4)]
    for pg in range(PAGES["SLOT0"], NR_SP_PAGES):
        out.append(("root_count", f"sp#{pg} root_count"))
        out.append(("role.invalid", f"sp#{pg} role.invalid"))
        out.append(("freed", f"sp#{pg} freed"))
    out.append(("return", "return value"))
    return out


def _odd_constants(n: int, seed: int = 0x6D6D752D6369) -> list[int]:
    """n odd 64-bit constants (splitmix64 from a fixed seed): a field's multiplier in the
    digest."""
    out, x, m = [], seed, (1 << 64) - 1
    for _ in range(n):
        x = (x + 0x9E3779B97F4A7C15) & m
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        out.append((z ^ (z >> 31)) | 1)
    return out


# Where each field's multipliers start in drv_kf (DRV_KF_<name>), and how many it has:
# the root's hpa and pgd, the prev_roots' hpa/pgd pairs, pae_root's pointer and its four
# entries, one root count per sp page.
KF_SLOTS = {"ROOT": 2, "PREV": 6, "PAE_PTR": 1, "PAE": 4, "COUNT": NR_SP_PAGES}
KF_AT = {k: sum(list(KF_SLOTS.values())[:i]) for i, k in enumerate(KF_SLOTS)}
KF = _odd_constants(sum(KF_SLOTS.values()))


def component_macro(component: str) -> str:
    """The C name of a component's digest index: "role.invalid" -> DRV_C_ROLE_INVALID."""
    return "DRV_C_" + re.sub(r"\W+", "_", component.replace("~", "_alt")).upper()


def world_field(var: str) -> str:
    """The C member of `struct drv_world` a world variable is: "slot2" -> "slot[2]"."""
    for name, n in WORLD_FIELDS:
        if n > 1 and var.startswith(name) and var[len(name) :].isdigit():
            return f"{name}[{var[len(name) :]}]"
    if var not in WORLD_VARS:
        raise KeyError(f"{var} is not a world variable (checks/world.py WORLD_FIELDS)")
    return var


def read_by_setup(var: str) -> bool:
    """Whether drv_setup reads the world variable ``var`` (every one but CALL_ONLY_VARS)."""
    return world_field(var).partition("[")[0] not in CALL_ONLY_VARS


def world_header() -> str:
    """The C header generated from the tables above: the same for every tree."""
    defs = [f"#define DRV_SIGPROF {int(signal.SIGPROF)}"]
    defs += [f"#define SLOT_{k} {v}" for k, v in SLOT_CODES.items()]
    defs += [f"#define MODE_{m.name} {i}" for i, m in enumerate(MODE_TABLE)]
    defs.append(f"#define MASK_ALL_ONES {MASK_ALL_ONES}")
    for var, codes in VALUE_CODES.items():
        defs += [f"#define {var}_{k} {v}" for k, v in codes.items()]
    defs += [f"#define PAGE_{k} {v}" for k, v in PAGES.items()]
    defs.append(f"#define DRV_NPAGES {NR_SP_PAGES}")
    defs += [f"#define DRV_KF_{k} {v}" for k, v in KF_AT.items()]
    defs += [f"#define {component_macro(c)} {i}" for i, c in enumerate(COMPONENTS)]
    defs.append(f"#define DRV_NCOMP {len(COMPONENTS)}")
    defs += [f"#define DRV_{k} {v:#x}ULL" for k, v in GUEST_PGDS.items()]
    defs.append("#define DRV_INVALID (~0ULL)")
    fields = "\n".join(
        f"\tint {name};" if n == 1 else f"\tint {name}[{n}];" for name, n in WORLD_FIELDS
    )
    modes = "\n".join(
        f"\t[MODE_{m.name}] = {{{m.root_level}, {m.guest_level}, {m.direct}}}," for m in MODE_TABLE
    )
    kf = ", ".join(f"{k:#x}ULL" for k in KF)
    return (
        "/* ---- generated from checks/world.py and checks/space.py: edit those ---- */\n"
        + "\n".join(defs)
        + f"\n\nstruct drv_world {{\n{fields}\n}};\n\n"
        + f"static const struct drv_mode drv_modes[] = {{\n{modes}\n}};\n"
        + f"static const uint64_t drv_kf[{len(KF)}] = {{ {kf} }};\n"
    )


def tree_header(ex: Extraction) -> str:
    """What world.c needs to know of this tree: where the root lives, whether the entry
    points take a vCPU, the observed fields (how many, and the component each belongs to)."""
    root = "drv_mmu.root." if "root_info_struct" in ex.features else "drv_mmu.root_"
    labels = field_labels(ex)
    comp_of = ", ".join(component_macro(c) for c, _ in labels)
    return (
        f"#define DRV_ROOT_HPA {root}hpa\n#define DRV_ROOT_PGD {root}pgd\n"
        f"#define DRV_TAKES_VCPU {int(takes_vcpu(ex))}\n"
        f"#define DRV_NFIELDS {len(labels)}\n"
        f"static const unsigned char drv_field_comp[DRV_NFIELDS] = {{ {comp_of} }};\n"
    )


def env_c(ex: Extraction) -> str:
    """`drv_set_env`: the tree's globals and module parameters the state sets. It names the
    revision's globals, so the split build compiles it with the revision's code."""
    names = _names(ex)
    env = []
    if "tdp_mmu_enabled" in names:
        env.append("tdp_mmu_enabled = drv_w.tdp;")
    if _kept(ex, "struct kvm_arch", "tdp_mmu_enabled") and "tdp_mmu_enabled" not in names:
        env.append("drv_kvm.arch.tdp_mmu_enabled = drv_w.tdp;")
    if _kept(ex, "struct kvm_arch", "mmu_valid_gen"):
        env.append("drv_kvm.arch.mmu_valid_gen = 1;")
    if "force_flush_and_sync_on_reuse" in names:  # the module parameter flush_on_reuse
        env.append("force_flush_and_sync_on_reuse = drv_w.flush;")
    return f"void drv_set_env(void)\n{{\n\t{_body(env)}\n}}\n"


def glue_c(ex: Extraction) -> str:
    """The C after world.c that fits it to this tree: which fields hold the levels, and
    `drv_kvm_init` (the environment is env_c's)."""
    f = ex.features
    levels = []
    if _kept(ex, "struct kvm_mmu", "root_role") and "root_role" in f:
        levels += [
            "drv_mmu.root_role.level = m->root_level;",
            "drv_mmu.root_role.direct = m->direct;",
        ]
        levels.append("drv_mmu.root_role.guest_mode = drv_w.mmu_gm;")
    if _kept(ex, "struct kvm_mmu", "cpu_role") and "root_role" in f:
        levels.append("drv_mmu.cpu_role.base.level = m->guest_level;")
    if "level_fields" in f:
        for fld, val in (("shadow_root_level", "root_level"), ("root_level", "guest_level"),
                         ("direct_map", "direct")):  # fmt: skip
            if _kept(ex, "struct kvm_mmu", fld):
                levels.append(f"drv_mmu.{fld} = m->{val};")
        if _kept(ex, "struct kvm_mmu", "mmu_role"):
            levels.append("drv_mmu.mmu_role.base.guest_mode = drv_w.mmu_gm;")
    sp_gen = "sp->mmu_valid_gen = (drv_w.obs >> s & 1) ? 0 : 1;"
    if not _kept(ex, "struct kvm_mmu_page", "mmu_valid_gen"):
        sp_gen = "(void)sp;\n\t(void)s;"
    return "\n".join(
        [
            "static void drv_set_levels(const struct drv_mode *m)\n"
            f"{{\n\t(void)m;\n\t{_body(levels)}\n}}",
            f"static void drv_set_sp_gen(struct kvm_mmu_page *sp, int s)\n{{\n\t{sp_gen}\n}}",
            kvm_init_c(ex),
        ]
    )


def _body(lines: list[str]) -> str:
    return "\n\t".join(lines)


def kvm_init_c(ex: Extraction) -> str:
    """C that resets `drv_kvm` and gives its locks the shim's lock ids."""
    lines = ["memset(&drv_kvm, 0, sizeof(drv_kvm));", "drv_kvm.mmu_lock.id = MMU_SHIM_LOCK_MMU;"]
    if _kept(ex, "struct kvm_arch", "tdp_mmu_pages_lock") and ex.structs.get("struct kvm_arch"):
        lines.append("drv_kvm.arch.tdp_mmu_pages_lock.id = MMU_SHIM_LOCK_TDP_PAGES;")
    return f"static void drv_kvm_init(void)\n{{\n\t{_body(lines)}\n}}\n"


def takes_vcpu(ex: Extraction) -> bool:
    """5.17 and older take the vCPU, and so does __kvm_mmu_new_pgd where a tree has it."""
    return "free_roots_takes_kvm" not in ex.features or "new_pgd_caller" in ex.features
