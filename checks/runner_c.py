"""The C run loop of the drivers: enumeration, fault containment, digests, comparison.

Our own C. SHARED_C comes once per module, after the world: fault and hang containment,
the digest of one state, the event log. CHECK_C comes once per check in the module,
after that check's dimensions, invariants and call, with `CHK(x)` defined to the
check's own name for x (`drv_free_roots_run_range`): enumeration, the run loop, the
comparison, the single-state trace.
"""

SHARED_C = r"""
int drv_ncomp(void) { return DRV_NCOMP; }
int drv_nfields(void) { return DRV_NFIELDS; }
int drv_page_used(int pg) { return pg >= 0 && pg < DRV_NPAGES && drv_used[pg]; }

/* the recorder's placement by the child (checks/recorder.py), under the driver's names */
void *drv_recorder_anchor(void) { return mmu_shim_recorder_anchor(); }
uint64_t drv_recorder_sizes(void) { return mmu_shim_recorder_sizes(); }
void drv_recorder_attach(void *log, void *ledger) { mmu_shim_recorder_attach(log, ledger); }


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

static int drv_guarded_call(void (*call)(void))
{
	int st = sigsetjmp(drv_jb, 0);

	if (st)
		return st;
	drv_ticks = 0;
	drv_in_call = 1;
	call();
	drv_in_call = 0;
	return mmu_shim_recorder_intact() ? 0 : 3;  /* 3: the code changed the recorder's state */
}

#define DRV_FNV 0xcbf29ce484222325ULL
#define DRV_KA 0xd6e8feb86659fd93ULL
#define DRV_KB 0xa0761d6478bd642fULL

static void drv_digest(uint64_t *d, int st)
{
	uint64_t root[2], alt;
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

		/* two independent products and one mix: the event's word */
		h = drv_mix((uint64_t)e->a * DRV_KA + e->kind, (uint64_t)e->b * DRV_KB ^ key);
		d[c] = drv_mix(d[c], h);
		d[DRV_C_ORDER] = drv_mix(d[DRV_C_ORDER], h);
	}
	drv_digest_fields(d, root);
	/* normalised variants: the pgd of a slot counts only while its hpa is valid */
	alt = root[0] * drv_kf[0] + (root[0] != DRV_INVALID ? root[1] : 0) * drv_kf[1];
	d[DRV_C_ROOT_ALT] = drv_mix(DRV_FNV, alt);
	alt = 0;
	for (i = 0; i < 3; i++) {
		uint64_t hpa = drv_mmu.prev_roots[i].hpa, pgd = drv_mmu.prev_roots[i].pgd;

		alt += hpa * drv_kf[2 + 2 * i] + (hpa != DRV_INVALID ? pgd : 0) * drv_kf[3 + 2 * i];
	}
	d[DRV_C_PREV_ALT] = drv_mix(DRV_FNV, alt);
	d[DRV_C_FAULT] = (uint64_t)st;
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

CHECK_C = r"""

static int CHK(digit)[DRV_NDIMS];

static void CHK(apply)(void)
{
	int i;

	CHK(fixed)();
	for (i = 0; i < DRV_NDIMS; i++)
		((int *)&drv_w)[CHK(dim_var)[i]] = CHK(codes)[i][CHK(digit)[i]];
}

static void CHK(decode)(uint64_t idx)
{
	int i;

	for (i = 0; i < DRV_NDIMS; i++) {
		CHK(digit)[i] = idx % CHK(radix)[i];
		idx /= CHK(radix)[i];
	}
}

static void CHK(next)(void)
{
	int i;

	for (i = 0; i < DRV_NDIMS; i++) {
		if (++CHK(digit)[i] < (int)CHK(radix)[i])
			return;
		CHK(digit)[i] = 0;
	}
}

uint64_t CHK(nstates)(void)
{
	uint64_t n = 1;
	int i;

	for (i = 0; i < DRV_NDIMS; i++)
		n *= CHK(radix)[i];
	return n;
}

/* Runs states [lo, hi); returns how many ran: it stops right after a state that hung,
 * so the caller decides whether to spend another CPU budget on the next one. */
uint64_t CHK(run_range)(uint64_t lo, uint64_t hi, uint64_t *digests, uint8_t *status)
{
	uint64_t k;

	CHK(decode)(lo);
	for (k = 0; lo + k < hi; k++) {
		int st;

		CHK(apply)();
		drv_setup();
		st = drv_guarded_call(CHK(call));
		drv_digest(&digests[k * DRV_NCOMP], st);
		status[k] = (uint8_t)st;
		CHK(next)();
		if (st == 2)
			return k + 1;
	}
	return k;
}

uint32_t CHK(invariants)(uint64_t idx)
{
	CHK(decode)(idx);
	CHK(apply)();
	return CHK(violated)();
}

int CHK(compare)(uint64_t lo, uint64_t n, const uint64_t *da, const uint8_t *sa,
		const uint64_t *db, const uint8_t *sb, struct drv_group *groups,
		int ngroups, int max_groups, uint64_t *crash)
{
	uint64_t k;

	for (k = 0; k < n; k++) {
		const uint64_t *a = &da[k * DRV_NCOMP], *b = &db[k * DRV_NCOMP];
		uint32_t what = 0, ev = 0, inv;
		int i, j, benign = -1;

		if (sb[k] && !sa[k]) {  /* crash[0..1]: inside the invariants, [2..3]: outside */
			/* a changed recorder (3) forges every state's result: never ranked down */
			uint64_t *c = sb[k] != 3 && CHK(invariants)(lo + k) ? &crash[2] : &crash[0];

			if (!c[1]++ || lo + k < c[0])
				c[0] = lo + k;
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
			if (what & ~CHK(norm)[j].strict)
				continue;
			benign = j;
			for (i = 0; i < DRV_NSTRICT; i++)
				if ((what >> i & 1) && a[CHK(norm)[j].alt[i]] != b[CHK(norm)[j].alt[i]])
					benign = -1;
		}
		inv = CHK(invariants)(lo + k);
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

int CHK(run_one)(uint64_t idx, uint64_t *before, uint64_t *after)
{
	int st;

	CHK(decode)(idx);
	CHK(apply)();
	memset(drv_sp, 0, sizeof(drv_sp));  /* the trace shows the sps this state leaves unused too */
	drv_setup();
	drv_fields(before);
	st = drv_guarded_call(CHK(call));
	drv_fields(after);
	return st;
}

/* The benchmark's baseline: the same states and call, no guard, no observation. */
uint64_t CHK(plain_range)(uint64_t lo, uint64_t hi)
{
	uint64_t k, events = 0;

	CHK(decode)(lo);
	for (k = lo; k < hi; k++) {
		CHK(apply)();
		drv_setup();
		CHK(call)();
		events += mmu_shim_nevents;
		CHK(next)();
	}
	return events;
}

"""
