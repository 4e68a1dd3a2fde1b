"""What runs inside the sandbox child: builds over a range of states.

`run_chain(mods, payload)` runs each chunk of the check `payload["check"]` once in every
revision of a chain and compares the pairs it is given (a baseline and a patched build
are a chain of two), in two phases. Phase 1: each revision runs the chunk and keeps one
whole-state word per state (the hash of everything the rows' strict components read);
per pair, C lists the states whose words differ. Phase 2: only those states run again
in both builds for their rows of digests (one per observable component), which C folds
into groups. It returns per pair a RawRun (checks/raw.py): only counts, the first state of
each group and the full traces of those first states.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

from checks import recorder
from checks.driver import entry
from checks.guard import guarded
from checks.prune import ChildRun
from checks.raw import Crash, RawGroup, RawRun, StateTrace, TraceJSON
from checks.render import EVENT_KINDS

MAX_GROUPS = 256
MAX_HANGS = 3  # hung states (either build) after which a child stops its range


class Module(Protocol):
    """A built module as the sandbox child loaded it (mmucore/sandbox_child.py)."""

    ffi: Any
    lib: Any
    build_key: str


def _trace(mod: Module, check: str, idx: int) -> TraceJSON:
    ffi, lib = mod.ffi, mod.lib
    recorder.place(mod)
    nf = lib.drv_nfields()
    before = ffi.new("uint64_t[]", nf)
    after = ffi.new("uint64_t[]", nf)
    with guarded(mod):
        status = entry(lib, check, "run_one")(idx, before, after)
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


def spans_of(payload: dict[str, Any]) -> list[tuple[int, int]]:
    """The ranges of states a child runs: ``payload["spans"]``, or [lo, hi)."""
    if "spans" in payload:
        return [(int(a), int(b)) for a, b in payload["spans"]]
    return [(int(payload["lo"]), int(payload["hi"]))]


def run_chain(mods: Sequence[Module], payload: dict[str, Any]) -> dict[str, Any]:
    """Run states [lo, hi) once in each revision of a chain (mods[0], mods[1], ...) and
    compare the pairs ``payload["pairs"]`` (indices into mods; a pair is a chain of two).
    Returns {"pairs": [RawRun.to_json() per pair]}. With ``payload["spans"]`` (ranges of
    states, in order) it runs those instead and returns per pair a list of RawRun JSON,
    one per span: the first holds the pair's groups, crashes and traces, every one its own
    range, what ran of it and where it stopped (checks/engine.py merges them)."""
    pairs = [(int(i), int(j)) for i, j in payload["pairs"]]
    runs = _run_pairs(mods, pairs, payload, spans_of(payload))
    if "spans" not in payload:
        return {"pairs": [r[0].to_json() for r in runs]}
    return {"pairs": [[x.to_json() for x in r] for r in runs]}


class _Pair:
    """One comparison of a chain: its group table and counters, in the baseline's ffi."""

    def __init__(self, base: Module, patched: Module, wb: Any, sb: Any, chunk: int) -> None:
        ffi = base.ffi
        self.base, self.patched = base, patched
        # views of the patched buffers typed for the baseline's drv_differing
        self.wb = ffi.from_buffer("uint64_t[]", patched.ffi.buffer(wb))
        self.sb = ffi.from_buffer("uint8_t[]", patched.ffi.buffer(sb))
        self.idx = ffi.new("uint64_t[]", chunk)  # the states whose words differ
        self.groups = ffi.new("struct drv_group[]", MAX_GROUPS)
        self.crash = ffi.new("uint64_t[4]")  # first, count: inside; first, count: outside
        self.ngroups = self.base_faults = self.hangs = 0


class _Rows:
    """Phase 2 in one revision: the rows of digests of the states a pair found differing,
    run again; a state whose word or status is not the one phase 1 got is marked (in C)
    as a fault of status 3 (its result is not a function of the state: never same)."""

    def __init__(self, mod: Module, check: str, nc: int, chunk: int) -> None:
        self.mod, self.nc = mod, nc
        self.rows_at = entry(mod.lib, check, "rows_at")
        self.rows = mod.ffi.new("uint64_t[]", chunk * nc)
        self.whole = mod.ffi.new("uint64_t[]", chunk)
        self.status = mod.ffi.new("uint8_t[]", chunk)

    def run(self, idx: Any, m: int, start: int, w1: Any, s1: Any, hang: float) -> Any:
        """Rows of idx[0..m) (viewed in this module's ffi); w1/s1: phase 1's buffers of the
        chunk that starts at ``start``."""
        ffi = self.mod.ffi
        view = ffi.from_buffer("uint64_t[]", ffi.buffer(idx, 8 * m)) if m else idx
        done = 0
        while done < m:
            with guarded(self.mod, hang):
                done += int(self.rows_at(view + done, m - done, start, w1, s1,
                                         self.rows + done * self.nc, self.whole + done,
                                         self.status + done))  # fmt: skip
        return self.rows


def _run_pairs(
    mods: Sequence[Module], pairs: list[tuple[int, int]], payload: dict[str, Any],
    spans: list[tuple[int, int]],
) -> list[list[RawRun]]:  # fmt: skip
    check = str(payload["check"])
    for m in mods:  # the log apart from the code under test, before its first state
        recorder.place(m)
    run_range = [entry(m.lib, check, "run_range") for m in mods]
    compare = [entry(m.lib, check, "compare") for m in mods]
    chunk = int(payload.get("chunk", 1 << 14))
    hang = float(payload.get("hang_seconds", 1.0))
    nc = mods[0].lib.drv_ncomp()
    for m in mods[1:]:
        nstates = entry(m.lib, check, "nstates")()
        if m.lib.drv_ncomp() != nc or nstates != entry(mods[0].lib, check, "nstates")():
            raise RuntimeError("baseline and patched drivers disagree on the state space")
    used = sorted({k for p in pairs for k in p})  # a revision no pair compares is not run
    # phase 1: a whole-state word per state and revision; phase 2: rows of the differing
    dig = {k: mods[k].ffi.new("uint64_t[]", chunk) for k in used}
    st = {k: mods[k].ffi.new("uint8_t[]", chunk) for k in used}
    ms = {k: memoryview(mods[k].ffi.buffer(st[k])) for k in used}
    ps = [_Pair(mods[i], mods[j], dig[j], st[j], chunk) for i, j in pairs]
    differing = {i: entry(mods[i].lib, check, "differing") for i, _ in pairs}
    rows = {k: _Rows(mods[k], check, nc, chunk) for k in used}
    spec = payload.get("prune")
    pruned = ChildRun(mods, used, check, chunk, 1, spec) if spec else None
    t0, c0 = time.perf_counter(), time.process_time()
    ran = [0] * len(spans)
    # a hanging state costs its whole CPU budget: the run stops after MAX_HANGS of them
    # in one pair, reported as stopped (the verdict is crash anyway); the spans after it
    # do not run either
    for s, (start, hi) in enumerate(spans):
        while start < hi and max(p.hangs for p in ps) < MAX_HANGS:
            end = min(hi, start + chunk)
            if pruned is not None:
                pruned.start(end - start)
            for k in used:  # each revision runs each state once, whatever pairs it is in
                with guarded(mods[k], hang):
                    if pruned is None:
                        end = start + run_range[k](start, end, dig[k], st[k])
                    else:
                        end = start + pruned.revision(k, start, end, dig, st)
            n = end - start
            status = {k: bytes(ms[k][:n]) for k in used}
            for (i, j), p in zip(pairs, ps, strict=True):
                p.base_faults += n - status[i].count(0)
                p.hangs += status[i].count(2) + status[j].count(2)
                nd = int(differing[i](start, n, dig[i], st[i], p.wb, p.sb, p.idx, p.crash))
                if nd:  # phase 2: the rows of the states whose words differ, in both builds
                    da = rows[i].run(p.idx, nd, start, dig[i], st[i], hang)
                    db = rows[j].run(p.idx, nd, start, dig[j], st[j], hang)
                    db = mods[i].ffi.from_buffer("uint64_t[]", mods[j].ffi.buffer(db))
                    p.ngroups = compare[i](p.idx, nd, da, db, p.groups, p.ngroups, MAX_GROUPS)
            ran[s] += n
            start = end
    run_seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    traced: dict[tuple[int, int], TraceJSON] = {}

    def trace_of(k: int, idx: int) -> TraceJSON:
        if (k, idx) not in traced:
            traced[(k, idx)] = _trace(mods[k], check, idx)
        return traced[(k, idx)]

    out = []
    for (i, j), p in zip(pairs, ps, strict=True):
        groups = tuple(
            RawGroup(int(g.what), int(g.inside), int(g.benign), int(g.inv_and), int(g.count),
                     int(g.first))
            for g in p.groups[0 : p.ngroups]
        )  # fmt: skip
        crash = Crash(int(p.crash[0]), int(p.crash[1])) if p.crash[1] else None
        crash_out = Crash(int(p.crash[2]), int(p.crash[3])) if p.crash[3] else None
        firsts = {g.first for g in groups} | {c.first for c in (crash, crash_out) if c}
        invariants = entry(mods[i].lib, check, "invariants")
        traces = {
            idx: StateTrace(trace_of(i, idx), trace_of(j, idx), int(invariants(idx)))
            for idx in sorted(firsts)
        }
        first = RawRun(
            lo=spans[0][0],
            hi=spans[0][1],
            ran=ran[0],
            hangs=p.hangs,
            groups=groups,
            crash=crash,  # patched faults, baseline not: inside the invariants
            crash_outside=crash_out,  # ... only outside them
            base_faults=p.base_faults,
            traces=traces,
            seconds=run_seconds,
            cpu=cpu_seconds,
            pruned=pruned.skipped[j] if pruned is not None else 0,
        )
        rest = [RawRun(a, b, n) for (a, b), n in zip(spans[1:], ran[1:], strict=True)]
        out.append([first, *rest])
    return out


def invariants_of(mods: Sequence[Module], payload: dict[str, Any]) -> dict[str, Any]:
    """The invariant masks of the states ``payload["indices"]`` (the driver's C alone: no
    kernel code runs), for a state whose child died before it could say."""
    inv = entry(mods[0].lib, str(payload["check"]), "invariants")
    return {"inv": [int(inv(int(i))) for i in payload["indices"]]}


def load_only(mods: Sequence[Module], payload: dict[str, Any]) -> dict[str, Any]:
    """Nothing but loading the builds (the sandbox child does that before any call): tells
    a module that does not load from a state that kills the child."""
    return {"loaded": [m.build_key for m in mods]}
