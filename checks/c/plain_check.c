/* The benchmarks' floor (bench/bench_engine.py, bench/bench_pipeline.py): the same states,
 * setup and call as run_range, with the fault guard (a state may fault: pgd_switch outside
 * its invariants), but no observation, no digest, no comparison. Compiled only into the
 * modules the benchmarks build (checks/engine.py: build_one(..., plain=True)), after
 * runner_check.c in a check's section. Returns the events the states recorded. */
uint64_t CHK(plain_range)(uint64_t lo, uint64_t hi)
{
	uint64_t k, events = 0;
	int fresh = 1;

	CHK(decode)(lo);
	CHK(apply)();
	for (k = lo; k < hi; k++) {
		int st;

		if (fresh)
			drv_setup();
		else
			drv_restore();
		st = drv_guarded_raw(CHK(call));
		events += mmu_shim_nevents;
		if (st == 2)
			return events;  /* a hang: the benchmark's loop ends here */
		fresh = (CHK(next)() & CHK(setup_dims)) | st;
	}
	return events;
}
