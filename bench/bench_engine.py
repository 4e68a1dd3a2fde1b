"""The engine's states/s on free_roots against a plain C loop over the same states.

Both run the driver of one extraction (the prepared 6.1 tree, or MMUCI_BENCH_TREE):
the engine compares baseline and patched (here the same revision built once) in two
sandbox children, with per-state fault guard, whole-state words, comparison and the rows
of differing states; the plain loop (checks/c/plain_check.c, in a build of the same
revision made for the benchmark) calls kvm_mmu_free_roots over the same states in one
child under the same fault guard, observing nothing.
Run: .venv/bin/python bench/bench_engine.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot import config  # noqa: E402
from checks import engine  # noqa: E402
from checks.space import all_checks  # noqa: E402
from mmucore import sandbox  # noqa: E402
from mmucore.extract import extract  # noqa: E402


def main() -> int:
    cfg = config.load(None)
    tree = Path(os.environ.get("MMUCI_BENCH_TREE") or cfg.data_dir / "trees" / "debian-6.1")
    if not tree.is_dir():
        print(f"{tree} missing: run `mmubot kernel prepare 6.1` first", file=sys.stderr)
        return 2
    cache = cfg.data_dir / "build-cache"
    chk = all_checks(["free_roots"])[0]
    ex = extract(tree, "HEAD")
    base, patched = (engine.build_one(chk, e, cache)[0] for e in (ex, ex))
    plain_build = engine.build_one(chk, ex, cache, plain=True)[0]  # the same, with the loop
    n = chk.size

    t0 = time.perf_counter()
    (raw,) = engine.run_states(chk, [base, patched])
    engine_s = time.perf_counter() - t0
    assert not raw.groups and raw.crash is None, "one revision against itself differs"

    lim = sandbox.Limits(cpu_seconds=600, wall_seconds=900)
    t0 = time.perf_counter()
    payload = {"lo": 0, "hi": n, "check": chk.name}
    out = sandbox.run("checks.plain:run_plain", payload, [plain_build], lim)
    plain_s = time.perf_counter() - t0
    if not out.ok:
        print(f"plain loop failed: {out.message}", file=sys.stderr)
        return 1
    inner = out.value["seconds"]

    eng, plain = n / engine_s, n / plain_s
    eng_cpu, plain_cpu = raw.cpu, out.value["cpu"]
    print(f"free_roots on {ex.version}: {n} states")
    print(
        f"engine (2 children, baseline + patched, guard, words, compare):  {engine_s:.2f} s"
        f" = {eng / 1e6:.2f} M states/s"
    )
    print(
        f"plain C loop (1 child, one build, guard, no observation):          {plain_s:.2f} s"
        f" = {plain / 1e6:.2f} M states/s (loop alone {n / inner / 1e6:.2f} M/s)"
    )
    print(f"ratio engine / plain: {eng / plain:.0%} (target >= 80%)")
    # other work on the machine slows the two engine children more than the one plain loop
    print(
        f"CPU time: engine {eng_cpu:.2f} s in its children (both builds), "
        f"plain {plain_cpu:.2f} s; on two otherwise idle cores the engine would reach"
        f" {min(2 * plain_cpu / eng_cpu, 1.0):.0%} of the plain loop"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
