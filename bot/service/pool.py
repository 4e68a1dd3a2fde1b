"""The embedded worker pool: threads inside `mmubot watch`, `mmubot serve` or `mmubot
worker` that claim claimable job rows (queued, or running on a dead lease) and run them.

No broker: the database is the queue. Each thread polls it every ``jobs.poll_seconds``
and at once when woken (``wake()``, or ``jobs.dispatch`` in the same process). Threads,
not processes: a job's heavy work (git, gcc, the checks) already runs in child processes
and jails, and a killed bot takes its jobs' children with it, so nothing runs on that
nobody holds a lease for. Any number of pools (processes, machines) may share one
database: the claim decides.
"""

from __future__ import annotations

import logging
import threading
import weakref

from sqlalchemy import Engine

from bot.config import Config
from bot.service import lease
from bot.service.jobs import Outcome, run_job
from bot.service.lease import JobSettings

log = logging.getLogger("mmu-ci.pool")
_POOLS: weakref.WeakSet[Pool] = weakref.WeakSet()


def wake_all() -> None:
    """Wake every started pool of this process (a job was just queued)."""
    for p in list(_POOLS):
        p.wake()


class Pool:
    """``workers`` threads running jobs; ``start()``, ``wake()``, ``stop()``."""

    def __init__(self, cfg: Config, engine: Engine, workers: int | None = None) -> None:
        self.cfg, self.engine = cfg, engine
        self.settings = JobSettings.from_config(cfg)
        self.workers = workers or self.settings.workers
        self.outcomes: list[Outcome] = []  # what this pool ran, newest last (for callers)
        self._stop = threading.Event()
        self._wakes = [threading.Event() for _ in range(self.workers)]
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> Pool:
        if self._threads:
            return self
        for i in range(self.workers):
            t = threading.Thread(target=self._loop, args=(i,), name=f"mmu-ci-job-{i}", daemon=True)
            self._threads.append(t)
            t.start()
        _POOLS.add(self)
        return self

    def wake(self) -> None:
        for w in self._wakes:
            w.set()

    def stop(self, timeout: float | None = None) -> bool:
        """Take no new job, let the running ones finish (up to ``timeout``); True when
        every thread ended. A job still running when the process exits is taken up again
        by another worker once its lease runs out."""
        self._stop.set()
        self.wake()
        for t in self._threads:
            t.join(timeout)
        _POOLS.discard(self)
        return not any(t.is_alive() for t in self._threads)

    def _loop(self, i: int) -> None:
        worker = lease.worker_name(f"pool{i}")
        while not self._stop.is_set():
            try:
                ran = self.run_one(worker)
            except Exception:  # a database outage: log it, the next poll tries again
                log.exception("job pool %s: could not claim or run a job", worker)
                ran = False
            if not ran:
                self._wakes[i].wait(self.settings.poll_seconds)
                self._wakes[i].clear()

    def run_one(self, worker: str) -> bool:
        """Claim and run the oldest claimable job; False when there was none to take."""
        for job_id in lease.claimable_ids(self.engine):
            if self._stop.is_set():
                return False
            out = run_job(self.cfg, self.engine, job_id, worker)
            if out.claimed:
                with self._lock:
                    self.outcomes.append(out)
                return True
        return False
