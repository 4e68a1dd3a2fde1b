"""Running the checks of one comparison (a patch against its parent, or the series against
its base): which checks can change, builds ahead of time, memoised results.

A check whose code did not change is skipped: both builds run the same code for it, so
its verdict is `same` by construction. For the whole series, a check every patch left
exactly the same is skipped too: equality chains.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bot.memo import Memo, code_version
from bot.report import PatchReport, check_verdict

_CACHEABLE = ("same", "differs", "differs-outside-invariants", "skipped")
BUILD_JOBS = 2  # gcc is single-threaded: one compile per core


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


def prebuild(
    jobs: Sequence[Job], cache_dir: Path, memo: Memo, progress: Callable[[int, int], None]
) -> int:
    """Compile, two at a time, every build the coming check runs need (the build cache
    keeps them); errors are left for the check run to report. Returns the pairs built."""
    from checks.engine import build_pair
    from checks.space import all_checks

    todo, seen = [], set()
    for job in jobs:
        for chk in all_checks():
            key = _key(chk, job)
            if (
                key in seen
                or untouched(chk, job)
                or chk.applies(job.before)
                or chk.applies(job.after)
            ):
                continue
            seen.add(key)
            if memo.get(key) is None:
                todo.append((chk, job))

    def one(item: tuple[object, Job]) -> None:
        chk, job = item
        try:
            build_pair(chk, job.before, job.after, cache_dir)
        except Exception:  # noqa: BLE001, S110 - the check run reports it with context
            pass

    done = 0
    progress(0, len(todo))
    with ThreadPoolExecutor(max_workers=BUILD_JOBS) as pool:
        for _ in pool.map(one, todo):
            done += 1
            progress(done, len(todo))
    return len(todo)


def run_checks(
    job: Job, cache_dir: Path, memo: Memo, implied: Mapping[str, str] | None = None
) -> tuple[list, str, str]:
    """Every check of one comparison: (results, verdict, one-line reason). ``implied``:
    check name -> why its result is already known."""
    from checks.engine import run_check
    from checks.result import CheckResult
    from checks.space import all_checks

    results = []
    for chk in all_checks():
        why = (implied or {}).get(chk.name)
        if why is None and untouched(chk, job):
            why = "none of the code it runs changed"
        if why is not None:
            results.append(CheckResult(chk.name, "skipped", 0, 0, 0, (), skipped=why))
            continue
        key = _key(chk, job)
        r = memo.get(key)
        if r is None:
            r = run_check(chk, job.before, job.after, cache_dir=cache_dir)
            if r.verdict in _CACHEABLE:  # a build error or crash may be the machine's: rerun
                memo.put(key, r)
        results.append(r)
    by_verdict: dict[str, list[str]] = {}
    for r in results:
        if r.verdict != "skipped":
            by_verdict.setdefault(r.verdict, []).append(r.name)
    reason = "; ".join(f"{v}: {', '.join(n)}" for v, n in by_verdict.items())
    reason = reason or "the code the checks run is unchanged (comments or layout only)"
    return results, check_verdict(results), reason


def same_by_transitivity(reports: list[PatchReport]) -> dict[str, str]:
    """Checks for which every patch is exactly the same as its parent in every state (or
    runs unchanged code): equality chains, so the series equals the base for them."""
    names = {r.name for p in reports for r in p.checks}
    out = {}
    for name in names:
        exact = True
        for p in reports:
            if p.verdict == "out-of-scope":
                continue  # no extracted piece changed: the same code
            r = next((r for r in p.checks if r.name == name), None)
            skipped = r is not None and r.verdict == "skipped" and r.states == 0
            same = r is not None and r.verdict == "same" and not r.groups and r.crash is None
            exact = exact and (skipped or same)
        if exact:
            out[name] = "every patch is exactly the same as its parent for this check"
    return out
