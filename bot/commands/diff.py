"""`mmubot diff --tree PATH BASE_REV PATCHED_REV`: every applicable check between two revisions."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bot import kernels
from bot.config import Config
from mmucore import proc
from mmucore.errors import CommandError, MmuCiError


def _tree_path(cfg: Config, spec: str) -> Path:
    p = Path(spec).expanduser()
    if (p / ".git").exists() or (p / "HEAD").is_file():
        return p
    return kernels.find_tree(cfg.data_dir, spec).path


def _commit(tree: Path, rev: str) -> str:
    try:
        return proc.git(tree, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except CommandError:
        raise MmuCiError(f"{rev!r} is not a commit of {tree}; give a sha, tag or branch") from None


def run(args: argparse.Namespace, cfg: Config) -> int:
    """Exit 0 all `same`, 1 any difference or crash, 2 bad input or a build error."""
    from checks import engine, render
    from checks.result import worst_verdict
    from mmucore.extract import extract

    t0 = time.perf_counter()
    tree = _tree_path(cfg, args.tree)
    base_rev, patched_rev = _commit(tree, args.base_rev), _commit(tree, args.patched_rev)
    base, patched = extract(tree, base_rev), extract(tree, patched_rev)
    timings = {"extract": time.perf_counter() - t0}
    cache = cfg.data_dir / "build-cache"
    results = engine.run_checks(base, patched, cache_dir=cache, names=args.checks)
    timings["total"] = time.perf_counter() - t0
    print(render.render_results(results, base_rev, patched_rev), end="")
    if args.json_out:
        doc = render.to_json(results, base_rev, patched_rev, timings)
        Path(args.json_out).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"JSON: {args.json_out}", file=sys.stderr)
    verdict = worst_verdict([r.verdict for r in results])
    if verdict == "build-error":
        return 2
    return 0 if verdict == "same" else 1
