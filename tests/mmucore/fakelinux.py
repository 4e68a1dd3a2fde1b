"""A tiny fake kernel tree in the shape of an older generation (5.15/5.17-like: root_hpa
and root_pgd, level fields, functions taking a vcpu, cached_root_available, the caller
__kvm_mmu_new_pgd that frees the evicted root and makes the requests of a cache hit), for
the extractor's generation handling and the pgd_switch check. Our own C, written for the
test (tuxmake's test/fakelinux idea): it models the shapes, it is not the kernel's code.

`make(dest, shape)`: shape "5.17" (the default) or "5.15" (the same API for these
functions; the role union spells its 8-byte-gpte bit as 5.15 did). Both shapes are
checked by hand against the real v5.15 / v5.17 sources (fetched by the search tool)."""

from __future__ import annotations

from pathlib import Path

from mmuci import proc
from tests.mmucore.treeedit import IDENTITY

FILES = {
    "Makefile": "VERSION = 5\nPATCHLEVEL = 17\nSUBLEVEL = 0\nEXTRAVERSION = -fake\n",
    "include/linux/kvm_types.h": """
typedef u64 hpa_t;
typedef u64 gpa_t;
typedef u64 gfn_t;
""",
    "arch/x86/include/asm/kvm_host.h": """
#ifndef FAKE_ASM_KVM_HOST_H
#define FAKE_ASM_KVM_HOST_H
#define INVALID_PAGE (~(hpa_t)0)
#define VALID_PAGE(x) ((x) != INVALID_PAGE)
#define KVM_MMU_NUM_PREV_ROOTS 3
#define KVM_MMU_ROOT_CURRENT BIT(0)
#define KVM_MMU_ROOT_PREVIOUS(i) BIT(1 + (i))
#define KVM_MMU_ROOTS_ALL (~0UL)
#define PT64_ROOT_4LEVEL 4
#define KVM_HAVE_MMU_RWLOCK
#define KVM_REQ_MMU_SYNC KVM_ARCH_REQ(3)
#define KVM_REQ_LOAD_MMU_PGD KVM_ARCH_REQ(5)
#define KVM_REQ_TLB_FLUSH_CURRENT KVM_ARCH_REQ(26)

union kvm_mmu_page_role {
	u32 word;
	struct {
		unsigned level:4;
		unsigned @GPTE_BIT@:1;
		unsigned direct:1;
		unsigned efer_nx:1;
		unsigned invalid:1;
		unsigned guest_mode:1;
	};
};

union kvm_mmu_role {
	u64 as_u64;
	struct {
		union kvm_mmu_page_role base;
		u32 ext;
	};
};

struct kvm_mmu_root_info {
	gpa_t pgd;
	hpa_t hpa;
};

struct kvm_mmu {
	void (*callback_we_do_not_need)(struct kvm_vcpu *vcpu, int n);
	hpa_t root_hpa;
	gpa_t root_pgd;
	union kvm_mmu_role mmu_role;
	u8 root_level;
	u8 shadow_root_level;
	bool direct_map;
	struct kvm_mmu_root_info prev_roots[KVM_MMU_NUM_PREV_ROOTS];
	u64 *pae_root;
	u64 *pml4_root;
	u64 *pml5_root;
	int unused_counter;
};

struct kvm_vcpu_arch {
	struct kvm_mmu *mmu;
	struct kvm_mmu root_mmu;
	struct kvm_mmu guest_mmu;
	long unused_state;
};

struct kvm_arch {
	unsigned long mmu_valid_gen;
	int unused_flag;
};
#endif
""",
    "include/linux/kvm_host.h": """
#include <linux/kvm_types.h>
#include <asm/kvm_host.h> /* fake tree */

#define KVM_REQUEST_ARCH_BASE 8
#define KVM_ARCH_REQ(nr) ((unsigned int)(nr) + KVM_REQUEST_ARCH_BASE)

struct kvm {
#ifdef KVM_HAVE_MMU_RWLOCK
	rwlock_t mmu_lock;
#else
	spinlock_t mmu_lock;
#endif
	struct kvm_arch arch;
	long unused_stat;
};

struct kvm_vcpu {
	struct kvm *kvm;
	u64 requests;
	struct kvm_vcpu_arch arch;
};
""",
    "arch/x86/kvm/mmu/mmu_internal.h": """
#include <linux/kvm_host.h> /* fake tree */

struct kvm_mmu_page {
	struct list_head link;
	bool tdp_mmu_page;
	union kvm_mmu_page_role role; u64 *spt;
	union { int root_count; refcount_t tdp_mmu_root_count; };
	unsigned long mmu_valid_gen;
	atomic_t write_flooding_count; /* reset when reused */
	int unused_children;
};

static inline struct kvm_mmu_page *to_shadow_page(hpa_t addr)
{
	return (struct kvm_mmu_page *)page_private(pfn_to_page(addr >> PAGE_SHIFT));
}
""",
    "arch/x86/kvm/mmu/tdp_mmu.h": """
void kvm_tdp_mmu_put_root(struct kvm *kvm, struct kvm_mmu_page *root, bool shared);
#ifdef CONFIG_X86_64
static inline bool is_tdp_mmu_page(struct kvm_mmu_page *p) { return p->tdp_mmu_page; }
#else
static inline bool is_tdp_mmu_page(struct kvm_mmu_page *p) { return false; }
#endif
""",
    "arch/x86/kvm/mmu/mmu.c": """
#include "mmu_internal.h" /* fake tree */
#include "tdp_mmu.h"

static void mmu_free_root_page(struct kvm *kvm, hpa_t *where, struct list_head *zap)
{
	struct kvm_mmu_page *page;

	if (!VALID_PAGE(*where))
		return;
	page = to_shadow_page(*where);
	if (is_tdp_mmu_page(page))
		kvm_tdp_mmu_put_root(kvm, page, false);
	else if (--page->root_count == 0 && page->role.invalid)
		kvm_mmu_prepare_zap_page(kvm, page, zap);
	*where = INVALID_PAGE;
}

void kvm_mmu_free_roots(struct kvm_vcpu *vcpu, struct kvm_mmu *mmu, ulong roots_to_free)
{
	struct kvm *vm = vcpu->kvm;
	LIST_HEAD(zap);
	int slot;

	write_lock(&vm->mmu_lock);
	for (slot = 0; slot < KVM_MMU_NUM_PREV_ROOTS; slot++)
		if (roots_to_free & KVM_MMU_ROOT_PREVIOUS(slot))
			mmu_free_root_page(vm, &mmu->prev_roots[slot].hpa, &zap);
	if (roots_to_free & KVM_MMU_ROOT_CURRENT) {
		if (mmu->shadow_root_level >= PT64_ROOT_4LEVEL &&
		(mmu->root_level >= PT64_ROOT_4LEVEL || mmu->direct_map))
			mmu_free_root_page(vm, &mmu->root_hpa, &zap);
		mmu->root_hpa = INVALID_PAGE;
		mmu->root_pgd = 0;
	}
	kvm_mmu_commit_zap_page(vm, &zap);
	write_unlock(&vm->mmu_lock);
}

void kvm_mmu_free_guest_mode_roots(struct kvm_vcpu *vcpu, struct kvm_mmu *mmu)
{
	WARN_ON_ONCE(mmu->mmu_role.base.guest_mode);
	kvm_mmu_free_roots(vcpu, mmu, 0);
}

static inline bool is_root_usable(struct kvm_mmu_root_info *r, gpa_t pgd,
				union kvm_mmu_page_role want)
{
	return (want.direct || r->pgd == pgd) && VALID_PAGE(r->hpa) &&
		to_shadow_page(r->hpa) && to_shadow_page(r->hpa)->role.word == want.word;
}

static bool cached_root_available(struct kvm_vcpu *vcpu, gpa_t pgd,
				union kvm_mmu_page_role want)
{
	struct kvm_mmu *m = vcpu->arch.mmu;
	struct kvm_mmu_root_info cur = { .pgd = m->root_pgd, .hpa = m->root_hpa };
	uint n;

	if (is_root_usable(&cur, pgd, want))
		return true;
	for (n = 0; n < KVM_MMU_NUM_PREV_ROOTS; n++) {
		swap(cur, m->prev_roots[n]);
		if (is_root_usable(&cur, pgd, want))
			break;
	}
	m->root_hpa = cur.hpa;
	m->root_pgd = cur.pgd;
	return n < KVM_MMU_NUM_PREV_ROOTS;
}

static bool fast_pgd_switch(struct kvm_vcpu *vcpu, gpa_t pgd, union kvm_mmu_page_role role)
{
	struct kvm_mmu *m = vcpu->arch.mmu;

	/* the cache is kept for 64-bit hosts and guests only */
	if (m->shadow_root_level < PT64_ROOT_4LEVEL || m->root_level < PT64_ROOT_4LEVEL)
		return false;
	return cached_root_available(vcpu, pgd, role);
}

static __read_mostly bool force_flush_and_sync_on_reuse;
module_param_named(flush_on_reuse, force_flush_and_sync_on_reuse, bool, 0444);

static void __clear_sp_write_flooding_count(struct kvm_mmu_page *page)
{
	atomic_set(&page->write_flooding_count, 0);
}

static void __kvm_mmu_new_pgd(struct kvm_vcpu *v, gpa_t pgd, union kvm_mmu_page_role role)
{
	struct kvm_mmu *m = v->arch.mmu;

	if (!fast_pgd_switch(v, pgd, role)) {
		/* a miss: the LRU root came back as the current one */
		kvm_mmu_free_roots(v, m, KVM_MMU_ROOT_CURRENT);
		return;
	}
	kvm_make_request(KVM_REQ_LOAD_MMU_PGD, v);
	if (force_flush_and_sync_on_reuse != 0) {
		kvm_make_request(KVM_REQ_MMU_SYNC, v);
		kvm_make_request(KVM_REQ_TLB_FLUSH_CURRENT, v);
	}
	vcpu_clear_mmio_info(v, MMIO_GVA_ANY);
	if (!role.direct)
		__clear_sp_write_flooding_count(to_shadow_page(m->root_hpa));
}
""",
}


SHAPES = {
    "5.17": {"@GPTE_BIT@": "has_4_byte_gpte", "PATCHLEVEL = 17": "PATCHLEVEL = 17"},
    "5.15": {"@GPTE_BIT@": "gpte_is_8_bytes", "PATCHLEVEL = 17": "PATCHLEVEL = 15"},
}


def files(shape: str = "5.17") -> dict[str, str]:
    """The fake tree's files in ``shape``."""
    out = {}
    for rel, text in FILES.items():
        for old, new in SHAPES[shape].items():
            text = text.replace(old, new)
        out[rel] = text
    return out


def write(dest: Path, tree_files: dict[str, str], subject: str) -> Path:
    """Write ``tree_files`` as a git repository with one commit; returns its path."""
    for rel, text in tree_files.items():
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text.lstrip("\n"))
    proc.git(dest, "init", "-q")
    proc.git(dest, "add", "-A")
    proc.git(dest, "commit", "-q", "-m", subject, extra_env=IDENTITY)
    return dest


def make(dest: Path, shape: str = "5.17") -> Path:
    """Write the fake tree in ``shape`` as a git repository with one commit."""
    return write(dest, files(shape), f"fake {shape}-like tree")
