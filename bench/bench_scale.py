"""Scale: memory < 1 GiB at 10^8 states and time linear in states (issue 15, point 5).

The state space: the largest check today is free_roots (22,032,000 states on 6.1). The
bench runs a check derived from its declarations, `scaled_check()`: free_roots' own
dimensions, invariants and call, times pgd_switch's two call-only dimensions new_pgd (3)
and new_role (2), so 132,192,000 states. Those two are world variables only a call reads
(checks/world.py CALL_ONLY_VARS) and free_roots' call reads neither, so each free_roots
state runs six times, every run a real call of the extracted kvm_mmu_free_roots,
digested and compared: the cost per state is free_roots' own (the world's setup is reused
between states exactly as in free_roots: only after a change of `roots_to_free` alone).
The driver takes a derived check as it is: `engine.build_one` gives a check that is not
among the registered ones a module of its own (drv_free_roots_scaled_*), so the real
engine path runs: `engine.run_states` on that build of the prepared 6.1 tree, baseline
against itself, two sandbox children.

A size N runs the states [0, N). The dimensions that choose the code path (the sps'
attributes, MMU mode, TDP MMU, special roots: 1,224 states with the mask) come right
after the mask, before the slots and the PAE entries, so every prefix of 10^6 states or
more covers every mode (in free_roots' own order 10^6 would be 64-bit shadow paging
only) and the sizes run a like mixture of paths. What is left of the bias (10^6 sees
prev_roots[2] in 4 of its 5 values and no PAE entries: fewer roots to free) can only
make 10^6 cheaper per state, so larger sizes look worse per state, never better.

Measured per size: wall seconds, CPU seconds of the children (their run loops, summed),
the peak RSS of each sandbox child and of all of them at once (VmHWM and VmRSS sampled
from /proc: RUSAGE_CHILDREN never sees a jailed child, as bwrap --unshare-pid does not
pass its usage up; printed too, to show it), and the bench process's own peak RSS.
Each size runs three times (--repeat): its wall and CPU are the medians, its memory
the largest (on a loaded machine a single run's seconds vary by a third). The memory is
measured once more at the largest size against a revision that differs in many states
(`differing_revision`: our own one-line edit), where a run keeps groups and traces. The first
size's wall time carries the start of the two children (~0.4 s), so the wall is also
judged by its steps: seconds per million states added from one size to the next.
The plot goes to bench/out/scale.png (not in git).
Run: .venv/bin/python bench/bench_scale.py [--sizes 1e6,1e7,1e8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checks import free_roots, pgd_switch  # noqa: E402
from checks.space import Check  # noqa: E402

if TYPE_CHECKING:
    from mmucore.build import Build
    from mmucore.extract import Extraction

GIB_KIB = 1 << 20
LINEAR_SLACK = 1.25  # seconds per M states may grow this much from the 10^6 point
OUT = Path(__file__).resolve().parent / "out"
_FIRST = ("roots_to_free", "sp attributes", "MMU mode", "tdp_mmu_enabled", "special roots")


def scaled_check() -> Check:
    """free_roots times pgd_switch's call-only new_pgd and new_role: >= 10^8 states."""
    fr = free_roots.CHECK
    by_name = {d.name: d for d in fr.dims}
    first = [d for d in fr.dims if d.name in _FIRST]
    rest = [d for d in fr.dims if d.name not in _FIRST]
    if len(first) != len(_FIRST) or len(by_name) != len(fr.dims):
        raise RuntimeError(f"free_roots' dimensions changed: {sorted(by_name)}; update _FIRST")
    return dataclasses.replace(
        fr,
        name="free_roots_scaled",
        dims=(*first, *rest, pgd_switch.NEW_PGD, pgd_switch.NEW_ROLE),
        description="free_roots times two dimensions its call never reads (bench only)",
    )


@dataclasses.dataclass(frozen=True)
class Point:
    """One size: what it took."""

    states: int
    wall: float  # seconds
    cpu: float  # CPU seconds of the children's run loops
    child_kib: int  # the largest peak RSS of one sandbox child
    children_kib: int  # the largest RSS of every descendant at once
    self_kib: int  # the bench process's peak RSS so far
    rusage_children_kib: int  # RUSAGE_CHILDREN.ru_maxrss, for comparison
    load: float = 0.0  # the 1-minute load average right after it

    @property
    def cores(self) -> float:
        """How many cores the children had on average: on 2 idle cores, close to 2."""
        return self.cpu / self.wall


def typical(tries: Sequence[Point]) -> Point:
    """The runs of one size as one: median seconds, the largest memory, the last load."""
    return Point(
        tries[0].states,
        statistics.median(p.wall for p in tries),
        statistics.median(p.cpu for p in tries),
        max(p.child_kib for p in tries),
        max(p.children_kib for p in tries),
        max(p.self_kib for p in tries),
        max(p.rusage_children_kib for p in tries),
        tries[-1].load,
    )


def per_m(points: Sequence[Point], attr: str) -> list[float]:
    """Seconds (``wall`` or ``cpu``) per million states, relative to the first point."""
    rates = [getattr(p, attr) / (p.states / 1e6) for p in points]
    return [r / rates[0] for r in rates]


def steps(points: Sequence[Point], attr: str) -> list[float]:
    """Seconds per million of the states each size adds to the one before (the first: its
    own): the cost per state without the fixed cost of starting the children."""
    out, prev = [], (0, 0.0)
    for p in points:
        t = getattr(p, attr)
        out.append((t - prev[1]) / ((p.states - prev[0]) / 1e6))
        prev = (p.states, t)
    return out


def linear(points: Sequence[Point], attr: str, slack: float = LINEAR_SLACK) -> bool:
    """Time linear in states: seconds per M states nowhere above ``slack`` x the first."""
    return max(per_m(points, attr)) <= slack


def step_growth(points: Sequence[Point], attr: str) -> float:
    """The largest step (seconds per M added states) after the second size, relative to
    the second size's step: linear beyond a fixed start cost when close to 1."""
    s = steps(points, attr)[1:]
    return max(s) / s[0] if s else 1.0


def memory_ok(p: Point) -> bool:
    """Everything at once under 1 GiB: the children together and the bench process."""
    return p.children_kib + p.self_kib < GIB_KIB


class ChildMemory:
    """Samples /proc for the RSS of this process's descendants (the jailed children)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.one = self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> ChildMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        kids: dict[int, list[int]] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    stat = Path(f"/proc/{d}/stat").read_text()
                except OSError:
                    continue
                kids.setdefault(int(stat.rpartition(")")[2].split()[1]), []).append(int(d))
        todo, total = list(kids.get(os.getpid(), [])), 0
        while todo:
            pid = todo.pop()
            todo += kids.get(pid, [])
            hwm, rss = _status_kib(pid)
            self.one = max(self.one, hwm)
            total += rss
        self.total = max(self.total, total)


def _status_kib(pid: int) -> tuple[int, int]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0, 0
    val = {k: int(v.split()[0]) for k, _, v in (ln.partition(":") for ln in lines) if k in
           ("VmHWM", "VmRSS")}  # fmt: skip
    return val.get("VmHWM", 0), val.get("VmRSS", 0)


def measure(chk: Check, build: Build, n: int, patched: Build | None = None) -> Point:
    """Run states [0, n) of ``chk`` in ``build`` against ``patched`` (default: itself)
    through the engine; against itself every state must run and be the same."""
    from checks import engine
    from checks.budget import Budget
    from mmucore.sandbox import Limits

    # generous limits: a loaded machine must not turn a slow child into a bisection
    lim = Limits(cpu_seconds=3600, wall_seconds=7200)
    builds = [build, patched or build]
    with ChildMemory() as mem:
        t0 = time.perf_counter()
        (raw,) = engine.run_states(chk, builds, hi=n, limits=lim, budget=Budget(7200))
        wall = time.perf_counter() - t0
    if raw.died or raw.gave_up or raw.ran != n or patched is None and (raw.groups or raw.crash):
        raise SystemExit(f"the run over {n} states did not run clean: {raw}")
    if patched is not None:
        differing = sum(g.count for g in raw.groups)
        print(f"  patched differs in {differing:,} of {n:,} states, {len(raw.groups)} groups")
        if not raw.groups:
            raise SystemExit("the differing revision differs nowhere: its edit no longer bites")
    return Point(
        n, wall, raw.cpu, mem.one, mem.total,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, os.getloadavg()[0],
    )  # fmt: skip


def differing_revision(tree: Path, work: Path) -> Extraction:
    """The tree with one commit of our own edit that differs in many states: in
    mmu_free_root_page a valid sp whose last root reference goes is zapped too (the
    zap-valid-roots case of tests/checks/edits.py), extracted from a shared clone."""
    from mmuci import proc
    from mmucore.extract import extract
    from mmukit.transforms import Transformation, replace_once, within_function

    edit = within_function("mmu_free_root_page", replace_once(" && sp->role.invalid", ""))
    t = Transformation("zap-valid-roots", "arch/x86/kvm/mmu/mmu.c", edit, "zap valid roots")
    clone = work / "tree"
    proc.git(work, "clone", "-q", "--shared", str(tree), str(clone))
    t.apply(clone)
    who = ("-c", "user.name=mmu-ci bench", "-c", "user.email=bench@localhost")
    proc.git(clone, *who, "commit", "-q", "-a", "-m", t.subject)
    return extract(clone, "HEAD")


def plot(points: Sequence[Point], path: Path) -> None:
    """states vs seconds (wall, children's CPU) on log-log axes, with the linear line."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SystemExit(
            "matplotlib is missing: .venv/bin/pip install -e . (a dependency)"
        ) from None
    fig = Figure(figsize=(6.4, 4.4), dpi=100)
    ax = fig.add_subplot()
    xs = [p.states for p in points]
    for attr, label in (("wall", "wall seconds"), ("cpu", "CPU seconds of the children")):
        ys = [getattr(p, attr) for p in points]
        ax.plot(xs, ys, "o-", label=label)
        ax.plot(xs, [ys[0] * x / xs[0] for x in xs], ":", color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("states (free_roots_scaled, 6.1, baseline vs itself)")
    ax.set_ylabel("seconds")
    ax.set_title("engine time against states (dotted: linear from the first point)")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def _tree() -> Path | None:
    from bot import config

    if t := os.environ.get("MMUCI_BENCH_TREE"):
        return Path(t)
    dirs = [config.load(None).data_dir]
    if test_data := os.environ.get("MMUCI_TEST_DATA_DIR"):
        dirs.append(Path(test_data))
    for d in dirs:
        if (d / "trees" / "debian-6.1").is_dir():
            return d / "trees" / "debian-6.1"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e6,1e7,1e8", help="state counts, comma-separated")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each size (the median)")
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    tree = _tree()
    if tree is None:
        print("no prepared 6.1 tree: run `mmubot kernel prepare 6.1` first", file=sys.stderr)
        return 2
    from checks import engine
    from mmucore.extract import extract

    chk = scaled_check()
    if max(sizes) > chk.size:
        print(f"{chk.name} has {chk.size} states, fewer than {max(sizes)}", file=sys.stderr)
        return 2
    from bot import config

    ex = extract(tree, "HEAD")
    data = tree.parent.parent if tree.parent.name == "trees" else config.load(None).data_dir
    build, secs = engine.build_one(chk, ex, data / "build-cache")
    print(f"{chk.name} on {ex.version}: {chk.size:,} states; built in {secs:.1f} s")
    points = []
    for n in sizes:
        points.append(typical([measure(chk, build, n) for _ in range(args.repeat)]))
        print(f"  {n:>11,} states: {points[-1].wall:.2f} s", flush=True)
    wall_r, cpu_r, step = per_m(points, "wall"), per_m(points, "cpu"), steps(points, "wall")
    print(f"\n{'states':>12} {'wall s':>7} {'cpu s':>7} {'cores':>5} {'wall/M':>6} {'cpu/M':>6} "
          f"{'step s/M':>8} {'child MiB':>9} {'all MiB':>7} {'bench MiB':>9} {'rusage MiB':>10} "
          f"{'load':>5}")  # fmt: skip
    for p, w, c, st in zip(points, wall_r, cpu_r, step, strict=True):
        print(
            f"{p.states:>12,} {p.wall:>7.2f} {p.cpu:>7.2f} {p.cores:>5.2f} {w:>6.2f} {c:>6.2f} "
            f"{st:>8.3f} {p.child_kib / 1024:>9.0f} {p.children_kib / 1024:>7.0f} "
            f"{p.self_kib / 1024:>9.0f} {p.rusage_children_kib / 1024:>10.0f} {p.load:>5.2f}"
        )
    print(
        "wall/M, cpu/M: seconds per million states relative to the first size; step s/M: wall\n"
        "seconds per million of the states added since the size before; cores: cpu / wall;\n"
        "child: the largest peak RSS of one sandbox child, all: every descendant at once;\n"
        "rusage: RUSAGE_CHILDREN.ru_maxrss, blind to the jailed children (bwrap --unshare-pid)"
    )
    big = points[-1]
    print(f"memory < 1 GiB at {big.states:,} states (children at once + bench): "
          f"{'holds' if memory_ok(big) else 'FAILS'} "
          f"({(big.children_kib + big.self_kib) / 1024:.0f} MiB)")  # fmt: skip
    verdict = "holds" if linear(points, "cpu") else "FAILS"
    print(f"time linear in states (CPU of the children, per M <= {LINEAR_SLACK} x the first "
          f"size): {verdict} (largest {max(cpu_r):.2f})")  # fmt: skip
    if len(points) >= 3:  # the first size's wall carries the start of the children
        g = step_growth(points, "wall")
        start = max(0.0, points[0].wall - points[0].states / 1e6 * step[1])
        print(
            f"time linear in states (wall beyond a start of ~{start:.2f} s: step s/M <= "
            f"{LINEAR_SLACK} x the second size's): {'holds' if g <= LINEAR_SLACK else 'FAILS'} "
            f"({g:.2f})"
        )
    if big.cores < 1.6:
        print(
            f"the machine was loaded: the children had {big.cores:.2f} of 2 cores at "
            f"{big.states:,} states (load {big.load:.2f}); cpu/M is the less load-bound figure"
        )
    # the registered free_roots, in its own order over all its states: the same cost per state?
    fr = free_roots.CHECK
    ref = measure(fr, engine.build_one(fr, ex, data / "build-cache")[0], fr.size)
    ratio = (big.cpu / big.states) / (ref.cpu / ref.states)
    print(
        f"free_roots itself over its {fr.size:,} states: {ref.wall:.2f} s, CPU {ref.cpu:.2f} s "
        f"of the children; {chk.name} at {big.states:,} costs {ratio:.2f} x its CPU per state"
    )
    # memory where it could grow: states that differ (groups, traces of their first states)
    with tempfile.TemporaryDirectory(prefix="mmuci-bench-scale-") as tmp:
        patched, _ = engine.build_one(
            chk, differing_revision(tree, Path(tmp)), data / "build-cache"
        )
        d = measure(chk, build, big.states, patched)
    print(
        f"memory < 1 GiB at {big.states:,} states against a revision that differs: "
        f"{'holds' if memory_ok(d) else 'FAILS'} ({(d.children_kib + d.self_kib) / 1024:.0f} "
        f"MiB; one child {d.child_kib / 1024:.0f} MiB, bench {d.self_kib / 1024:.0f} MiB; "
        f"{d.wall:.2f} s, CPU {d.cpu:.2f} s)"
    )
    png = OUT / "scale.png"
    plot(points, png)
    print(f"plot: {png}; load average at the end: {os.getloadavg()[0]:.2f} (2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
