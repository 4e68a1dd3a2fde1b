"""The C driver generated per extraction: enumeration and observation in C, for every
check that applies to the extraction, so one module per revision serves all its checks.

The C is in checks/c/ (drv.h, world.c, runner.c, runner_check.c); this module puts it
together with what is generated: the header of the Python tables (checks/world.py),
the per-tree glue, and per check its dimensions, invariants, normalisations and call.

Entry points per check (see cdef(); `entry(lib, check, name)` finds them):
`drv_<check>_run_range` runs a range of states and writes one whole-state word per
state; `drv_<check>_differing` lists the states whose words differ between two such
chunks (baseline, patched) and counts the patched build's crashes; `drv_<check>_rows_at`
runs given states again for their rows (one digest per observable component) and
`drv_<check>_compare` folds two revisions' rows into groups; `drv_<check>_run_one` runs
one state and leaves its event log for a full trace. A SIGSEGV/SIGBUS/SIGFPE/SIGILL in the code under
test is caught per state (sigsetjmp), and a periodic CPU timer turns a hang into a
status, so one bad state never ends the run (see checks/guard.py).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checks import world
from checks.space import EVENT_COMPONENTS, STRICT_COMPONENTS, Check, all_checks
from mmucore.shim_api import EVENT_PREFIX, constants

if TYPE_CHECKING:
    from mmucore.extract import Extraction

C_DIR = Path(__file__).resolve().parent / "c"

# The component each shim event kind (enum mmu_shim_event_kind, by name) folds into;
# every kind the shim has must be here (tests/checks/test_driver.py).
EVENT_COMP = {
    "locks": (
        "READ_LOCK", "READ_UNLOCK", "WRITE_LOCK", "WRITE_UNLOCK", "SPIN_LOCK", "SPIN_UNLOCK",
        "LOCKDEP_FAIL", "LOCK_MISUSE",
    ),
    "warn": ("WARN", "BUG"),
    "zap": ("PREPARE_ZAP", "COMMIT_ZAP", "ZAP_FREE", "FLUSH_REMOTE_TLBS"),
    "tdp_put_root": ("TDP_PUT_ROOT", "TDP_ROOT_FREED"),
    "bad_page": ("BAD_PAGE",),
    "calls": ("NONE", "REQUEST", "CLEAR_MMIO_INFO", "STUB", "OVERFLOW"),
}  # fmt: skip


@functools.cache
def c_file(name: str) -> str:
    """The text of one of our C files in checks/c/."""
    return (C_DIR / name).read_text()


def _exports(checks: list[Check], plain: bool = False) -> str:
    per_check = c_file("exports_check.h") + (c_file("exports_plain.h") if plain else "")
    return c_file("exports.h") + "".join(
        per_check.replace("drv_CHECK_", f"drv_{c.name}_") for c in checks
    )


def cdef(checks: list[Check], *, plain: bool = False) -> str:
    """The cffi declarations of a module holding the drivers of ``checks`` (``plain``:
    with the benchmarks' plain loop, checks/c/plain_check.c)."""
    return c_file("exports_types.h") + _exports(checks, plain)


def entry(lib: Any, check: str, name: str) -> Any:
    """The entry point ``name`` (run_range, compare, ...) of ``check`` in a built module."""
    return getattr(lib, f"drv_{check}_{name}")


def module_checks(ex: Extraction) -> list[Check]:
    """The checks whose drivers a module of ``ex`` holds: every check that applies."""
    return [c for c in all_checks() if not c.skip_reason(ex)]


def event_comp_table() -> str:
    """`drv_event_comp`: the component of each shim event kind, by name."""
    comp_of = {k: comp for comp, kinds in EVENT_COMP.items() for k in kinds}
    missing = [k for k in constants().event_kinds if k not in comp_of]
    if missing:
        raise RuntimeError(
            f"shim event kind {', '.join(missing)} has no component: add it to "
            "checks/driver.py EVENT_COMP"
        )
    rows = "\n".join(
        f"\t[{EVENT_PREFIX}{k}] = {world.component_macro(comp_of[k])},"
        for k in constants().event_kinds
    )
    return f"static const unsigned char drv_event_comp[{EVENT_PREFIX}_COUNT] = {{\n{rows}\n}};\n"


def _dims_c(chk: Check) -> str:
    nd = len(chk.dims)
    maxr = max(len(d.labels) for d in chk.dims)
    radix = ", ".join(str(len(d.labels)) for d in chk.dims)
    off = ", ".join(f"offsetof(struct drv_world, {world.world_field(d.world)})" for d in chk.dims)
    codes = ", ".join(
        "{" + ", ".join(str(d.code(i)) for i in range(len(d.labels))) + "}" for d in chk.dims
    )
    fixed = "\n\t".join(f"drv_w.{world.world_field(k)} = {v};" for k, v in chk.fixed.items())
    if nd > 32:
        raise ValueError(f"check {chk.name} has {nd} dimensions: the odometer keeps 32 bits")
    setup = sum(1 << i for i, d in enumerate(chk.dims) if world.read_by_setup(d.world))
    return (
        f"#define DRV_NDIMS {nd}\n#define DRV_MAXR {maxr}\n"
        f"static const uint32_t CHK(setup_dims) = {setup:#x}u;  /* the dims drv_setup reads */\n"
        f"static const unsigned CHK(radix)[DRV_NDIMS] = {{{radix}}};\n"
        f"static const unsigned short CHK(dim_off)[DRV_NDIMS] = {{{off}}};\n"
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
        alt = ["-1"] * len(STRICT_COMPONENTS)
        for s, a in n.replaces:
            strict |= 1 << STRICT_COMPONENTS.index(s)
            alt[STRICT_COMPONENTS.index(s)] = world.component_macro(a)
        rows.append(f"{{{strict}u, {{{', '.join(alt)}}}}}")
    return (
        f"#define DRV_NNORM {len(rows)}\n"
        "static const struct { uint32_t strict; int alt[DRV_NSTRICT]; } "
        f"CHK(norm)[DRV_NNORM + 1] = {{{', '.join(rows + ['{0u, {0}}'])}}};\n"
    )


def call_c(chk: Check, ex: Extraction) -> str:
    """`drv_<check>_call`: the check's call of the extracted code."""
    return f"void drv_{chk.name}_call(void)\n{{\n\t{chk.call(ex)}\n}}\n"


def check_section(
    chk: Check, ex: Extraction, *, with_call: bool = True, plain: bool = False
) -> str:
    """The C of one check's driver in a module: its dimensions, invariants, benign
    normalisations and call, then the run loop, every name under `drv_<check>_`.
    ``with_call`` False: only the call's prototype (it is in the revision's part);
    ``plain``: the benchmarks' plain loop too (never in the modules the checks run)."""
    call = call_c(chk, ex) if with_call else f"void drv_{chk.name}_call(void);\n"
    return "\n".join(
        [
            f"/* ---- check {chk.name} ---- */",
            f"#define CHK(x) drv_{chk.name}_##x",
            _dims_c(chk),
            _invariants_c(chk),
            _normalisations_c(chk),
            call,
            c_file("runner_check.c"),
            c_file("plain_check.c") if plain else "",
            "#undef CHK\n#undef DRV_NDIMS\n#undef DRV_MAXR\n#undef DRV_NNORM\n",
        ]
    )


def tree_defines(ex: Extraction) -> str:
    """The macros of what this tree has: its features, the dummy root, KVM_MMU_ROOTS_ALL."""
    feats = [f"#define DRV_HAS_{f.upper()} 1" for f in sorted(ex.features) if f.isidentifier()]
    roots_all = "0xfUL" if "roots_all_bounded" in ex.features else "(~0UL)"
    return "\n".join(
        [
            *feats,
            f"#define DRV_FEATURE_DUMMY_ROOT {int('dummy_root' in ex.features)}",
            f"#define DRV_ROOTS_ALL {roots_all}",
            f"#define DRV_NSTRICT {len(STRICT_COMPONENTS)}",
            f"#define DRV_NEVCOMP {len(EVENT_COMPONENTS)}",
        ]
    )


def _prelude(ex: Extraction) -> list[str]:
    return [c_file("drv.h"), c_file("exports_types.h"), world.world_header(), tree_defines(ex),
            world.tree_header(ex)]  # fmt: skip


def module_source(checks: list[Check], ex: Extraction) -> str:
    """The C of the driver for ``checks`` against the extraction ``ex``: the world and
    the shared run-time once, then a section per check."""
    return shared_source(checks, ex, with_calls=True) + "\n" + world.env_c(ex)


def shared_source(
    checks: list[Check], ex: Extraction, *, with_calls: bool = False, plain: bool = False
) -> str:
    """The driver without what names the revision's code (drv_set_env and the checks'
    calls, see revision_source): the part of a split module compiled into shared.o."""
    parts = [
        *_prelude(ex),
        event_comp_table(),
        c_file("world.c"),
        world.glue_c(ex),
        c_file("runner.c"),
        *(check_section(c, ex, with_call=with_calls, plain=plain) for c in checks),
    ]
    return "\n".join(parts)


def revision_source(checks: list[Check], ex: Extraction, *, plain: bool = False) -> str:
    """The driver's part compiled with the revision's code in a split module: drv_set_env,
    each check's call, and the prototypes of the entry points shared.o defines (cffi's glue
    calls them)."""
    parts = [
        *_prelude(ex),
        c_file("world_extern.h"),
        _exports(checks, plain),
        world.env_c(ex),
        *(call_c(c, ex) for c in checks),
    ]
    return "\n".join(parts)
