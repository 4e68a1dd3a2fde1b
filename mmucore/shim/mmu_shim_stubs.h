/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mmu_shim_stubs.h - recording stand-ins for the kernel functions too big to extract.
 * Written for mmu-ci; no kernel text. Included after the extracted types, because
 * they read and write struct kvm_mmu_page and struct kvm like the real ones do.
 */
#ifndef MMU_SHIM_STUBS_H
#define MMU_SHIM_STUBS_H

static inline int mmu_shim_idx(const void *sp)
{
	return mmu_shim_sp_index(sp);
}

/* Mark for zapping: invalid from now on; onto invalid_list once no root uses it. */
static bool kvm_mmu_prepare_zap_page(struct kvm *kvm, struct kvm_mmu_page *sp,
				     struct list_head *invalid_list)
{
	lockdep_assert_held_write(&kvm->mmu_lock);
	mmu_shim_record(MMU_EV_PREPARE_ZAP, mmu_shim_idx(sp), sp->root_count, 0);
	sp->role.invalid = 1;
	if (!sp->root_count)
		list_move(&sp->link, invalid_list);
	else
		list_del_init(&sp->link);
	return false;
}

/* Free what prepare_zap collected, in list order, after one remote TLB flush. */
static void kvm_mmu_commit_zap_page(struct kvm *kvm, struct list_head *invalid_list)
{
	struct kvm_mmu_page *sp, *nsp;
	int n = 0;

	if (list_empty(invalid_list))
		return;
	list_for_each_entry(sp, invalid_list, link)
		n++;
	mmu_shim_record(MMU_EV_COMMIT_ZAP, n, 0, 0);
	kvm_flush_remote_tlbs(kvm);
	list_for_each_entry_safe(sp, nsp, invalid_list, link) {
		WARN_ON(!sp->role.invalid || sp->root_count);
		mmu_shim_record(MMU_EV_ZAP_FREE, mmu_shim_idx(sp), 0, 0);
		list_del_init(&sp->link);
		mmu_shim_mark_freed(mmu_shim_idx(sp), 0);
	}
}

/* shared < 0: the 2-argument generation (6.9+), which asserts nothing itself. */
static void mmu_shim_tdp_put_root(struct kvm *kvm, struct kvm_mmu_page *root, int shared)
{
	if (shared > 0)
		lockdep_assert_held_read(&kvm->mmu_lock);
	else if (shared == 0)
		lockdep_assert_held_write(&kvm->mmu_lock);
	mmu_shim_record(MMU_EV_TDP_PUT_ROOT, mmu_shim_idx(root), shared, 0);
	if (!refcount_dec_and_test(&root->tdp_mmu_root_count))
		return;
	KVM_BUG_ON(!root->tdp_mmu_page || !root->role.invalid, kvm);
	mmu_shim_record(MMU_EV_TDP_ROOT_FREED, mmu_shim_idx(root), 0, 0);
	list_del_init(&root->link);
	mmu_shim_mark_freed(mmu_shim_idx(root), 1);
}

#define MMU_SHIM_SHARED_ARG(...) \
	(sizeof((int[]){ -1, ##__VA_ARGS__ }) > sizeof(int) ? ((int[]){ -1, ##__VA_ARGS__ })[1 % (sizeof((int[]){ -1, ##__VA_ARGS__ }) / sizeof(int))] : -1)
#define kvm_tdp_mmu_put_root(kvm, root, ...) \
	mmu_shim_tdp_put_root(kvm, root, MMU_SHIM_SHARED_ARG(__VA_ARGS__))

#endif /* MMU_SHIM_STUBS_H */
