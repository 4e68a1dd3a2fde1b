"""A tiny fake kernel tree in the shape of the 6.6+ generation (6.9+ for the TDP lock):
root_to_sp() and the dummy root, is_root_usable() that WARNs on a root without an sp,
the 2-argument kvm_tdp_mmu_put_root(), TDP roots freed under read_lock, a bounded
KVM_MMU_ROOTS_ALL. Our own C, written for the tests: it models the shapes (checked by
hand against the real v6.6 / v6.9 sources), it is not the kernel's code."""

from __future__ import annotations

from pathlib import Path

from tests.mmucore import fakelinux

FILES = {
    "Makefile": "VERSION = 6\nPATCHLEVEL = 9\nSUBLEVEL = 0\nEXTRAVERSION = -fake\n",
    "include/linux/kvm_types.h": """
typedef u64 hpa_t;
typedef u64 gpa_t;
typedef u64 gfn_t;
""",
    "arch/x86/include/asm/kvm_host.h": """
#ifndef FAKE66_ASM_KVM_HOST_H
#define FAKE66_ASM_KVM_HOST_H
#define INVALID_PAGE (~(hpa_t)0)
#define VALID_PAGE(x) ((x) != INVALID_PAGE)
#define KVM_MMU_NUM_PREV_ROOTS 3
#define KVM_MMU_ROOT_CURRENT BIT(0)
#define KVM_MMU_ROOT_PREVIOUS(i) BIT(1 + (i))
#define KVM_MMU_ROOTS_ALL (BIT(1 + KVM_MMU_NUM_PREV_ROOTS) - 1)
#define KVM_HAVE_MMU_RWLOCK

union kvm_mmu_page_role {
	u32 word;
	struct {
		unsigned level:4;
		unsigned has_4_byte_gpte:1;
		unsigned direct:1;
		unsigned efer_nx:1;
		unsigned invalid:1;
		unsigned guest_mode:1;
		unsigned passthrough:1;
	};
};

union kvm_cpu_role {
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

#define KVM_MMU_ROOT_INFO_INVALID \\
	((struct kvm_mmu_root_info) { .pgd = INVALID_PAGE, .hpa = INVALID_PAGE })

struct kvm_mmu {
	unsigned long (*get_guest_pgd)(struct kvm_vcpu *vcpu);
	struct kvm_mmu_root_info root;
	union kvm_cpu_role cpu_role;
	union kvm_mmu_page_role root_role; /* new roots' role */
	struct kvm_mmu_root_info prev_roots[KVM_MMU_NUM_PREV_ROOTS];
	u64 *pae_root;
	u64 *pml4_root;
	u64 *pml5_root;
	u8 permissions[16];
};

struct kvm_vcpu_arch {
	struct kvm_mmu *mmu;
	struct kvm_mmu root_mmu;
	struct kvm_mmu guest_mmu;
	unsigned long regs_avail;
};

struct kvm_arch {
	unsigned long mmu_valid_gen;
	unsigned long n_used_mmu_pages;
};
#endif
""",
    "include/linux/kvm_host.h": """
#include <linux/kvm_types.h>
#include <asm/kvm_host.h> /* fake tree */

struct kvm {
	rwlock_t mmu_lock;
	struct kvm_arch arch;
	long users;
};

struct kvm_vcpu {
	struct kvm *kvm;
	u64 requests;
	struct kvm_vcpu_arch arch;
};
""",
    "arch/x86/kvm/mmu.h": """
#include <linux/kvm_host.h> /* fake tree */

extern bool tdp_mmu_enabled;
""",
    "arch/x86/kvm/mmu/mmu_internal.h": """
#include <linux/kvm_host.h> /* fake tree */

struct kvm_mmu_page {
	struct list_head link;
	bool tdp_mmu_page;
	union kvm_mmu_page_role role; /* what it maps */
	u64 *spt;
	union { int root_count; refcount_t tdp_mmu_root_count; };
	union { unsigned long mmu_valid_gen; bool tdp_mmu_scheduled_root_to_zap; };
	unsigned int children_unsync;
};

static inline bool kvm_mmu_is_dummy_root(hpa_t where)
{
	return is_zero_pfn(where >> PAGE_SHIFT);
}
""",
    "arch/x86/kvm/mmu/spte.h": """
#include "mmu_internal.h" /* fake tree */

#define SPTE_BASE_ADDR_MASK (((1ULL << 52) - 1) & ~(u64)4095)

static inline struct kvm_mmu_page *to_shadow_page(hpa_t where)
{
	return (struct kvm_mmu_page *)page_private(pfn_to_page(where >> PAGE_SHIFT));
}

static inline struct kvm_mmu_page *spte_to_child_sp(u64 entry)
{
	return to_shadow_page(entry & SPTE_BASE_ADDR_MASK);
}

static inline struct kvm_mmu_page *root_to_sp(hpa_t where)
{
	if (kvm_mmu_is_dummy_root(where))
		return NULL;
	/* a root is read like an entry: only its address bits count */
	return spte_to_child_sp(where);
}
""",
    "arch/x86/kvm/mmu/tdp_mmu.h": """
#include "spte.h" /* fake tree */

void kvm_tdp_mmu_put_root(struct kvm *vm, struct kvm_mmu_page *page);

static inline bool is_tdp_mmu_page(struct kvm_mmu_page *p) { return p->tdp_mmu_page; }
""",
    "arch/x86/kvm/mmu/mmu.c": """
#include "mmu.h" /* fake tree */
#include "mmu_internal.h" /* fake tree */
#include "spte.h"
#include "tdp_mmu.h"

bool tdp_mmu_enabled __read_mostly = true;

static bool is_obsolete_sp(struct kvm *vm, struct kvm_mmu_page *page)
{
	if (page->role.invalid)
		return true;
	return !is_tdp_mmu_page(page) && page->mmu_valid_gen != vm->arch.mmu_valid_gen;
}

static void mmu_free_root_page(struct kvm *vm, hpa_t *where, struct list_head *zap)
{
	struct kvm_mmu_page *page;

	if (!VALID_PAGE(*where))
		return;
	page = root_to_sp(*where);
	if (WARN_ON_ONCE(!page))
		return;
	if (is_tdp_mmu_page(page)) {
		lockdep_assert_held_read(&vm->mmu_lock);
		kvm_tdp_mmu_put_root(vm, page);
	} else {
		lockdep_assert_held_write(&vm->mmu_lock);
		if (--page->root_count == 0 && page->role.invalid)
			kvm_mmu_prepare_zap_page(vm, page, zap);
	}
	*where = INVALID_PAGE;
}

void kvm_mmu_free_roots(struct kvm *vm, struct kvm_mmu *m, ulong roots_to_free)
{
	bool tdp = tdp_mmu_enabled && m->root_role.direct;
	bool current_too;
	LIST_HEAD(zap);
	int slot;

	WARN_ON_ONCE((roots_to_free & ~KVM_MMU_ROOTS_ALL) != 0);
	current_too = (roots_to_free & KVM_MMU_ROOT_CURRENT) && VALID_PAGE(m->root.hpa);
	if (!current_too) {
		for (slot = 0; slot < KVM_MMU_NUM_PREV_ROOTS; slot++)
			if ((roots_to_free & KVM_MMU_ROOT_PREVIOUS(slot)) &&
				VALID_PAGE(m->prev_roots[slot].hpa))
				break;
		if (slot == KVM_MMU_NUM_PREV_ROOTS)
			return;
	}
	if (tdp)
		read_lock(&vm->mmu_lock);
	else
		write_lock(&vm->mmu_lock);
	for (slot = 0; slot < KVM_MMU_NUM_PREV_ROOTS; slot++)
		if (roots_to_free & KVM_MMU_ROOT_PREVIOUS(slot))
			mmu_free_root_page(vm, &m->prev_roots[slot].hpa, &zap);
	if (current_too) {
		if (kvm_mmu_is_dummy_root(m->root.hpa)) {
			/* nothing holds the zero page */
		} else if (root_to_sp(m->root.hpa)) {
			mmu_free_root_page(vm, &m->root.hpa, &zap);
		} else if (m->pae_root != NULL) {
			for (slot = 0; slot < 4; ++slot) {
				if (m->pae_root[slot] == 0)
					continue;
				mmu_free_root_page(vm, &m->pae_root[slot], &zap);
				m->pae_root[slot] = 0;
			}
		}
		m->root.hpa = INVALID_PAGE;
		m->root.pgd = 0;
	}
	if (tdp) {
		read_unlock(&vm->mmu_lock);
		WARN_ON_ONCE(!list_empty(&zap));
	} else {
		kvm_mmu_commit_zap_page(vm, &zap);
		write_unlock(&vm->mmu_lock);
	}
}

void kvm_mmu_free_guest_mode_roots(struct kvm *vm, struct kvm_mmu *m)
{
	unsigned long mask = 0;
	struct kvm_mmu_page *page;
	int slot;

	WARN_ON_ONCE(m->root_role.guest_mode);
	for (slot = 0; slot < KVM_MMU_NUM_PREV_ROOTS; slot++) {
		hpa_t where = m->prev_roots[slot].hpa;

		if (!VALID_PAGE(where))
			continue;
		page = root_to_sp(where);
		if (!page || page->role.guest_mode)
			mask |= KVM_MMU_ROOT_PREVIOUS(slot);
	}
	kvm_mmu_free_roots(vm, m, mask);
}

static bool is_obsolete_root(struct kvm *vm, hpa_t where)
{
	struct kvm_mmu_page *page;

	if (!VALID_PAGE(where))
		return false;
	page = root_to_sp(where);
	return !page || is_obsolete_sp(vm, page);
}

static void __kvm_mmu_free_obsolete_roots(struct kvm *vm, struct kvm_mmu *m)
{
	unsigned long mask = 0;
	int slot;

	if (is_obsolete_root(vm, m->root.hpa))
		mask |= KVM_MMU_ROOT_CURRENT;
	for (slot = 0; slot < KVM_MMU_NUM_PREV_ROOTS; slot++)
		if (is_obsolete_root(vm, m->prev_roots[slot].hpa))
			mask |= KVM_MMU_ROOT_PREVIOUS(slot);
	if (mask)
		kvm_mmu_free_roots(vm, m, mask);
}

static inline bool is_root_usable(struct kvm_mmu_root_info *r, gpa_t pgd,
					union kvm_mmu_page_role want)
{
	struct kvm_mmu_page *page;

	if (!VALID_PAGE(r->hpa))
		return false;
	if (!want.direct && r->pgd != pgd)
		return false;
	page = root_to_sp(r->hpa);
	if (WARN_ON_ONCE(!page))
		return false;
	return page->role.word == want.word;
}

static bool cached_root_find_and_keep_current(struct kvm *vm, struct kvm_mmu *m,
						gpa_t pgd, union kvm_mmu_page_role want)
{
	uint n;

	if (is_root_usable(&m->root, pgd, want))
		return true;
	for (n = 0; n < KVM_MMU_NUM_PREV_ROOTS; n++) {
		swap(m->root, m->prev_roots[n]);
		if (is_root_usable(&m->root, pgd, want))
			return true;
	}
	kvm_mmu_free_roots(vm, m, KVM_MMU_ROOT_CURRENT);
	return false;
}

static bool cached_root_find_without_current(struct kvm *vm, struct kvm_mmu *m,
						gpa_t pgd, union kvm_mmu_page_role want)
{
	uint n;

	for (n = 0; n < KVM_MMU_NUM_PREV_ROOTS; n++)
		if (is_root_usable(&m->prev_roots[n], pgd, want))
			break;
	if (n == KVM_MMU_NUM_PREV_ROOTS)
		return false;
	swap(m->root, m->prev_roots[n]);
	for (; n + 1 < KVM_MMU_NUM_PREV_ROOTS; n++)
		m->prev_roots[n] = m->prev_roots[n + 1];
	m->prev_roots[n].hpa = INVALID_PAGE;
	return true;
}

static bool fast_pgd_switch(struct kvm *vm, struct kvm_mmu *m, gpa_t pgd,
				union kvm_mmu_page_role want)
{
	/* a root with no sp (special roots, the dummy root) is never cached */
	if (VALID_PAGE(m->root.hpa) && !root_to_sp(m->root.hpa))
		kvm_mmu_free_roots(vm, m, KVM_MMU_ROOT_CURRENT);
	if (VALID_PAGE(m->root.hpa))
		return cached_root_find_and_keep_current(vm, m, pgd, want);
	return cached_root_find_without_current(vm, m, pgd, want);
}
""",
}


def make(dest: Path) -> Path:
    """Write the fake 6.6+ tree as a git repository with one commit; returns its path."""
    return fakelinux.write(dest, FILES, "fake 6.9-like tree")
