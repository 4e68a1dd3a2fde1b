"""Running the checks of one comparison (a patch against its parent, or the series against
its base): which checks can change, builds ahead of time, memoised results.

A check whose code did not change is skipped: both builds run the same code for it, so
its verdict is `same` by construction. For the whole series, a check every patch left
exactly the same is skipped too: equality chains.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bot.memo import Memo, code_version
from bot.report import PatchReport, check_verdict
from mmucore.proc import set_pdeathsig

_CACHEABLE = ("same", "differs", "differs-outside-invariants", "skipped")
BUILD_JOBS = 2  # gcc is single-threaded: one compile per core
UNCHANGED = "none of the code it runs changed"


@dataclass(frozen=True)
class Job:
    """Two extractions to compare, and the pieces whose code differs between them."""

    before: object
    after: object
    changed: tuple[str, ...]  # "kind name", comments and layout ignored


def _closure(ex: object, entries: tuple[str, ...]) -> set[str]:
    """Every function and macro the entry functions reach in one extraction."""
    functions = ex.functions  # type: ignore[attr-defined]
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in functions:
            todo.extend(functions[name].calls)
    return seen


def untouched(chk: object, job: Job) -> bool:
    """True when no changed piece is reachable from the check's entry functions, so both
    builds run the same code for it. Changed types or globals reach every check."""
    names = []
    for piece in job.changed:
        kind, _, name = piece.partition(" ")
        if kind not in ("function", "macro"):
            return False
        names.append(name)
    entry = chk.entry  # type: ignore[attr-defined]
    reach = _closure(job.before, entry) | _closure(job.after, entry)
    return not reach.intersection(names)


def _key(chk: object, job: Job) -> tuple[str, ...]:
    version = code_version(("mmucore", "checks"))
    return ("check", chk.name, job.before.key, job.after.key, version)  # type: ignore[attr-defined]


def _build_one(item: tuple[str, object, Path]) -> None:
    """In a worker process: build the module of one revision a check runs in (it holds
    the drivers of every check that applies to the revision)."""
    from checks.engine import build_one
    from checks.space import all_checks

    name, ex, cache_dir = item
    try:
        build_one(all_checks([name])[0], ex, cache_dir)
    except Exception:  # noqa: BLE001, S110 - the check run reports it with context
        pass


def prebuild(
    jobs: Sequence[Job], cache_dir: Path, memo: Memo, progress: Callable[[int, int], None]
) -> int:
    """Compile, one process per core, every build the coming check runs need (the build
    cache keeps them); errors are left for the check run to report. A revision is built
    once, whatever comparisons and checks it is in: its module serves them all.
    Returns the builds."""
    from checks.space import all_checks

    todo, seen = [], set()
    for job in jobs:
        for chk in all_checks():
            if untouched(chk, job) or chk.applies(job.before) or chk.applies(job.after):
                continue
            if memo.get(_key(chk, job)) is not None:
                continue
            for ex in (job.before, job.after):
                if ex.key not in seen:  # type: ignore[attr-defined]
                    seen.add(ex.key)  # type: ignore[attr-defined]
                    todo.append((chk.name, ex, cache_dir))
    progress(0, len(todo))
    if len(todo) < 2:
        return len(todo)  # the check run builds a single one as fast
    # Processes, not threads: a build redirects sys.stdout while cffi talks. Each worker
    # dies with the bot (a killed bot must not leave workers holding its stdout open).
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(
        max_workers=BUILD_JOBS, mp_context=ctx, initializer=set_pdeathsig
    ) as pool:
        for done, _ in enumerate(pool.map(_build_one, todo), 1):
            progress(done, len(todo))
    return len(todo)


def run_chains(
    jobs: Sequence[Job], whole: Job | None, cache_dir: Path, memo: Memo
) -> dict[tuple[str, ...], object]:
    """Per check, run the revisions whose code for it changed as one chain (each state
    once per revision) and compare each patch's pair, and the whole series' first and last
    of them; memoised pairs are left out. Returns CheckResults by memo key, for run_checks.

    ``whole`` (base against last) is given only when every patch is a job here or out of
    scope: the revisions outside a check's chain then run the same code for it, so the
    chain's ends stand for base and last."""
    from checks.engine import run_chain
    from checks.space import all_checks

    done: dict[tuple[str, ...], object] = {}
    for chk in all_checks():
        rel = [j for j in jobs if not untouched(chk, j)]
        wanted = []  # (before, after, memo key)
        for j in rel:
            key = _key(chk, j)
            if key not in done and memo.get(key) is None:
                wanted.append((j.before, j.after, key))
        ends = [e for j in rel for e in (j.before, j.after)]
        if whole is not None and len(rel) >= 2 and not any(chk.applies(e) for e in ends):
            key = _key(chk, whole)
            if memo.get(key) is None:
                wanted.append((rel[0].before, rel[-1].after, key))
        if len(wanted) < 2:
            continue  # a single pair runs as before, in run_checks
        nodes: list[object] = []
        at: dict[str, int] = {}
        for b, a, _ in wanted:
            for e in (b, a):
                if e.key not in at:  # type: ignore[attr-defined]
                    at[e.key] = len(nodes)  # type: ignore[attr-defined]
                    nodes.append(e)
        pairs = [(at[b.key], at[a.key]) for b, a, _ in wanted]  # type: ignore[attr-defined]
        results = run_chain(chk, nodes, pairs, cache_dir=cache_dir)
        for (_, _, key), r in zip(wanted, results, strict=True):
            done[key] = r
            if r.verdict in _CACHEABLE:
                memo.put(key, r)
    return done


def run_checks(
    job: Job,
    cache_dir: Path,
    memo: Memo,
    known: Mapping[str, object] | None = None,
    done: Mapping[tuple[str, ...], object] | None = None,
) -> tuple[list, str, str]:
    """Every check of one comparison: (results, verdict, one-line reason). ``known``:
    check name -> a result already known (a CheckResult), or why it is `same` (a str);
    ``done``: results run_chains made, by memo key."""
    from checks.engine import run_check
    from checks.result import CheckResult
    from checks.space import all_checks

    results = []
    for chk in all_checks():
        why = (known or {}).get(chk.name)
        if isinstance(why, CheckResult):
            results.append(why)
            continue
        if why is None and untouched(chk, job):
            why = UNCHANGED
        if why is not None:
            results.append(CheckResult(chk.name, "skipped", 0, 0, 0, (), skipped=str(why)))
            continue
        key = _key(chk, job)
        r = (done or {}).get(key) or memo.get(key)
        if r is None:
            r = run_check(chk, job.before, job.after, cache_dir=cache_dir)
            if r.verdict in _CACHEABLE:  # a build error or crash may be the machine's: rerun
                memo.put(key, r)
        results.append(r)
    by_verdict: dict[str, list[str]] = {}
    for r in results:
        if r.verdict != "skipped":
            # differences a benign normalisation removed are named, not hidden
            benign = sorted({g.benign for g in r.groups if g.benign})
            label = f"{r.name} (up to: {', '.join(benign)})" if benign else r.name
            by_verdict.setdefault(r.verdict, []).append(label)
    reason = "; ".join(f"{v}: {', '.join(n)}" for v, n in by_verdict.items())
    reason = reason or "the code the checks run is unchanged (comments or layout only)"
    return results, check_verdict(results), reason


def whole_series_known(reports: list[PatchReport]) -> tuple[dict[str, object], list[str]]:
    """What the patches already tell about the whole series, per check, and notes.

    Every patch exactly `same` for a check (or not changing its code): equality chains,
    the series is `same`. Only one patch changing the code a check runs: base and final
    run the code of that patch's parent and of that patch, so its result is the series'.
    """
    names = sorted({r.name for p in reports for r in p.checks})
    known: dict[str, object] = {}
    notes = []
    for name in names:
        ran, exact = [], True
        for p in reports:
            if p.verdict == "out-of-scope":
                continue  # no extracted piece changed: the same code
            r = next((r for r in p.checks if r.name == name), None)
            if r is None:
                exact = False
                ran.append((p.index, None))
                continue
            if r.verdict == "skipped" and r.skipped == UNCHANGED:
                continue
            ran.append((p.index, r))
            exact = exact and r.verdict == "same" and not r.groups and r.crash is None
        if exact:
            known[name] = "every patch is exactly the same as its parent for this check"
        elif len(ran) == 1 and ran[0][1] is not None and ran[0][1].verdict != "build-error":
            known[name] = ran[0][1]
            notes.append(f"{name}: only patch {ran[0][0]} changes its code, its result")
    return known, notes
