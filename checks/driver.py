"""The C driver generated per (check, extraction): enumeration and observation in C.

Entry points (see CDEF): `drv_run_range` runs a range of states and writes one digest
per observable component per state; `drv_compare` compares two such chunks (baseline,
patched) and folds the differing states into groups; `drv_run_one` runs one state and
leaves its event log for a full trace. A SIGSEGV/SIGBUS/SIGFPE/SIGILL in the code under
test is caught per state (sigsetjmp), and a periodic CPU timer turns a hang into a
status, so one bad state never ends the run (see checks/guard.py).
"""

from __future__ import annotations

from typing import Any

from checks import world
from checks.space import ALT_COMPONENTS, COMPONENTS, EVENT_COMPONENTS, STRICT_COMPONENTS, Check

MAX_GROUPS = 256
STATUS = {0: "ok", 1: "fault", 2: "hang"}

CDEF = """
struct drv_group { uint32_t what; int32_t inside; int32_t benign; uint32_t inv_and;
                   uint64_t count; uint64_t first; };
uint64_t drv_nstates(void);
int drv_ncomp(void);
int drv_nfields(void);
uint64_t drv_run_range(uint64_t lo, uint64_t hi, uint64_t *digests, uint8_t *status);
int drv_compare(uint64_t lo, uint64_t n, const uint64_t *da, const uint8_t *sa,
                const uint64_t *db, const uint8_t *sb, struct drv_group *groups,
                int ngroups, int max_groups, uint64_t *crash);
int drv_run_one(uint64_t idx, uint64_t *before, uint64_t *after);
void drv_on_signal(int sig);
uint32_t drv_invariants(uint64_t idx);
int drv_nevents(void);
int drv_event(int i, int64_t *kab, const char **file, int *line, const char **func,
              const char **cond);
int drv_page_used(int pg);
uint64_t drv_plain_range(uint64_t lo, uint64_t hi);
"""

# Which component each shim event kind (enum mmu_shim_event_kind order) folds into.
_EVENT_COMP = {
    "locks": (1, 2, 3, 4, 5, 6, 7, 8),
    "warn": (9, 10),
    "zap": (11, 12, 13, 17),
    "tdp_put_root": (14, 15),
    "bad_page": (19,),
    "calls": (0, 16, 18, 20, 21),
}
_NKINDS = 22


def _event_comp_table() -> str:
    table = [COMPONENTS.index("calls")] * _NKINDS
    for comp, kinds in _EVENT_COMP.items():
        for k in kinds:
            table[k] = COMPONENTS.index(comp)
    return ", ".join(map(str, table))


def _dims_c(chk: Check) -> str:
    nd = len(chk.dims)
    maxr = max(len(d.labels) for d in chk.dims)
    radix = ", ".join(str(len(d.labels)) for d in chk.dims)
    var = ", ".join(str(world.WORLD_VARS.index(d.world)) for d in chk.dims)
    codes = ", ".join(
        "{" + ", ".join(str(d.code(i)) for i in range(len(d.labels))) + "}" for d in chk.dims
    )
    fixed = "\n\t".join(
        f"((int *)&drv_w)[{world.WORLD_VARS.index(k)}] = {v};" for k, v in chk.fixed.items()
    )
    return (
        f"#define DRV_NDIMS {nd}\n#define DRV_MAXR {maxr}\n"
        f"static const unsigned drv_radix[DRV_NDIMS] = {{{radix}}};\n"
        f"static const unsigned char drv_dim_var[DRV_NDIMS] = {{{var}}};\n"
        f"static const int drv_codes[DRV_NDIMS][DRV_MAXR] = {{{codes}}};\n"
        f"static void drv_fixed(void)\n{{\n\tmemset(&drv_w, 0, sizeof(drv_w));\n\t{fixed}\n}}\n"
    )


def _invariants_c(chk: Check) -> str:
    body = "\n".join(
        f"\tif (!({inv.c}))\n\t\tbad |= 1u << {i};  /* {inv.name} */"
        for i, inv in enumerate(chk.invariants)
    )
    return (
        "static uint32_t drv_violated(void)\n{\n\tconst struct drv_world *w = &drv_w;"
        f"\n\tuint32_t bad = 0;\n\n\t(void)w;\n{body}\n\treturn bad;\n}}\n"
    )


def _normalisations_c(chk: Check) -> str:
    rows = []
    for n in chk.normalisations:
        strict = 0
        alt = [-1] * len(STRICT_COMPONENTS)
        for s, a in n.replaces:
            strict |= 1 << STRICT_COMPONENTS.index(s)
            alt[STRICT_COMPONENTS.index(s)] = COMPONENTS.index(a)
        rows.append(f"{{{strict}u, {{{', '.join(map(str, alt))}}}}}")
    return (
        f"#define DRV_NNORM {len(rows)}\n"
        "static const struct { uint32_t strict; int alt[DRV_NSTRICT]; } "
        f"drv_norm[DRV_NNORM + 1] = {{{', '.join(rows + ['{0u, {0}}'])}}};\n"
    )


def driver_source(chk: Check, ex: Any) -> str:
    """The C of the driver for ``chk`` against the extraction ``ex``."""
    feats = "\n".join(
        f"#define DRV_HAS_{f.upper()} 1" for f in sorted(ex.features) if f.isidentifier()
    )
    consts = (
        f"#define DRV_NSTRICT {len(STRICT_COMPONENTS)}\n"
        f"#define DRV_C_ORDER {COMPONENTS.index('event order')}\n"
        f"#define DRV_C_FAULT {COMPONENTS.index('fault')}\n"
        f"#define DRV_C_ROOT_ALT {COMPONENTS.index(ALT_COMPONENTS[0])}\n"
        f"#define DRV_C_PREV_ALT {COMPONENTS.index(ALT_COMPONENTS[1])}\n"
        f"#define DRV_NEVCOMP {len(EVENT_COMPONENTS)}\n"
        f"static const unsigned char drv_event_comp[{_NKINDS}] = {{{_event_comp_table()}}};\n"
        f"#define DRV_FEATURE_DUMMY_ROOT {int('dummy_root' in ex.features)}\n"
        f"#define DRV_ROOTS_ALL "
        f"{'0xfUL' if 'roots_all_bounded' in ex.features else '(~0UL)'}\n"
    )
    parts = [
        _PRELUDE,
        feats,
        consts,
        world.world_c(ex),
        world.kvm_init_c(ex),
        _dims_c(chk),
        _invariants_c(chk),
        _normalisations_c(chk),
        "static void drv_call(void)\n{\n\t" + chk.call(ex) + "\n}\n",
        _RUNNER,
    ]
    return "\n".join(parts)


_PRELUDE = r"""
/* ---- mmu-ci check driver (generated; our code, not kernel code) ---- */
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#define DRV_SIGPROF 27

struct drv_group {
	uint32_t what;
	int32_t inside;
	int32_t benign;
	uint32_t inv_and;
	uint64_t count;
	uint64_t first;
};
"""

_RUNNER = r"""
static int drv_digit[DRV_NDIMS];

static void drv_apply(void)
{
	int i;

	drv_fixed();
	for (i = 0; i < DRV_NDIMS; i++)
		((int *)&drv_w)[drv_dim_var[i]] = drv_codes[i][drv_digit[i]];
}

static void drv_decode(uint64_t idx)
{
	int i;

	for (i = 0; i < DRV_NDIMS; i++) {
		drv_digit[i] = idx % drv_radix[i];
		idx /= drv_radix[i];
	}
}

static void drv_next(void)
{
	int i;

	for (i = 0; i < DRV_NDIMS; i++) {
		if (++drv_digit[i] < (int)drv_radix[i])
			return;
		drv_digit[i] = 0;
	}
}

uint64_t drv_nstates(void)
{
	uint64_t n = 1;
	int i;

	for (i = 0; i < DRV_NDIMS; i++)
		n *= drv_radix[i];
	return n;
}

int drv_ncomp(void) { return DRV_NCOMP; }
int drv_nfields(void) { return DRV_NFIELDS; }
int drv_page_used(int pg) { return pg >= 0 && pg < DRV_NPAGES && drv_used[pg]; }

/* ---- fault and hang containment ----
 * The child (checks/guard.py) installs drv_on_signal for SIGSEGV/SIGBUS/SIGFPE/SIGILL
 * on an alternate stack and a periodic ITIMER_PROF: the module itself calls no signal
 * API, so it stays within the sandbox's allow-list of imported symbols. */
static sigjmp_buf drv_jb;
static volatile int drv_in_call, drv_ticks;

void drv_on_signal(int sig)
{
	if (drv_in_call) {
		if (sig != DRV_SIGPROF) {
			drv_in_call = 0;
			siglongjmp(drv_jb, 1);
		}
		if (++drv_ticks >= 2) {  /* two timer periods inside one state: a hang */
			drv_in_call = 0;
			siglongjmp(drv_jb, 2);
		}
		return;
	}
	if (sig != DRV_SIGPROF)
		abort();  /* a fault in our own code: let the child die and be bisected */
}

static int drv_guarded_call(void)
{
	int st = sigsetjmp(drv_jb, 0);

	if (st)
		return st;
	drv_ticks = 0;
	drv_in_call = 1;
	drv_call();
	drv_in_call = 0;
	return 0;
}

#define DRV_FNV 0xcbf29ce484222325ULL

static void drv_digest(uint64_t *d, int st)
{
	uint64_t root[2];
	int i, n = mmu_shim_nevents;

	if (n > MMU_SHIM_MAX_EVENTS)
		n = MMU_SHIM_MAX_EVENTS;
	for (i = 0; i < DRV_NCOMP; i++)
		d[i] = DRV_FNV;
	for (i = 0; i < n; i++) {
		const struct mmu_shim_event *e = &mmu_shim_events[i];
		uint64_t key = e->site ? e->site->key : 0;
		int c = e->kind < sizeof(drv_event_comp) ? drv_event_comp[e->kind] : DRV_C_ORDER;
		uint64_t h;

		h = drv_mix(drv_mix(drv_mix(e->kind, (uint64_t)e->a), (uint64_t)e->b), key);
		d[c] = drv_mix(d[c], h);
		d[DRV_C_ORDER] = drv_mix(d[DRV_C_ORDER], h);
	}
	drv_digest_fields(d, root);
	/* normalised variants: the pgd of a slot counts only while its hpa is valid */
	d[DRV_C_ROOT_ALT] = drv_mix(drv_mix(DRV_FNV, root[0]), root[0] != DRV_INVALID ? root[1] : 0);
	d[DRV_C_PREV_ALT] = DRV_FNV;
	for (i = 0; i < 3; i++) {
		uint64_t hpa = drv_mmu.prev_roots[i].hpa, pgd = drv_mmu.prev_roots[i].pgd;

		d[DRV_C_PREV_ALT] = drv_mix(drv_mix(d[DRV_C_PREV_ALT], hpa), hpa != DRV_INVALID ? pgd : 0);
	}
	d[DRV_C_FAULT] = (uint64_t)st;
}

/* Runs states [lo, hi); returns how many ran: it stops right after a state that hung,
 * so the caller decides whether to spend another CPU budget on the next one. */
uint64_t drv_run_range(uint64_t lo, uint64_t hi, uint64_t *digests, uint8_t *status)
{
	uint64_t k;

	drv_decode(lo);
	for (k = 0; lo + k < hi; k++) {
		int st;

		drv_apply();
		drv_setup();
		st = drv_guarded_call();
		drv_digest(&digests[k * DRV_NCOMP], st);
		status[k] = (uint8_t)st;
		drv_next();
		if (st == 2)
			return k + 1;
	}
	return k;
}

uint32_t drv_invariants(uint64_t idx)
{
	drv_decode(idx);
	drv_apply();
	return drv_violated();
}

int drv_compare(uint64_t lo, uint64_t n, const uint64_t *da, const uint8_t *sa,
		const uint64_t *db, const uint8_t *sb, struct drv_group *groups,
		int ngroups, int max_groups, uint64_t *crash)
{
	uint64_t k;

	for (k = 0; k < n; k++) {
		const uint64_t *a = &da[k * DRV_NCOMP], *b = &db[k * DRV_NCOMP];
		uint32_t what = 0, ev = 0, inv;
		int i, j, benign = -1;

		if (sb[k] && !sa[k]) {
			if (!crash[1]++ || lo + k < crash[0])
				crash[0] = lo + k;
		}
		if (!memcmp(a, b, DRV_NSTRICT * sizeof(*a)))
			continue;
		for (i = 0; i < DRV_NSTRICT; i++)
			if (a[i] != b[i])
				what |= 1u << i;
		for (i = 0; i < DRV_NEVCOMP; i++)
			if (i != DRV_C_ORDER)
				ev |= what & (1u << i);
		if (ev)  /* the order differs only because some calls do */
			what &= ~(1u << DRV_C_ORDER);
		for (j = 0; j < DRV_NNORM && benign < 0; j++) {
			if (what & ~drv_norm[j].strict)
				continue;
			benign = j;
			for (i = 0; i < DRV_NSTRICT; i++)
				if ((what >> i & 1) && a[drv_norm[j].alt[i]] != b[drv_norm[j].alt[i]])
					benign = -1;
		}
		inv = drv_invariants(lo + k);
		for (j = 0; j < ngroups; j++)
			if (groups[j].what == what && groups[j].inside == !inv &&
				groups[j].benign == benign && groups[j].inv_and == inv)
				break;
		if (j == ngroups) {
			if (ngroups == max_groups)
				j = max_groups - 1;  /* table full: fold into the last group */
			else {
				ngroups++;
				groups[j].what = what;
				groups[j].inside = !inv;
				groups[j].benign = benign;
				groups[j].inv_and = inv;  /* outside groups: by the exact invariants violated */
				groups[j].count = 0;
				groups[j].first = lo + k;
			}
		}
		groups[j].count++;
		groups[j].inv_and &= inv;
		if (lo + k < groups[j].first)
			groups[j].first = lo + k;
	}
	return ngroups;
}

int drv_run_one(uint64_t idx, uint64_t *before, uint64_t *after)
{
	int st;

	drv_decode(idx);
	drv_apply();
	drv_setup();
	drv_fields(before);
	st = drv_guarded_call();
	drv_fields(after);
	return st;
}

/* The benchmark's baseline: the same states and call, no guard, no observation. */
uint64_t drv_plain_range(uint64_t lo, uint64_t hi)
{
	uint64_t k, events = 0;

	drv_decode(lo);
	for (k = lo; k < hi; k++) {
		drv_apply();
		drv_setup();
		drv_call();
		events += mmu_shim_nevents;
		drv_next();
	}
	return events;
}

int drv_nevents(void)
{
	return mmu_shim_nevents < MMU_SHIM_MAX_EVENTS ? mmu_shim_nevents : MMU_SHIM_MAX_EVENTS;
}

int drv_event(int i, int64_t *kab, const char **file, int *line, const char **func,
		const char **cond)
{
	const struct mmu_shim_event *e = &mmu_shim_events[i];

	kab[0] = e->kind;
	kab[1] = e->a;
	kab[2] = e->b;
	*file = e->site ? e->site->file : NULL;
	*line = e->site ? e->site->line : 0;
	*func = e->site ? e->site->func : NULL;
	*cond = e->site ? e->site->cond : NULL;
	return 0;
}
"""
