"""The modelled MMU world in C: concretizer and observables, per API generation.

Every check's abstract state sets the variables of one `struct drv_world`; the C here
writes that world into whatever structs the extraction has (`mmu->root.hpa` or
`mmu->root_hpa`, `root_role` or the level fields, ...) and reads the observables back.
Our own C, generated from `Extraction.features` and the kept struct fields.

Pages: 0 pae_root, 1 pml4_root, 2 pml5_root (no sp behind them), 3..6 the own page of
slot 0..3 (slot 0 = mmu->root, 1..3 = prev_roots[0..2]), 7..10 the sps behind
pae_root[0..3].
"""

from __future__ import annotations

from typing import Any

from checks.space import COMPONENTS

WORLD_VARS = (
    "mask", "mode", "tdp", "slot0", "slot1", "slot2", "slot3", "specials", "pae", "attrs",
    "gm", "mmu_gm", "obs", "new_pgd", "new_role", "stale", "flush",
)  # fmt: skip

# Slot codes (a slot is mmu->root or one prev_roots[i]).
SLOT_CODES = {
    "INVALID": 0,
    "SP_G1_R1": 1,
    "SP_G2_R1": 2,
    "SP_G1_R2": 3,
    "TDP": 4,
    "ALIAS": 5,
    "PAE": 6,
    "PML4": 7,
    "PML5": 8,
    "DUMMY": 9,
    "KIND_G1_R1": 10,
    "KIND_G2_R1": 11,
    "KIND_G1_R2": 12,
    # invalid slots whose pgd is not the one code 0 gives (0 for mmu->root, `stale` for
    # prev_roots): KVM_MMU_ROOT_INFO_INVALID's INVALID_PAGE, or a stale guest address
    "INVALID_INFO": 13,
    "INVALID_STALE": 14,
}
# The codes of an invalid slot (hpa INVALID_PAGE), whatever its pgd.
INVALID_CODES = (0, 13, 14)
MODES = (
    "64-bit shadow paging (root level 4, guest level 4)",
    "64-bit TDP (root level 4, direct)",
    "PAE shadow paging (root level 3, guest level 3)",
    "PAE direct (root level 3, direct)",
    "32-bit guest NPT under 4-level NPT (root level 4, guest level 3)",
    "32-bit guest NPT under 5-level NPT (root level 5, guest level 3)",
)
PAGE_NAMES = {0: "pae_root", 1: "pml4_root", 2: "pml5_root"}
NR_SP_PAGES = 11


def _kept(ex: Any, struct: str, fld: str) -> bool:
    kept = getattr(ex, "structs", {}).get(struct)
    return True if kept is None else fld in kept


def _names(ex: Any) -> set[str]:
    names = set(getattr(ex, "shimmed", ()))
    names |= {p.name for p in getattr(ex, "pieces", ())}
    return names


def field_labels(ex: Any) -> list[tuple[str, str]]:
    """(component, label) of every observed field, labels spelled as this tree spells them."""
    root = "mmu->root." if "root_info_struct" in ex.features else "mmu->root_"
    out = [("root", f"{root}hpa"), ("root", f"{root}pgd")]
    for i in range(3):
        out += [
            ("prev_roots", f"mmu->prev_roots[{i}].hpa"),
            ("prev_roots", f"mmu->prev_roots[{i}].pgd"),
        ]
    out.append(("pae_root", "mmu->pae_root"))
    out += [("pae_root", f"mmu->pae_root[{i}]") for i in range(4)]
    for pg in range(3, NR_SP_PAGES):
        out.append(("root_count", f"sp#{pg} root_count"))
        out.append(("role.invalid", f"sp#{pg} role.invalid"))
        out.append(("freed", f"sp#{pg} freed"))
    out.append(("return", "return value"))
    return out


def _odd_constants(n: int, seed: int = 0x6D6D752D6369) -> list[int]:
    """n odd 64-bit constants (splitmix64 from a fixed seed): a field's multiplier in the
    digest."""
    out, x, m = [], seed, (1 << 64) - 1
    for _ in range(n):
        x = (x + 0x9E3779B97F4A7C15) & m
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        out.append((z ^ (z >> 31)) | 1)
    return out


KF = _odd_constants(13 + NR_SP_PAGES)  # root 2, prev_roots 6, pae_root 5, an sp's count each


def world_c(ex: Any) -> str:
    """C that defines the world, writes it into this tree's structs and observes it."""
    f = ex.features
    if "root_info_struct" in f:
        root_hpa, root_pgd = "drv_mmu.root.hpa", "drv_mmu.root.pgd"
    else:
        root_hpa, root_pgd = "drv_mmu.root_hpa", "drv_mmu.root_pgd"
    levels = []
    if _kept(ex, "struct kvm_mmu", "root_role") and "root_role" in f:
        levels += [
            "drv_mmu.root_role.level = m->root_level;",
            "drv_mmu.root_role.direct = m->direct;",
        ]
        levels.append("drv_mmu.root_role.guest_mode = drv_w.mmu_gm;")
    if _kept(ex, "struct kvm_mmu", "cpu_role") and "root_role" in f:
        levels.append("drv_mmu.cpu_role.base.level = m->guest_level;")
    if "level_fields" in f:
        for fld, val in (("shadow_root_level", "root_level"), ("root_level", "guest_level"),
                         ("direct_map", "direct")):  # fmt: skip
            if _kept(ex, "struct kvm_mmu", fld):
                levels.append(f"drv_mmu.{fld} = m->{val};")
        if _kept(ex, "struct kvm_mmu", "mmu_role"):
            levels.append("drv_mmu.mmu_role.base.guest_mode = drv_w.mmu_gm;")
    names = _names(ex)
    env = []
    if "tdp_mmu_enabled" in names:
        env.append("tdp_mmu_enabled = drv_w.tdp;")
    if _kept(ex, "struct kvm_arch", "tdp_mmu_enabled") and "tdp_mmu_enabled" not in names:
        env.append("drv_kvm.arch.tdp_mmu_enabled = drv_w.tdp;")
    if _kept(ex, "struct kvm_arch", "mmu_valid_gen"):
        env.append("drv_kvm.arch.mmu_valid_gen = 1;")
    if "force_flush_and_sync_on_reuse" in names:  # the module parameter flush_on_reuse
        env.append("force_flush_and_sync_on_reuse = drv_w.flush;")
    sp_gen = "sp->mmu_valid_gen = (drv_w.obs >> s & 1) ? 0 : 1;"
    if not _kept(ex, "struct kvm_mmu_page", "mmu_valid_gen"):
        sp_gen = "(void)s;"
    subs = {
        "@ROOT_HPA@": root_hpa,
        "@ROOT_PGD@": root_pgd,
        "@LEVELS@": "\n\t".join(levels),
        "@ENV@": "\n\t".join(env),
        "@SP_GEN@": sp_gen,
        "@NKF@": str(len(KF)),
        "@KF@": ", ".join(f"{k:#x}ULL" for k in KF),
        "@NCOMP@": str(len(COMPONENTS)),
        "@NFIELDS@": str(len(field_labels(ex))),
        "@C_ROOT@": str(COMPONENTS.index("root")),
        "@C_PREV@": str(COMPONENTS.index("prev_roots")),
        "@C_PAE@": str(COMPONENTS.index("pae_root")),
        "@C_COUNT@": str(COMPONENTS.index("root_count")),
        "@C_INVALID@": str(COMPONENTS.index("role.invalid")),
        "@C_FREED@": str(COMPONENTS.index("freed")),
        "@C_RET@": str(COMPONENTS.index("return")),
    }
    comp_of = ", ".join(str(COMPONENTS.index(c)) for c, _ in field_labels(ex))
    src = _WORLD_C.replace("@FIELD_COMP@", comp_of)
    for k, v in subs.items():
        src = src.replace(k, v)
    return src


_WORLD_C = r"""
/* ---- the modelled MMU world (mmu-ci driver code, not kernel code) ---- */
struct drv_world {
	int mask, mode, tdp, slot[4], specials, pae, attrs, gm, mmu_gm, obs, new_pgd, new_role,
		stale, flush;
};
#define DRV_NPAGES 11
#define DRV_NCOMP @NCOMP@
#define DRV_NFIELDS @NFIELDS@
#define DRV_G1 0x11000ULL
#define DRV_G2 0x22000ULL
#define DRV_G3 0x33000ULL
#define DRV_INVALID (~0ULL)
static struct drv_world drv_w;
static struct kvm drv_kvm;
static struct kvm_mmu drv_mmu;
static struct kvm_mmu_page drv_sp[DRV_NPAGES];
static int drv_used[DRV_NPAGES], drv_refs[DRV_NPAGES], drv_tdp[DRV_NPAGES], drv_r2[DRV_NPAGES];
static int drv_slot_of[DRV_NPAGES];
static uint64_t drv_pgd_of[DRV_NPAGES];
static long drv_ret;
static void drv_kvm_init(void);
static uint64_t *drv_pv[DRV_NPAGES];

/* The buffer of page pg, fetched once: the driver rewrites every word it uses per state,
 * so the shim need not clear these pages on each reset. */
static inline uint64_t *drv_page(int pg)
{
	if (__builtin_expect(!drv_pv[pg], 0))
		drv_pv[pg] = mmu_shim_page_virt(pg);
	return drv_pv[pg];
}
static const struct { int root_level, guest_level, direct; } drv_modes[] = {
	{4, 4, 0}, {4, 4, 1}, {3, 3, 0}, {3, 2, 1}, {4, 3, 0}, {5, 3, 0},
};
static const unsigned char drv_field_comp[DRV_NFIELDS] = { @FIELD_COMP@ };

static void drv_slot(int s, uint64_t *hpa, uint64_t *pgd)
{
	int code = drv_w.slot[s], dir = drv_modes[drv_w.mode].direct;
	int kind_tdp = drv_w.mode == 1 && drv_w.tdp;
	int pg = 3 + s, tdp = 0, r2 = 0;
	uint64_t g = dir ? 0 : DRV_G1;

	switch (code) {
	case 0:
		*hpa = DRV_INVALID;
		*pgd = s == 0 ? 0 : drv_w.stale == 1 ? DRV_G3 : drv_w.stale == 2 ? 0 : DRV_INVALID;
		return;
	case 1: break;
	case 2: g = dir ? 0 : DRV_G2; break;
	case 3: r2 = 1; break;
	case 4: tdp = 1; g = 0; break;
	case 5:
		pg = 3;
		if (drv_used[3]) {
			drv_refs[3]++;
			*hpa = mmu_shim_page_hpa(3);
			*pgd = drv_pgd_of[3];
			return;
		}
		break;
	case 6: *hpa = mmu_shim_page_hpa(0); *pgd = g; return;
	case 7: *hpa = mmu_shim_page_hpa(1); *pgd = g; return;
	case 8: *hpa = mmu_shim_page_hpa(2); *pgd = g; return;
	case 9: *hpa = mmu_shim_zero_page_hpa(); *pgd = g; return;
	case 10: tdp = kind_tdp; break;
	case 11: tdp = kind_tdp; g = dir ? 0 : DRV_G2; break;
	case 12: tdp = kind_tdp; r2 = 1; break;
	case 13: *hpa = DRV_INVALID; *pgd = DRV_INVALID; return;
	case 14: *hpa = DRV_INVALID; *pgd = DRV_G3; return;
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
	const typeof(drv_modes[0]) *m = &drv_modes[drv_w.mode];
	uint64_t hpa, pgd;
	int i, s;

	mmu_shim_reset();
	memset(&drv_mmu, 0, sizeof(drv_mmu));
	memset(drv_used, 0, sizeof(drv_used));
	memset(drv_refs, 0, sizeof(drv_refs));
	memset(drv_tdp, 0, sizeof(drv_tdp));
	memset(drv_r2, 0, sizeof(drv_r2));
	drv_ret = 0;
	drv_kvm_init();
	@ENV@
	@LEVELS@
	for (s = 0; s < 4; s++) {
		drv_slot(s, &hpa, &pgd);
		if (s == 0) {
			@ROOT_HPA@ = hpa;
			@ROOT_PGD@ = pgd;
		} else {
			drv_mmu.prev_roots[s - 1].hpa = hpa;
			drv_mmu.prev_roots[s - 1].pgd = pgd;
		}
	}
	for (i = 0; i < 4; i++)
		drv_page(0)[i] = 0;
	if (drv_w.specials == 0) {
		uint64_t *pml4 = drv_page(1), *pml5 = drv_page(2);

		drv_mmu.pae_root = drv_page(0);
		drv_mmu.pml4_root = pml4;
		drv_mmu.pml5_root = pml5;
		pml4[0] = mmu_shim_page_hpa(0) | 1;
		pml5[0] = mmu_shim_page_hpa(1) | 1;
	}
	for (i = 0; i < 4; i++) {
		if (!(drv_w.pae >> i & 1))
			continue;
		drv_page(0)[i] = mmu_shim_page_hpa(7 + i) | 1;
		drv_used[7 + i] = 1;
		drv_refs[7 + i] = 1;
		drv_tdp[7 + i] = 0;
		drv_r2[7 + i] = 0;
		drv_slot_of[7 + i] = 0;
	}
	for (i = 3; i < DRV_NPAGES; i++) {
		struct kvm_mmu_page *sp = &drv_sp[i];
		int invalid = drv_w.attrs >= 1, extra = drv_w.attrs == 2;
		union kvm_mmu_page_role role = { .word = 0 };

		if (!drv_used[i])
			continue;  /* never reachable in this state: left as it is */
		memset(sp, 0, sizeof(*sp));
		s = drv_slot_of[i];
		sp->spt = drv_page(i);
		role.level = i >= 7 ? 2 : m->root_level;
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
		if (!drv_tdp[i]) {
			@SP_GEN@
		}
		mmu_shim_set_page_private(i, sp);
	}
}

static uint64_t drv_role_word(int r2, int direct)
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
static inline uint64_t drv_mix(uint64_t h, uint64_t v)
{
	h = (h ^ v) * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

static const uint64_t drv_kf[@NKF@] = { @KF@ };

static void drv_digest_fields(uint64_t *d, uint64_t *root4)
{
	const uint64_t *pae = drv_page(0);
	uint64_t prev = 0, pg = 0, count = 0, invalid = 0;
	uint64_t freed = mmu_shim_freed_pages(0), tdp_freed = mmu_shim_freed_pages(1), used = 0;
	int i;

	root4[0] = @ROOT_HPA@;
	root4[1] = @ROOT_PGD@;
	d[@C_ROOT@] = drv_mix(d[@C_ROOT@], root4[0] * drv_kf[0] + root4[1] * drv_kf[1]);
	for (i = 0; i < 3; i++) {
		prev += drv_mmu.prev_roots[i].hpa * drv_kf[2 + 2 * i] +
			drv_mmu.prev_roots[i].pgd * drv_kf[3 + 2 * i];
	}
	d[@C_PREV@] = drv_mix(d[@C_PREV@], prev);
	pg = drv_canon_ptr(drv_mmu.pae_root) * drv_kf[8];
	for (i = 0; i < 4; i++)
		pg += pae[i] * drv_kf[9 + i];
	d[@C_PAE@] = drv_mix(d[@C_PAE@], pg);
	for (i = 3; i < DRV_NPAGES; i++) {
		struct kvm_mmu_page *sp = &drv_sp[i];

		if (!drv_used[i])
			continue;
		used |= 1ULL << i;
		count += drv_kf[13 + i] * (drv_tdp[i] ?
				(uint64_t)refcount_read(&sp->tdp_mmu_root_count) :
				(uint64_t)(int64_t)sp->root_count);
		invalid |= (uint64_t)(sp->role.invalid != 0) << i;
	}
	d[@C_COUNT@] = drv_mix(d[@C_COUNT@], count);
	d[@C_INVALID@] = drv_mix(d[@C_INVALID@], invalid);
	d[@C_FREED@] = drv_mix(d[@C_FREED@], (freed & used) * drv_kf[0] + (tdp_freed & used));
	d[@C_RET@] = drv_mix(d[@C_RET@], (uint64_t)drv_ret);
}

static void drv_fields(uint64_t *f)
{
	const uint64_t *pae = drv_page(0);
	int i, n = 0;

	f[n++] = @ROOT_HPA@;
	f[n++] = @ROOT_PGD@;
	for (i = 0; i < 3; i++) {
		f[n++] = drv_mmu.prev_roots[i].hpa;
		f[n++] = drv_mmu.prev_roots[i].pgd;
	}
	f[n++] = drv_canon_ptr(drv_mmu.pae_root);
	for (i = 0; i < 4; i++)
		f[n++] = pae[i];
	for (i = 3; i < DRV_NPAGES; i++) {
		struct kvm_mmu_page *sp = &drv_sp[i];

		f[n++] = drv_tdp[i] ? (uint64_t)refcount_read(&sp->tdp_mmu_root_count)
					: (uint64_t)(int64_t)sp->root_count;
		f[n++] = sp->role.invalid;
		f[n++] = mmu_shim_sp_freed(i) | mmu_shim_tdp_root_freed(i) << 1;
	}
	f[n++] = (uint64_t)drv_ret;
}
"""


def kvm_init_c(ex: Any) -> str:
    """C that resets `drv_kvm` and gives its locks the shim's lock ids."""
    lines = ["memset(&drv_kvm, 0, sizeof(drv_kvm));", "drv_kvm.mmu_lock.id = MMU_SHIM_LOCK_MMU;"]
    if _kept(ex, "struct kvm_arch", "tdp_mmu_pages_lock") and getattr(ex, "structs", {}).get(
        "struct kvm_arch"
    ):
        lines.append("drv_kvm.arch.tdp_mmu_pages_lock.id = MMU_SHIM_LOCK_TDP_PAGES;")
    body = "\n\t".join(lines)
    out = f"static void drv_kvm_init(void)\n{{\n\t{body}\n}}\n"
    # 5.17 and older take the vCPU, and so does __kvm_mmu_new_pgd where a tree has it
    if "free_roots_takes_kvm" not in ex.features or "new_pgd_caller" in ex.features:
        out += (
            "static struct kvm_vcpu drv_vcpu_s;\n"
            "static struct kvm_vcpu *drv_vcpu(void)\n{\n\tdrv_vcpu_s.kvm = &drv_kvm;\n"
            "\tdrv_vcpu_s.arch.mmu = &drv_mmu;\n\treturn &drv_vcpu_s;\n}\n"
        )
    return out
