"""The C driver generated per extraction: enumeration and observation in C, for every
check that applies to the extraction, so one module per revision serves all its checks.

Entry points per check (see cdef(); `entry(lib, check, name)` finds them):
`drv_<check>_run_range` runs a range of states and writes one digest per observable
component per state; `drv_<check>_compare` compares two such chunks (baseline, patched)
and folds the differing states into groups; `drv_<check>_run_one` runs one state and
leaves its event log for a full trace. A SIGSEGV/SIGBUS/SIGFPE/SIGILL in the code under
test is caught per state (sigsetjmp), and a periodic CPU timer turns a hang into a
status, so one bad state never ends the run (see checks/guard.py).
"""

from __future__ import annotations

from typing import Any

from checks import world
from checks.runner_c import CHECK_C, SHARED_C
from checks.space import (
    ALT_COMPONENTS,
    COMPONENTS,
    EVENT_COMPONENTS,
    STRICT_COMPONENTS,
    Check,
    all_checks,
)

MAX_GROUPS = 256
STATUS = {0: "ok", 1: "fault", 2: "hang", 3: "recorder changed"}

SHARED_CDEF = """
struct drv_group { uint32_t what; int32_t inside; int32_t benign; uint32_t inv_and;
                   uint64_t count; uint64_t first; };
int drv_ncomp(void);
int drv_nfields(void);
void drv_on_signal(int sig);
int drv_nevents(void);
int drv_event(int i, int64_t *kab, const char **file, int *line, const char **func,
              const char **cond);
int drv_page_used(int pg);
void *drv_recorder_anchor(void);
uint64_t drv_recorder_sizes(void);
void drv_recorder_attach(void *log, void *ledger);
"""
CHECK_CDEF = """
uint64_t drv_@_nstates(void);
uint64_t drv_@_run_range(uint64_t lo, uint64_t hi, uint64_t *digests, uint8_t *status);
int drv_@_compare(uint64_t lo, uint64_t n, const uint64_t *da, const uint8_t *sa,
                const uint64_t *db, const uint8_t *sb, struct drv_group *groups,
                int ngroups, int max_groups, uint64_t *crash);
int drv_@_run_one(uint64_t idx, uint64_t *before, uint64_t *after);
uint32_t drv_@_invariants(uint64_t idx);
uint64_t drv_@_plain_range(uint64_t lo, uint64_t hi);
"""


def cdef(checks: list[Check]) -> str:
    """The cffi declarations of a module holding the drivers of ``checks``."""
    return SHARED_CDEF + "".join(CHECK_CDEF.replace("@", c.name) for c in checks)


def entry(lib: Any, check: str, name: str) -> Any:
    """The entry point ``name`` (run_range, compare, ...) of ``check`` in a built module."""
    return getattr(lib, f"drv_{check}_{name}")


def module_checks(ex: Any) -> list[Check]:
    """The checks whose drivers a module of ``ex`` holds: every check that applies."""
    return [c for c in all_checks() if not c.applies(ex)]


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
        f"static const unsigned CHK(radix)[DRV_NDIMS] = {{{radix}}};\n"
        f"static const unsigned char CHK(dim_var)[DRV_NDIMS] = {{{var}}};\n"
        f"static const int CHK(codes)[DRV_NDIMS][DRV_MAXR] = {{{codes}}};\n"
        f"static void CHK(fixed)(void)\n{{\n\tmemset(&drv_w, 0, sizeof(drv_w));\n\t{fixed}\n}}\n"
    )


def _invariants_c(chk: Check) -> str:
    body = "\n".join(
        f"\tif (!({inv.c}))\n\t\tbad |= 1u << {i};  /* {inv.name} */"
        for i, inv in enumerate(chk.invariants)
    )
    return (
        "static uint32_t CHK(violated)(void)\n{\n\tconst struct drv_world *w = &drv_w;"
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
        f"CHK(norm)[DRV_NNORM + 1] = {{{', '.join(rows + ['{0u, {0}}'])}}};\n"
    )


def check_section(chk: Check, ex: Any) -> str:
    """The C of one check's driver in a module: its dimensions, invariants, benign
    normalisations and call, then the run loop, every name under `drv_<check>_`."""
    return "\n".join(
        [
            f"/* ---- check {chk.name} ---- */",
            f"#define CHK(x) drv_{chk.name}_##x",
            _dims_c(chk),
            _invariants_c(chk),
            _normalisations_c(chk),
            "static void CHK(call)(void)\n{\n\t" + chk.call(ex) + "\n}\n",
            CHECK_C,
            "#undef CHK\n#undef DRV_NDIMS\n#undef DRV_MAXR\n#undef DRV_NNORM\n",
        ]
    )


def module_source(checks: list[Check], ex: Any) -> str:
    """The C of the driver for ``checks`` against the extraction ``ex``: the world and
    the shared run-time once, then a section per check."""
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
        SHARED_C,
        *(check_section(c, ex) for c in checks),
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
