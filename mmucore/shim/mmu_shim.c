/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mmu_shim.c - the event log, lock table and page model behind mmu_shim.h.
 * Written for mmu-ci; no kernel text. Compiled into every module (included by the
 * translation unit), so each module has its own log and pages.
 */
#include <string.h>

#include "mmu_shim.h"

unsigned int mmu_shim_generation = 1;

/* ---- the recorder -----------------------------------------------------------------
 * Where the sandbox child runs the module (checks/recorder.py), the event log and its
 * count live in a mapping of their own at a random address between two PROT_NONE guard
 * pages, so pointer arithmetic from an object of the module (a kernel struct of the
 * driver, the page buffers) cannot reach it blindly, and a run off its end faults; the
 * only pointers to it sit in a page of their own that the child makes read-only once
 * they are set. (The child maps it: the module itself imports no mmap.) A ledger in a
 * second such mapping counts and hashes every event mmu_shim_record appends. The driver's
 * whole-state word takes the events from the ledger's chain, so a write to the log cannot
 * change it; a changed count is caught in every state (mmu_shim_ledger_word), a rewritten
 * event wherever a row or a trace is made from the log (mmu_shim_ledger_agrees,
 * mmu_shim_recorder_intact). Until attached (a test calling the module directly), both are
 * statics of the module. The names are refused in extracted code (validate_lex.py). */
struct mmu_shim_recorder {
	int nevents;
	struct mmu_shim_event events[MMU_SHIM_MAX_EVENTS];
	uint64_t probes;  /* a copy of the ledger's: the two must agree (checks/prune.py) */
};
struct mmu_shim_ledger {
	int count;
	uint64_t chain;
	uint64_t probes;  /* the probes this state hit: one bit per later revision */
};
static union {
	struct {
		struct mmu_shim_recorder *rec;
		struct mmu_shim_ledger *ledger;
	} p;
	unsigned char page[4096];
} mmu_shim_anchor __attribute__((aligned(4096)));
static struct mmu_shim_recorder mmu_shim_rec_static;
static struct mmu_shim_ledger mmu_shim_ledger_static;

#define mmu_shim_rec (mmu_shim_anchor.p.rec)
#define mmu_shim_nevents (mmu_shim_rec->nevents)
#define mmu_shim_events (mmu_shim_rec->events)
#define MMU_SHIM_CHAIN_SEED 0x6a09e667f3bcc909ULL

static void mmu_shim_recorder_use(struct mmu_shim_recorder *rec, struct mmu_shim_ledger *l)
{
	rec->nevents = 0;
	rec->probes = l->probes = 0;
	l->count = 0;
	l->chain = MMU_SHIM_CHAIN_SEED;
	mmu_shim_anchor.p.rec = rec;
	mmu_shim_anchor.p.ledger = l;
}

void mmu_shim_recorder_attach(void *log, void *ledger)
{
	mmu_shim_recorder_use(log, ledger);
}

uint64_t mmu_shim_recorder_sizes(void)
{
	return (uint64_t)sizeof(struct mmu_shim_recorder) << 32 | sizeof(struct mmu_shim_ledger);
}

void *mmu_shim_recorder_anchor(void)
{
	return &mmu_shim_anchor;
}

/* One event into the chain: its kind, a, b and its site's key (a hash of the function's
 * name, set before the first event of the site is chained), so the same events in the same
 * order give the same chain in every revision, and the driver's whole-state word
 * (checks/c/runner.c: drv_whole) takes the ledger's chain as the events' part. */
static inline uint64_t mmu_shim_chain(uint64_t h, const struct mmu_shim_event *e)
{
	uint64_t key = e->site ? e->site->key : 0;

	h ^= e->kind + (uint64_t)e->a * 0x9e3779b97f4a7c15ULL +
	     ((uint64_t)e->b ^ key) * 0xc2b2ae3d27d4eb4fULL;
	h *= 0xd6e8feb86659fd93ULL;
	return h ^ h >> 29;
}

/* Whether the log's count and probes, and ``chain`` (the caller's mmu_shim_chain over
 * the log's events from MMU_SHIM_CHAIN_SEED), are the ledger's: the driver folds the chain
 * into its own pass over the events (checks/c/runner.c: drv_digest). */
static inline int mmu_shim_ledger_agrees(uint64_t chain)
{
	const struct mmu_shim_recorder *r = mmu_shim_rec;
	const struct mmu_shim_ledger *l = mmu_shim_anchor.p.ledger;

	return r->nevents == l->count && r->probes == l->probes && chain == l->chain;
}

/* The ledger's chain over every event mmu_shim_record appended, with the ledger's count
 * folded in; *agrees: whether the log's count and probes are the ledger's (the events
 * themselves are compared with the chain by mmu_shim_ledger_agrees, in phase 2). */
static inline uint64_t mmu_shim_ledger_word(int *agrees)
{
	const struct mmu_shim_recorder *r = mmu_shim_rec;
	const struct mmu_shim_ledger *l = mmu_shim_anchor.p.ledger;

	*agrees = r->nevents == l->count && r->probes == l->probes;
	return l->chain + (uint64_t)l->count;
}

int mmu_shim_recorder_intact(void)
{
	const struct mmu_shim_recorder *r = mmu_shim_rec;
	uint64_t h = MMU_SHIM_CHAIN_SEED;
	int i, n;

	if (!r)
		return 1;
	n = r->nevents < MMU_SHIM_MAX_EVENTS ? r->nevents : MMU_SHIM_MAX_EVENTS;
	for (i = 0; i < n; i++)
		h = mmu_shim_chain(h, &r->events[i]);
	return mmu_shim_ledger_agrees(h);
}

/* A probe of checks/prune.py, placed by mmucore/probes.py into the earlier revision's
 * functions (never in a patch: the name is refused there): the state reached a statement
 * that a later revision changes. Both copies, so a write to one is tampering. */
void mmu_shim_probe(uint64_t bits)
{
	if (__builtin_expect(!mmu_shim_rec, 0))
		mmu_shim_recorder_use(&mmu_shim_rec_static, &mmu_shim_ledger_static);
	mmu_shim_anchor.p.ledger->probes |= bits;
	mmu_shim_rec->probes |= bits;
}

uint64_t mmu_shim_probes(void)
{
	return mmu_shim_rec ? mmu_shim_anchor.p.ledger->probes : 0;
}

int mmu_shim_event_count(void)
{
	return mmu_shim_rec ? mmu_shim_nevents : 0;
}

const struct mmu_shim_event *mmu_shim_event_at(int i)
{
	return mmu_shim_rec && i >= 0 && i < mmu_shim_nevents ? &mmu_shim_events[i] : 0;
}

#define MMU_SHIM_NR_LOCKS 16
static struct {
	int readers;
	int writer;
} mmu_shim_locks[MMU_SHIM_NR_LOCKS];

static unsigned char mmu_shim_bufs[MMU_SHIM_NR_PAGES][4096] __attribute__((aligned(4096)));
static unsigned char mmu_shim_zero_buf[4096] __attribute__((aligned(4096)));
static unsigned char mmu_shim_bad_buf[4096] __attribute__((aligned(4096)));
static struct page mmu_shim_pages[MMU_SHIM_NR_PAGES];
static struct page mmu_shim_zero_page, mmu_shim_bad_page;
static unsigned char mmu_shim_dirty[MMU_SHIM_NR_PAGES];
static unsigned char mmu_shim_freed[MMU_SHIM_NR_PAGES];
static unsigned char mmu_shim_tdp_freed[MMU_SHIM_NR_PAGES];

static uint64_t mmu_shim_hash_str(uint64_t h, const char *s)
{
	while (s && *s)
		h = (h ^ (unsigned char)*s++) * 0x100000001b3ULL;
	return h;
}

uint64_t mmu_shim_mix(uint64_t h, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++, v >>= 8)
		h = (h ^ (v & 0xff)) * 0x100000001b3ULL;
	return h;
}

void mmu_shim_record(int kind, int64_t a, int64_t b, const struct mmu_shim_site *site)
{
	struct mmu_shim_event *e;
	struct mmu_shim_ledger *l;

	if (__builtin_expect(!mmu_shim_rec, 0))
		mmu_shim_recorder_use(&mmu_shim_rec_static, &mmu_shim_ledger_static);
	l = mmu_shim_anchor.p.ledger;
	if (site && !site->key) {
		struct mmu_shim_site *s = (struct mmu_shim_site *)site;

		s->key = mmu_shim_hash_str(0xcbf29ce484222325ULL, s->func) | 1;
	}
	if (mmu_shim_nevents >= MMU_SHIM_MAX_EVENTS - 1) {
		if (mmu_shim_nevents == MMU_SHIM_MAX_EVENTS - 1) {
			e = &mmu_shim_events[mmu_shim_nevents++];
			e->kind = MMU_EV_OVERFLOW;
			e->a = e->b = 0;
			e->site = 0;
			l->count++;
			l->chain = mmu_shim_chain(l->chain, e);
		}
		return;
	}
	e = &mmu_shim_events[mmu_shim_nevents++];
	e->kind = (uint32_t)kind;
	e->a = a;
	e->b = b;
	e->site = site;
	l->count++;
	l->chain = mmu_shim_chain(l->chain, e);
}

uint64_t mmu_shim_digest_events(uint64_t h)
{
	int i;

	for (i = 0; i < mmu_shim_nevents; i++) {
		const struct mmu_shim_event *e = &mmu_shim_events[i];

		h = mmu_shim_mix(h, e->kind);
		h = mmu_shim_mix(h, (uint64_t)e->a);
		h = mmu_shim_mix(h, (uint64_t)e->b);
		h = mmu_shim_mix(h, e->site ? e->site->key : 0);
	}
	return h;
}

/* Reset clears only what the last state touched: a bit per page (handed out as a buffer,
 * a struct page or a freed mark) and per lock slot. */
static uint64_t mmu_shim_touched;
static uint64_t mmu_shim_freed_bits[2];  /* [tdp]: a bit per page of the flags below */
static unsigned int mmu_shim_locks_touched;

_Static_assert(MMU_SHIM_NR_PAGES <= 64, "one bit of mmu_shim_touched per page");
#define MMU_SHIM_TOUCH(idx) (mmu_shim_touched |= 1ULL << (idx))

void mmu_shim_reset(void)
{
	uint64_t t = mmu_shim_touched;
	unsigned int l = mmu_shim_locks_touched;

	if (__builtin_expect(!mmu_shim_rec, 0))
		mmu_shim_recorder_use(&mmu_shim_rec_static, &mmu_shim_ledger_static);
	mmu_shim_nevents = 0;
	mmu_shim_rec->probes = mmu_shim_anchor.p.ledger->probes = 0;
	mmu_shim_anchor.p.ledger->count = 0;
	mmu_shim_anchor.p.ledger->chain = MMU_SHIM_CHAIN_SEED;
	mmu_shim_generation++;
	for (; l; l &= l - 1) {
		int i = __builtin_ctz(l);

		mmu_shim_locks[i].readers = mmu_shim_locks[i].writer = 0;
	}
	mmu_shim_locks_touched = 0;
	for (; t; t &= t - 1) {
		int i = __builtin_ctzll(t);

		mmu_shim_pages[i].private = 0;
		mmu_shim_freed[i] = mmu_shim_tdp_freed[i] = 0;
		if (mmu_shim_dirty[i]) {
			memset(mmu_shim_bufs[i], 0, sizeof(mmu_shim_bufs[i]));
			mmu_shim_dirty[i] = 0;
		}
	}
	mmu_shim_touched = 0;
	mmu_shim_freed_bits[0] = mmu_shim_freed_bits[1] = 0;
}

/* ---- locks ------------------------------------------------------------------ */

void mmu_shim_lock(int id, int kind)
{
	unsigned int slot = (unsigned int)id % MMU_SHIM_NR_LOCKS;
	int misuse = 0;

	mmu_shim_record(kind, id, 0, 0);
	mmu_shim_locks_touched |= 1u << slot;
	switch (kind) {
	case MMU_EV_READ_LOCK:
		misuse = mmu_shim_locks[slot].writer;
		mmu_shim_locks[slot].readers++;
		break;
	case MMU_EV_WRITE_LOCK:
	case MMU_EV_SPIN_LOCK:
		misuse = mmu_shim_locks[slot].writer || mmu_shim_locks[slot].readers;
		mmu_shim_locks[slot].writer = 1;
		break;
	case MMU_EV_READ_UNLOCK:
		if (mmu_shim_locks[slot].readers > 0)
			mmu_shim_locks[slot].readers--;
		else
			misuse = 2;
		break;
	default:
		if (mmu_shim_locks[slot].writer)
			mmu_shim_locks[slot].writer = 0;
		else
			misuse = 2;
	}
	if (misuse)
		mmu_shim_record(MMU_EV_LOCK_MISUSE, id, misuse, 0);
}

int mmu_shim_lock_held(int id, int mode)
{
	unsigned int slot = (unsigned int)id % MMU_SHIM_NR_LOCKS;
	int r = mmu_shim_locks[slot].readers > 0, w = mmu_shim_locks[slot].writer;

	return mode == 1 ? r : mode == 2 ? w : (r || w);
}

/* ---- the page model ------------------------------------------------------------- */

uint64_t mmu_shim_page_hpa(int idx)
{
	return (MMU_SHIM_PFN_BASE + (uint64_t)idx) << 12;
}

void *mmu_shim_page_virt(int idx)
{
	if (idx < 0 || idx >= MMU_SHIM_NR_PAGES)
		return 0;
	mmu_shim_dirty[idx] = 1;
	MMU_SHIM_TOUCH(idx);
	return mmu_shim_bufs[idx];
}

void mmu_shim_set_page_private(int idx, void *sp)
{
	if (idx >= 0 && idx < MMU_SHIM_NR_PAGES) {
		mmu_shim_pages[idx].private = (unsigned long)sp;
		MMU_SHIM_TOUCH(idx);
	}
}

int mmu_shim_page_index_of(const void *ptr)
{
	const unsigned char *p = ptr, *base = &mmu_shim_bufs[0][0];

	if (p < base || p >= base + sizeof(mmu_shim_bufs))
		return -1;
	return (int)((p - base) / 4096);
}

int mmu_shim_sp_index(const void *sp)
{
	uint64_t t = mmu_shim_touched;  /* an untouched page has no private */

	for (; sp && t; t &= t - 1) {
		int i = __builtin_ctzll(t);

		if (mmu_shim_pages[i].private == (unsigned long)sp)
			return i;
	}
	return -1;
}

/* The sp a field belongs to: the page whose private is the nearest sp address at or
 * below ptr (no struct kvm_mmu_page is near 512 bytes long). */
int mmu_shim_sp_index_holding(const void *ptr)
{
	uint64_t t = mmu_shim_touched;
	unsigned long best = 0, p = (unsigned long)ptr;
	int idx = -1;

	for (; t; t &= t - 1) {
		int i = __builtin_ctzll(t);
		unsigned long sp = mmu_shim_pages[i].private;

		if (sp && sp <= p && p - sp < 512 && sp >= best) {
			best = sp;
			idx = i;
		}
	}
	return idx;
}

void mmu_shim_atomic_set(int *counter, int value)
{
	int64_t idx = mmu_shim_sp_index_holding(counter);

	*counter = value;
	mmu_shim_record(MMU_EV_STUB, MMU_SHIM_STUB_ATOMIC_SET,
			(int64_t)((uint64_t)idx << 32 | (uint32_t)value), 0);
}

uint64_t mmu_shim_zero_page_hpa(void)
{
	return MMU_SHIM_ZERO_PFN << 12;
}

int mmu_shim_sp_freed(int idx)
{
	return idx >= 0 && idx < MMU_SHIM_NR_PAGES && mmu_shim_freed[idx];
}

int mmu_shim_tdp_root_freed(int idx)
{
	return idx >= 0 && idx < MMU_SHIM_NR_PAGES && mmu_shim_tdp_freed[idx];
}

uint64_t mmu_shim_freed_pages(int tdp)
{
	return mmu_shim_freed_bits[!!tdp];
}

void mmu_shim_mark_freed(int idx, int tdp)
{
	if (idx < 0 || idx >= MMU_SHIM_NR_PAGES)
		return;
	MMU_SHIM_TOUCH(idx);
	mmu_shim_freed_bits[!!tdp] |= 1ULL << idx;
	if (tdp)
		mmu_shim_tdp_freed[idx] = 1;
	else
		mmu_shim_freed[idx] = 1;
}

struct page *mmu_shim_pfn_to_page(uint64_t pfn)
{
	if (pfn >= MMU_SHIM_PFN_BASE && pfn < MMU_SHIM_PFN_BASE + MMU_SHIM_NR_PAGES) {
		MMU_SHIM_TOUCH(pfn - MMU_SHIM_PFN_BASE);  /* the code may write its private */
		return &mmu_shim_pages[pfn - MMU_SHIM_PFN_BASE];
	}
	if (pfn == MMU_SHIM_ZERO_PFN)
		return &mmu_shim_zero_page;
	mmu_shim_record(MMU_EV_BAD_PAGE, (int64_t)pfn, 0, 0);
	mmu_shim_bad_page.private = 0;
	return &mmu_shim_bad_page;
}

uint64_t mmu_shim_page_to_pfn(const struct page *page)
{
	if (page >= mmu_shim_pages && page < mmu_shim_pages + MMU_SHIM_NR_PAGES)
		return MMU_SHIM_PFN_BASE + (uint64_t)(page - mmu_shim_pages);
	return page == &mmu_shim_zero_page ? MMU_SHIM_ZERO_PFN : 0;
}

uint64_t mmu_shim_pa(const void *va)
{
	const unsigned char *p = va;
	int idx = mmu_shim_page_index_of(va);

	if (idx >= 0)
		return mmu_shim_page_hpa(idx) + (uint64_t)((p - &mmu_shim_bufs[0][0]) % 4096);
	if (p >= mmu_shim_zero_buf && p < mmu_shim_zero_buf + 4096)
		return (MMU_SHIM_ZERO_PFN << 12) + (uint64_t)(p - mmu_shim_zero_buf);
	mmu_shim_record(MMU_EV_BAD_PAGE, -1, 0, 0);
	return 0;
}

void *mmu_shim_va(uint64_t pa)
{
	uint64_t pfn = pa >> 12;

	if (pfn >= MMU_SHIM_PFN_BASE && pfn < MMU_SHIM_PFN_BASE + MMU_SHIM_NR_PAGES) {
		mmu_shim_dirty[pfn - MMU_SHIM_PFN_BASE] = 1;
		MMU_SHIM_TOUCH(pfn - MMU_SHIM_PFN_BASE);
		return mmu_shim_bufs[pfn - MMU_SHIM_PFN_BASE] + (pa & 4095);
	}
	if (pfn == MMU_SHIM_ZERO_PFN)
		return mmu_shim_zero_buf + (pa & 4095);
	mmu_shim_record(MMU_EV_BAD_PAGE, (int64_t)pfn, 0, 0);
	return mmu_shim_bad_buf;
}

/* ---- helpers of the generated mmu_shim_bitfield() ---------------------------------- */

static int mmu_shim_streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static int mmu_shim_measure(const void *u, size_t size, int *shift, int *width)
{
	uint64_t w = 0;
	int s = 0, n = 0;

	memcpy(&w, u, size < sizeof(w) ? size : sizeof(w));
	if (!w)
		return -1;
	while (!(w & 1))
		w >>= 1, s++;
	while (w & 1)
		w >>= 1, n++;
	*shift = s;
	*width = n;
	return 0;
}
