/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mmu_shim_kernel.h - the kernel primitives the extracted code is compiled against.
 * Written for mmu-ci; no kernel text. Everything that matters to behaviour records
 * through the model API of mmu_shim.h; the rest is plain C with kernel names.
 * Included first in every translation unit, before any extracted piece.
 */
#ifndef MMU_SHIM_KERNEL_H
#define MMU_SHIM_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mmu_shim.h"

/* ---- types and constants ----------------------------------------------------- */
/* As the kernel has them (int-ll64), so they agree with system headers cffi includes. */
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char s8;
typedef short s16;
typedef int s32;
typedef long long s64;
typedef u8 __u8;
typedef u16 __u16;
typedef u32 __u32;
typedef u64 __u64;
typedef s8 __s8;
typedef s16 __s16;
typedef s32 __s32;
typedef s64 __s64;
typedef unsigned int uint;
typedef unsigned long ulong;
typedef u64 phys_addr_t;
typedef unsigned int gfp_t;

#define BITS_PER_LONG 64
#define BIT(nr) (1UL << (nr))
#define BIT_ULL(nr) (1ULL << (nr))
#define GENMASK(h, l) (((~0UL) << (l)) & (~0UL >> (BITS_PER_LONG - 1 - (h))))
#define GENMASK_ULL(h, l) (((~0ULL) << (l)) & (~0ULL >> (63 - (h))))
#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#define PAGE_MASK (~(PAGE_SIZE - 1))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define sizeof_field(TYPE, MEMBER) sizeof((((TYPE *)0)->MEMBER))

/* ---- compiler words ------------------------------------------------------------ */
#define __read_mostly
#define __ro_after_init
#undef __always_inline
#define __always_inline inline
#define __must_check
#define __init
#define __exit
#define __maybe_unused __attribute__((unused))
#define __always_unused __attribute__((unused))
#define __cold
#define __weak
#define noinline __attribute__((noinline))
#define __rcu
#define __percpu
#define __iomem
#define __user
#define __force
#define __packed __attribute__((packed))
#define __aligned(x) __attribute__((aligned(x)))
#define EXPORT_SYMBOL(sym)
#define EXPORT_SYMBOL_GPL(sym)
#define EXPORT_SYMBOL_FOR_KVM_INTERNAL(sym)
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, val) (*(volatile __typeof__(x) *)&(x) = (val))
#define barrier() __asm__ __volatile__("" ::: "memory")
#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define swap(a, b)                          \
	do {                                    \
		__typeof__(a) __mmu_tmp = (a);      \
		(a) = (b);                          \
		(b) = __mmu_tmp;                    \
	} while (0)
#define min(a, b) ((a) < (b) ? (a) : (b))
#define max(a, b) ((a) > (b) ? (a) : (b))
#undef static_assert
#define static_assert(expr, ...) _Static_assert(expr, #expr)
#define BUILD_BUG_ON(cond) ((void)sizeof(char[1 - 2 * !!(cond)]))
#define rcu_dereference(p) (p)
#define rcu_dereference_raw(p) (p)

/* ---- WARN / BUG: record the site, return the condition as the kernel does ------- */
#define MMU_SHIM_SITE(condtext)                                                 \
	static struct mmu_shim_site __mmu_site = { __FILE__, __LINE__, 0, condtext, 0 }; \
	if (!__mmu_site.func)                                                        \
		__mmu_site.func = __func__
#define MMU_SHIM_CHECK(kind, cond, condtext, once)                      \
	({                                                                   \
		int __mmu_c = !!(cond);                                          \
		if (__mmu_c) {                                                   \
			static unsigned int __mmu_gen;                               \
			MMU_SHIM_SITE(condtext);                                     \
			if (!(once) || __mmu_gen != mmu_shim_generation) {           \
				__mmu_gen = mmu_shim_generation;                         \
				mmu_shim_record(kind, 0, 0, &__mmu_site);                \
			}                                                            \
		}                                                                \
		__mmu_c;                                                         \
	})
#define WARN_ON(cond) MMU_SHIM_CHECK(MMU_EV_WARN, cond, #cond, 0)
#define WARN_ON_ONCE(cond) MMU_SHIM_CHECK(MMU_EV_WARN, cond, #cond, 1)
#define WARN(cond, ...) MMU_SHIM_CHECK(MMU_EV_WARN, cond, #cond, 0)
#define WARN_ONCE(cond, ...) MMU_SHIM_CHECK(MMU_EV_WARN, cond, #cond, 1)
#define BUG_ON(cond) ((void)MMU_SHIM_CHECK(MMU_EV_BUG, cond, #cond, 0))
#define BUG() BUG_ON(1)
#define KVM_BUG_ON(cond, kvm) ((void)(kvm), MMU_SHIM_CHECK(MMU_EV_BUG, cond, #cond, 0))
#define KVM_BUG_ON_DATA_CORRUPTION(cond, kvm) KVM_BUG_ON(cond, kvm)

/* ---- locks: the state lives in a table by lock id, so mmu_shim_reset clears it -- */
typedef struct {
	int id;
} rwlock_t;
typedef struct {
	int id;
} spinlock_t;
typedef struct {
	int id;
} mutex_t;
struct mutex {
	int id;
};
#define rwlock_init(l) ((void)(l))
#define spin_lock_init(l) ((void)(l))
#define read_lock(l) mmu_shim_lock((l)->id, MMU_EV_READ_LOCK)
#define read_unlock(l) mmu_shim_lock((l)->id, MMU_EV_READ_UNLOCK)
#define write_lock(l) mmu_shim_lock((l)->id, MMU_EV_WRITE_LOCK)
#define write_unlock(l) mmu_shim_lock((l)->id, MMU_EV_WRITE_UNLOCK)
#define spin_lock(l) mmu_shim_lock((l)->id, MMU_EV_SPIN_LOCK)
#define spin_unlock(l) mmu_shim_lock((l)->id, MMU_EV_SPIN_UNLOCK)
#define MMU_SHIM_ASSERT_HELD(l, mode, text)                                 \
	do {                                                                     \
		if (!mmu_shim_lock_held((l)->id, mode)) {                            \
			MMU_SHIM_SITE(text);                                             \
			mmu_shim_record(MMU_EV_LOCKDEP_FAIL, (l)->id, mode, &__mmu_site); \
		}                                                                    \
	} while (0)
/* guard()/scoped_guard() of linux/cleanup.h (newer kernels): unlock at scope exit. */
struct mmu_shim_guard {
	int id;
	int unlock_kind;
	int once;
};
static inline void mmu_shim_guard_exit(struct mmu_shim_guard *g)
{
	mmu_shim_lock(g->id, g->unlock_kind);
}
static inline struct mmu_shim_guard mmu_shim_guard_enter(int id, int lock_kind, int unlock_kind)
{
	struct mmu_shim_guard g = { id, unlock_kind, 1 };

	mmu_shim_lock(id, lock_kind);
	return g;
}
#define MMU_SHIM_GUARD_read_lock(l) \
	mmu_shim_guard_enter((l)->id, MMU_EV_READ_LOCK, MMU_EV_READ_UNLOCK)
#define MMU_SHIM_GUARD_write_lock(l) \
	mmu_shim_guard_enter((l)->id, MMU_EV_WRITE_LOCK, MMU_EV_WRITE_UNLOCK)
#define MMU_SHIM_GUARD_spinlock(l) \
	mmu_shim_guard_enter((l)->id, MMU_EV_SPIN_LOCK, MMU_EV_SPIN_UNLOCK)
#define MMU_SHIM_CAT2(a, b) a##b
#define MMU_SHIM_CAT(a, b) MMU_SHIM_CAT2(a, b)
#define MMU_SHIM_GUARD_VAR(n) \
	struct mmu_shim_guard __attribute__((cleanup(mmu_shim_guard_exit))) n
#define guard(name) MMU_SHIM_GUARD_VAR(MMU_SHIM_CAT(__mmu_guard_, __COUNTER__)) = MMU_SHIM_GUARD_##name
#define scoped_guard(name, ...)                                                             \
	for (MMU_SHIM_GUARD_VAR(MMU_SHIM_CAT(__mmu_sg_, __LINE__)) = MMU_SHIM_GUARD_##name(__VA_ARGS__); \
	     MMU_SHIM_CAT(__mmu_sg_, __LINE__).once; MMU_SHIM_CAT(__mmu_sg_, __LINE__).once = 0)

#define lockdep_assert_held_read(l) MMU_SHIM_ASSERT_HELD(l, 1, "held_read(" #l ")")
#define lockdep_assert_held_write(l) MMU_SHIM_ASSERT_HELD(l, 2, "held_write(" #l ")")
#define lockdep_assert_held(l) MMU_SHIM_ASSERT_HELD(l, 3, "held(" #l ")")

/* ---- lists ------------------------------------------------------------------- */
struct list_head {
	struct list_head *next, *prev;
};
struct hlist_node {
	struct hlist_node *next, **pprev;
};
#define LIST_HEAD_INIT(name) { &(name), &(name) }
#define LIST_HEAD(name) struct list_head name = LIST_HEAD_INIT(name)
static inline void INIT_LIST_HEAD(struct list_head *h)
{
	h->next = h;
	h->prev = h;
}
static inline void list_add_tail(struct list_head *n, struct list_head *h)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}
static inline void list_add(struct list_head *n, struct list_head *h)
{
	list_add_tail(n, h->next);
}
/* An entry the driver left zeroed is on no list: unlinking it is a no-op. */
static inline void list_del_init(struct list_head *e)
{
	if (e->next && e->prev && e->next != e) {
		e->next->prev = e->prev;
		e->prev->next = e->next;
	}
	INIT_LIST_HEAD(e);
}
#define list_del(e) list_del_init(e)
#define list_del_rcu(e) list_del_init(e)
static inline void list_move_tail(struct list_head *e, struct list_head *h)
{
	list_del_init(e);
	list_add_tail(e, h);
}
static inline void list_move(struct list_head *e, struct list_head *h)
{
	list_del_init(e);
	list_add(e, h);
}
static inline int list_empty(const struct list_head *h)
{
	return h->next == h;
}
#define list_entry(ptr, type, member) container_of(ptr, type, member)
#define list_first_entry(h, type, member) list_entry((h)->next, type, member)
#define list_for_each_entry(pos, head, member)                               \
	for (pos = list_entry((head)->next, __typeof__(*pos), member);           \
	     &pos->member != (head);                                             \
	     pos = list_entry(pos->member.next, __typeof__(*pos), member))
#define list_for_each_entry_safe(pos, n, head, member)                       \
	for (pos = list_entry((head)->next, __typeof__(*pos), member),           \
	    n = list_entry(pos->member.next, __typeof__(*pos), member);          \
	     &pos->member != (head);                                             \
	     pos = n, n = list_entry(n->member.next, __typeof__(*n), member))

/* ---- counters ---------------------------------------------------------------- */
typedef struct {
	int counter;
} atomic_t;
typedef struct {
	int refs;
} refcount_t;
#define atomic_read(v) ((v)->counter)
/* Recorded: 5.17's __kvm_mmu_new_pgd resets the write-flooding count of the root it
 * reuses (MMU_EV_STUB, see MMU_SHIM_STUB_ATOMIC_SET). */
#define atomic_set(v, i) mmu_shim_atomic_set(&(v)->counter, (i))
#define atomic_inc(v) ((void)(++(v)->counter))
#define atomic_dec(v) ((void)(--(v)->counter))
#define refcount_read(r) ((r)->refs)
#define refcount_set(r, n) ((r)->refs = (n))
#define refcount_inc(r) ((void)(++(r)->refs))
#define refcount_dec_and_test(r) (--(r)->refs == 0)
#define refcount_inc_not_zero(r) ((r)->refs ? (++(r)->refs, 1) : 0)

/* ---- the page model (see mmu_shim.h) ------------------------------------------ */
struct page {
	unsigned long private;
};
struct page *mmu_shim_pfn_to_page(uint64_t pfn);
uint64_t mmu_shim_pa(const void *va);
void *mmu_shim_va(uint64_t pa);
#define pfn_to_page(pfn) mmu_shim_pfn_to_page(pfn)
#define page_private(page) ((page)->private)
#define set_page_private(page, v) ((page)->private = (unsigned long)(v))
#define __pa(va) mmu_shim_pa((const void *)(va))
#define __va(pa) mmu_shim_va((u64)(pa))
#define virt_to_page(va) pfn_to_page(__pa(va) >> PAGE_SHIFT)
#define page_address(page) __va(mmu_shim_page_to_pfn(page) << PAGE_SHIFT)
uint64_t mmu_shim_page_to_pfn(const struct page *page);
#define page_to_pfn(page) mmu_shim_page_to_pfn(page)
#define is_zero_pfn(pfn) ((u64)(pfn) == MMU_SHIM_ZERO_PFN)
#define my_zero_pfn(addr) ((void)(addr), MMU_SHIM_ZERO_PFN)

/* ---- small recording stand-ins that need no kernel struct ---------------------- */
#define kvm_make_request(req, vcpu) ((void)(vcpu), mmu_shim_record(MMU_EV_REQUEST, (req), 0, 0))
#define kvm_make_all_cpus_request(kvm, req) \
	((void)(kvm), mmu_shim_record(MMU_EV_REQUEST, (req), 1, 0), true)
#define kvm_flush_remote_tlbs(kvm) ((void)(kvm), mmu_shim_record(MMU_EV_FLUSH_REMOTE_TLBS, 0, 0, 0))
#define vcpu_clear_mmio_info(vcpu, gva) \
	((void)(vcpu), mmu_shim_record(MMU_EV_CLEAR_MMIO_INFO, (int64_t)(gva), 0, 0))
#define MMIO_GVA_ANY (~(u64)0)

#endif /* MMU_SHIM_KERNEL_H */
