"""Orchestration: series reference -> Report.

fetch (intake) -> base (tree) -> apply per patch (tree) -> scope -> extract -> checks
(the engine builds) -> report. Each patch is checked against the revision before it,
and the whole series against the base. Every failure after the fetch becomes a verdict
with a reason: one series never takes the bot down.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import intake, runs, tree
from bot.builds import BUILD_JOBS
from bot.config import Config
from bot.mbox import Limits
from bot.memo import Memo
from bot.report import PatchReport, Report, reproduce_command, worst
from bot.series import Series
from checks.verdict import Verdict, internal_error_reason
from mmuci.errors import MmuCiError
from mmuci.owncode import code_version
from mmucore import scope

if TYPE_CHECKING:
    from checks.result import CheckResult
    from mmucore.extract import Extraction

# progress(stage, done, total): stages "fetch", "apply", "build", "check".
Progress = Callable[[str, int, int], None]


def _noop(stage: str, done: int, total: int) -> None:
    pass


class _Extractions:
    """Extractions by revision: each revision is extracted at most once, and a commit
    already extracted by the same extractor code comes from the memo."""

    def __init__(self, repo: Path, memo: Memo) -> None:
        self.repo = repo
        self.memo = memo
        self.done: dict[str, Extraction] = {}
        self.seconds = 0.0

    def _key(self, rev: str) -> tuple[str, ...]:
        return ("extract", str(self.repo), rev, code_version("mmuci", "mmucore"))

    def get(self, rev: str) -> Extraction:
        if rev not in self.done:
            from mmucore.extract import extract

            t = time.perf_counter()
            self.done[rev] = self.memo.get_or_make(self._key(rev), lambda: extract(self.repo, rev))
            self.seconds += time.perf_counter() - t
        return self.done[rev]

    def prefetch(self, revs: Sequence[Prefetch], index: scope.ModelFilesCache) -> None:
        """Extract the revisions of ``revs`` that neither this run nor the memo has, one
        process per core; each worker also parses the files its revision's patch touches
        into the scope cache (``index.extents``), so the scope stage finds them parsed. A
        revision that fails is left for get() to extract again and report."""
        t = time.perf_counter()
        parse: dict[str, tuple[str, ...]] = {}  # each revision once, with every file to parse
        for item in revs:
            parse[item.rev] = tuple(dict.fromkeys((*parse.get(item.rev, ()), *item.parse)))
        todo = []
        for rev, files in parse.items():
            if rev not in self.done:
                value = self.memo.get(self._key(rev))
                if value is None:
                    todo.append(Prefetch(rev, files))
                else:
                    self.done[rev] = value
        if len(todo) >= 2:
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=BUILD_JOBS, mp_context=ctx) as pool:
                items = [(self.repo, item, index) for item in todo]
                for item, value in zip(todo, pool.map(_extract_or_none, items), strict=True):
                    if value is not None:
                        self.done[item.rev] = value
                        self.memo.put(self._key(item.rev), value)
        self.seconds += time.perf_counter() - t


@dataclasses.dataclass(frozen=True)
class Prefetch:
    """A revision to extract ahead of the scope stage, and the files whose definitions
    the scope stage will look up in it (the files its patch touches)."""

    rev: str
    parse: tuple[str, ...] = ()


def _extract_or_none(item: tuple[Path, Prefetch, scope.ModelFilesCache]) -> Extraction | None:
    """In a worker process: one revision's extraction, or None when it fails; then the
    definition extents of the files its patch touches, into the scope cache."""
    from mmucore.extract import extract

    repo, want, index = item
    try:
        value = extract(repo, want.rev)
    except Exception:  # noqa: BLE001 - get() extracts it again and reports the failure
        return None
    try:
        for path, text in scope.file_texts(repo, want.rev, want.parse).items():
            index.extents(path, text)
    except Exception:  # noqa: BLE001, S110 - the scope stage parses it again and reports
        pass
    return value


def _failure_reason(e: BaseException, stage: str) -> tuple[Verdict, str]:
    """(verdict, one-line reason) for an exception raised while extracting or checking:
    the input's fault (it does not build, is refused, cannot be extracted) or ours."""
    name = type(e).__name__
    first = (str(e).strip().splitlines() or [name])[0]
    if name in ("BuildError", "RefusedInput"):
        return Verdict.BUILD_ERROR, f"{name}: {first}"
    if isinstance(e, MmuCiError):
        return Verdict.BUILD_ERROR, first
    # A bug of ours must not lose the series, nor be blamed on the patch.
    return Verdict.INTERNAL_ERROR, internal_error_reason(e, stage)


def _scope_patch(
    pr: PatchReport, diff: str, ex: _Extractions, index: scope.ModelFilesCache, base_commit: str
) -> runs.Job | None:
    """Decide the scope of one applied patch; the job of checks to run, if in scope."""
    t0 = time.perf_counter()
    assert pr.parent and pr.revision
    known = index.get(base_commit)
    quick = scope.quick(diff, known) if known is not None else None
    if quick is not None:
        pr.scope, pr.verdict, pr.reason = quick.to_json(), Verdict.OUT_OF_SCOPE, quick.reason
        pr.timings["scope"] = time.perf_counter() - t0
        return None
    try:
        before = ex.get(pr.parent)
        index.put(base_commit, scope.model_files(ex.get(base_commit)))
        sc = scope.quick(diff, scope.model_files(before))
        after = before
        if sc is None:
            after = ex.get(pr.revision)
            texts = scope.file_texts(ex.repo, pr.revision, scope.files_touched(diff))
            sc = scope.decide(diff, before, after, texts, index)
    except Exception as e:  # noqa: BLE001 - any failure is this patch's verdict
        pr.verdict, pr.reason = _failure_reason(e, "extracting or scoping the patch")
        pr.timings["scope"] = time.perf_counter() - t0
        return None
    pr.scope = sc.to_json()
    pr.timings["scope"] = time.perf_counter() - t0
    if not sc.in_scope:
        pr.verdict, pr.reason = Verdict.OUT_OF_SCOPE, sc.reason
        return None
    return runs.Job(before, after, scope.changed_pieces(before, after, code_only=True))


def _set_outcome(pr: PatchReport, out: runs.Outcome) -> None:
    pr.checks, pr.verdict, pr.reason = out.results, out.verdict, out.reason
    pr.not_covered = out.not_covered


Done = dict[tuple[str, ...], "CheckResult"]  # results the chains made, by memo key


def _check_job(
    pr: PatchReport, job: runs.Job, cache_dir: Path, memo: Memo, done: Done,
    universe: tuple[Extraction, ...] = (), prune: bool = True,
) -> None:  # fmt: skip
    """Run the checks of one in-scope patch and set its verdict."""
    t = time.perf_counter()
    try:
        out = runs.run_checks(job, cache_dir, memo, done=done, universe=universe, prune=prune)
        _set_outcome(pr, out)
    except Exception as e:  # noqa: BLE001 - any failure is this patch's verdict
        pr.verdict, pr.reason = _failure_reason(e, "running the checks")
    pr.timings["check"] = time.perf_counter() - t


def _to_extract(
    series: Series, by_index: dict[int, tree.AppliedPatch], index: scope.ModelFilesCache,
    base: str,
) -> list[Prefetch]:  # fmt: skip
    """The revisions the scope stage will extract: both ends of every applied patch that
    touches a file the base's model reads (an out-of-scope series needs none but the base).
    When those files are not known yet, the base is among them and every file the
    extractor may read stands for them (what it reads is a subset), so the base is
    extracted beside the others rather than before them."""
    from mmucore.manifest import default

    known = index.get(base)
    revs = [] if known is not None or not by_index else [Prefetch(base)]
    for p in series.patches:
        a = by_index.get(p.index)
        if a is not None and scope.quick(p.diff, known or default().model_files) is None:
            revs += [Prefetch(a.parent), Prefetch(a.revision, scope.files_touched(p.diff))]
    return revs


def check_series(
    series: Series,
    cfg: Config,
    *,
    tree_name: str | None = None,
    progress: Progress = _noop,
    timings: dict[str, float] | None = None,
) -> Report:
    """Run a fetched series through base, apply, scope, extract/build and checks."""
    timings = dict(timings or {})
    t0 = time.perf_counter()
    base = tree.select_base(series, tree.candidate_trees(cfg, tree_name))
    timings["base"] = time.perf_counter() - t0
    progress("apply", 0, len(series.patches))
    t = time.perf_counter()
    applied = tree.apply_series(series, base, cfg.data_dir)
    timings["apply"] = time.perf_counter() - t
    progress("apply", len(applied.patches), len(series.patches))

    cache_dir = cfg.data_dir / "build-cache"
    ex = _Extractions(applied.repo, Memo(cfg.data_dir / "memo"))
    index = scope.ModelFilesCache(cfg.data_dir)
    by_index = {a.index: a for a in applied.patches}
    reports: list[PatchReport] = []
    t = time.perf_counter()
    ex.prefetch(_to_extract(series, by_index, index, base.commit), index)
    jobs: list[tuple[PatchReport, runs.Job]] = []
    for p in series.patches:
        a = by_index.get(p.index)
        pr = PatchReport(p.index, p.subject, p.msgid, Verdict.APPLY_ERROR, "", p.nfc_claim)
        reports.append(pr)
        if a is None:
            f = applied.failure
            if f is not None and f.index == p.index:
                pr.reason = f.reason()
                pr.apply_error = {"message": f.message, "file": f.file, "hunk": f.hunk}
            else:
                pr.reason = f"not applied: patch {f.index if f else '?'} did not apply"
            continue
        pr.parent, pr.revision = a.parent, a.revision
        job = _scope_patch(pr, p.diff, ex, index, base.commit)
        if job is not None:
            jobs.append((pr, job))
    timings["scope"] = time.perf_counter() - t
    t = time.perf_counter()
    whole_job = _whole_job(reports, jobs, applied.failure, base.commit, ex)
    # the builds run beside the checks: the first chain starts once its own are built
    prune = bool(cfg.get("checks", "prune"))
    todo = [j for _, j in jobs]
    builds = runs.prebuild(
        todo, cache_dir, ex.memo, lambda d, n: progress("build", d, n), prune=prune
    )
    try:
        try:
            done = runs.run_chains(todo, whole_job, cache_dir, ex.memo, builds, prune=prune)
        except Exception:  # noqa: BLE001 - the pairwise runs below report it per patch
            done = {}
        uni = runs.universe(todo)
        for n, (pr, job) in enumerate(jobs, 1):
            _check_job(pr, job, cache_dir, ex.memo, done, uni, prune)
            progress("check", n, len(jobs))
        whole = _whole_series(reports, base.commit, ex, cache_dir, done, uni, prune)
    finally:
        builds.wait()
    # build and check overlap: "build" is the wall time until the last build was done
    timings["check"] = time.perf_counter() - t
    timings["build"] = builds.seconds
    timings["extract"] = ex.seconds

    verdict = worst([*(p.verdict for p in reports), *([whole.verdict] if whole else [])])
    return Report(
        series=_series_json(series),
        base=base.to_json(),
        patches=reports,
        verdict=verdict,
        reason=_summary(reports, applied.failure, whole),
        whole=whole,
        timings=timings,
        reproduce=reproduce_command(series.msgid or series.source, series.lore_url, tree_name),
    )


def _whole_job(
    reports: list[PatchReport],
    jobs: list[tuple[PatchReport, runs.Job]],
    failure: object,
    base_commit: str,
    ex: _Extractions,
) -> runs.Job | None:
    """The whole series' comparison for the chains: only when every patch applied and is
    either a job or out of scope (then a check's chain ends stand for base and last)."""
    in_jobs = {id(pr) for pr, _ in jobs}
    if failure is not None or len(jobs) < 2:
        return None
    if any(id(p) not in in_jobs and p.verdict != Verdict.OUT_OF_SCOPE for p in reports):
        return None
    last = reports[-1].revision
    try:
        assert last is not None
        before, after = ex.get(base_commit), ex.get(last)
        return runs.Job(before, after, scope.changed_pieces(before, after, code_only=True))
    except Exception:  # noqa: BLE001 - _whole_series reports it
        return None


def _whole_series(
    reports: list[PatchReport], base_commit: str, ex: _Extractions, cache_dir: Path, done: Done,
    universe: tuple[Extraction, ...] = (), prune: bool = True,
) -> PatchReport | None:  # fmt: skip
    """The whole series against the base, when more than one patch reached the model."""
    failed = (Verdict.BUILD_ERROR, Verdict.INTERNAL_ERROR, Verdict.CRASH)
    checked = [p for p in reports if p.checks or p.verdict in failed]
    if len(checked) < 2 or any(p.verdict == Verdict.APPLY_ERROR for p in reports):
        return None
    last = reports[-1].revision
    assert last is not None
    pr = PatchReport(0, "whole series", "", Verdict.SAME, "", False, base_commit, last)
    t = time.perf_counter()
    try:
        before, after = ex.get(base_commit), ex.get(last)
        job = runs.Job(before, after, scope.changed_pieces(before, after, code_only=True))
        known, notes = runs.whole_series_known(reports)
        _set_outcome(pr, runs.run_checks(job, cache_dir, ex.memo, known, done, universe, prune))
        pr.reason = "; ".join([pr.reason, *notes])
    except Exception as e:  # noqa: BLE001
        pr.verdict, pr.reason = _failure_reason(e, "checking the whole series")
    pr.timings["check"] = time.perf_counter() - t
    return pr


def _summary(reports: list[PatchReport], failure: object, whole: PatchReport | None) -> str:
    counts: dict[str, int] = {}
    for p in reports:
        counts[p.verdict] = counts.get(p.verdict, 0) + 1
    parts = [f"{n} {v}" for v, n in sorted(counts.items())]
    text = f"{len(reports)} patch(es): " + ", ".join(parts)
    if failure is not None:
        text += f"; {failure.reason()}"  # type: ignore[attr-defined]
    contradicted = [str(p.index) for p in reports if p.nfc_contradicted]
    if contradicted:
        text += f"; patch {', '.join(contradicted)} claims no functional change but differs"
    if whole is not None:
        text += f"; whole series: {whole.verdict}"
    return text


def _series_json(s: Series) -> dict[str, Any]:
    d = asdict(s)
    d["patches"] = [{k: v for k, v in p.items() if k not in ("mbox", "diff")} for p in d["patches"]]
    for k in ("revisions", "msgids"):
        d[k] = list(d[k])
    for p in d["patches"]:
        p["trailers"] = list(p["trailers"])
    return d


def check(
    ref: str,
    cfg: Config,
    *,
    tree_name: str | None = None,
    revision: int | None = None,
    base: str | None = None,
    progress: Progress = _noop,
) -> Report:
    """`mmubot check`: fetch the series ``ref`` and check it. Bad input raises MmuCiError.
    ``base`` (a job's, from `#mmu-ci test <tree> <base>`) stands for the series' base-commit."""
    t0 = time.perf_counter()
    progress("fetch", 0, 1)
    limits = Limits.from_config(cfg)
    memo = Memo(cfg.data_dir / "memo")
    series = intake.load(ref, cfg.get("lore", "url"), revision=revision, limits=limits, memo=memo)
    if base:
        series = dataclasses.replace(series, base_commit=base)
    progress("fetch", 1, 1)
    fetch = time.perf_counter() - t0
    report = check_series(
        series, cfg, tree_name=tree_name, progress=progress, timings={"fetch": fetch}
    )
    report.timings["total"] = time.perf_counter() - t0
    return report
