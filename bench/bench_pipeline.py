"""Benchmark: generated 12-patch in-scope series, message-id to JSON report.

Two series on 6.1, every patch in scope and behaviour-preserving:
  commented  three code refactors, then a comment in each of the nine modelled functions
  code       twelve code refactors across the modelled functions
Cold: a separate data directory with an empty build cache and memo. Warm: the same
command again. Then cold once more with pruning off (``MMUCI_CHECKS_PRUNE=false``): every
state in every revision, the same verdicts. Targets on the 2-core reference machine:
cold < 20 s, warm < 3 s.
The cold run's cores are sampled (bench/cores.py): when the first chain's state run
started, and the core-seconds our own threads left idle (fewer runnable than cores),
which other load on the machine does not inflate; the load average is printed beside.
Run: .venv/bin/python bench/bench_pipeline.py [commented] [code]
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import cores  # noqa: E402

from bot import kernels  # noqa: E402
from bot.commands.demo import refactor_nfc  # noqa: E402
from mmuci import proc  # noqa: E402
from mmukit.inbox import LocalInbox  # noqa: E402
from mmukit.seriesgen import deliver, make_series  # noqa: E402
from mmukit.transforms import Transformation, regex_once, replace_once, within_function  # noqa: E402

MMU_C = "arch/x86/kvm/mmu/mmu.c"
TARGET_COLD, TARGET_WARM = 20.0, 3.0
# Every function the checks run in 6.1: a comment at the top of each is an in-scope change.
MODELLED = (
    "mmu_free_root_page",
    "kvm_mmu_free_roots",
    "kvm_mmu_free_guest_mode_roots",
    "is_obsolete_root",
    "__kvm_mmu_free_obsolete_roots",
    "is_root_usable",
    "cached_root_find_and_keep_current",
    "cached_root_find_without_current",
    "fast_pgd_switch",
)


def _swap(name: str, func: str, old: str, new: str, what: str) -> Transformation:
    edit = within_function(func, replace_once(old, new))
    return Transformation(name, MMU_C, edit, f"KVM: x86/mmu: {what}", "No functional change.")


def code_refactors() -> list[Transformation]:
    """Twelve behaviour-preserving code changes, each in a function the checks run."""
    free, page = "kvm_mmu_free_roots", "mmu_free_root_page"
    keep, without = "cached_root_find_and_keep_current", "cached_root_find_without_current"
    return [
        refactor_nfc(),
        _swap("eq0", page, "!--sp->root_count", "--sp->root_count == 0", "Spell out root_count"),
        _swap("postinc", free, "; ++i)", "; i++)", "Post-increment in the PAE loop"),
        _swap(
            "valid",
            "kvm_mmu_free_guest_mode_roots",
            "!VALID_PAGE(root_hpa)",
            "root_hpa == INVALID_PAGE",
            "Compare with INVALID_PAGE",
        ),
        _swap(
            "or",
            "kvm_mmu_free_guest_mode_roots",
            "roots_to_free |= ",
            "roots_to_free = roots_to_free | ",
            "Spell out the mask update",
        ),
        _swap("obs", "is_obsolete_root", "return !sp || ", "return sp == NULL || ", "NULL test"),
        _swap(
            "nz",
            "__kvm_mmu_free_obsolete_roots",
            "if (roots_to_free)",
            "if (roots_to_free != 0)",
            "Explicit mask test",
        ),
        _swap("pgd", "is_root_usable", "pgd == root->pgd", "root->pgd == pgd", "Operand order"),
        _swap("uint1", keep, "uint i;", "unsigned int i;", "Spell out uint in the cache lookup"),
        _swap("uint2", without, "uint i;", "unsigned int i;", "Spell out uint in the cache scan"),
        _swap("preinc", without, "- 1; i++)", "- 1; ++i)", "Pre-increment in the bubble loop"),
        Transformation(
            "no-else",
            MMU_C,
            within_function("fast_pgd_switch", regex_once(r"\n\telse\n\t\treturn", "\n\treturn")),
            "KVM: x86/mmu: Drop an else after return",
            "No functional change.",
        ),
    ]


def commented() -> list[Transformation]:
    """Three code refactors and a comment in each of the nine modelled functions."""
    ts = code_refactors()[:3]
    for i, func in enumerate(MODELLED):
        edit = within_function(func, regex_once(r"\)\s*\n\{\n", rf")\n{{\n\t/* bench {i} */\n"))
        ts.append(Transformation(f"doc-{func}", MMU_C, edit, f"KVM: x86/mmu: Comment {func}()"))
    return ts


def run_check(
    msgid: str, env: dict[str, str], out: Path
) -> tuple[float, dict[str, Any], int, cores.Usage]:
    """One `mmubot check` with its cores sampled: (seconds, report, exit status, usage)."""
    log = out.with_suffix(".log")
    t0 = time.perf_counter()
    argv = [sys.executable, "-m", "bot.cli", "check", msgid, "--json", str(out)]
    p = proc.spawn(argv, extra_env=env, cwd=REPO, log=log)
    sampler = cores.Sampler(p.pid)
    code = p.wait()
    seconds = time.perf_counter() - t0
    usage = sampler.stop()
    if not out.exists():
        raise SystemExit(f"check failed (exit {code}):\n{log.read_text()[-3000:]}")
    return seconds, json.loads(out.read_text()), code, usage


def print_usage(u: cores.Usage, seconds: float) -> None:
    """The first chain's start and the core-seconds our threads left idle (bench/cores.py)."""
    first = f"{u.first_chain:.2f} s" if u.first_chain is not None else "never"
    print(
        f"   first chain started at {first}; idle cores: {u.idle:.2f} core-s of "
        f"{u.cores * seconds:.1f} ({u.idle / (u.cores * seconds):.0%}), "
        f"{u.idle_before_chain:.2f} of them before the first chain; CPU used >= {u.cpu:.1f} s "
        f"(sampled; (CPU + idle) / {u.cores} cores = {(u.cpu + u.idle) / u.cores:.1f} s)"
    )
    shares = ", ".join(f"{r}: {t / seconds:.0%}" for r, t in sorted(u.busy.items()) if t > 0.01)
    print(f"   runnable threads of ours (share of the wall time): {shares}")


def forget(data: Path) -> None:
    """Cold: nothing built, nothing remembered (the prepared tree stays)."""
    for d in ("build-cache", "memo", "scope"):
        shutil.rmtree(data / d, ignore_errors=True)


def bench(name: str, ts: list[Transformation], data: Path, tree: kernels.KernelTree) -> bool:
    forget(data)
    with tempfile.TemporaryDirectory(prefix="mmuci-bench-") as tmp:
        gen = make_series(tree.path, tree.commit, ts, workdir=Path(tmp), series_id=f"bench-{name}")
        with LocalInbox(Path(tmp) / "pi") as inbox:
            deliver(inbox, gen)
            env = {
                "MMUCI_DATA_DIR": str(data),
                "MMUCI_LORE_URL": inbox.url,
                "MMUCI_TREES_DEFAULT": tree.name,
                "XDG_CONFIG_HOME": str(Path(tmp) / "no-config"),
            }
            msgid = gen.cover_message_id.strip("<>")
            cold, rep, code, usage = run_check(msgid, env, Path(tmp) / "cold.json")
            warm, rep2, _, _ = run_check(msgid, env, Path(tmp) / "warm.json")
            forget(data)  # cold again, every state run in every revision (checks.prune off)
            env["MMUCI_CHECKS_PRUNE"] = "false"
            unpruned, rep3, _, _ = run_check(msgid, env, Path(tmp) / "unpruned.json")
    verdicts = [p["verdict"] for p in rep["patches"]]
    load = os.getloadavg()
    ran = sum(1 for p in rep["patches"] for c in p["checks"] if c["verdict"] != "skipped")
    whole = (rep.get("whole_series") or {}).get("verdict")
    print(f"== {name}: {len(verdicts)} patches, {ran} check runs; verdicts {verdicts}")
    print(f"   whole series {whole}, exit {code}; load average {load[0]:.2f} {load[1]:.2f}")
    print(f"   cold: {cold:6.2f} s  (target {TARGET_COLD:.0f} s, ratio {cold / TARGET_COLD:.2f})")
    print(f"   warm: {warm:6.2f} s  (target {TARGET_WARM:.0f} s, ratio {warm / TARGET_WARM:.2f})")
    print("   cold stages: " + ", ".join(f"{k} {v:.2f}s" for k, v in rep["timings"].items()))
    print_usage(usage, cold)
    runs = [
        c for p in [*rep["patches"], rep.get("whole_series") or {"checks": []}] for c in p["checks"]
    ]
    # a chain's run is shared by its pairs: count it once
    timed = {
        (c["name"], c["timings"].get("chain", 2), c["timings"]["run"])
        for c in runs
        if "run" in c["timings"]
    }
    state_runs = sum(t for _, _, t in timed)
    print(
        f"   cold state runs {state_runs:.1f}s (two chains at a time: the sum may exceed the "
        "wall time): " + ", ".join(f"{n} {k} revisions {t:.1f}s" for n, k, t in sorted(timed))
    )
    print("   warm stages: " + ", ".join(f"{k} {v:.2f}s" for k, v in rep2["timings"].items()))
    states = {
        c["name"]: (c["states"], c.get("stood_for", 0)) for c in runs if "run" in c["timings"]
    }
    per_state = plain_seconds_per_state(data, tree, {n: a + b for n, (a, b) in states.items()})
    # the floor: one plain C loop pass per (revision, check) the runs needed, on both cores
    floor = sum(k * states[n][0] * per_state[n] for n, k, _ in timed) / 2
    whole = sum(k * sum(states[n]) * per_state[n] for n, k, _ in timed) / 2
    print(
        f"   floor {floor:.2f} s (plain C loop over the states run, 2 cores): "
        f"cold / floor = {cold / floor:.2f}; over the whole spaces {whole:.2f} s: "
        f"cold / that floor = {cold / whole:.2f}"
    )
    print(
        "   per chain, its run against its own floor (k revisions x states, 2 cores): "
        + ", ".join(
            f"{n} {t:.1f}s / {k * states[n][0] * per_state[n] / 2:.2f}s"
            for n, k, t in sorted(timed)
        )
    )
    same = [p["verdict"] for p in rep3["patches"]] == verdicts and (
        (rep3.get("whole_series") or {}).get("verdict")
        == (rep.get("whole_series") or {}).get("verdict")
    )
    print(
        f"   cold without pruning (checks.prune = false): {unpruned:6.2f} s, "
        f"/ floor = {unpruned / floor:.2f}; verdicts {'the same' if same else 'DIFFER'}; "
        "stages: " + ", ".join(f"{k} {v:.2f}s" for k, v in rep3["timings"].items())
    )
    # pruning (checks/prune.py): per patch, the states its patched revision did not run;
    # the whole series' pair repeats the last revision of each chain, so it is left out
    patch_runs = [c for p in rep["patches"] for c in p["checks"] if "run" in c["timings"]]
    skipped = sum(c.get("pruned", 0) for c in patch_runs)
    runs_total = sum(k * states[n][0] for n, k, _ in timed)
    off = sorted({c["pruning"] for c in patch_runs if c.get("pruning", "").startswith("off")})
    print(
        f"   pruned: {skipped:,} of {runs_total:,} (revision, state) runs "
        f"({skipped / max(runs_total, 1):.0%}); cold / floor with pruning = {cold / floor:.2f}"
        + (f"; not pruned: {'; '.join(off)}" if off else "")
    )
    fixed = sorted({f for c in runs for f in c.get("fixed_dims", ())})
    stood = sum(k * states[n][1] for n, k, _ in timed)
    total = sum(k * sum(states[n]) for n, k, _ in timed)
    if fixed:
        print(f"   not run: {stood:,} of {total:,} (revision, state) runs ({stood / total:.0%}):")
        print("   " + "\n   ".join(fixed))
    return same and all(v == "same" for v in verdicts)


def plain_seconds_per_state(
    data: Path, tree: kernels.KernelTree, sizes: dict[str, int]
) -> dict[str, float]:
    """Per check, the plain loop's CPU seconds per state on the base revision (one child,
    the fault guard, no observation), over the states [0, n) its runs had; 0 for a check
    whose plain loop fails (the floor is then a lower bound)."""
    from checks import engine
    from checks.space import all_checks
    from mmucore import sandbox
    from mmucore.extract import extract

    ex = extract(tree.path, "HEAD")
    lim = sandbox.Limits(cpu_seconds=600, wall_seconds=900)
    out = {}
    for chk in all_checks(sorted(sizes)):
        b, _ = engine.build_one(chk, ex, data / "build-cache", plain=True)
        payload = {"lo": 0, "hi": sizes[chk.name], "check": chk.name}
        r = sandbox.run("checks.plain:run_plain", payload, [b], lim)
        if not r.ok:
            print(f"   (plain loop of {chk.name}: {r.message}; left out of the floor)")
            out[chk.name] = 0.0
            continue
        out[chk.name] = r.value["cpu"] / max(sizes[chk.name], 1)
    return out


def main() -> int:
    data = Path(os.environ.get("MMUCI_BENCH_DATA_DIR") or REPO / ".cache" / "bench-data")
    tree, _ = kernels.prepare(data, "6.1")
    which = sys.argv[1:] or ["commented", "code"]
    ok = True
    if "commented" in which:
        ok &= bench("commented", commented(), data, tree)
    if "code" in which:
        ok &= bench("code", code_refactors(), data, tree)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
