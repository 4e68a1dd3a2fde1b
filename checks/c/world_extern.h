/* The world's objects (world.c) as the revision's part of a split module sees them: the
 * checks' calls and drv_set_env are compiled with the revision's code, the rest of the
 * driver once into shared.o (mmucore/build_base.py). */
extern struct drv_world drv_w;
extern struct kvm drv_kvm;
extern struct kvm_mmu drv_mmu;
extern long drv_ret;
uint64_t drv_role_word(int r2, int direct);
#if DRV_TAKES_VCPU
struct kvm_vcpu *drv_vcpu(void);
#endif
