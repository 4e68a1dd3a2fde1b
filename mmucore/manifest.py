"""What the extractor takes from a tree: the modelled entry points and where to look.

Data, not code: a check that models another function adds it here. The extractor
follows calls from the entry points; a callee defined in `model_files` is extracted,
a name the shim provides is the shim's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# The config conditional compilation is resolved with (unknown identifiers are 0).
X86_64_KVM_CONFIG: Mapping[str, str] = MappingProxyType(
    {
        "__KERNEL__": "1",
        "__x86_64__": "1",
        "CONFIG_X86": "1",
        "CONFIG_X86_64": "1",
        "CONFIG_64BIT": "1",
        "CONFIG_MMU": "1",
        "CONFIG_SMP": "1",
        "CONFIG_KVM": "1",
        "CONFIG_KVM_X86": "1",
        "CONFIG_KVM_INTEL": "1",
        "CONFIG_KVM_AMD": "1",
        "CONFIG_HAVE_KVM": "1",
        "CONFIG_KVM_MMU": "1",
        "BITS_PER_LONG": "64",
    }
)


@dataclass(frozen=True)
class Manifest:
    """The modelled functions of one area and the files their definitions come from."""

    # Each entry point is a tuple of alternative names across kernel generations;
    # the first one the tree defines is used.
    entry_points: tuple[tuple[str, ...], ...]
    # Tree-relative files whose definitions may be extracted; the first is the root
    # whose #includes give the order in which headers see each other's macros.
    model_files: tuple[str, ...]
    # Structs whose fields are pruned to what the code and the checks use.
    pruned_structs: tuple[str, ...]
    # Fields the checks (and the shim's stand-ins) set or read, kept where they exist.
    keep_fields: tuple[str, ...]
    # Names the checks' drivers use, taken when the tree defines them (never an error).
    extras: tuple[str, ...] = ()
    config: Mapping[str, str] = field(default_factory=lambda: X86_64_KVM_CONFIG)
    # `#include <prefix...>` -> tree directory
    include_dirs: tuple[tuple[str, str], ...] = (
        ("linux/", "include/linux/"),
        ("asm/", "arch/x86/include/asm/"),
        ("kvm/", "include/kvm/"),
        ("uapi/", "include/uapi/"),
    )

    def entry_names(self) -> tuple[str, ...]:
        return tuple(n for alts in self.entry_points for n in alts)


ROOTS = Manifest(
    entry_points=(
        ("mmu_free_root_page",),
        ("kvm_mmu_free_roots",),
        ("kvm_mmu_free_guest_mode_roots",),
        ("is_obsolete_root",),
        ("__kvm_mmu_free_obsolete_roots",),
        ("is_root_usable",),
        ("cached_root_find_and_keep_current",),
        ("cached_root_find_without_current", "cached_root_available"),
        # 5.17 and older: the caller that frees the evicted root (fast_pgd_switch its callee)
        ("__kvm_mmu_new_pgd", "fast_pgd_switch"),
    ),
    model_files=(
        "arch/x86/kvm/mmu/mmu.c",
        "arch/x86/kvm/mmu.h",
        "arch/x86/kvm/mmu/mmu_internal.h",
        "arch/x86/kvm/mmu/spte.h",
        "arch/x86/kvm/mmu/tdp_mmu.h",
        "arch/x86/include/asm/kvm_host.h",
        "include/linux/kvm_host.h",
        "include/linux/kvm_types.h",
    ),
    pruned_structs=(
        "struct kvm",
        "struct kvm_arch",
        "struct kvm_vcpu",
        "struct kvm_vcpu_arch",
        "struct kvm_mmu",
        "struct kvm_mmu_page",
    ),
    keep_fields=(
        # struct kvm_mmu, every generation
        "root",
        "root_hpa",
        "root_pgd",
        "prev_roots",
        "pae_root",
        "pml4_root",
        "pml5_root",
        "root_role",
        "mmu_role",
        "cpu_role",
        "root_level",
        "shadow_root_level",
        "direct_map",
        # struct kvm_mmu_page
        "role",
        "root_count",
        "tdp_mmu_root_count",
        "tdp_mmu_page",
        "mmu_valid_gen",
        "link",
        "spt",
        "gfn",
        # struct kvm / kvm_arch / kvm_vcpu / kvm_vcpu_arch
        "mmu_lock",
        "arch",
        "kvm",
        "root_mmu",
        "guest_mmu",
        "mmu",
        "requests",
    ),
    extras=(
        "KVM_MMU_ROOTS_ALL",
        "KVM_MMU_ROOT_CURRENT",
        "KVM_MMU_ROOT_PREVIOUS",
        "KVM_MMU_NUM_PREV_ROOTS",
        "INVALID_PAGE",
        "VALID_PAGE",
        "INVALID_PAE_ROOT",
        "IS_VALID_PAE_ROOT",
        "KVM_MMU_ROOT_INFO_INVALID",
        "PT64_ROOT_4LEVEL",
        "PT64_ROOT_5LEVEL",
        "PT32E_ROOT_LEVEL",
        "PT32_ROOT_LEVEL",
        "PT_PRESENT_MASK",
        "SPTE_BASE_ADDR_MASK",
        "KVM_REQ_MMU_FREE_OBSOLETE_ROOTS",
        "KVM_REQ_LOAD_MMU_PGD",
        "KVM_REQ_MMU_SYNC",
        "KVM_REQ_TLB_FLUSH_CURRENT",
        "struct kvm_vcpu",
        "tdp_mmu_enabled",
    ),
)


def default() -> Manifest:
    """The manifest of the root-management code (freeing, caching, selecting roots)."""
    return ROOTS
