"""Running the checks of one comparison (a patch against its parent, or the series against
its base): which checks can change, builds ahead of time, memoised results.

A check whose code did not change is skipped: both builds run the same code for it, so
its verdict is `same` by construction. For the whole series, a check every patch left
exactly the same is skipped too: equality chains.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from bot.builds import BUILD_JOBS, Prebuild
from bot.memo import Memo
from bot.report import PatchReport, Uncovered, check_verdict, uncovered_lines
from checks import reach
from checks.result import CheckResult
from checks.space import Check
from checks.verdict import Verdict, internal_error_reason, worst
from mmuci.errors import MmuCiError
from mmuci.owncode import code_version

_CACHEABLE = (Verdict.SAME, Verdict.DIFFERS, Verdict.DIFFERS_OUTSIDE, Verdict.SKIPPED)
_RERUN = (Verdict.BUILD_ERROR, Verdict.INTERNAL_ERROR)  # never stands for the series' result
UNCHANGED = "none of the code it runs changed"


if TYPE_CHECKING:
    from checks.plan import Chain
    from mmucore.extract import Extraction


@dataclass(frozen=True)
class Job:
    """Two extractions to compare, and the pieces whose code differs between them."""

    before: Extraction
    after: Extraction
    changed: tuple[str, ...]  # "kind name", comments and layout ignored


def untouched(chk: Check, job: Job) -> bool:
    """True when no changed piece of ``job`` is reachable from the check's entry functions
    (checks/reach.py), so both builds run the same code for it."""
    return reach.untouched(chk, job.before, job.after, job.changed)


def not_covered(
    job: Job, results: Sequence[CheckResult], not_run: Mapping[str, str]
) -> tuple[Uncovered, ...]:
    """The changed pieces of ``job`` that none of the checks that ran executes.

    ``not_run``: check name -> why it did not run (skipped because it does not apply, or
    not selected); every other check in ``results`` ran (or stands for a run: unchanged
    code, a result known from the patches). A function or macro is covered by a check
    that ran and reaches it; a type, global or feature change by any check that ran."""
    from checks.space import all_checks

    if not job.changed:
        return ()
    ran = [r.name for r in results if r.name not in not_run]
    checks = all_checks()
    reached = {
        c.name: reach.closure(job.before, c.entry) | reach.closure(job.after, c.entry)
        for c in checks
    }
    out = []
    for piece in job.changed:
        name = piece.partition(" ")[2]
        if not reach.reaches_all(job.before, job.after, piece):
            if any(name in reached[c] for c in ran):
                continue
            would = tuple(c for c, names in reached.items() if name in names)
        elif ran:
            continue  # a type, global or feature reaches every check that ran
        else:
            would = ()
        if would:  # each of them did not run: not_run says why
            why = [f"run only by {', '.join(would)}"]
            why += [f"{c} skipped: {not_run[c]}" for c in would if c in not_run]
        else:  # no check reaches it here: name the checks that could not even look
            why = ["no check that ran reaches it"]
            why += [f"{c} skipped: {w}" for c, w in _not_applying(checks, job, not_run).items()]
        out.append(Uncovered(piece, would, "; ".join(why)))
    return tuple(out)


def _not_applying(checks: Sequence[Check], job: Job, not_run: Mapping[str, str]) -> dict[str, str]:
    """Checks that did not run or do not apply to either end of ``job``, with why."""
    out = dict(not_run)
    for c in checks:
        if c.name not in out:
            for label, ex in (("baseline", job.before), ("patched", job.after)):
                why = c.skip_reason(ex)
                if why:
                    out[c.name] = f"{label}: {why}"
                    break
    return out


@dataclass(frozen=True)
class Outcome:
    """Every check of one comparison, its verdict and a one-line reason."""

    results: list[CheckResult]
    verdict: Verdict
    reason: str
    not_covered: tuple[Uncovered, ...] = ()


def _key(chk: Check, job: Job, prune: bool = True) -> tuple[str, ...]:
    """A pair's memo key; unpruned results (`checks.prune = false`) are kept apart: they
    are the same verdicts, but their reports say nothing was pruned."""
    version = code_version("mmuci", "mmucore", "checks")
    key = ("check", chk.name, job.before.key, job.after.key, version)
    return key if prune else (*key, "unpruned")


def universe(jobs: Sequence[Job]) -> tuple[Extraction, ...]:
    """The series' revisions in order (each job's ends, once): the chains' universe, so a
    revision is built with the same probes (checks/prune.py) in every chain it is in."""
    out: dict[str, Extraction] = {}
    for j in jobs:
        for e in (j.before, j.after):
            out.setdefault(e.key, e)
    return tuple(out.values())


def prebuild(
    jobs: Sequence[Job], cache_dir: Path, memo: Memo, progress: Callable[[int, int], None],
    prune: bool = True,
) -> Prebuild:  # fmt: skip
    """Start compiling, one process per core, every build the coming check runs need (the
    build cache keeps them); errors are left for the check run to report. A revision is
    built once, whatever comparisons and checks it is in: its module serves them all.
    In the order the chains need them (the checks' order), so the first chain can start
    while later revisions still build. Unpruned (``prune`` false), revisions are built
    without probes, as the chains then run them; either way a revision whose module would
    be exactly an earlier one's is not built (bot/builds.py: twins)."""
    from checks.prune import probed
    from checks.space import all_checks

    uni = universe(jobs)
    todo: list[tuple[str, Extraction]] = []
    seen: set[str] = set()
    for chk in all_checks():
        for job in jobs:
            if untouched(chk, job) or chk.skip_reason(job.before) or chk.skip_reason(job.after):
                continue
            if memo.get(_key(chk, job, prune)) is not None:
                continue
            for ex in (job.before, job.after):
                if ex.key not in seen:
                    seen.add(ex.key)
                    todo.append((chk.name, ex))
    if not prune:
        return Prebuild(todo, cache_dir, progress, lambda ex: ex, twins=True)
    return Prebuild(todo, cache_dir, progress, lambda ex: probed(ex, uni).extraction, twins=True)


def run_chains(
    jobs: Sequence[Job], whole: Job | None, cache_dir: Path, memo: Memo,
    builds: Prebuild | None = None, prune: bool = True,
) -> dict[tuple[str, ...], CheckResult]:  # fmt: skip
    """Per check, run the revisions whose code for it changed as one chain (each state
    once per revision) and compare each patch's pair, and the whole series' first and last
    of them; memoised pairs are left out. Returns CheckResults by memo key, for run_checks.

    ``whole`` (base against last) is given only when every patch is a job here or out of
    scope: the revisions outside a check's chain then run the same code for it, so the
    chain's ends stand for base and last.

    The first chain starts at once (beside the builds); once ``builds`` has made every
    module, the others run two at a time: a chain's children do not keep both cores busy
    to its end (its halves of the states end apart), the next chain fills the gap. When a
    build failed the chains run one after the other (a chain that compiles in this
    process redirects its stdout, which two threads at once must not)."""
    from checks.space import all_checks

    plans: list[tuple[Chain, list[tuple[str, ...]]]] = []
    for chk in all_checks():
        plan, keys = chain_plan(chk, jobs, whole, memo, {}, prune)
        if plan is not None:  # a single pair runs as before, in run_checks
            plans.append((replace(plan, universe=universe(jobs)), keys))
    done: dict[tuple[str, ...], CheckResult] = {}
    if not plans:
        return done
    with ThreadPoolExecutor(max_workers=BUILD_JOBS) as pool:
        first = pool.submit(_run_chain, *plans[0], cache_dir, memo)
        together = builds is not None and builds.wait()
        if together:
            rest = [pool.submit(_run_chain, p, k, cache_dir, memo) for p, k in plans[1:]]
            for f in [first, *rest]:
                done.update(f.result())
        else:
            done.update(first.result())
            for p, k in plans[1:]:
                done.update(_run_chain(p, k, cache_dir, memo))
    return done


def _run_chain(
    plan: Chain, keys: list[tuple[str, ...]], cache_dir: Path, memo: Memo
) -> dict[tuple[str, ...], CheckResult]:
    """One chain's results by memo key; the cacheable ones into the memo."""
    from checks import engine

    out = {}
    for key, r in zip(keys, engine.run(plan, cache_dir=cache_dir), strict=True):
        out[key] = r
        if r.verdict in _CACHEABLE:
            memo.put(key, r)
    return out


def chain_plan(
    chk: Check, jobs: Sequence[Job], whole: Job | None, memo: Memo,
    done: Mapping[tuple[str, ...], CheckResult], prune: bool = True,
) -> tuple[Chain | None, list[tuple[str, ...]]]:  # fmt: skip
    """The chain of ``chk`` over the jobs whose code for it changed (and the whole series'
    ends when ``whole`` is given), without memoised pairs; (None, []) for fewer than two
    pairs. With the memo key of each pair, in the plan's order."""
    from checks.plan import Chain

    rel = [j for j in jobs if not untouched(chk, j)]
    wanted = []  # (before, after, memo key)
    for j in rel:
        key = _key(chk, j, prune)
        if key not in done and memo.get(key) is None:
            wanted.append((j.before, j.after, key))
    ends = [e for j in rel for e in (j.before, j.after)]
    if whole is not None and len(rel) >= 2 and not any(chk.skip_reason(e) for e in ends):
        key = _key(chk, whole, prune)
        if memo.get(key) is None:
            wanted.append((rel[0].before, rel[-1].after, key))
    if len(wanted) < 2:
        return None, []
    nodes: list[Extraction] = []
    at: dict[str, int] = {}
    for b, a, _ in wanted:
        for e in (b, a):
            if e.key not in at:
                at[e.key] = len(nodes)
                nodes.append(e)
    pairs = tuple((at[b.key], at[a.key]) for b, a, _ in wanted)
    return Chain(chk, tuple(nodes), pairs, prune), [k for _, _, k in wanted]


def run_checks(
    job: Job,
    cache_dir: Path,
    memo: Memo,
    known: Mapping[str, CheckResult | str] | None = None,
    done: Mapping[tuple[str, ...], CheckResult] | None = None,
    universe: tuple[Extraction, ...] = (),
    prune: bool = True,
) -> Outcome:
    """Every check of one comparison. ``known``: check name -> a result already known (a
    CheckResult), or why it is `same` (a str); ``done``: results run_chains made, by memo
    key. A changed piece no check that ran executes makes the verdict `not-covered`."""
    from checks.space import all_checks

    results = []
    not_run: dict[str, str] = {}  # checks skipped because they do not apply
    for chk in all_checks():
        why = (known or {}).get(chk.name)
        if isinstance(why, CheckResult):
            results.append(why)
            if why.verdict == Verdict.SKIPPED and why.skipped != UNCHANGED:
                not_run[chk.name] = str(why.skipped)
            continue
        if why is None and untouched(chk, job):
            why = UNCHANGED
        if why is not None:
            skip = CheckResult(chk.name, Verdict.SKIPPED, 0, 0, 0, (), skipped=str(why))
            results.append(skip)
            continue
        key = _key(chk, job, prune)
        r = (done or {}).get(key) or memo.get(key)
        if r is None:
            r = run_one(chk, job.before, job.after, cache_dir, universe, prune)
            if r.verdict in _CACHEABLE:  # a build error or crash may be the machine's: rerun
                memo.put(key, r)
        if r.verdict == Verdict.SKIPPED:
            not_run[chk.name] = str(r.skipped)
        results.append(r)
    uncovered = not_covered(job, results, not_run)
    verdict = outcome_verdict(results, uncovered)
    return Outcome(results, verdict, reason(results, uncovered, job.changed), uncovered)


def run_one(
    chk: Check, before: Extraction, after: Extraction, cache_dir: Path,
    universe: tuple[Extraction, ...] = (), prune: bool = True,
) -> CheckResult:  # fmt: skip
    """One check between two extractions (of the series ``universe``, checks/prune.py); a
    failure of mmu-ci itself (not a MmuCiError about the input) is this check's
    `internal-error`, and the other checks still run."""
    from checks import engine
    from checks.plan import Comparison

    try:
        plan = Comparison(chk, before, after, prune=prune, universe=universe)
        (res,) = engine.run(plan, cache_dir=cache_dir)
        return res
    except MmuCiError:
        raise
    except Exception as e:  # noqa: BLE001 - ours, not the patch's: say so
        why = internal_error_reason(e, f"running {chk.name}")
        return CheckResult(chk.name, Verdict.INTERNAL_ERROR, 0, 0, 0, (), error=why)


def outcome_verdict(results: Sequence[CheckResult], uncovered: Sequence[Uncovered]) -> Verdict:
    """The checks' worst verdict, or `not-covered` when it is worse and something is."""
    return worst([check_verdict(list(results)), *([Verdict.NOT_COVERED] if uncovered else [])])


def reason(
    results: Sequence[CheckResult], uncovered: Sequence[Uncovered], changed: Sequence[str]
) -> str:
    """One line: what is not covered, then the checks by verdict (benign ones named)."""
    by_verdict: dict[str, list[str]] = {}
    if uncovered:
        by_verdict[Verdict.NOT_COVERED] = uncovered_lines(uncovered)
    for r in results:
        if r.verdict != Verdict.SKIPPED:
            # differences a benign normalisation removed are named, not hidden
            benign = sorted({g.benign for g in r.groups if g.benign})
            label = f"{r.name} (up to: {', '.join(benign)})" if benign else r.name
            by_verdict.setdefault(r.verdict, []).append(label)
    text = "; ".join(f"{v}: {', '.join(n)}" for v, n in by_verdict.items())
    if text:
        return text
    if not changed:
        return "the code the checks run is unchanged (comments or layout only)"
    return "no check ran: " + "; ".join(f"{r.name}: {r.skipped}" for r in results)


def whole_series_known(
    reports: list[PatchReport],
) -> tuple[dict[str, CheckResult | str], list[str]]:
    """What the patches already tell about the whole series, per check, and notes.

    Every patch exactly `same` for a check (or not changing its code): equality chains,
    the series is `same`. Only one patch changing the code a check runs: base and final
    run the code of that patch's parent and of that patch, so its result is the series'.
    """
    names = sorted({r.name for p in reports for r in p.checks})
    known: dict[str, CheckResult | str] = {}
    notes: list[str] = []
    for name in names:
        ran: list[tuple[int, CheckResult | None]] = []
        exact = True
        for p in reports:
            if p.verdict == Verdict.OUT_OF_SCOPE:
                continue  # no extracted piece changed: the same code
            r = next((r for r in p.checks if r.name == name), None)
            if r is None:
                exact = False
                ran.append((p.index, None))
                continue
            if r.verdict == "skipped" and r.skipped == UNCHANGED:
                continue
            ran.append((p.index, r))
            exact = exact and r.verdict == Verdict.SAME and not r.groups and r.crash is None
        if exact:
            known[name] = "every patch is exactly the same as its parent for this check"
        elif len(ran) == 1 and ran[0][1] is not None and ran[0][1].verdict not in _RERUN:
            known[name] = ran[0][1]
            notes.append(f"{name}: only patch {ran[0][0]} changes its code, its result")
    return known, notes
