"""Functions the sandbox child calls on a built module (``mods[0]``): build a state
through cffi, run one extracted function, report what the shim recorded."""

from __future__ import annotations

from typing import Any

EVENT_NAMES = (
    "NONE READ_LOCK READ_UNLOCK WRITE_LOCK WRITE_UNLOCK SPIN_LOCK SPIN_UNLOCK LOCKDEP_FAIL "
    "LOCK_MISUSE WARN BUG PREPARE_ZAP COMMIT_ZAP ZAP_FREE TDP_PUT_ROOT TDP_ROOT_FREED REQUEST "
    "FLUSH_REMOTE_TLBS CLEAR_MMIO_INFO BAD_PAGE STUB OVERFLOW"
).split()


def events(ffi: Any, lib: Any) -> list[list]:
    """The shim's event log as [name, a, b, site-or-None]."""
    out = []
    for i in range(lib.mmu_shim_event_count()):
        e = lib.mmu_shim_event_at(i)
        site = None
        if e.site != ffi.NULL:
            site = f"{ffi.string(e.site.file).decode()}:{e.site.line}"
        out.append([EVENT_NAMES[e.kind], e.a, e.b, site])
    return out


def _bits(ffi: Any, lib: Any, union: str, field: str) -> tuple[int, int]:
    shift, width = ffi.new("int *"), ffi.new("int *")
    if lib.mmu_shim_bitfield(union.encode(), field.encode(), shift, width) != 0:
        raise KeyError(f"{union}.{field}")
    return shift[0], ((1 << width[0]) - 1) << shift[0]


def set_bit(ffi: Any, lib: Any, role: Any, union: str, field: str, value: int) -> None:
    """Set a bitfield of a role union through its `word` (cffi cannot place these bits)."""
    shift, mask = _bits(ffi, lib, union, field)
    role.word = (role.word & ~mask) | ((value << shift) & mask)


def get_bit(ffi: Any, lib: Any, role: Any, union: str, field: str) -> int:
    shift, mask = _bits(ffi, lib, union, field)
    return (role.word & mask) >> shift


def free_roots_on_sp_root(mods: list, payload: dict) -> dict:
    """kvm_mmu_free_roots(CURRENT) with the current root a valid shadow page (page 3)."""
    ffi, lib = mods[0].ffi, mods[0].lib
    lib.mmu_shim_reset()
    kvm = ffi.new("struct kvm *")
    kvm.mmu_lock.id = lib.MMU_SHIM_LOCK_MMU
    mmu = ffi.new("struct kvm_mmu *")
    sp = ffi.new("struct kvm_mmu_page *")
    idx = payload.get("page", 3)
    lib.mmu_shim_set_page_private(idx, sp)
    sp.spt = ffi.cast("u64 *", lib.mmu_shim_page_virt(idx))
    sp.root_count = payload.get("root_count", 1)
    set_bit(ffi, lib, sp.role, "union kvm_mmu_page_role", "level", 4)
    set_bit(ffi, lib, sp.role, "union kvm_mmu_page_role", "invalid", payload.get("invalid", 0))
    invalid_page = 2**64 - 1
    mmu.root.hpa = lib.mmu_shim_page_hpa(idx)
    mmu.root.pgd = 0x1000
    for i in range(len(mmu.prev_roots)):
        mmu.prev_roots[i].hpa = invalid_page
        mmu.prev_roots[i].pgd = invalid_page
    if "prev0_page" in payload:  # a page no shadow page backs
        mmu.prev_roots[0].hpa = lib.mmu_shim_page_hpa(payload["prev0_page"])
    roots_to_free = payload.get("roots_to_free", 1)
    lib.kvm_mmu_free_roots(kvm, mmu, roots_to_free)
    return {
        "events": events(ffi, lib),
        "root_hpa": int(mmu.root.hpa),
        "root_pgd": int(mmu.root.pgd),
        "root_count": int(sp.root_count),
        "invalid": get_bit(ffi, lib, sp.role, "union kvm_mmu_page_role", "invalid"),
        "sp_freed": lib.mmu_shim_sp_freed(idx),
        "prev0_hpa": int(mmu.prev_roots[0].hpa),
    }


def _prev0_state(ffi: Any, lib: Any) -> tuple[Any, Any, Any]:
    lib.mmu_shim_reset()
    kvm = ffi.new("struct kvm *")
    kvm.mmu_lock.id = lib.MMU_SHIM_LOCK_MMU
    mmu = ffi.new("struct kvm_mmu *")
    sp = ffi.new("struct kvm_mmu_page *")
    lib.mmu_shim_set_page_private(5, sp)
    sp.root_count = 1
    invalid_page = 2**64 - 1
    mmu.root.hpa = invalid_page
    for i in range(len(mmu.prev_roots)):
        mmu.prev_roots[i].hpa = invalid_page
    mmu.prev_roots[0].hpa = lib.mmu_shim_page_hpa(5)
    mmu.prev_roots[0].pgd = 0x2000
    return kvm, mmu, sp


def free_prev_root_in_each(mods: list, payload: dict) -> list[dict]:
    """The same call on each module: prev_roots[0] holds a shadow page."""
    out = []
    for m in mods:
        kvm, mmu, sp = _prev0_state(m.ffi, m.lib)
        m.lib.kvm_mmu_free_roots(kvm, mmu, payload["roots_to_free"])
        out.append({"prev0_hpa": int(mmu.prev_roots[0].hpa), "events": events(m.ffi, m.lib)})
    return out


def call_nprev(mods: list, payload: dict) -> int:
    return mods[0].lib.mmu_ci_nprev()


def free_tdp_root(mods: list, payload: dict) -> dict:
    """kvm_mmu_free_roots(CURRENT) on a TDP MMU root (page 4) that the TDP MMU also holds."""
    ffi, lib = mods[0].ffi, mods[0].lib
    lib.mmu_shim_reset()
    lib.tdp_mmu_enabled = True
    kvm = ffi.new("struct kvm *")
    kvm.mmu_lock.id = lib.MMU_SHIM_LOCK_MMU
    mmu = ffi.new("struct kvm_mmu *")
    set_bit(ffi, lib, mmu.root_role, "union kvm_mmu_page_role", "direct", 1)
    sp = ffi.new("struct kvm_mmu_page *")
    lib.mmu_shim_set_page_private(4, sp)
    sp.tdp_mmu_page = True
    sp.tdp_mmu_root_count.refs = payload.get("refs", 2)
    set_bit(ffi, lib, sp.role, "union kvm_mmu_page_role", "direct", 1)
    mmu.root.hpa = lib.mmu_shim_page_hpa(4)
    for i in range(len(mmu.prev_roots)):
        mmu.prev_roots[i].hpa = 2**64 - 1
    lib.kvm_mmu_free_roots(kvm, mmu, 1)
    return {
        "events": events(ffi, lib),
        "refs": int(sp.tdp_mmu_root_count.refs),
        "root_hpa": int(mmu.root.hpa),
        "freed": lib.mmu_shim_tdp_root_freed(4),
    }


def free_roots_via_vcpu(mods: list, payload: dict) -> dict:
    """Old generation: kvm_mmu_free_roots(vcpu, mmu, CURRENT) on a TDP root, 4-level."""
    ffi, lib = mods[0].ffi, mods[0].lib
    lib.mmu_shim_reset()
    kvm = ffi.new("struct kvm *")
    kvm.mmu_lock.id = lib.MMU_SHIM_LOCK_MMU
    vcpu = ffi.new("struct kvm_vcpu *")
    vcpu.kvm = kvm
    mmu = ffi.addressof(vcpu.arch.root_mmu)
    vcpu.arch.mmu = mmu
    mmu.shadow_root_level = 4
    mmu.direct_map = True
    sp = ffi.new("struct kvm_mmu_page *")
    lib.mmu_shim_set_page_private(6, sp)
    sp.tdp_mmu_page = True
    sp.tdp_mmu_root_count.refs = 2
    mmu.root_hpa = lib.mmu_shim_page_hpa(6)
    for i in range(len(mmu.prev_roots)):
        mmu.prev_roots[i].hpa = 2**64 - 1
    lib.kvm_mmu_free_roots(vcpu, mmu, 1)
    return {
        "events": events(ffi, lib),
        "root_hpa": int(mmu.root_hpa),
        "refs": int(sp.tdp_mmu_root_count.refs),
    }
