"""The builds of a series' revisions in worker processes (one per core), started before
the checks run and shared by them: the chains find their modules in the build cache
(bot/runs.py decides which builds are needed, in the order the chains need them)."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from mmuci.proc import set_pdeathsig

if TYPE_CHECKING:
    from mmucore.extract import Extraction

BUILD_JOBS = 2  # gcc is single-threaded: one compile per core


def _build_one(item: tuple[str, Extraction, Path, Extraction]) -> bool:
    """In a worker process: build the module of one revision a check runs in (it holds
    the drivers of every check that applies to the revision), then the image of its code
    that pruning compares (checks/prune.py: module_code); False when the build failed."""
    from checks.engine import build_one
    from checks.prune import module_code
    from checks.space import all_checks

    name, built, cache_dir, ex = item
    chk = all_checks([name])[0]
    try:
        build_one(chk, built, cache_dir)
    except Exception:  # noqa: BLE001 - the check run reports it with context
        return False
    try:
        module_code(chk, ex, built, cache_dir)
    except Exception:  # noqa: BLE001 - the chain makes it again, and reports what fails
        pass
    return True


class Prebuild:
    """Builds under way in worker processes (one per core) while the checks already run:
    a chain that needs a module being built waits for it (the build cache's lock per
    module), one not started yet is built by the chain itself (never twice).

    ``prepare`` makes what a build compiles from its extraction (the probes, which cost
    ~0.1 s a revision): each build is submitted as soon as its own is made, so the
    workers start compiling while the later revisions are still being probed."""

    def __init__(
        self,
        todo: list[tuple[str, Extraction]],
        cache_dir: Path,
        progress: Callable[[int, int], None],
        prepare: Callable[[Extraction], Extraction] = lambda ex: ex,
    ) -> None:
        self.total, self._progress = len(todo), progress
        self._t0 = self._last = time.perf_counter()
        self._pool: ProcessPoolExecutor | None = None
        self._futures: list[Future[bool]] = []
        self._waited = False
        progress(0, self.total)
        if self.total < 2:
            return  # the check run builds a single one as fast
        # Processes, not threads: a build redirects sys.stdout while cffi talks. Each worker
        # dies with the bot (a killed bot must not leave workers holding its stdout open).
        # Every worker is forked at the first submit, by the one thread the process has yet.
        ctx = multiprocessing.get_context("fork")
        self._pool = ProcessPoolExecutor(
            max_workers=BUILD_JOBS, mp_context=ctx, initializer=set_pdeathsig
        )
        for name, ex in todo:
            f = self._pool.submit(_build_one, (name, prepare(ex), cache_dir, ex))
            f.add_done_callback(self._finished)
            self._futures.append(f)

    def _finished(self, _: Future[bool]) -> None:
        self._last = max(self._last, time.perf_counter())

    @property
    def seconds(self) -> float:
        """Wall time from the start until the last build was done."""
        return self._last - self._t0

    def wait(self) -> bool:
        """Wait for every build (once); True when every build was made, so a chain's
        builds all come from the cache and none compiles in this process."""
        if self._pool is not None and not self._waited:
            for done, f in enumerate(self._futures, 1):
                f.result()
                self._progress(done, self.total)
            self._pool.shutdown()
        self._waited = True
        return self.total >= 2 and all(f.result() for f in self._futures)
