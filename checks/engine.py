"""The engine: build baseline and patched with a check's driver, run every state in both,
group the differences and explain each group with its smallest state.

Two sandbox children share the state range (one per core). A child that dies anyway
(a fault the driver could not contain) is bisected to the first state that kills it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from checks import driver, trace
from checks.result import CheckResult, DiffGroup, Example, verdict_for
from checks.space import STRICT_COMPONENTS, Check, all_checks
from mmucore.errors import ModuleLoadError

HANG_SECONDS = 1.0  # CPU seconds one state may take before it counts as a hang
_loadable: dict[tuple[str, ...], str] = {}  # build keys -> '' (they load) or why not
_loadable_lock = threading.Lock()


def _ensure_loadable(builds: list[Any], limits: Any) -> None:
    """Raise ModuleLoadError when the builds do not even load in a child (a broken module is
    mmu-ci's failure, not a state that crashes: it must never be bisected). Asked once per
    set of builds per process, only after a child failed."""
    from mmucore import sandbox

    keys = tuple(b.key for b in builds)
    with _loadable_lock:
        if keys not in _loadable:
            out = sandbox.run("checks.child:load_only", {}, builds, limits)
            _loadable[keys] = "" if out.ok else out.message
    if _loadable[keys]:
        paths = ", ".join(str(b.path) for b in builds)
        raise ModuleLoadError(
            f"internal error of mmu-ci: a built module does not load in the sandbox child "
            f"({_loadable[keys]}); delete the build cache entries ({paths}) and run again; "
            "if it persists, report it to mmu-ci with the reproduce command"
        )


CHECK_SECONDS = 900.0  # wall-clock deadline of one check's run (every child it starts)
MAX_CHILDREN = 200  # sandbox children one check's run may start (bisection included)
SERIES_SECONDS = 3600.0  # wall-clock deadline of every check one series runs
_series_deadline: list[float] = []


def start_series(seconds: float = SERIES_SECONDS) -> None:
    """Start the deadline shared by every check run from now on (one series). Without a
    call, the first check a process runs starts it: one `mmubot check` is one series."""
    _series_deadline[:] = [time.monotonic() + seconds, seconds]


class Budget:
    """What one check's run may still spend: a deadline and a number of children. A
    death is bisected left half first, so the first killing state is found within
    ~log2(states) children; what the budget leaves unrun is reported, never guessed."""

    def __init__(self, seconds: float = CHECK_SECONDS, children: int = MAX_CHILDREN) -> None:
        if not _series_deadline:
            start_series()
        self.seconds, self.children = seconds, children
        self.deadline = time.monotonic() + seconds
        self.whose = f"the check's deadline of {seconds:g}s"
        if _series_deadline[0] < self.deadline:
            self.deadline = _series_deadline[0]
            self.whose = f"the series' deadline of {_series_deadline[1]:g}s"
        self._left = children
        self._lock = threading.Lock()
        # the smallest state found to kill a child alone, inside the invariants
        self.first_death: int | None = None

    @property
    def used(self) -> int:
        return self.children - self._left

    def died_at(self, index: int) -> None:
        with self._lock:
            if self.first_death is None or index < self.first_death:
                self.first_death = index

    def not_worth(self, lo: int) -> str:
        """Why a dying range from ``lo`` on is not bisected ('' when it is): the budget is
        spent, or a reachable state before it already kills a child (it cannot come first)."""
        if self.first_death is not None and lo > self.first_death:
            return f"the reachable state #{self.first_death} before it already kills the child"
        return self.exhausted()

    def exhausted(self) -> str:
        """'' while another child may start, else why not."""
        if time.monotonic() >= self.deadline:
            return f"{self.whose} passed"
        if self._left <= 0:
            return f"the check started all the {self.children} sandbox children it may"
        return ""

    def take(self) -> str:
        """'' when one more child may start (and count it), else why not."""
        with self._lock:
            why = self.exhausted()
            if not why:
                self._left -= 1
            return why

    def limits(self, limits: Any, wall: float | None = None) -> Any:
        """``limits`` with the wall-clock limit cut to what is left before the deadline."""
        left = max(1.0, self.deadline - time.monotonic())
        wall = min(limits.wall_seconds, wall or limits.wall_seconds, left)
        return replace(limits, wall_seconds=wall, cpu_seconds=min(limits.cpu_seconds, wall))


def _gave_up(lo: int, hi: int, why: str) -> dict[str, Any]:
    """States [lo, hi) not run: counted as not run (stopped), with the reason."""
    return {"lo": lo, "hi": hi, "ran": 0, "gave_up": [{"lo": lo, "hi": hi, "why": why}]}


def _unnarrowed(lo: int, hi: int, out: Any, why: str) -> dict[str, Any]:
    """A child over [lo, hi) died or timed out and the budget allows no bisection: a death
    reported at the range's first state, saying it is not narrowed down."""
    msg = (
        f"{out.message}, in a child over states #{lo}..#{hi - 1} (not narrowed down: {why}; "
        f"the culprit may be any of them)"
    )
    died = [{"index": lo, "failure": out.failure, "message": msg}]
    return {**_gave_up(lo, hi, why), "died": died}


def _sandbox_failed(out: Any) -> None:
    """Raise for a failure that is ours, not the patch's: no jail, or a bug of the child."""
    from mmucore.jail import JailUnavailable

    if out.failure == "unavailable":
        raise JailUnavailable(out.message)
    if out.failure == "error":
        raise RuntimeError(f"check child failed: {out.message}\n{out.detail[-2000:]}")


def _sub_wall(out: Any, lo: int, hi: int, mid: int) -> float | None:
    """After a wall-clock timeout the halves get wall limits in proportion to their size
    (a blocking wait costs the wall limit per child, not the CPU limit)."""
    if out.failure != "timeout" or out.signal is not None:
        return None
    return 5.0 + 2.0 * out.seconds * max(mid - lo, hi - mid) / (hi - lo)


def _limits(limits: Any, states: int) -> Any:
    from mmucore.sandbox import Limits

    if limits is not None:
        return limits
    budget = max(120.0, states / 2e5)  # generous: ~5 us per state in both builds
    return Limits(cpu_seconds=budget, memory_mb=2048, wall_seconds=budget * 2 + 60)


def _driver(checks: list[Check], ex: Any) -> Any:
    from mmucore.build import Driver

    names = [c.name for c in checks]
    return Driver(
        name=f"drivers {' '.join(names)}",
        source=driver.module_source(checks, ex),
        cdef=driver.cdef(checks),
        exports_only=True,
    )


def build_one(chk: Check, ex: Any, cache_dir: Path) -> tuple[Any, float]:
    """Build the module of one extraction that ``chk`` runs in; (build, seconds).

    One module per revision holds the drivers of every check that applies to it, so a
    series' revisions are compiled once whatever checks they are in. When that module
    does not compile (a patch broke what another check's call needs), the check gets a
    module of its own, and only the checks a failure concerns report it."""
    from mmucore.build import BuildError, build, failed_before

    t0 = time.perf_counter()
    together = driver.module_checks(ex)
    if len(together) > 1 and chk.name in {c.name for c in together}:
        drv = _driver(together, ex)
        if not failed_before(ex, drv, cache_dir=cache_dir):
            try:
                return build(ex, drv, cache_dir=cache_dir), time.perf_counter() - t0
            except BuildError:
                pass  # the check's own module below says whether it concerns this check
    b = build(ex, _driver([chk], ex), cache_dir=cache_dir)
    return b, time.perf_counter() - t0


def build_pair(chk: Check, base: Any, patched: Any, cache_dir: Path) -> tuple[Any, Any, dict]:
    """Build baseline and patched with the check's driver; (base_build, patched_build, times)."""
    bb, tb = build_one(chk, base, cache_dir)
    pb, tp = build_one(chk, patched, cache_dir)
    return bb, pb, {"build_base": tb, "build_patched": tp}


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    groups: dict[tuple[int, int, int, int], dict[str, Any]] = {}
    traces: dict[str, Any] = {}
    crash: dict[str, list[int] | None] = {"crash": None, "crash_outside": None}
    died: list[dict[str, Any]] = []
    base_faults = ran = hangs = 0
    seconds = cpu = 0.0
    stopped: list[int] = []
    gave_up: list[dict[str, Any]] = []
    for p in parts:
        gave_up += p.get("gave_up", [])
        ran += p.get("ran", 0)
        hangs += p.get("hangs", 0)
        stopped += p.get("stopped", [])
        if p.get("ran", 0) < p.get("hi", 0) - p.get("lo", 0):
            stopped.append(p["lo"] + p["ran"])
        traces.update(p.get("traces", {}))
        died += p.get("died", [])
        base_faults += p.get("base_faults", 0)
        seconds = max(seconds, p.get("seconds", 0.0))
        cpu += p.get("cpu", 0.0)
        for g in p.get("groups", []):
            key = (g["what"], g["inside"], g["benign"], g["inv_and"])
            if key not in groups:
                groups[key] = dict(g)
                continue
            m = groups[key]
            m["count"] += g["count"]
            m["inv_and"] &= g["inv_and"]
            m["first"] = min(m["first"], g["first"])
        for key, c in crash.items():  # inside and outside the invariants: first, count
            if p.get(key):
                first, n = p[key]
                crash[key] = [first, n] if c is None else [min(c[0], first), c[1] + n]
    return {
        "groups": list(groups.values()),
        "traces": traces,
        **crash,
        "died": died,
        "base_faults": base_faults,
        "seconds": seconds,
        "cpu": cpu,
        "ran": ran,
        "hangs": hangs,
        "stopped": stopped,
        "gave_up": gave_up,
    }


def _invariants_of(name: str, idx: int, build: Any, limits: Any) -> int | None:
    """The invariant mask of state ``idx`` (a state whose child died), from the driver's C
    in its own child; None when even that fails (the state then counts as inside)."""
    from mmucore import sandbox

    out = sandbox.run(
        "checks.child:invariants_of", {"check": name, "indices": [idx]}, [build], limits
    )
    return int(out.value["inv"][0]) if out.ok else None


def _run_range(
    name: str, lo: int, hi: int, builds: list[Any], limits: Any, chunk: int, call: str,
    budget: Budget, wall: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One child over [lo, hi); a child that dies is bisected (left half first) down to
    the killing state, as far as ``budget`` allows."""
    from mmucore import sandbox

    why = budget.take()
    if why:
        return _gave_up(lo, hi, why)
    payload = {"lo": lo, "hi": hi, "chunk": chunk, "hang_seconds": HANG_SECONDS, "check": name}
    out = sandbox.run(call, payload, builds, budget.limits(limits, wall))
    if out.ok:
        return out.value
    _sandbox_failed(out)
    _ensure_loadable(builds, limits)
    if hi - lo <= 1:
        died = [{"index": lo, "failure": out.failure, "message": out.message}]
        died[0]["inv"] = _invariants_of(name, lo, builds[0], budget.limits(limits))
        if died[0]["inv"] in (0, None):  # a reachable crash: later ones cannot come first
            budget.died_at(lo)
        return {"lo": lo, "hi": hi, "ran": 1, "died": died}
    if why := budget.not_worth(lo):
        return _unnarrowed(lo, hi, out, why)
    mid = (lo + hi) // 2
    sub = _sub_wall(out, lo, hi, mid)
    left = _run_range(name, lo, mid, builds, limits, chunk, call, budget, sub)
    right = _run_range(name, mid, hi, builds, limits, chunk, call, budget, sub)
    return _merge([left, right])


def run_states(
    chk: Check, builds: list[Any], *, limits: Any = None, lo: int = 0, hi: int | None = None,
    chunk: int = 1 << 16, jobs: int = 2, call: str = "checks.child:run_range",
    budget: Budget | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Run states [lo, hi) of ``chk`` in both builds, split over ``jobs`` children.

    ``call`` is the child function (the engine's own unless a test stands in for it);
    ``budget`` bounds the whole run (default: CHECK_SECONDS, MAX_CHILDREN).
    """
    hi = chk.size if hi is None else hi
    budget = budget or Budget()
    lim = _limits(limits, (hi - lo) // max(jobs, 1))
    step = -(-(hi - lo) // jobs)
    ranges = [(a, min(hi, a + step)) for a in range(lo, hi, step)]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        parts = list(
            pool.map(
                lambda r: _run_range(chk.name, r[0], r[1], builds, lim, chunk, call, budget),
                ranges,
            )
        )
    return _merge(parts)


def _pair_call(call: str) -> str:
    """The pairwise child function beside a chain child function (same module)."""
    return call.rsplit(":", 1)[0] + ":run_range"


def _run_chain_range(
    name: str, lo: int, hi: int, builds: list[Any], pairs: list[tuple[int, int]], limits: Any,
    chunk: int, call: str, budget: Budget, wall: float | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """One chain child over [lo, hi), a raw result per pair. A child that dies is bisected;
    its killing state is then run pair by pair, so the death goes to the pairs it is in."""
    from mmucore import sandbox

    why = budget.take()
    if why:
        return [_gave_up(lo, hi, why) for _ in pairs]
    payload = {
        "lo": lo, "hi": hi, "chunk": chunk, "hang_seconds": HANG_SECONDS, "pairs": pairs,
        "check": name,
    }  # fmt: skip
    out = sandbox.run(call, payload, builds, budget.limits(limits, wall))
    if out.ok:
        return out.value["pairs"]
    _sandbox_failed(out)
    _ensure_loadable(builds, limits)
    if hi - lo > 1 and (why := budget.not_worth(lo)):
        return [_unnarrowed(lo, hi, out, why) for _ in pairs]
    if hi - lo <= 1:
        pair_call = _pair_call(call)
        return [
            _run_range(name, lo, hi, [builds[i], builds[j]], limits, chunk, pair_call, budget)
            for i, j in pairs
        ]
    mid = (lo + hi) // 2
    sub = _sub_wall(out, lo, hi, mid)
    a = _run_chain_range(name, lo, mid, builds, pairs, limits, chunk, call, budget, sub)
    b = _run_chain_range(name, mid, hi, builds, pairs, limits, chunk, call, budget, sub)
    return [_merge([x, y]) for x, y in zip(a, b, strict=True)]


def run_chain_states(
    chk: Check, builds: list[Any], pairs: Sequence[tuple[int, int]], *, limits: Any = None,
    lo: int = 0, hi: int | None = None, chunk: int = 1 << 16, jobs: int = 2,
    call: str = "checks.child:run_chain", budget: Budget | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Run states [lo, hi) of ``chk`` once in every build of a chain, split over ``jobs``
    children (each loads every build); a merged raw result per pair of build indices.

    A pair whose run stopped (hangs) is run again on its own: in the chain, another
    pair's hangs stop it too."""
    hi = chk.size if hi is None else hi
    budget = budget or Budget()
    pairs = [(int(i), int(j)) for i, j in pairs]
    # the budget covers every build in the chain, as _limits does two
    lim = _limits(limits, (hi - lo) // max(jobs, 1) * len(builds) // 2)
    step = -(-(hi - lo) // jobs)
    ranges = [(a, min(hi, a + step)) for a in range(lo, hi, step)]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        parts = list(
            pool.map(
                lambda r: _run_chain_range(
                    chk.name, r[0], r[1], builds, pairs, lim, chunk, call, budget
                ),
                ranges,
            )
        )
    raws = [_merge([p[k] for p in parts]) for k in range(len(pairs))]
    if len(pairs) > 1 and any(r["stopped"] for r in raws):
        pair_call = _pair_call(call)
        for k, (i, j) in enumerate(pairs):
            if raws[k]["stopped"]:
                raws[k] = run_states(
                    chk, [builds[i], builds[j]], limits=limits, lo=lo, hi=hi, chunk=chunk,
                    jobs=jobs, call=pair_call, budget=budget,
                )  # fmt: skip
    return raws


def _what(mask: int) -> tuple[str, ...]:
    return tuple(c for i, c in enumerate(STRICT_COMPONENTS) if mask >> i & 1)


def _example(chk: Check, ex: Any, idx: int, raw: dict[str, Any]) -> Example:
    tr = raw["traces"].get(str(idx))
    state = chk.decode(idx)
    if tr is None:
        d = next((d for d in raw["died"] if d["index"] == idx), {})
        lines = [f"*** the child process died in this state: {d.get('message', '')} ***"]
        inv = chk.invariant_names(d.get("inv") or 0)
        return Example(state, lines, lines, index=idx, invariants_violated=inv)
    labels = trace.labels(ex)
    return Example(
        state=state,
        baseline=trace.render(chk, tr["base"], labels, tr["patched"], ex),
        patched=trace.render(chk, tr["patched"], labels, tr["base"], ex),
        index=idx,
        invariants_violated=chk.invariant_names(tr["inv"]),
    )


def _needed(chk: Check, subs: list[dict[str, Any]]) -> tuple[tuple[str, ...], bool]:
    """The invariants an outside group needs broken, and whether any one of them suffices.

    All the invariants every state of the group violates; when they share none, a small
    cover (greedy by states): every state violates at least one of them.
    """
    shared = ~0
    for g in subs:
        shared &= g["inv_and"]
    if shared:
        return chk.invariant_names(shared), False
    left = [(g["inv_and"], g["count"]) for g in subs]
    chosen = 0
    while left:
        weight: dict[int, int] = {}
        for mask, count in left:
            for i in range(len(chk.invariants)):
                if mask >> i & 1:
                    weight[i] = weight.get(i, 0) + count
        if not weight:
            break
        best = max(weight, key=lambda i: (weight[i], -i))
        chosen |= 1 << best
        left = [(m, c) for m, c in left if not m >> best & 1]
    return chk.invariant_names(chosen), True


def _fold_outside(groups: list[DiffGroup]) -> list[DiffGroup]:
    """An outside group that differs in what an inside group differs in is the same finding:
    count it on the inside group rather than list it again."""
    inside = {(g.what, g.benign): g for g in groups if g.inside_invariants}
    out = []
    for g in groups:
        twin = inside.get((g.what, g.benign)) if not g.inside_invariants else None
        if twin is None:
            out.append(g)
        else:
            inside[(g.what, g.benign)] = replace(twin, also_outside=g.count)
    return [inside.get((g.what, g.benign), g) if g.inside_invariants else g for g in out]


def result_from_raw(
    chk: Check, base: Any, patched: Any, raw: dict[str, Any], states: int, timings: dict
) -> CheckResult:
    """Turn the merged child output into a CheckResult."""
    merged: dict[tuple[int, int, int], list[dict[str, Any]]] = {}
    for g in raw["groups"]:  # the children split outside groups by the invariants violated
        merged.setdefault((g["what"], g["inside"], g["benign"]), []).append(g)
    groups = []
    for (what, inside, benign), subs in merged.items():
        first = min(g["first"] for g in subs)
        needed, any_one = _needed(chk, subs) if not inside else ((), False)
        groups.append(
            DiffGroup(
                what=_what(what),
                count=sum(g["count"] for g in subs),
                inside_invariants=bool(inside),
                invariants_needed=needed,
                needs_any=any_one,
                benign=chk.normalisations[benign].name if benign >= 0 else None,
                example=_example(chk, patched, first, raw),
            )
        )
    groups = _fold_outside(groups)
    groups.sort(key=lambda g: (not g.inside_invariants, g.benign is not None, g.example.index))
    # crashes inside the invariants (a died state whose mask is unknown counts as inside)
    # and only outside them: the example is the first inside, else the first outside
    inside = [d["index"] for d in raw["died"] if d.get("inv") in (0, None)]
    outside = [d["index"] for d in raw["died"] if d.get("inv") not in (0, None)]
    crash_inside, crash_outside = len(inside), len(outside)
    if raw.get("crash"):
        inside.append(raw["crash"][0])
        crash_inside += raw["crash"][1]
    if raw.get("crash_outside"):
        outside.append(raw["crash_outside"][0])
        crash_outside += raw["crash_outside"][1]
    crash = None
    if inside or outside:
        crash = _example(chk, patched, min(inside or outside), raw)
    real = [g for g in groups if g.benign is None]
    error = None
    if raw["stopped"]:
        error = (
            f"{raw['hangs']} states hung; the run stopped before state "
            f"#{min(raw['stopped'])}, {states - raw['ran']} states not run"
        )
    return CheckResult(
        name=chk.name,
        # a run stopped by hangs left states unrun: its crash ranks as a reachable one
        verdict=verdict_for(groups, crash is not None, bool(crash_inside or raw["stopped"])),
        states=raw["ran"],
        error=error,
        differing_inside=sum(g.count for g in real if g.inside_invariants),
        differing_outside=sum(g.also_outside if g.inside_invariants else g.count for g in real),
        groups=tuple(groups),
        crash=crash,
        crash_inside=crash_inside,
        crash_outside=crash_outside,
        timings=timings,
        invariants={i.name: i.statement for i in chk.invariants},
    )


def _error_text(e: Exception) -> str:
    return re.sub(r"\s+\n", "\n", str(e)).strip()


def run_check(
    chk: Check, base: Any, patched: Any, *, cache_dir: Path, limits: Any = None, jobs: int = 2,
    budget: Budget | None = None,
) -> CheckResult:  # fmt: skip
    """One check between two extractions (its run bounded by ``budget``, default Budget())."""
    from mmucore.build import BuildError
    from mmucore.jail import JailUnavailable
    from mmucore.validate import RefusedInput

    empty = dict(states=0, differing_inside=0, differing_outside=0, groups=())
    for label, ex in (("baseline", base), ("patched", patched)):
        why = chk.skip_reason(ex)
        if why:
            return CheckResult(chk.name, "skipped", skipped=f"{label}: {why}", **empty)
    why = chk.entry_mismatch(base, patched)
    if why:
        return CheckResult(chk.name, "skipped", skipped=why, **empty)
    try:
        bb, pb, timings = build_pair(chk, base, patched, cache_dir)
        t0 = time.perf_counter()
        raw = run_states(chk, [bb, pb], limits=limits, jobs=jobs, budget=budget)
    except (BuildError, RefusedInput) as e:
        return CheckResult(chk.name, "build-error", error=_error_text(e), **empty)
    except JailUnavailable as e:  # ours, never the patch's: nothing built ran
        return CheckResult(chk.name, "internal-error", error=_error_text(e), **empty)
    timings["run"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = _gave_up_error(result_from_raw(chk, base, patched, raw, chk.size, timings), raw)
    timings["explain"] = time.perf_counter() - t0
    timings["states_per_second"] = chk.size / max(timings["run"], 1e-9)
    return replace(res, timings=timings)


def _gave_up_error(res: CheckResult, raw: dict[str, Any]) -> CheckResult:
    """Say which states the run's budget left unrun, and why (instead of 'hung'). A finding
    stands; but states that did not run are never `same`: that is ours (internal-error)."""
    if not raw.get("gave_up"):
        return res
    not_run = sum(g["hi"] - g["lo"] for g in raw["gave_up"])
    first = min(g["lo"] for g in raw["gave_up"])
    why = raw["gave_up"][0]["why"]
    error = f"{not_run:,} states not run from state #{first} on: {why}"
    verdict = "internal-error" if res.verdict == "same" else res.verdict
    return replace(res, verdict=verdict, error=error if not res.error else f"{error}; {res.error}")


def run_chain(
    chk: Check, revisions: Sequence[Any], pairs: Sequence[tuple[int, int]], *, cache_dir: Path,
    limits: Any = None, jobs: int = 2, budget: Budget | None = None,
) -> list[CheckResult]:  # fmt: skip
    """One check over a chain of extractions: each revision runs every state once, and each
    pair (baseline index, patched index) gets the CheckResult run_check would give it."""
    from mmucore.build import BuildError
    from mmucore.jail import JailUnavailable
    from mmucore.validate import RefusedInput

    empty = dict(states=0, differing_inside=0, differing_outside=0, groups=())
    builds: dict[int, Any] = {}
    seconds: dict[int, float] = {}
    failed: dict[int, CheckResult] = {}
    for k in sorted({k for p in pairs for k in p}):
        why = chk.skip_reason(revisions[k])
        if why:
            failed[k] = CheckResult(chk.name, "skipped", skipped=why, **empty)
            continue
        try:
            builds[k], seconds[k] = build_one(chk, revisions[k], cache_dir)
        except (BuildError, RefusedInput) as e:
            failed[k] = CheckResult(chk.name, "build-error", error=_error_text(e), **empty)
        except JailUnavailable as e:
            failed[k] = CheckResult(chk.name, "internal-error", error=_error_text(e), **empty)
    results: dict[int, CheckResult] = {}
    for n, (i, j) in enumerate(pairs):  # as run_check: a skip before a build error
        ends = [(label, failed[k]) for label, k in (("baseline", i), ("patched", j)) if k in failed]
        skip = [(label, f) for label, f in ends if f.skipped]
        if skip:
            results[n] = replace(skip[0][1], skipped=f"{skip[0][0]}: {skip[0][1].skipped}")
        elif ends:
            results[n] = ends[0][1]
        elif why := chk.entry_mismatch(revisions[i], revisions[j]):
            results[n] = CheckResult(chk.name, "skipped", skipped=why, **empty)
    todo = [n for n in range(len(pairs)) if n not in results]
    if todo:
        order = sorted({k for n in todo for k in pairs[n]})
        at = {k: x for x, k in enumerate(order)}
        t0 = time.perf_counter()
        try:
            raws = run_chain_states(
                chk, [builds[k] for k in order],
                [(at[pairs[n][0]], at[pairs[n][1]]) for n in todo],
                limits=limits, jobs=jobs, budget=budget,
            )  # fmt: skip
        except JailUnavailable as e:
            bad = CheckResult(chk.name, "internal-error", error=_error_text(e), **empty)
            return [results.get(n, bad) for n in range(len(pairs))]
        run = time.perf_counter() - t0
        for n, raw in zip(todo, raws, strict=True):
            i, j = pairs[n]
            timings = {"build_base": seconds[i], "build_patched": seconds[j], "run": run}
            t0 = time.perf_counter()
            res = result_from_raw(chk, revisions[i], revisions[j], raw, chk.size, timings)
            res = _gave_up_error(res, raw)
            timings["explain"] = time.perf_counter() - t0
            timings["states_per_second"] = chk.size / max(run, 1e-9)
            timings["chain"] = len(order)
            results[n] = replace(res, timings=timings)
    return [results[n] for n in range(len(pairs))]


def run_checks(
    base: Any,
    patched: Any,
    *,
    cache_dir: Path,
    names: Sequence[str] | None = None,
    limits: Any = None,
) -> list[CheckResult]:
    """Every applicable check (or those named) between baseline and patched extractions."""
    return [
        run_check(chk, base, patched, cache_dir=cache_dir, limits=limits)
        for chk in all_checks(names)
    ]
