"""How busy a command keeps the machine's cores: /proc sampled while it runs.

Every ``interval`` seconds the sampler counts the threads of the command's process tree
that are runnable (state R: on a core or waiting for one). A core is idle *for us* when
fewer than ``cores`` of our threads are runnable: other load on the machine slows our
threads down but does not make them less runnable, so the count says what our own
scheduling leaves unused, not what the neighbours took. The first sandboxed state run
(`mmucore.sandbox_child` started by the bot itself, not by a build worker) marks when
the first chain started.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

CHILD = b"mmucore.sandbox_child"


@dataclass
class Usage:
    """What the samples saw, in seconds from the command's start."""

    cores: int
    samples: int = 0
    idle: float = 0.0  # core-seconds with fewer runnable threads of ours than cores
    idle_before_chain: float = 0.0  # of which before the first chain started
    first_chain: float | None = None  # when the first state-run child appeared
    busy: dict[int, float] = field(default_factory=dict)  # runnable threads -> seconds
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (seconds, runnable)
    cpu: float = 0.0  # CPU seconds of the tree's processes, as last sampled (a lower bound)


TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: str) -> tuple[int, str, float] | None:
    """(parent pid, state, CPU seconds so far) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    rest = raw[raw.rindex(b")") + 2 :].split()
    return int(rest[1]), rest[0].decode(), (int(rest[11]) + int(rest[12])) / TICK


def _runnable(pid: int) -> int:
    n = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        n += raw[raw.rindex(b")") + 2 : raw.rindex(b")") + 3] == b"R"
    return n


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


class Sampler:
    """Samples the tree under ``root`` (a pid) in a thread until stop()."""

    def __init__(self, root: int, cores: int | None = None, interval: float = 0.02) -> None:
        self.root, self.interval = root, interval
        self.usage = Usage(cores or os.cpu_count() or 1)
        self._stop = threading.Event()
        self._kids: dict[int, list[int]] = {}  # pid -> its children, as last sampled
        self._cpu: dict[int, float] = {}  # pid -> its CPU seconds when last seen
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        parent: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for name in os.listdir("/proc"):
            if name.isdigit():
                st = _stat(name)
                if st is not None:
                    parent[int(name)], cpu[int(name)] = st[0], st[2]
        kids: dict[int, list[int]] = {}
        for pid, ppid in parent.items():
            kids.setdefault(ppid, []).append(pid)
        self._kids = kids
        out, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo += kids.get(pid, [])
            if pid in cpu:  # a pid is not reused within one run: its last value counts
                self._cpu[pid] = cpu[pid]
        self.usage.cpu = sum(self._cpu.values())
        return out

    def _loop(self) -> None:
        u, last = self.usage, time.perf_counter()
        while not self._stop.wait(self.interval):
            now = time.perf_counter()
            dt, last = now - last, now
            pids = self._tree()
            if u.first_chain is None:  # the root's own children, read again each time:
                for pid in self._kids.get(self.root, []):  # one seen between fork and exec
                    if CHILD in _cmdline(pid):  # still has the root's command line
                        u.first_chain = now - self._t0
            r = sum(_runnable(p) for p in pids)
            u.samples += 1
            u.timeline.append((now - self._t0, r))
            u.busy[r] = u.busy.get(r, 0.0) + dt
            idle = dt * max(0, u.cores - r)
            u.idle += idle
            if u.first_chain is None:
                u.idle_before_chain += idle

    def stop(self) -> Usage:
        self._stop.set()
        self._thread.join()
        return self.usage
