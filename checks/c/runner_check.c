/* One check's run loop, once per check in a module, with CHK(x) defined to the check's
 * own name for x (drv_free_roots_run_range), after its dimensions, invariants and call
 * (checks/driver.py: check_section). */
static int CHK(digit)[DRV_NDIMS];

static inline void CHK(put)(int i)
{
	*(int *)((char *)&drv_w + CHK(dim_off)[i]) = CHK(codes)[i][CHK(digit)[i]];
}

static void CHK(apply)(void)
{
	int i;

	CHK(fixed)();
	for (i = 0; i < DRV_NDIMS; i++)
		CHK(put)(i);
}

static void CHK(decode)(uint64_t idx)
{
	int i;

	for (i = 0; i < DRV_NDIMS; i++) {
		CHK(digit)[i] = idx % CHK(radix)[i];
		idx /= CHK(radix)[i];
	}
}

/* The odometer: steps to the next state, writes only the dimensions that changed into
 * drv_w, and returns them as bits (dimension i: bit i). */
static inline uint32_t CHK(next)(void)
{
	uint32_t changed = 0;
	int i;

	for (i = 0; i < DRV_NDIMS; i++) {
		changed |= 1u << i;
		if (++CHK(digit)[i] < (int)CHK(radix)[i]) {
			CHK(put)(i);
			return changed;
		}
		CHK(digit)[i] = 0;
		CHK(put)(i);
	}
	return changed;
}

uint64_t CHK(nstates)(void)
{
	uint64_t n = 1;
	int i;

	for (i = 0; i < DRV_NDIMS; i++)
		n *= CHK(radix)[i];
	return n;
}

/* Runs states [lo, hi) and writes each one's whole-state word (drv_whole) and status;
 * returns how many ran: it stops right after a state that hung, so the caller decides
 * whether to spend another CPU budget on the next one. */
uint64_t CHK(run_range)(uint64_t lo, uint64_t hi, uint64_t *whole, uint8_t *status)
{
	uint64_t k;
	int fresh = 1;

	CHK(decode)(lo);
	CHK(apply)();
	for (k = 0; lo + k < hi; k++) {
		int st;

		if (fresh)
			drv_setup();
		else
			drv_restore();
		st = drv_guarded_raw(CHK(call));
		whole[k] = drv_whole(&st);
		status[k] = (uint8_t)st;
		if (st == 2)
			return k + 1;
		fresh = CHK(next)() & CHK(setup_dims);
		fresh |= st;  /* after a fault the code may have written anywhere: a full setup */
	}
	return k;
}

/* Moves the odometer to state idx, writing only the dimensions that differ from the
 * state drv_w holds; returns them as bits (as next does). */
static inline uint32_t CHK(seek)(uint64_t idx)
{
	uint32_t changed = 0;
	int i, d;

	for (i = 0; i < DRV_NDIMS; i++) {
		d = (int)(idx % CHK(radix)[i]);
		idx /= CHK(radix)[i];
		if (d != CHK(digit)[i]) {
			CHK(digit)[i] = d;
			CHK(put)(i);
			changed |= 1u << i;
		}
	}
	return changed;
}

/* The pruned run (checks/prune.py): of states [lo, hi), only those whose probes[k] has
 * ``bit`` run; the others keep the word and status the caller copied from the revision
 * they behave as. A state that runs leaves in probes[k] the probes its run hit, with
 * ``always`` (the later revisions this one cannot prune for) and every bit after a fault,
 * a hang or a changed recorder. *ran counts the states run; returns as run_range.
 * As run_range, a state whose setup dimensions are those of the last set-up state (the
 * states skipped in between included) is restored rather than set up again. */
uint64_t CHK(run_pruned)(uint64_t lo, uint64_t hi, uint64_t *whole, uint8_t *status,
		uint64_t *probes, uint64_t bit, uint64_t always, uint64_t *ran)
{
	uint64_t k, at = lo;  /* the state drv_w holds */
	uint32_t fresh = 1;  /* the next state that runs needs a full setup */

	*ran = 0;
	for (k = 0; lo + k < hi && !(probes[k] & bit); k++)
		;
	if (lo + k >= hi)
		return k;
	CHK(decode)(lo + k);
	CHK(apply)();
	at = lo + k;
	for (; lo + k < hi; k++) {
		int st;

		if (!(probes[k] & bit))
			continue;
		if (at != lo + k)
			fresh |= CHK(seek)(lo + k) & CHK(setup_dims);
		if (fresh)
			drv_setup();
		else
			drv_restore();
		st = drv_guarded_raw(CHK(call));
		whole[k] = drv_whole(&st);
		status[k] = (uint8_t)st;
		probes[k] = st ? ~0ULL : mmu_shim_probes() | always;
		++*ran;
		if (st == 2)
			return k + 1;
		fresh = (CHK(next)() & CHK(setup_dims)) | (uint32_t)st;
		at = lo + k + 1;
	}
	return k;
}

uint32_t CHK(invariants)(uint64_t idx)
{
	CHK(decode)(idx);
	CHK(apply)();
	return CHK(violated)();
}

/* Phase 1 of a comparison over states [lo, lo + n): counts the patched build's crashes
 * (its status set, the baseline's not) and writes to idx the states whose whole-state
 * words differ; returns how many. */
uint64_t CHK(differing)(uint64_t lo, uint64_t n, const uint64_t *wa, const uint8_t *sa,
		const uint64_t *wb, const uint8_t *sb, uint64_t *idx, uint64_t *crash)
{
	uint64_t k, m = 0;

	for (k = 0; k < n; k++) {
		if (wa[k] == wb[k])
			continue;
		if (sb[k] && !sa[k]) {  /* crash[0..1]: inside the invariants, [2..3]: outside */
			/* a changed recorder (3) forges every state's result: never ranked down */
			uint64_t *c = sb[k] != 3 && CHK(invariants)(lo + k) ? &crash[2] : &crash[0];

			if (!c[1]++ || lo + k < c[0])
				c[0] = lo + k;
		}
		idx[m++] = lo + k;
	}
	return m;
}

/* The rows of digests (drv_digest) of the states idx[0..n), each run afresh, with their
 * whole-state words and statuses; returns how many ran (it stops after a hang, as
 * run_range). With w1/s1 (phase 1's words and statuses of states lo...), a state whose
 * word or status is not phase 1's is marked in its row as a fault of status 3: its result
 * is not a function of the state, and it never folds back into "same". */
uint64_t CHK(rows_at)(const uint64_t *idx, uint64_t n, uint64_t lo, const uint64_t *w1,
		const uint8_t *s1, uint64_t *rows, uint64_t *whole, uint8_t *status)
{
	uint64_t k;

	for (k = 0; k < n; k++) {
		int st, st2;

		CHK(decode)(idx[k]);
		CHK(apply)();
		drv_setup();
		st = st2 = drv_guarded_raw(CHK(call));
		whole[k] = drv_whole(&st2);
		st = drv_digest(&rows[k * DRV_NCOMP], st);
		status[k] = (uint8_t)st;
		if (w1 && (whole[k] != w1[idx[k] - lo] || status[k] != s1[idx[k] - lo]))
			rows[k * DRV_NCOMP + DRV_C_FAULT] = 3;
		if (st == 2)
			return k + 1;
	}
	return k;
}

/* Phase 2: groups the states idx[0..n) by what differs in their rows da and db. */
int CHK(compare)(const uint64_t *idx, uint64_t n, const uint64_t *da, const uint64_t *db,
		struct drv_group *groups, int ngroups, int max_groups)
{
	uint64_t k;

	for (k = 0; k < n; k++) {
		const uint64_t *a = &da[k * DRV_NCOMP], *b = &db[k * DRV_NCOMP];
		uint32_t what = 0, ev = 0, inv;
		int i, j, benign = -1;

		if (!memcmp(a, b, DRV_NSTRICT * sizeof(*a)))
			continue;
		for (i = 0; i < DRV_NSTRICT; i++)
			if (a[i] != b[i])
				what |= 1u << i;
		for (i = 0; i < DRV_NEVCOMP; i++)
			if (i != DRV_C_EVENT_ORDER)
				ev |= what & (1u << i);
		if (ev)  /* the order differs only because some calls do */
			what &= ~(1u << DRV_C_EVENT_ORDER);
		for (j = 0; j < DRV_NNORM && benign < 0; j++) {
			if (what & ~CHK(norm)[j].strict)
				continue;
			benign = j;
			for (i = 0; i < DRV_NSTRICT; i++)
				if ((what >> i & 1) && a[CHK(norm)[j].alt[i]] != b[CHK(norm)[j].alt[i]])
					benign = -1;
		}
		inv = CHK(invariants)(idx[k]);
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
				groups[j].first = idx[k];
			}
		}
		groups[j].count++;
		groups[j].inv_and &= inv;
		if (idx[k] < groups[j].first)
			groups[j].first = idx[k];
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
