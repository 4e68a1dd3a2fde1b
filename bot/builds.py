"""The builds of a series' revisions in worker processes (one per core), started before
the checks run and shared by them: the chains find their modules in the build cache
(bot/runs.py decides which builds are needed, in the order the chains need them)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from mmuci.proc import set_pdeathsig

if TYPE_CHECKING:
    from mmucore.extract import Extraction

BUILD_JOBS = 2  # gcc is single-threaded: one compile per core


Item = tuple[str, "Extraction", Path, "Extraction", int, "Path | None"]
CLAIM_WAIT = 30.0  # seconds a build waits for an earlier one's code digest, then builds


def _build_one(item: Item) -> bool:
    """In a worker process: build the module of one revision a check runs in (it holds
    the drivers of every check that applies to the revision); False when the build failed.

    With ``claims`` (twins, pruned or not), the digest of exactly what its module would
    be (checks/prune.py: module_code) goes into ``claims/<n>``; when an earlier build of this
    Prebuild has the same digest the module is not built: the chain runs the earlier one's
    (engine.run, prune.twin_of). The first BUILD_JOBS items (the first chain's) build at
    once and write their digest after; a later item starts only once one of them is done,
    so it never waits for their digests."""
    from checks.engine import build_one
    from checks.space import all_checks

    name, built, cache_dir, ex, n, claims = item
    chk = all_checks([name])[0]
    first = n < BUILD_JOBS
    if claims is not None and not first:
        token = _claim(chk, ex, built, cache_dir, n, claims)
        if token and _twin_before(n, token, claims):
            return True
    try:
        build_one(chk, built, cache_dir)
    except Exception:  # noqa: BLE001 - the check run reports it with context
        return False
    finally:
        if claims is not None and first:
            _claim(chk, ex, built, cache_dir, n, claims)
    return True


def _claim(
    chk: object, ex: Extraction, built: Extraction, cache_dir: Path, n: int, claims: Path
) -> str:
    """Write item ``n``'s digest ('' when it has none) into ``claims``; return it."""
    from checks.prune import module_code

    token = ""
    try:
        token = module_code(chk, ex, built, cache_dir).exact
    except Exception:  # noqa: BLE001 - no digest: built as any other; the chain reports
        pass
    try:
        tmp = claims / f".{n}"
        tmp.write_text(token)
        os.replace(tmp, claims / str(n))
    except OSError:  # later items wait CLAIM_WAIT for it, then build
        return ""
    return token


def _twin_before(n: int, token: str, claims: Path) -> bool:
    """Whether an earlier item's module is exactly item ``n``'s (digest ``token``)."""
    deadline = time.monotonic() + CLAIM_WAIT
    for j in range(n):  # each started before this one (one queue, in order)
        path = claims / str(j)
        while not path.exists():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        try:
            if path.read_text() == token:
                return True
        except OSError:
            return False
    return False


class Prebuild:
    """Builds under way in worker processes (one per core) while the checks already run:
    a chain that needs a module being built waits for it (the build cache's lock per
    module), one not started yet is built by the chain itself (never twice).

    ``prepare`` makes what a build compiles from its extraction (the probes, which cost
    ~0.1 s a revision): each build is submitted as soon as its own is made, so the
    workers start compiling while the later revisions are still being probed. With
    ``twins`` a revision whose module would be exactly an earlier one's (the same code
    and sites' lines) is not built (`_build_one`): the chains run the earlier module."""

    def __init__(
        self,
        todo: list[tuple[str, Extraction]],
        cache_dir: Path,
        progress: Callable[[int, int], None],
        prepare: Callable[[Extraction], Extraction] = lambda ex: ex,
        twins: bool = False,
    ) -> None:
        self.total, self._progress = len(todo), progress
        self._claims: Path | None = None
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
        if twins:
            self._claims = Path(tempfile.mkdtemp(prefix="mmuci-claims-"))
        for n, (name, ex) in enumerate(todo):
            f = self._pool.submit(_build_one, (name, prepare(ex), cache_dir, ex, n, self._claims))
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
        if self._claims is not None:
            shutil.rmtree(self._claims, ignore_errors=True)
        self._waited = True
        return self.total >= 2 and all(f.result() for f in self._futures)
