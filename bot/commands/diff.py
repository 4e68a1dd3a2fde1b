"""`mmubot diff --tree PATH BASE_REV PATCHED_REV`: every applicable check between two revisions."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot import kernels
from bot.config import Config
from mmuci import proc
from mmuci.errors import CommandError, MmuCiError

if TYPE_CHECKING:
    from checks.result import CheckResult


def _commit(tree: Path, rev: str) -> str:
    try:
        return proc.git(tree, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except CommandError:
        raise MmuCiError(f"{rev!r} is not a commit of {tree}; give a sha, tag or branch") from None


def timing_text(results: Sequence[CheckResult], timings: dict[str, float]) -> str:
    """Where the time went, as `check` prints it: per check build (baseline + patched),
    run, explain and states per second; then extraction, all checks and the total."""
    lines = []
    for r in results:
        t = r.timings
        if not t:
            lines.append(f"  {r.name}: {r.verdict}, nothing run")
            continue
        parts = [f"build {t.get('build_base', 0.0) + t.get('build_patched', 0.0):.2f}s"]
        parts += [f"{k} {t[k]:.2f}s" for k in ("run", "explain") if k in t]
        if "states_per_second" in t:
            parts.append(f"{t['states_per_second'] / 1e6:.2f} M states/s")
        lines.append(f"  {r.name}: " + ", ".join(parts))
    total = ", ".join(f"{k} {v:.2f}s" for k, v in timings.items())
    return "timings:\n" + "".join(ln + "\n" for ln in lines) + f"  {total}\n"


def run(args: argparse.Namespace, cfg: Config) -> int:
    """Exit as `mmubot check` does (checks/verdict.py): 0 same, 1 a difference found,
    2 could not check (bad input, build error, not covered), 3 mmu-ci's own bug."""
    from bot import runs
    from bot.report import uncovered_lines
    from checks import render
    from checks.space import all_checks
    from checks.verdict import Verdict, exit_status
    from mmucore import scope
    from mmucore.extract import extract

    t0 = time.perf_counter()
    tree, version = kernels.resolve_tree(cfg.data_dir, args.tree)
    base_rev, patched_rev = _commit(tree, args.base_rev), _commit(tree, args.patched_rev)
    base = extract(tree, base_rev, version=version)
    patched = extract(tree, patched_rev, version=version)
    timings = {"extract": time.perf_counter() - t0}
    cache = cfg.data_dir / "build-cache"
    chosen = all_checks(args.checks)
    t = time.perf_counter()
    results = [runs.run_one(chk, base, patched, cache) for chk in chosen]
    timings["checks"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    # what changed that no check that ran executes: `not-covered`, never `same`
    job = runs.Job(base, patched, scope.changed_pieces(base, patched, code_only=True))
    not_run = {r.name: str(r.skipped) for r in results if r.verdict == Verdict.SKIPPED}
    names = {c.name for c in chosen}
    not_run |= {c.name: "not selected (--check)" for c in all_checks() if c.name not in names}
    uncovered = runs.not_covered(job, results, not_run)
    lines = uncovered_lines(uncovered)
    print(render.render_results(results, base_rev, patched_rev, lines), end="")
    print(timing_text(results, timings), end="")
    if args.json_out:
        nc = [u.to_json() for u in uncovered]
        doc = render.to_json(results, base_rev, patched_rev, timings, nc)
        Path(args.json_out).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"JSON: {args.json_out}", file=sys.stderr)
    return exit_status([r.verdict for r in results] + [Verdict.NOT_COVERED] * bool(uncovered))
