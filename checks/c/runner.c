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

#define DRV_KA 0xd6e8feb86659fd93ULL
#define DRV_KB 0xa0761d6478bd642fULL

/* One state's row of digests: built in locals and stored once when complete (the row
 * buffer is cold; a read-modify-write per event there costs more than the hashing). */
static void drv_digest(uint64_t *row, int st)
{
	uint64_t d[DRV_NCOMP], root[2], alt, order = DRV_FNV;
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
	alt = root[0] * drv_kf[0] + (root[0] != DRV_INVALID ? root[1] : 0) * drv_kf[1];
	d[DRV_C_ROOT_ALT] = drv_mix(DRV_FNV, alt);
	alt = 0;
	for (i = 0; i < 3; i++) {
		uint64_t hpa = drv_mmu.prev_roots[i].hpa, pgd = drv_mmu.prev_roots[i].pgd;

		alt += hpa * drv_kf[2 + 2 * i] + (hpa != DRV_INVALID ? pgd : 0) * drv_kf[3 + 2 * i];
	}
	d[DRV_C_PREV_ROOTS_ALT] = drv_mix(DRV_FNV, alt);
	d[DRV_C_FAULT] = (uint64_t)st;
	memcpy(row, d, sizeof(d));
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
