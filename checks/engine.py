"""The executor: build every revision of a plan with the check's driver, run every state
once in each build, compare the plan's pairs, and explain each difference.

One way to run: a `Chain` (checks/plan.py) of revisions and the pairs to compare; a
`Comparison` (baseline, patched) is a chain of two. Two sandbox children share the state
range (one per core), each loading every build of the chain. A child that dies anyway (a
fault the driver could not contain) is bisected to the first state that kills it, which
is then run pair by pair (each pair a chain of two), so the death goes to the pairs it
is in.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checks import driver
from checks.budget import Budget, start_series
from checks.explain import gave_up_error, result_from_raw
from checks.plan import Chain, Comparison, states_to_run
from checks.prune import ModuleCode, code_classes, module_code, prepare, select, twin_of
from checks.raw import Died, RawRun, gave_up, merge, unnarrowed
from checks.result import CheckResult
from checks.space import Check, all_checks
from checks.verdict import Verdict
from mmuci.errors import ModuleLoadError

if TYPE_CHECKING:
    from mmucore.build import Build, Driver
    from mmucore.sandbox import Limits, Outcome

__all__ = ["Budget", "Chain", "Comparison", "build_one", "compare", "run", "run_states"]
__all__ += ["start_series", "compare_each"]

SPANS_PER_JOB = 8  # pieces of a run's states per child (_spans)
HANG_SECONDS = 1.0  # CPU seconds one state may take before it counts as a hang
CALL = "checks.child:run_chain"  # the child function (a test may stand in for it)
_loadable: dict[tuple[str, ...], str] = {}  # build keys -> '' (they load) or why not
_loadable_lock = threading.Lock()
Pairs = Sequence[tuple[int, int]]
Prune = dict[str, list[int]] | None  # the child's "prune" entry (checks/prune.py)


def _ensure_loadable(builds: Sequence[Build], limits: Limits) -> None:
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


def _sandbox_failed(out: Outcome) -> None:
    """Raise for a failure that is ours, not the patch's: no jail, or a bug of the child."""
    from mmucore.jail import JailUnavailable

    if out.failure == "unavailable":
        raise JailUnavailable(out.message)
    if out.failure == "error":
        raise RuntimeError(f"check child failed: {out.message}\n{out.detail[-2000:]}")


def _sub_wall(out: Outcome, lo: int, hi: int, mid: int) -> float | None:
    """After a wall-clock timeout the halves get wall limits in proportion to their size
    (a blocking wait costs the wall limit per child, not the CPU limit)."""
    if out.failure != "timeout" or out.signal is not None:
        return None
    return _share_wall(out, max(mid - lo, hi - mid), hi - lo)


def _share_wall(out: Outcome, part: int, whole: int) -> float:
    """The wall limit of ``part`` of the ``whole`` states a timed-out child ran (twice its
    share of that child's time, and 5 s)."""
    return 5.0 + 2.0 * out.seconds * part / max(whole, 1)


def _limits(limits: Limits | None, states: int) -> Limits:
    from mmucore.sandbox import Limits

    if limits is not None:
        return limits
    budget = max(120.0, states / 2e5)  # generous: ~5 us per state in both builds
    return Limits(cpu_seconds=budget, memory_mb=2048, wall_seconds=budget * 2 + 60)


def _driver(checks: list[Check], ex: Any, plain: bool = False) -> Driver:
    from mmucore.build import Driver

    names = [c.name for c in checks]
    return Driver(
        name=f"drivers {' '.join(names)}",
        source=driver.revision_source(checks, ex, plain=plain),
        cdef=driver.cdef(checks, plain=plain),
        exports_only=True,
        shared=driver.shared_source(checks, ex, plain=plain),  # once per tree generation
    )


def build_one(chk: Check, ex: Any, cache_dir: Path, *, plain: bool = False) -> tuple[Build, float]:
    """Build the module of one extraction that ``chk`` runs in; (build, seconds).
    ``plain``: a module of the benchmarks, with the plain loop (checks/plain.py) too.

    One module per revision holds the drivers of every check that applies to it, so a
    series' revisions are compiled once whatever checks they are in. When that module
    does not compile (a patch broke what another check's call needs), the check gets a
    module of its own, and only the checks a failure concerns report it."""
    from mmucore.build import BuildError, build, failed_before

    t0 = time.perf_counter()
    together = driver.module_checks(ex)
    if len(together) > 1 and chk.name in {c.name for c in together}:
        drv = _driver(together, ex, plain)
        if not failed_before(ex, drv, cache_dir=cache_dir):
            try:
                return build(ex, drv, cache_dir=cache_dir), time.perf_counter() - t0
            except BuildError:
                pass  # the check's own module below says whether it concerns this check
    b = build(ex, _driver([chk], ex, plain), cache_dir=cache_dir)
    return b, time.perf_counter() - t0


def _invariants_of(name: str, idx: int, build: Build, limits: Limits) -> int | None:
    """The invariant mask of state ``idx`` (a state whose child died), from the driver's C
    in its own child; None when even that fails (the state then counts as inside)."""
    from mmucore import sandbox

    out = sandbox.run(
        "checks.child:invariants_of", {"check": name, "indices": [idx]}, [build], limits
    )
    return int(out.value["inv"][0]) if out.ok else None


def _run_range(
    name: str, lo: int, hi: int, builds: Sequence[Build], pairs: Pairs, limits: Limits,
    chunk: int, call: str, budget: Budget, wall: float | None = None,
    prune: Prune = None,
) -> list[RawRun]:  # fmt: skip
    """One child over [lo, hi), a RawRun per pair. A child that dies is bisected (left
    half first) as far as ``budget`` allows; its killing state is then run pair by pair."""
    from mmucore import sandbox

    why = budget.take()
    if why:
        return [gave_up(lo, hi, why) for _ in pairs]
    payload = {
        "lo": lo, "hi": hi, "chunk": chunk, "hang_seconds": HANG_SECONDS, "check": name,
        "pairs": [list(p) for p in pairs],
    }  # fmt: skip
    if prune is not None:
        payload["prune"] = prune
    out = sandbox.run(call, payload, builds, budget.limits(limits, wall))
    if out.ok:
        raws = [RawRun.from_json(v) for v in out.value["pairs"]]
        if len(raws) != len(pairs):
            raise ValueError(f"the check child answered {len(raws)} pairs, not {len(pairs)}")
        return raws
    _sandbox_failed(out)
    _ensure_loadable(builds, limits)
    if hi - lo <= 1 and len(pairs) > 1:
        return [
            _run_range(name, lo, hi, [builds[i], builds[j]], [(0, 1)], limits, chunk, call,
                       budget, prune=select(prune, (i, j)))[0]
            for i, j in pairs
        ]  # fmt: skip
    if hi - lo <= 1:
        inv = _invariants_of(name, lo, builds[pairs[0][0]], budget.limits(limits))
        if inv in (0, None):  # a reachable crash: later ones cannot come first
            budget.died_at(lo)
        return [RawRun(lo, hi, 1, died=(Died(lo, str(out.failure), out.message, inv),))]
    if why := budget.not_worth(lo):
        return [unnarrowed(lo, hi, str(out.failure), out.message, why) for _ in pairs]
    mid = (lo + hi) // 2
    sub = _sub_wall(out, lo, hi, mid)
    a = _run_range(name, lo, mid, builds, pairs, limits, chunk, call, budget, sub, prune)
    b = _run_range(name, mid, hi, builds, pairs, limits, chunk, call, budget, sub, prune)
    return [merge([x, y]) for x, y in zip(a, b, strict=True)]


def _run_spans(
    name: str, spans: list[tuple[int, int]], builds: Sequence[Build], pairs: Pairs,
    limits: Limits, chunk: int, call: str, budget: Budget, prune: Prune = None,
) -> list[RawRun]:  # fmt: skip
    """One child over the ranges ``spans``, a merged RawRun per pair. A child that dies is
    run again span by span, each as _run_range does (bisected to the state that kills it)."""
    from mmucore import sandbox

    if len(spans) == 1:
        return _run_range(name, *spans[0], builds, pairs, limits, chunk, call, budget, prune=prune)
    if why := budget.take():
        return [merge([gave_up(a, b, why) for a, b in spans]) for _ in pairs]
    payload: dict[str, Any] = {
        "lo": spans[0][0], "hi": spans[-1][1], "spans": [list(x) for x in spans],
        "chunk": chunk, "hang_seconds": HANG_SECONDS, "check": name,
        "pairs": [list(p) for p in pairs],
    }  # fmt: skip
    if prune is not None:
        payload["prune"] = prune
    out = sandbox.run(call, payload, builds, budget.limits(limits))
    if out.ok:
        per_pair = out.value["pairs"]
        if len(per_pair) != len(pairs) or any(len(r) != len(spans) for r in per_pair):
            raise ValueError("the check child did not answer every pair and span it was given")
        return [merge([RawRun.from_json(v) for v in r]) for r in per_pair]
    _sandbox_failed(out)
    _ensure_loadable(builds, limits)  # a module that does not load is ours: never bisected
    if why := budget.not_worth(spans[0][0]):
        where = f"{len(spans)} spans of states from #{spans[0][0]} to #{spans[-1][1] - 1}"
        dead = unnarrowed(*spans[0], str(out.failure), out.message, why, where)
        return [merge([dead, *(gave_up(a, b, why) for a, b in spans[1:])]) for _ in pairs]
    total = sum(b - a for a, b in spans)
    timed_out = out.failure == "timeout" and out.signal is None
    parts = [  # after a wall-clock timeout each span gets its share of the child's time
        _run_range(name, a, b, builds, pairs, limits, chunk, call, budget,
                   _share_wall(out, b - a, total) if timed_out else None, prune)
        for a, b in spans
    ]  # fmt: skip
    return [merge([p[k] for p in parts]) for k in range(len(pairs))]


def _spans(lo: int, hi: int, jobs: int) -> list[list[tuple[int, int]]]:
    """[lo, hi) cut into SPANS_PER_JOB pieces per child, dealt out in turn: nearby states
    cost alike, so every child gets a share of each part of the space (of each mode,
    and of each stretch that pruning leaves to run) and the children end together."""
    n = hi - lo
    pieces = max(1, min(n, jobs * SPANS_PER_JOB))
    cuts = [lo + n * k // pieces for k in range(pieces + 1)]
    spans = [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if a < b]
    return [spans[c::jobs] for c in range(jobs) if spans[c::jobs]]


def run_states(
    chk: Check, builds: Sequence[Build], pairs: Pairs = ((0, 1),), *,
    limits: Limits | None = None, lo: int = 0, hi: int | None = None, chunk: int = 1 << 16,
    jobs: int = 2, call: str = CALL, budget: Budget | None = None, prune: Prune = None,
) -> list[RawRun]:  # fmt: skip
    """Run states [lo, hi) of ``chk`` once in every build, split over ``jobs`` children
    (each loads every build); a merged RawRun per pair of build indices. ``prune``: the
    bits of each build (checks/prune.py), so later builds run only the states needed.

    A pair whose run stopped (hangs) is run again on its own: in the chain, another
    pair's hangs stop it too. ``budget`` bounds the whole run (default: Budget())."""
    hi = chk.size if hi is None else hi
    budget = budget or Budget()
    pairs = [(int(i), int(j)) for i, j in pairs]
    # the budget covers every build in the chain, ~5 us per state and build pair
    lim = _limits(limits, (hi - lo) // max(jobs, 1) * max(len(builds), 2) // 2)

    def part(spans: list[tuple[int, int]]) -> list[RawRun]:
        return _run_spans(chk.name, spans, builds, pairs, lim, chunk, call, budget, prune)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        parts = list(pool.map(part, _spans(lo, hi, max(jobs, 1))))
    raws = [merge([p[k] for p in parts]) for k in range(len(pairs))]
    if len(pairs) > 1:
        for k, (i, j) in enumerate(pairs):
            if raws[k].stopped:
                (raws[k],) = run_states(
                    chk, [builds[i], builds[j]], limits=limits, lo=lo, hi=hi, chunk=chunk,
                    jobs=jobs, call=call, budget=budget, prune=select(prune, (i, j)),
                )  # fmt: skip
    return raws


def _error_text(e: Exception) -> str:
    return re.sub(r"\s+\n", "\n", str(e)).strip()


def _empty(
    chk: Check, verdict: str, skipped: str | None = None, error: str | None = None
) -> CheckResult:
    return CheckResult(chk.name, Verdict(verdict), 0, 0, 0, (), skipped=skipped, error=error)


def _not_run(plan: Chain, results: dict[int, CheckResult], failed: dict[int, CheckResult]) -> None:
    """The pairs that cannot run, each with what a single comparison would say: a skip of
    either end (named), then two revisions entered at different functions, then the
    build error of either end."""
    chk = plan.check
    for n, (i, j) in enumerate(plan.pairs):
        ends = [(label, failed[k]) for label, k in (("baseline", i), ("patched", j)) if k in failed]
        skip = [(label, f) for label, f in ends if f.skipped]
        if skip:
            results[n] = replace(skip[0][1], skipped=f"{skip[0][0]}: {skip[0][1].skipped}")
        elif why := chk.entry_mismatch(plan.revisions[i], plan.revisions[j]):
            results[n] = _empty(chk, "skipped", skipped=why)
        elif ends:
            results[n] = ends[0][1]


def run(
    plan: Chain | Comparison, *, cache_dir: Path, limits: Limits | None = None, jobs: int = 2,
    budget: Budget | None = None,
) -> list[CheckResult]:  # fmt: skip
    """Run a plan: each revision of the chain runs every needed state once, and each pair
    (baseline index, patched index) gets its CheckResult, in the plan's order."""
    from mmucore.build import BuildError
    from mmucore.jail import JailUnavailable
    from mmucore.validate import RefusedInput

    plan = plan.chain() if isinstance(plan, Comparison) else plan
    chk = plan.check
    builds: dict[int, Build] = {}
    seconds: dict[int, float] = {}
    failed: dict[int, CheckResult] = {}
    why = {k: chk.skip_reason(plan.revisions[k]) for p in plan.pairs for k in p}
    for k, w in why.items():
        if w:
            failed[k] = _empty(chk, "skipped", skipped=w)
    live = {
        k for i, j in plan.pairs if not (why[i] or why[j])
        and not chk.entry_mismatch(plan.revisions[i], plan.revisions[j]) for k in (i, j)
    }  # fmt: skip
    spec = prepare(plan, sorted(live))
    codes: dict[int, ModuleCode] = {}  # built revision -> the code its module runs
    for k in sorted(live):  # a revision only a skipped pair needs is not built
        if (twin := twin_of(chk, plan, spec, k, codes, cache_dir)) is not None:
            builds[k], seconds[k] = builds[twin], 0.0  # exactly the same module: one build
            spec.alias(k, twin)
            codes[k] = codes[twin]
            continue
        try:
            try:
                builds[k], seconds[k] = build_one(chk, spec.extractions[k], cache_dir)
            except (BuildError, RefusedInput):
                if spec.extractions[k] is plan.revisions[k]:
                    raise
                spec.unprobed(k, plan.revisions[k])  # the error is the tree's, not the probes'
                builds[k], seconds[k] = build_one(chk, plan.revisions[k], cache_dir)
        except (BuildError, RefusedInput) as e:
            failed[k] = _empty(chk, "build-error", error=_error_text(e))
        except JailUnavailable as e:  # ours, never the patch's: nothing built ran
            failed[k] = _empty(chk, "internal-error", error=_error_text(e))
        if k in builds and (plan.twins or not spec.off):
            codes[k] = module_code(chk, plan.revisions[k], spec.extractions[k], cache_dir)
    code_classes(spec, codes)
    results: dict[int, CheckResult] = {}
    _not_run(plan, results, failed)
    todo = [n for n in range(len(plan.pairs)) if n not in results]
    if todo:
        order = sorted({k for n in todo for k in plan.pairs[n]})
        at = {k: x for x, k in enumerate(order)}
        hi, fixed = states_to_run(chk, tuple(plan.revisions[k] for k in order))
        t0 = time.perf_counter()
        try:
            raws = run_states(
                chk, [builds[k] for k in order],
                [(at[plan.pairs[n][0]], at[plan.pairs[n][1]]) for n in todo],
                limits=limits, hi=hi, jobs=jobs, budget=budget, prune=spec.payload(order),
            )  # fmt: skip
        except JailUnavailable as e:
            bad = _empty(chk, "internal-error", error=_error_text(e))
            return [results.get(n, bad) for n in range(len(plan.pairs))]
        ran = time.perf_counter() - t0
        for n, raw in zip(todo, raws, strict=True):
            i, j = plan.pairs[n]
            t0 = time.perf_counter()
            before, after = plan.revisions[i], plan.revisions[j]
            res = gave_up_error(result_from_raw(chk, before, after, raw, hi, {}), raw)
            timings = {"build_base": seconds[i], "build_patched": seconds[j], "run": ran}
            timings["explain"] = time.perf_counter() - t0
            timings["states_per_second"] = hi / max(ran, 1e-9)
            timings["chain"] = len(order)
            results[n] = replace(
                res, timings=timings, fixed_dims=tuple(map(str, fixed)), stood_for=chk.size - hi,
                pruned=raw.pruned, pruning=spec.text(i, j, raw.pruned, hi),
            )  # fmt: skip
    return [results[n] for n in range(len(plan.pairs))]


def compare(
    chk: Check, base: Any, patched: Any, *, cache_dir: Path, limits: Limits | None = None,
    jobs: int = 2, budget: Budget | None = None,
) -> CheckResult:  # fmt: skip
    """One check between two extractions: run(Comparison(chk, base, patched))."""
    plan = Comparison(chk, base, patched)
    (res,) = run(plan, cache_dir=cache_dir, limits=limits, jobs=jobs, budget=budget)
    return res


def compare_each(
    base: Any, patched: Any, *, cache_dir: Path, names: Sequence[str] | None = None,
    limits: Limits | None = None,
) -> list[CheckResult]:  # fmt: skip
    """Every applicable check (or those named) between baseline and patched extractions."""
    return [
        compare(chk, base, patched, cache_dir=cache_dir, limits=limits) for chk in all_checks(names)
    ]
