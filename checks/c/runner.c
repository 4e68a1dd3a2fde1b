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

/* 0, or 1 (a fault) or 2 (a hang); the recorder's check is the caller's (drv_digest's
 * pass over the events, or drv_guarded_call's). */
static int drv_guarded_raw(void (*call)(void))
{
	int st = sigsetjmp(drv_jb, 0);

	if (st)
		return st;
	drv_ticks = 0;
	drv_in_call = 1;
	call();
	drv_in_call = 0;
	return 0;
}

static int drv_guarded_call(void (*call)(void))
{
	int st = drv_guarded_raw(call);

	return st ? st : mmu_shim_recorder_intact() ? 0 : 3;  /* 3: the code changed the recorder */
}

#define DRV_KA 0xd6e8feb86659fd93ULL
#define DRV_KB 0xa0761d6478bd642fULL

/* One state's row of digests after drv_guarded_raw gave ``st``; returns the state's
 * status: ``st``, or 3 where the call returned but the recorder is not intact (the ledger's
 * chain is recomputed in this same pass over the events). Built in locals and stored once
 * when complete (the row buffer is cold; a read-modify-write per event costs more). */
static int drv_digest(uint64_t *row, int st)
{
	uint64_t d[DRV_NCOMP], root[2], alt, order = DRV_FNV, chain = MMU_SHIM_CHAIN_SEED;
	int i, n = mmu_shim_nevents;

	if (n > MMU_SHIM_MAX_EVENTS)
		n = MMU_SHIM_MAX_EVENTS;
	for (i = 0; i < DRV_NEVCOMP; i++)
		d[i] = DRV_FNV;
	for (i = 0; i < n; i++) {
		const struct mmu_shim_event *e = &mmu_shim_events[i];
		uint64_t key = e->site ? e->site->key : 0;
		int c = e->kind < MMU_EV__COUNT ? drv_event_comp[e->kind] : DRV_C_EVENT_ORDER;
		uint64_t h;

		chain = mmu_shim_chain(chain, e);

		/* two independent products and one mix: the event's word */
		h = drv_mix((uint64_t)e->a * DRV_KA + e->kind, (uint64_t)e->b * DRV_KB ^ key);
		if (__builtin_expect(c == DRV_C_EVENT_ORDER, 0))
			order = drv_mix(order, h);  /* a kind of no component: into the order twice */
		else
			d[c] = drv_mix(d[c], h);
		order = drv_mix(order, h);
	}
	d[DRV_C_EVENT_ORDER] = order;
	drv_digest_fields(d, root);
	/* normalised variants: the pgd of a slot counts only while its hpa is valid */
	alt = root[0] * drv_kf[DRV_KF_ROOT] +
	      (root[0] != DRV_INVALID ? root[1] : 0) * drv_kf[DRV_KF_ROOT + 1];
	d[DRV_C_ROOT_ALT] = drv_mix(DRV_FNV, alt);
	alt = 0;
	for (i = 0; i < 3; i++) {
		uint64_t hpa = drv_mmu.prev_roots[i].hpa, pgd = drv_mmu.prev_roots[i].pgd;

		alt += hpa * drv_kf[DRV_KF_PREV + 2 * i] +
		       (hpa != DRV_INVALID ? pgd : 0) * drv_kf[DRV_KF_PREV + 1 + 2 * i];
	}
	d[DRV_C_PREV_ROOTS_ALT] = drv_mix(DRV_FNV, alt);
	if (!st && !mmu_shim_ledger_agrees(chain))
		st = 3;  /* the code changed the recorder's state */
	d[DRV_C_FAULT] = (uint64_t)st;
	memcpy(row, d, sizeof(d));
	return st;
}

/* ---- the whole-state word (phase 1 of a comparison, checks/child.py) ----
 * One word per state over every input of the row's strict components (drv_digest): the
 * events in order (the ledger's chain: kind, a, b, the site's key; the kind decides the
 * component), the fields drv_digest_fields reads, the return value and the status. Two
 * revisions whose words agree have equal rows (up to the hash); only the states whose words
 * differ are run again for their rows (drv_<check>_rows_at), so a row is never stored per
 * state. The events come from the ledger, which mmu_shim_record keeps out of the code's
 * reach, not from the log: a write to the log cannot change the word. Here the log's count
 * and probes are checked against the ledger (status 3: the counter forged through the
 * anchor); its events are checked against the chain where a row is made (drv_digest). */
#define DRV_LANE(acc, x, k) ((acc) = ((acc) + (x)) * (k))
#define DRV_L0 0x9e3779b97f4a7c15ULL
#define DRV_L1 0xc2b2ae3d27d4eb4fULL

/* Two lanes, each a product chain. The sps a state uses and their order are the state's,
 * set by drv_setup (drv_used_sp), so their values go in without their indexes; an sp's
 * whole role word goes in (the rows read role.invalid only: a word may be stricter than
 * the row, never looser); the pae_root pointer is canonical as in drv_canon_ptr. */
static uint64_t drv_whole(int *stp)
{
	const uint64_t *pae = drv_page(PAGE_PAE_ROOT);
	const void *pr = drv_mmu.pae_root;
	uint64_t used = drv_used_bits, l0 = 1, l1 = 2;
	int i, agrees, st = *stp;
	uint64_t order = mmu_shim_ledger_word(&agrees);

	if (!st && !agrees)
		st = 3;  /* the code changed the recorder's state */
	*stp = st;
	DRV_LANE(l0, DRV_ROOT_HPA, DRV_L0);
	DRV_LANE(l1, DRV_ROOT_PGD, DRV_L1);
	DRV_LANE(l0, drv_mmu.prev_roots[0].hpa, DRV_L0);
	DRV_LANE(l1, drv_mmu.prev_roots[0].pgd, DRV_L1);
	DRV_LANE(l0, drv_mmu.prev_roots[1].hpa, DRV_L0);
	DRV_LANE(l1, drv_mmu.prev_roots[1].pgd, DRV_L1);
	DRV_LANE(l0, drv_mmu.prev_roots[2].hpa, DRV_L0);
	DRV_LANE(l1, drv_mmu.prev_roots[2].pgd, DRV_L1);
	DRV_LANE(l0, !pr ? 0 : pr == pae ? PAGE_PAE_ROOT + 1 : drv_canon_ptr(pr), DRV_L0);
	DRV_LANE(l1, pae[0], DRV_L1);
	DRV_LANE(l0, pae[1], DRV_L0);
	DRV_LANE(l1, pae[2], DRV_L1);
	DRV_LANE(l0, pae[3], DRV_L0);
	for (i = 0; i < drv_nused; i++)
		DRV_LANE(l1, (uint64_t)(uint32_t)*drv_used_sp[i].count |
			(uint64_t)drv_used_sp[i].sp->role.word << 32, DRV_L1);
	DRV_LANE(l0, mmu_shim_freed_pages(0) & used, DRV_L0);
	DRV_LANE(l1, mmu_shim_freed_pages(1) & used, DRV_L1);
	DRV_LANE(l0, (uint64_t)drv_ret, DRV_L0);
	DRV_LANE(l1, (uint64_t)st, DRV_L1);
	return drv_mix(drv_mix(DRV_FNV ^ order, l0), l1);
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
