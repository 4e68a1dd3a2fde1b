/* ---- mmu-ci check driver (our code, not kernel code) ----
 * A module's driver is, in this order: this header, exports_types.h, the header generated
 * from the Python tables (checks/world.py: world_header), world.c, the per-tree glue,
 * runner.c, then per check its tables and call followed by runner_check.c (see
 * checks/driver.py). A split module (mmucore/build_base.py) has all that but the calls and
 * drv_set_env in shared.o, and those with world_extern.h beside the revision's code. */
#include <setjmp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct drv_mode {
	int root_level, guest_level, direct;
};
