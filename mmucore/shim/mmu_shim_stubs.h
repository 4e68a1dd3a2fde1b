/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mmu_shim_stubs.h - recording stand-ins for the kernel functions too big to extract.
 * Written for mmu-ci; no kernel text. Included after the extracted types, because
 * they read and write struct kvm_mmu_page and struct kvm as the real ones do:
 *
 *  - prepare_zap: lockdep (write), record, mark the page invalid, queue it on the
 *    caller's list once no root references it;
 *  - commit_zap: nothing for an empty list, else one remote flush, then every queued
 *    page in order, WARN if one is still valid or referenced, mark it freed;
 *  - tdp put_root (2 or 3 arguments): lockdep by the shared argument where there is
 *    one, refcount drop, at zero KVM_BUG_ON unless a TDP page already invalid, freed.
 */
#ifndef MMU_SHIM_STUBS_H
#define MMU_SHIM_STUBS_H

static inline int mmu_shim_idx(const void *page)
{
	return mmu_shim_sp_index(page);
}

static bool kvm_mmu_prepare_zap_page(struct kvm *vm, struct kvm_mmu_page *page,
				     struct list_head *queue)
{
	lockdep_assert_held_write(&vm->mmu_lock);
	mmu_shim_record(MMU_EV_PREPARE_ZAP, mmu_shim_idx(page), page->root_count, 0);
	page->role.invalid = 1;
	if (page->root_count == 0)
		list_move_tail(&page->link, queue);
	else
		list_del_init(&page->link);
	return false;
}

static void kvm_mmu_commit_zap_page(struct kvm *vm, struct list_head *queue)
{
	struct list_head *pos, *next;
	int queued = 0;

	for (pos = queue->next; pos != queue; pos = pos->next)
		queued++;
	if (!queued)
		return;
	mmu_shim_record(MMU_EV_COMMIT_ZAP, queued, 0, 0);
	mmu_shim_record(MMU_EV_FLUSH_REMOTE_TLBS, 0, 0, 0);
	for (pos = queue->next; pos != queue; pos = next) {
		struct kvm_mmu_page *page = container_of(pos, struct kvm_mmu_page, link);
		int idx = mmu_shim_idx(page);

		next = pos->next;
		WARN_ON(page->root_count != 0 || page->role.invalid == 0);
		mmu_shim_record(MMU_EV_ZAP_FREE, idx, 0, 0);
		list_del_init(pos);
		mmu_shim_mark_freed(idx, 0);
	}
	(void)vm;
}

/* shared < 0: the 2-argument generation (6.9+), which asserts nothing itself. */
static void mmu_shim_tdp_put_root(struct kvm *vm, struct kvm_mmu_page *page, int shared)
{
	int idx = mmu_shim_idx(page);

	if (shared > 0)
		lockdep_assert_held_read(&vm->mmu_lock);
	if (shared == 0)
		lockdep_assert_held_write(&vm->mmu_lock);
	mmu_shim_record(MMU_EV_TDP_PUT_ROOT, idx, shared, 0);
	if (--page->tdp_mmu_root_count.refs != 0)
		return;
	KVM_BUG_ON(page->role.invalid == 0 || page->tdp_mmu_page == 0, vm);
	mmu_shim_record(MMU_EV_TDP_ROOT_FREED, idx, 0, 0);
	list_del_init(&page->link);
	mmu_shim_mark_freed(idx, 1);
}

/* The third argument, or -1 where the call has two (GNU ##__VA_ARGS__). */
#define MMU_SHIM_ARGS(...) ((int[]){ -1, ##__VA_ARGS__ })
#define MMU_SHIM_NARGS(...) (sizeof(MMU_SHIM_ARGS(__VA_ARGS__)) / sizeof(int))
#define MMU_SHIM_SHARED_ARG(...) \
	(MMU_SHIM_NARGS(__VA_ARGS__) > 1 ? MMU_SHIM_ARGS(__VA_ARGS__)[MMU_SHIM_NARGS(__VA_ARGS__) - 1] : -1)
#define kvm_tdp_mmu_put_root(kvm, root, ...) \
	mmu_shim_tdp_put_root(kvm, root, MMU_SHIM_SHARED_ARG(__VA_ARGS__))

#endif /* MMU_SHIM_STUBS_H */
