"""Build time of one extraction (cold, target < 1 s) and of a cache hit (target < 50 ms);
and a series' modules with every check's driver, split (mmucore/build_base.py: shared.o
once, then per revision its code) against built in one piece, as the ratio of the two.

Run: .venv/bin/python bench/bench_build.py [TREE ...]   (default: the prepared 6.1 and
6.12 trees under $MMUCI_DATA_DIR or ~/.local/share/mmu-ci). A cold build is measured
in a fresh cache directory each time; the median of N runs is printed. The split and
whole builds of each revision alternate, so a loaded machine weighs on both alike.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mmucore import build, extract  # noqa: E402

COLD_TARGET = 1.0
HIT_TARGET = 0.050


def _default_trees() -> list[Path]:
    data = Path(os.environ.get("MMUCI_DATA_DIR") or Path.home() / ".local/share/mmu-ci")
    return [p for v in ("6.1", "6.12") if (p := data / "trees" / f"debian-{v}").is_dir()]


def bench(tree: Path, runs: int = 3) -> None:
    t0 = time.monotonic()
    ex = extract.extract(tree)
    t_extract = time.monotonic() - t0
    cold, hit = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="mmuci-bench-") as d:
            cold.append(build.build(ex, cache_dir=Path(d)).seconds)
            for _ in range(5):
                t = time.monotonic()
                b = build.build(ex, cache_dir=Path(d))
                assert b.cached
                hit.append(time.monotonic() - t)
    c, h = statistics.median(cold), statistics.median(hit)
    print(f"{ex.version} ({ex.rev[:12]}): extract {t_extract * 1000:.0f} ms")
    print(
        f"  cold build  {c * 1000:7.1f} ms   target {COLD_TARGET * 1000:.0f} ms   "
        f"ratio {c / COLD_TARGET:.2f}"
    )
    print(
        f"  cache hit   {h * 1000:7.1f} ms   target {HIT_TARGET * 1000:.0f} ms   "
        f"ratio {h / HIT_TARGET:.2f}"
    )


def bench_split(tree: Path, n: int = 6) -> None:
    """Modules of the base and ``n`` revisions of the 12-patch series (bench_pipeline's
    code refactors), split and whole, each cold."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_pipeline import code_refactors

    from checks import driver, engine
    from mmuci import proc
    from mmukit.seriesgen import make_series

    with tempfile.TemporaryDirectory(prefix="mmuci-bench-") as d:
        gen = make_series(tree, "HEAD", code_refactors()[:n], workdir=Path(d) / "s")
        revs = proc.git(gen.clone, "rev-list", "--reverse", "HEAD").split()[-(n + 1) :]
        exs = [extract.extract(gen.clone, r) for r in revs]
        split_s = whole_s = 0.0
        for ex in exs:
            checks = driver.module_checks(ex)
            drv = engine._driver(checks, ex)
            whole = build.Driver(drv.name, driver.module_source(checks, ex), drv.cdef, True)
            t = time.monotonic()
            build.build(ex, whole, cache_dir=Path(d) / "whole")
            whole_s += time.monotonic() - t
            t = time.monotonic()
            build.build(ex, drv, cache_dir=Path(d) / "split")
            split_s += time.monotonic() - t
        shared = len(list((Path(d) / "split").glob("_shared_*")))
    k = len(exs)
    print(
        f"  {k} revisions with every check's driver: whole {whole_s:.2f} s, split "
        f"{split_s:.2f} s ({shared} shared.o); split / whole = {split_s / whole_s:.2f}"
    )


def main(argv: list[str]) -> int:
    trees = [Path(a).resolve() for a in argv] or _default_trees()
    if not trees:
        print("no tree: pass a kernel git tree, or run `mmubot kernel prepare 6.1`")
        return 2
    for t in trees:
        bench(t)
        bench_split(t)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
