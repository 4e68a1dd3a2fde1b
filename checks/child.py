"""What runs inside the sandbox child: both builds over a range of states.

`run_range(mods, payload)` runs each chunk in the baseline (mods[0]) and the patched
build (mods[1]), compares the chunks' digests in C (one memcmp per state), folds the
differing states into groups, and returns only counts, the first state of each group
and the full traces of those first states.
"""

from __future__ import annotations

import time
from typing import Any

from checks.guard import guarded
from checks.render import EVENT_KINDS

MAX_GROUPS = 256
MAX_HANGS = 3  # hung states (either build) after which a child stops its range


def _trace(mod: Any, idx: int) -> dict[str, Any]:
    ffi, lib = mod.ffi, mod.lib
    nf = lib.drv_nfields()
    before = ffi.new("uint64_t[]", nf)
    after = ffi.new("uint64_t[]", nf)
    with guarded(mod):
        status = lib.drv_run_one(idx, before, after)
    kab = ffi.new("int64_t[3]")
    file, func, cond = ffi.new("char *[1]"), ffi.new("char *[1]"), ffi.new("char *[1]")
    line = ffi.new("int *")
    events = []
    for i in range(lib.drv_nevents()):
        lib.drv_event(i, kab, file, line, func, cond)
        kind = int(kab[0])
        ev: dict[str, Any] = {
            "kind": EVENT_KINDS[kind] if 0 <= kind < len(EVENT_KINDS) else str(kind),
            "a": int(kab[1]),
            "b": int(kab[2]),
        }
        if file[0] != ffi.NULL:
            ev["file"] = ffi.string(file[0]).decode(errors="replace")
            ev["line"] = int(line[0])
            ev["func"] = ffi.string(func[0]).decode(errors="replace") if func[0] else ""
            ev["cond"] = ffi.string(cond[0]).decode(errors="replace") if cond[0] else ""
        events.append(ev)
    used = [pg for pg in range(64) if lib.drv_page_used(pg)]
    return {
        "status": int(status),
        "events": events,
        "before": [int(x) for x in before],
        "after": [int(x) for x in after],
        "used": used,
    }


def run_range(mods: list[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """Run states [lo, hi) in both builds; return groups, crash counts and example traces."""
    base, patched = mods[0], mods[1]
    lo, hi = int(payload["lo"]), int(payload["hi"])
    chunk = int(payload.get("chunk", 1 << 14))
    hang = float(payload.get("hang_seconds", 1.0))
    bl, pl = base.lib, patched.lib
    nc = bl.drv_ncomp()
    if pl.drv_ncomp() != nc or bl.drv_nstates() != pl.drv_nstates():
        raise RuntimeError("baseline and patched drivers disagree on the state space")
    da = base.ffi.new("uint64_t[]", chunk * nc)
    sa = base.ffi.new("uint8_t[]", chunk)
    db = patched.ffi.new("uint64_t[]", chunk * nc)
    sb = patched.ffi.new("uint8_t[]", chunk)
    # views of the patched buffers typed for the baseline's drv_compare
    db_b = base.ffi.from_buffer("uint64_t[]", patched.ffi.buffer(db))
    sb_b = base.ffi.from_buffer("uint8_t[]", patched.ffi.buffer(sb))
    groups = base.ffi.new("struct drv_group[]", MAX_GROUPS)
    crash = base.ffi.new("uint64_t[2]")
    base_faults = 0
    ngroups = 0
    t0, c0 = time.perf_counter(), time.process_time()
    ms = (memoryview(base.ffi.buffer(sa)), memoryview(patched.ffi.buffer(sb)))
    hangs, ran = 0, 0
    # a hanging state costs its whole CPU budget: the run stops after MAX_HANGS of them,
    # reported as stopped (the verdict is crash anyway)
    start = lo
    while start < hi and hangs < MAX_HANGS:
        end = min(hi, start + chunk)
        with guarded(base, hang):
            end = start + bl.drv_run_range(start, end, da, sa)
        with guarded(patched, hang):
            end = start + pl.drv_run_range(start, end, db, sb)
        n = end - start
        base_faults += n - bytes(ms[0][:n]).count(0)
        hangs += bytes(ms[0][:n]).count(2) + bytes(ms[1][:n]).count(2)
        ngroups = bl.drv_compare(start, n, da, sa, db_b, sb_b, groups, ngroups, MAX_GROUPS, crash)
        ran += n
        start = end
    run_seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    out_groups = []
    firsts = set()
    for g in groups[0:ngroups]:
        out_groups.append(
            {
                "what": int(g.what),
                "inside": int(g.inside),
                "benign": int(g.benign),
                "inv_and": int(g.inv_and),
                "count": int(g.count),
                "first": int(g.first),
            }
        )
        firsts.add(int(g.first))
    crash_first = int(crash[0]) if crash[1] else None
    if crash_first is not None:
        firsts.add(crash_first)
    traces = {}
    for idx in sorted(firsts):
        traces[str(idx)] = {
            "base": _trace(base, idx),
            "patched": _trace(patched, idx),
            "inv": int(bl.drv_invariants(idx)),
        }
    return {
        "lo": lo,
        "hi": hi,
        "ran": ran,
        "hangs": hangs,
        "groups": out_groups,
        "crash": [crash_first, int(crash[1])] if crash_first is not None else None,
        "base_faults": base_faults,
        "traces": traces,
        "seconds": run_seconds,
        "cpu": cpu_seconds,
    }


def run_plain(mods: list[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's plain loop: states [lo, hi) in one build, no guard, no comparison."""
    lib = mods[0].lib
    t0, c0 = time.perf_counter(), time.process_time()
    events = lib.drv_plain_range(int(payload["lo"]), int(payload["hi"]))
    cpu = time.process_time() - c0
    return {"seconds": time.perf_counter() - t0, "cpu": cpu, "events": int(events)}
