/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mmu_shim.h - the model API of the shim: what checks' drivers and the Python side
 * may use to build a state and observe a run. Written for mmu-ci; no kernel text.
 *
 * The shim's kernel primitives (locks, WARN, lists, refcounts, the page model behind
 * __pa/__va/pfn_to_page/page_private/is_zero_pfn) and its recording stand-ins for the
 * big functions (kvm_mmu_prepare_zap_page, kvm_mmu_commit_zap_page,
 * kvm_tdp_mmu_put_root, kvm_make_request, ...) all report through this API.
 *
 * Canonical arguments: events name pages by their model index, never by pointer, so
 * two builds (baseline and patched) produce comparable logs.
 */
#ifndef MMU_SHIM_H
#define MMU_SHIM_H

#include <stdint.h>

/* ---- the page model ------------------------------------------------------------ */

/*
 * Page i (0 <= i < MMU_SHIM_NR_PAGES) has hpa (MMU_SHIM_PFN_BASE + i) << 12 and a
 * zeroed 4 KiB buffer as its virtual address. A page whose private is set is a shadow
 * page (page_private -> struct kvm_mmu_page *); special roots (pae_root, pml4_root,
 * pml5_root) are pages with private 0, exactly as get_zeroed_page() gives the kernel.
 * The zero page (dummy root, 6.6+) is a separate pfn for which is_zero_pfn() is true.
 * pfn_to_page() of any other pfn records MMU_EV_BAD_PAGE and returns a page whose
 * private is 0: "reading garbage" is visible, never a fault of the harness itself.
 */
#define MMU_SHIM_NR_PAGES 64
#define MMU_SHIM_PFN_BASE 0x1000ULL
#define MMU_SHIM_ZERO_PFN 0x0ff0ULL

uint64_t mmu_shim_page_hpa(int idx);           /* hpa of page idx */
void *mmu_shim_page_virt(int idx);             /* its 4 KiB buffer (zeroed by reset) */
void mmu_shim_set_page_private(int idx, void *sp); /* page idx backs shadow page sp */
int mmu_shim_page_index_of(const void *ptr);   /* page whose buffer holds ptr, or -1 */
int mmu_shim_sp_index(const void *sp);         /* page idx whose private is sp, or -1 */
uint64_t mmu_shim_zero_page_hpa(void);         /* hpa of the zero page (dummy root) */
int mmu_shim_sp_freed(int idx);                /* 1 once commit_zap freed the sp of page idx */
int mmu_shim_tdp_root_freed(int idx);          /* 1 once its TDP refcount reached zero */
uint64_t mmu_shim_freed_pages(int tdp);        /* those two as a bit per page */
int mmu_shim_sp_index_holding(const void *ptr); /* page idx whose sp holds ptr, or -1 */
void mmu_shim_atomic_set(int *counter, int value); /* atomic_set(), recorded */

/* ---- the event log ------------------------------------------------------------- */

/* MMU_EV_STUB ids (a), and what b holds. */
#define MMU_SHIM_STUB_ATOMIC_SET 1 /* b = (sp index << 32) | value; index -1: no sp holds it */

enum mmu_shim_event_kind {
	MMU_EV_NONE = 0,
	MMU_EV_READ_LOCK,        /* a = lock id */
	MMU_EV_READ_UNLOCK,      /* a = lock id */
	MMU_EV_WRITE_LOCK,       /* a = lock id */
	MMU_EV_WRITE_UNLOCK,     /* a = lock id */
	MMU_EV_SPIN_LOCK,        /* a = lock id */
	MMU_EV_SPIN_UNLOCK,      /* a = lock id */
	MMU_EV_LOCKDEP_FAIL,     /* a = lock id, b = mode required (1 read, 2 write, 3 held); site */
	MMU_EV_LOCK_MISUSE,      /* a = lock id, b = kind: unlock of a lock not held, recursion */
	MMU_EV_WARN,             /* site: WARN_ON, WARN_ON_ONCE, WARN_ONCE, WARN */
	MMU_EV_BUG,              /* site: BUG_ON, KVM_BUG_ON, KVM_BUG_ON_DATA_CORRUPTION */
	MMU_EV_PREPARE_ZAP,      /* a = sp index (kvm_mmu_prepare_zap_page) */
	MMU_EV_COMMIT_ZAP,       /* a = nr of sps on the list (kvm_mmu_commit_zap_page) */
	MMU_EV_ZAP_FREE,         /* a = sp index, freed by commit_zap, in list order */
	MMU_EV_TDP_PUT_ROOT,     /* a = sp index, b = the shared argument, or -1 where absent */
	MMU_EV_TDP_ROOT_FREED,   /* a = sp index: its refcount reached zero */
	MMU_EV_REQUEST,          /* a = KVM_REQ_* number (kvm_make_request) */
	MMU_EV_FLUSH_REMOTE_TLBS,
	MMU_EV_CLEAR_MMIO_INFO,  /* a = gva argument */
	MMU_EV_BAD_PAGE,         /* a = pfn: pfn_to_page() of a pfn no modelled page backs */
	MMU_EV_STUB,             /* a = stub id: any other recorded stand-in (see shim) */
	MMU_EV_OVERFLOW,         /* the log was full; later events were dropped */
	MMU_EV__COUNT
};

/* Where a WARN/BUG/lockdep assertion sits. key hashes the function only: the observable
 * is "a WARN (or BUG) in this function fired here in the sequence of events", so a patch
 * that moves lines or rewrites a condition without changing when it fires does not change
 * it; file/line/condition are for the explanation. */
struct mmu_shim_site {
	const char *file;
	int line;
	const char *func;
	const char *cond;
	uint64_t key;
};

struct mmu_shim_event {
	uint32_t kind;
	int64_t a;
	int64_t b;
	const struct mmu_shim_site *site; /* NULL unless WARN/BUG/LOCKDEP_FAIL */
};

#define MMU_SHIM_MAX_EVENTS 256
/* The log lives in a mapping of its own at a random address, out of reach of pointer
 * arithmetic from any object of the module (see mmu_shim.c); read it through these.
 * C after mmu_shim.c in the TU (the drivers) may use mmu_shim_events[i] and
 * mmu_shim_nevents, macros over the same mapping. */
int mmu_shim_event_count(void);
const struct mmu_shim_event *mmu_shim_event_at(int i);
/* 1 if the log and its count are what mmu_shim_record wrote since the last reset; 0 if
 * anything else changed them (the code under test: the driver reports it). */
int mmu_shim_recorder_intact(void);
/* A probe placed by mmucore/probes.py (never by a patch: the name is refused there) sets
 * its bits; the probes the state hit so far (checks/prune.py); 0 after a reset. */
void mmu_shim_probe(uint64_t bits);
uint64_t mmu_shim_probes(void);
/* For the sandbox child only (checks/recorder.py), once, before any reset: the log and
 * the ledger in mappings of the child's; sizeof of each (log << 32 | ledger); the page
 * that holds the pointers to them, which the child then makes read-only. */
void mmu_shim_recorder_attach(void *log, void *ledger);
uint64_t mmu_shim_recorder_sizes(void);
void *mmu_shim_recorder_anchor(void);

/* Forget all events, WARN_ONCE flags, lock states, page privates and buffers. */
void mmu_shim_reset(void);

/* Fold the event log into h (FNV-1a style over kind, a, b and site key). */
uint64_t mmu_shim_digest_events(uint64_t h);
uint64_t mmu_shim_mix(uint64_t h, uint64_t v);

/* Lock ids: the shim's rwlock_t/spinlock_t carry an id the driver assigns. */
#define MMU_SHIM_LOCK_MMU 1          /* kvm->mmu_lock */
#define MMU_SHIM_LOCK_TDP_PAGES 2    /* kvm->arch.tdp_mmu_pages_lock */

/* ---- used by the shim's primitives (additions of the extraction developer) ------- */

/* Append one event (kind, a, b, site) to the log. */
void mmu_shim_record(int kind, int64_t a, int64_t b, const struct mmu_shim_site *site);
/* Bumped by mmu_shim_reset: a WARN_ON_ONCE site fires once per generation. */
extern unsigned int mmu_shim_generation;
/* Take/release a lock by id; kind is a LOCK or UNLOCK event. */
void mmu_shim_lock(int id, int kind);
/* 1 if lock id is held in mode (1 read, 2 write, 3 either). */
int mmu_shim_lock_held(int id, int mode);
/* Mark the sp of page idx freed (tdp: 1 = TDP root refcount reached zero). */
void mmu_shim_mark_freed(int idx, int tdp);
/* Bit position and width of a bitfield of an extracted union/struct, e.g.
 * ("union kvm_mmu_page_role", "invalid"); 0 if found, -1 if not. Generated per TU. */
int mmu_shim_bitfield(const char *type, const char *field, int *shift, int *width);

#endif /* MMU_SHIM_H */
