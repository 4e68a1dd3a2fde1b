/* ---- mmu-ci check driver (our code, not kernel code) ----
 * A module's driver is, in this order: this header, the header generated from the Python
 * tables (checks/world.py: world_header), world.c, the per-tree glue, runner.c, then per
 * check its tables and call followed by runner_check.c (see checks/driver.py). */
#include <setjmp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct drv_group {
	uint32_t what;
	int32_t inside;
	int32_t benign;
	uint32_t inv_and;
	uint64_t count;
	uint64_t first;
};

struct drv_mode {
	int root_level, guest_level, direct;
};
