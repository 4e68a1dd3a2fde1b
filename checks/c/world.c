/* ---- the modelled MMU world (mmu-ci driver code, not kernel code) ----
 * The world's variables, slot codes, modes and page numbers are defined by the generated
 * header (checks/world.py: world_header); what differs per tree (which fields hold the
 * levels, where the root lives) by the glue after this file (checks/world.py: glue_c). */
/* Not static: a check's call and drv_set_env, compiled with the revision's code apart
 * from this file (mmucore/build_base.py), use them; DRV_SHARED declares them there. */
struct drv_world drv_w;
struct kvm drv_kvm;
struct kvm_mmu drv_mmu;
long drv_ret;
static struct kvm_mmu_page drv_sp[DRV_NPAGES];
static int drv_used[DRV_NPAGES], drv_refs[DRV_NPAGES], drv_tdp[DRV_NPAGES], drv_r2[DRV_NPAGES];
static int drv_slot_of[DRV_NPAGES];
static uint64_t drv_pgd_of[DRV_NPAGES];
static void drv_kvm_init(void);
void drv_set_env(void);
static void drv_set_levels(const struct drv_mode *m);
static void drv_set_sp_gen(struct kvm_mmu_page *sp, int s);
static void drv_snapshot(void);
static uint64_t *drv_pv[DRV_NPAGES];
static uint32_t drv_used_bits;  /* a bit per sp page (PAGE_SLOT0..) this state uses */
/* the same sps in the same order, each with its root count (drv_whole's loop) */
static struct {
	const struct kvm_mmu_page *sp;
	const int *count;
} drv_used_sp[DRV_NPAGES];
static int drv_nused;

/* What drv_setup wrote for the current setup dimensions, for drv_restore. */
static struct {
	struct kvm_mmu mmu;
	struct kvm kvm;
	struct kvm_mmu_page sp[DRV_NPAGES];
	int used[DRV_NPAGES], refs[DRV_NPAGES], tdp[DRV_NPAGES], r2[DRV_NPAGES];
	uint64_t pae[4], pml4, pml5;
} drv_snap;

#if DRV_TAKES_VCPU
/* the vCPU whose MMU is the world's, for the entry points that take one */
static struct kvm_vcpu drv_vcpu_s;
struct kvm_vcpu *drv_vcpu(void)
{
	drv_vcpu_s.kvm = &drv_kvm;
	drv_vcpu_s.arch.mmu = &drv_mmu;
	return &drv_vcpu_s;
}
#endif

/* The buffer of page pg, fetched once: the driver rewrites every word it uses per state,
 * so the shim need not clear these pages on each reset. */
static inline uint64_t *drv_page(int pg)
{
	if (__builtin_expect(!drv_pv[pg], 0))
		drv_pv[pg] = mmu_shim_page_virt(pg);
	return drv_pv[pg];
}

static void drv_slot(int s, uint64_t *hpa, uint64_t *pgd)
{
	int code = drv_w.slot[s], dir = drv_modes[drv_w.mode].direct;
	int kind_tdp = drv_w.mode == MODE_TDP64 && drv_w.tdp;
	int pg = PAGE_SLOT0 + s, tdp = 0, r2 = 0;
	uint64_t g = dir ? 0 : DRV_G1;

	switch (code) {
	case SLOT_INVALID:
		*hpa = DRV_INVALID;
		*pgd = s == 0 ? 0 : drv_w.stale == STALE_G3 ? DRV_G3
			: drv_w.stale == STALE_ZERO ? 0 : DRV_INVALID;
		return;
	case SLOT_SP_G1_R1: break;
	case SLOT_SP_G2_R1: g = dir ? 0 : DRV_G2; break;
	case SLOT_SP_G1_R2: r2 = 1; break;
	case SLOT_TDP: tdp = 1; g = 0; break;
	case SLOT_ALIAS:
		pg = PAGE_SLOT0;
		if (drv_used[PAGE_SLOT0]) {
			drv_refs[PAGE_SLOT0]++;
			*hpa = mmu_shim_page_hpa(PAGE_SLOT0);
			*pgd = drv_pgd_of[PAGE_SLOT0];
			return;
		}
		break;
	case SLOT_PAE: *hpa = mmu_shim_page_hpa(PAGE_PAE_ROOT); *pgd = g; return;
	case SLOT_PML4: *hpa = mmu_shim_page_hpa(PAGE_PML4_ROOT); *pgd = g; return;
	case SLOT_PML5: *hpa = mmu_shim_page_hpa(PAGE_PML5_ROOT); *pgd = g; return;
	case SLOT_DUMMY: *hpa = mmu_shim_zero_page_hpa(); *pgd = g; return;
	case SLOT_KIND_G1_R1: tdp = kind_tdp; break;
	case SLOT_KIND_G2_R1: tdp = kind_tdp; g = dir ? 0 : DRV_G2; break;
	case SLOT_KIND_G1_R2: tdp = kind_tdp; r2 = 1; break;
	case SLOT_INVALID_INFO: *hpa = DRV_INVALID; *pgd = DRV_INVALID; return;
	case SLOT_INVALID_STALE: *hpa = DRV_INVALID; *pgd = DRV_G3; return;
	}
	if (tdp)
		g = 0;
	drv_used[pg] = 1;
	drv_refs[pg]++;
	drv_tdp[pg] = tdp;
	drv_r2[pg] = r2;
	drv_slot_of[pg] = s;
	drv_pgd_of[pg] = g;
	*hpa = mmu_shim_page_hpa(pg);
	*pgd = g;
}

static void drv_setup(void)
{
	const struct drv_mode *m = &drv_modes[drv_w.mode];
	uint64_t hpa, pgd;
	int i, s;

	mmu_shim_reset();
	drv_used_bits = 0;
	drv_nused = 0;
	memset(&drv_mmu, 0, sizeof(drv_mmu));
	memset(drv_used, 0, sizeof(drv_used));
	memset(drv_refs, 0, sizeof(drv_refs));
	memset(drv_tdp, 0, sizeof(drv_tdp));
	memset(drv_r2, 0, sizeof(drv_r2));
	drv_ret = 0;
	drv_kvm_init();
	drv_set_env();
	drv_set_levels(m);
	for (s = 0; s < 4; s++) {
		drv_slot(s, &hpa, &pgd);
		if (s == 0) {
			DRV_ROOT_HPA = hpa;
			DRV_ROOT_PGD = pgd;
		} else {
			drv_mmu.prev_roots[s - 1].hpa = hpa;
			drv_mmu.prev_roots[s - 1].pgd = pgd;
		}
	}
	for (i = 0; i < 4; i++)
		drv_page(PAGE_PAE_ROOT)[i] = 0;
	if (drv_w.specials == SPECIALS_ALLOCATED) {
		uint64_t *pml4 = drv_page(PAGE_PML4_ROOT), *pml5 = drv_page(PAGE_PML5_ROOT);

		drv_mmu.pae_root = drv_page(PAGE_PAE_ROOT);
		drv_mmu.pml4_root = pml4;
		drv_mmu.pml5_root = pml5;
		pml4[0] = mmu_shim_page_hpa(PAGE_PAE_ROOT) | 1;
		pml5[0] = mmu_shim_page_hpa(PAGE_PML4_ROOT) | 1;
	}
	for (i = 0; i < 4; i++) {
		int pg = PAGE_PAE_SP0 + i;

		if (!(drv_w.pae >> i & 1))
			continue;
		drv_page(PAGE_PAE_ROOT)[i] = mmu_shim_page_hpa(pg) | 1;
		drv_used[pg] = 1;
		drv_refs[pg] = 1;
		drv_tdp[pg] = 0;
		drv_r2[pg] = 0;
		drv_slot_of[pg] = 0;
	}
	for (i = PAGE_SLOT0; i < DRV_NPAGES; i++) {
		struct kvm_mmu_page *sp = &drv_sp[i];
		int invalid = drv_w.attrs >= ATTRS_INVALID, extra = drv_w.attrs == ATTRS_INVALID_HELD;
		union kvm_mmu_page_role role = { .word = 0 };

		if (!drv_used[i])
			continue;  /* never reachable in this state: left as it is */
		drv_used_bits |= 1u << i;
		drv_used_sp[drv_nused].sp = sp;
		drv_used_sp[drv_nused++].count = drv_tdp[i] ?
			&refcount_read(&sp->tdp_mmu_root_count) : &sp->root_count;
		memset(sp, 0, sizeof(*sp));
		s = drv_slot_of[i];
		sp->spt = drv_page(i);
		role.level = i >= PAGE_PAE_SP0 ? 2 : m->root_level;
		role.direct = drv_tdp[i] || m->direct;
		role.efer_nx = drv_r2[i];
		role.guest_mode = drv_w.gm >> s & 1;
		role.invalid = invalid;
		sp->role = role;
		sp->tdp_mmu_page = drv_tdp[i];
		if (drv_tdp[i])
			refcount_set(&sp->tdp_mmu_root_count, drv_refs[i] + !invalid + extra);
		else
			sp->root_count = drv_refs[i] + extra;
		if (!drv_tdp[i])
			drv_set_sp_gen(sp, s);
		mmu_shim_set_page_private(i, sp);
	}
	drv_snapshot();
}

/* Keeps what drv_setup wrote that the code under test may change (the kernel structs,
 * the page words), and the per-page tables, for the states that share these dimensions. */
static void drv_snapshot(void)
{
	const uint64_t *pae = drv_page(PAGE_PAE_ROOT);
	uint32_t u;

	drv_snap.mmu = drv_mmu;
	drv_snap.kvm = drv_kvm;
	for (u = drv_used_bits; u; u &= u - 1)
		drv_snap.sp[__builtin_ctz(u)] = drv_sp[__builtin_ctz(u)];
	memcpy(drv_snap.used, drv_used, sizeof(drv_used));
	memcpy(drv_snap.refs, drv_refs, sizeof(drv_refs));
	memcpy(drv_snap.tdp, drv_tdp, sizeof(drv_tdp));
	memcpy(drv_snap.r2, drv_r2, sizeof(drv_r2));
	memcpy(drv_snap.pae, pae, sizeof(drv_snap.pae));
	drv_snap.pml4 = drv_page(PAGE_PML4_ROOT)[0];
	drv_snap.pml5 = drv_page(PAGE_PML5_ROOT)[0];
}

/* drv_setup again for a state whose setup dimensions are those of the last drv_setup:
 * writes back exactly what it wrote, in the same order for the shim (reset first, then
 * the pages' private), without deriving it from the world again. */
static void drv_restore(void)
{
	uint64_t *pae = drv_page(PAGE_PAE_ROOT);
	uint32_t u;

	mmu_shim_reset();
	drv_mmu = drv_snap.mmu;
	memcpy(drv_used, drv_snap.used, sizeof(drv_used));
	memcpy(drv_refs, drv_snap.refs, sizeof(drv_refs));
	memcpy(drv_tdp, drv_snap.tdp, sizeof(drv_tdp));
	memcpy(drv_r2, drv_snap.r2, sizeof(drv_r2));
	drv_ret = 0;
	drv_kvm = drv_snap.kvm;
	drv_set_env();
	memcpy(pae, drv_snap.pae, sizeof(drv_snap.pae));
	if (drv_w.specials == SPECIALS_ALLOCATED) {
		drv_page(PAGE_PML4_ROOT)[0] = drv_snap.pml4;
		drv_page(PAGE_PML5_ROOT)[0] = drv_snap.pml5;
	}
	for (u = drv_used_bits; u; u &= u - 1) {
		int i = __builtin_ctz(u);

		drv_sp[i] = drv_snap.sp[i];
		mmu_shim_set_page_private(i, &drv_sp[i]);
	}
}

uint64_t drv_role_word(int r2, int direct)
{
	union kvm_mmu_page_role role = { .word = 0 };

	role.level = drv_modes[drv_w.mode].root_level;
	role.direct = direct;
	role.efer_nx = r2;
	role.guest_mode = drv_w.mmu_gm;
	return role.word;
}

static uint64_t drv_canon_ptr(const void *p)
{
	return p ? (uint64_t)(mmu_shim_page_index_of(p) + 1) : 0;
}

/* The digest of the fields: like drv_fields, but only the sps this state uses.
 * Per component, each field's value times its own odd constant, summed (the products are
 * independent of each other), then one mix into the component. */
#define DRV_FNV 0xcbf29ce484222325ULL  /* every component's digest starts here */

static inline uint64_t drv_mix(uint64_t h, uint64_t v)
{
	h = (h ^ v) * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

/* The field components of a row whose event components are done: each is one mix of
 * the FNV basis (no field component is an event's). Every input read here must also go
 * into drv_whole (runner.c): a difference its word misses never reaches the rows. */
static void drv_digest_fields(uint64_t *d, uint64_t *root4)
{
	const uint64_t *pae = drv_page(PAGE_PAE_ROOT);
	uint64_t prev = 0, pg = 0, count = 0, invalid = 0;
	uint64_t freed = mmu_shim_freed_pages(0), tdp_freed = mmu_shim_freed_pages(1), used = 0;
	uint32_t u;
	int i;

	root4[0] = DRV_ROOT_HPA;
	root4[1] = DRV_ROOT_PGD;
	d[DRV_C_ROOT] = drv_mix(DRV_FNV, root4[0] * drv_kf[DRV_KF_ROOT] +
				root4[1] * drv_kf[DRV_KF_ROOT + 1]);
	for (i = 0; i < 3; i++) {
		prev += drv_mmu.prev_roots[i].hpa * drv_kf[DRV_KF_PREV + 2 * i] +
			drv_mmu.prev_roots[i].pgd * drv_kf[DRV_KF_PREV + 1 + 2 * i];
	}
	d[DRV_C_PREV_ROOTS] = drv_mix(DRV_FNV, prev);
	pg = drv_canon_ptr(drv_mmu.pae_root) * drv_kf[DRV_KF_PAE_PTR];
	for (i = 0; i < 4; i++)
		pg += pae[i] * drv_kf[DRV_KF_PAE + i];
	d[DRV_C_PAE_ROOT] = drv_mix(DRV_FNV, pg);
	for (u = drv_used_bits; u; u &= u - 1) {
		struct kvm_mmu_page *sp;

		i = __builtin_ctz(u);
		sp = &drv_sp[i];
		used |= 1ULL << i;
		count += drv_kf[DRV_KF_COUNT + i] * (drv_tdp[i] ?
				(uint64_t)refcount_read(&sp->tdp_mmu_root_count) :
				(uint64_t)(int64_t)sp->root_count);
		invalid |= (uint64_t)(sp->role.invalid != 0) << i;
	}
	d[DRV_C_ROOT_COUNT] = drv_mix(DRV_FNV, count);
	d[DRV_C_ROLE_INVALID] = drv_mix(DRV_FNV, invalid);
	d[DRV_C_FREED] = drv_mix(DRV_FNV, (freed & used) * drv_kf[DRV_KF_ROOT] +
				 (tdp_freed & used));
	d[DRV_C_RETURN] = drv_mix(DRV_FNV, (uint64_t)drv_ret);
}

static void drv_fields(uint64_t *f)
{
	const uint64_t *pae = drv_page(PAGE_PAE_ROOT);
	int i, n = 0;

	f[n++] = DRV_ROOT_HPA;
	f[n++] = DRV_ROOT_PGD;
	for (i = 0; i < 3; i++) {
		f[n++] = drv_mmu.prev_roots[i].hpa;
		f[n++] = drv_mmu.prev_roots[i].pgd;
	}
	f[n++] = drv_canon_ptr(drv_mmu.pae_root);
	for (i = 0; i < 4; i++)
		f[n++] = pae[i];
	for (i = PAGE_SLOT0; i < DRV_NPAGES; i++) {
		struct kvm_mmu_page *sp = &drv_sp[i];

		f[n++] = drv_tdp[i] ? (uint64_t)refcount_read(&sp->tdp_mmu_root_count)
					: (uint64_t)(int64_t)sp->root_count;
		f[n++] = sp->role.invalid;
		f[n++] = mmu_shim_sp_freed(i) | mmu_shim_tdp_root_freed(i) << 1;
	}
	f[n++] = (uint64_t)drv_ret;
}
