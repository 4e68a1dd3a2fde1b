"""Claiming a job row with a lease: the database, not the queue, decides who runs a job.

A claim is one atomic UPDATE ... WHERE state = queued OR (running AND lease_until < now):
the attempt is counted in the same statement, so two workers handed the same job id (a
redelivered Celery message, two pool threads) never both hold it. The holder renews the
lease while it works (``Heartbeat``); a worker that died stops renewing, its lease runs
out and the next claim takes the job up again, counted as an attempt. Every write of the
holder is fenced by (owner, attempt): a worker that lost its lease writes nothing.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any

from sqlalchemy import CursorResult, Engine, String, and_, case, cast, literal, or_, select, update
from sqlalchemy.orm import Session

from bot.config import Config
from bot.store.db import session
from bot.store.models import Job, JobState, Run, utcnow
from mmuci.errors import MmuCiError

BACKENDS = ("embedded", "celery")


class JobsConfigError(MmuCiError):
    """A [jobs] setting that cannot work."""


class LeaseLost(Exception):
    """Another worker holds the job now (this one stalled past its lease): write nothing."""


@dataclass(frozen=True)
class JobSettings:
    backend: str
    broker_url: str
    workers: int
    lease_seconds: float
    max_attempts: int
    poll_seconds: float
    visibility_timeout: int

    @classmethod
    def from_config(cls, cfg: Config) -> JobSettings:
        st = cls(
            str(cfg.get("jobs", "backend")),
            str(cfg.get("jobs", "broker_url")),
            int(cfg.get("jobs", "workers")),
            float(cfg.get("jobs", "lease_seconds")),
            int(cfg.get("jobs", "max_attempts")),
            float(cfg.get("jobs", "poll_seconds")),
            int(cfg.get("jobs", "visibility_timeout")),
        )
        if st.backend not in BACKENDS:
            raise JobsConfigError(f"jobs.backend {st.backend!r}: use embedded or celery")
        if min(st.workers, st.max_attempts) < 1 or min(st.lease_seconds, st.poll_seconds) <= 0:
            raise JobsConfigError(
                "jobs.workers, jobs.max_attempts, jobs.lease_seconds and jobs.poll_seconds "
                "must be positive"
            )
        if st.visibility_timeout <= st.lease_seconds:
            raise JobsConfigError(
                f"jobs.visibility_timeout ({st.visibility_timeout} s) must be above "
                f"jobs.lease_seconds ({st.lease_seconds:g} s) and above the longest job"
            )
        return st


def worker_name(slot: str = "") -> str:
    """host:pid[:slot]: who holds a lease (the status page lists running jobs' owners)."""
    base = f"{socket.gethostname()}:{os.getpid()}"
    return f"{base}:{slot}" if slot else base


@dataclass(frozen=True)
class Claim:
    """A job this worker holds: its fence is (worker, attempt)."""

    job_id: int
    worker: str
    attempt: int
    max_attempts: int
    ref: str
    tree: str | None
    base: str | None
    lease_seconds: float


def rows(s: Session, stmt: Any) -> int:
    """How many rows an UPDATE changed."""
    result: CursorResult[Any] = s.execute(stmt)  # type: ignore[assignment]
    return result.rowcount


def claimable() -> Any:
    """The SQL condition of a job a worker may take: queued, or running on a dead lease."""
    now = utcnow()
    return or_(
        Job.state == JobState.QUEUED,
        and_(Job.state == JobState.RUNNING, Job.lease_until < now),
    )


def claimable_ids(engine: Engine, limit: int = 20) -> list[int]:
    """Oldest first: the jobs a worker could claim now."""
    with session(engine) as s:
        q = select(Job.id).where(claimable()).order_by(Job.id).limit(limit)
        return list(s.scalars(q))


def _lost(prefix: str) -> Any:
    """SQL text: 'attempt N lost: OWNER stopped renewing its lease' (from the old row)."""
    return (
        literal(prefix)
        + cast(Job.attempts, String)
        + literal(" lost: ")
        + Job.lease_owner
        + literal(" stopped renewing its lease (killed or stalled)")
    )


def claim(engine: Engine, job_id: int, worker: str, st: JobSettings) -> Claim | None:
    """Take job ``job_id`` for ``worker``, or None when it is not to be taken (done, failed,
    held by a live lease, or its attempts are used up: then it is marked failed here)."""
    now = utcnow()
    with session(engine) as s:
        s.execute(  # a job with no attempt left is failed, saying why, instead of taken
            update(Job)
            .where(Job.id == job_id, claimable(), Job.attempts >= st.max_attempts)
            .values(
                state=JobState.FAILED,
                finished_at=now,
                lease_until=None,
                reason=case(
                    (
                        Job.state == JobState.RUNNING,
                        _lost("attempt ") + literal(f"; no attempt left of {st.max_attempts}"),
                    ),
                    else_=Job.reason,
                ),
            )
        )
        took = rows(
            s,
            update(Job)
            .where(Job.id == job_id, claimable(), Job.attempts < st.max_attempts)
            .values(
                state=JobState.RUNNING,
                attempts=Job.attempts + 1,
                max_attempts=st.max_attempts,
                lease_owner=worker,
                lease_until=now + timedelta(seconds=st.lease_seconds),
                started_at=now,
                reason=case((Job.state == JobState.RUNNING, _lost("attempt ")), else_=Job.reason),
            ),
        )
        if took != 1:
            return None
        job = s.get(Job, job_id)
        assert job is not None
        return Claim(
            job.id,
            worker,
            job.attempts,
            job.max_attempts,
            job.ref,
            job.tree,
            job.base,
            st.lease_seconds,
        )


def unsend(engine: Engine, job_id: int) -> None:
    """Forget that a message was sent for a job still queued: dispatch sends a new one."""
    with session(engine) as s:
        s.execute(
            update(Job).where(Job.id == job_id, Job.state == JobState.QUEUED).values(sent_at=None)
        )


def _fence(c: Claim) -> Any:
    return and_(
        Job.id == c.job_id,
        Job.state == JobState.RUNNING,
        Job.lease_owner == c.worker,
        Job.attempts == c.attempt,
    )


def renew(engine: Engine, c: Claim) -> bool:
    """Extend the lease; False when this worker does not hold the job any more."""
    until = utcnow() + timedelta(seconds=c.lease_seconds)
    with session(engine) as s:
        return rows(s, update(Job).where(_fence(c)).values(lease_until=until)) == 1


def hold(s: Session, c: Claim) -> Job:
    """Inside a transaction that writes a result: lock the row for ``c`` (renewing the
    lease) or raise LeaseLost. The write and this check commit together."""
    until = utcnow() + timedelta(seconds=c.lease_seconds)
    if rows(s, update(Job).where(_fence(c)).values(lease_until=until)) != 1:
        raise LeaseLost(f"job {c.job_id}: attempt {c.attempt} of {c.worker} lost its lease")
    job = s.get(Job, c.job_id)
    assert job is not None
    return job


def stored_run(engine: Engine, job_id: int) -> tuple[int, str] | None:
    """(run id, report JSON) a former attempt stored before it died: only publishing is
    left to do."""
    with session(engine) as s:
        row = s.execute(select(Run.id, Run.report).where(Run.job_id == job_id)).first()
        return (row[0], row[1]) if row else None


def finish(engine: Engine, c: Claim, reason: str) -> None:
    """The job is done: its Run (if any) is stored, its reply is in the outbox."""
    now = utcnow()
    with session(engine) as s:
        hold(s, c)
        s.execute(
            update(Job)
            .where(Job.id == c.job_id)
            .values(state=JobState.DONE, finished_at=now, lease_until=None, reason=reason)
        )


def fail_attempt(engine: Engine, c: Claim, why: str) -> JobState:
    """An attempt failed by our fault: queued again for the next one, or `failed` when it
    was the last. The reason says which attempt and why."""
    last = c.attempt >= c.max_attempts
    state = JobState.FAILED if last else JobState.QUEUED
    reason = f"attempt {c.attempt} of {c.max_attempts} failed: {why}"
    with session(engine) as s:
        hold(s, c)
        s.execute(
            update(Job)
            .where(Job.id == c.job_id)
            .values(
                state=state,
                lease_until=None,
                sent_at=None,  # a queued job needs a new message
                finished_at=utcnow() if last else None,
                reason=reason,
            )
        )
    return state


class Heartbeat:
    """Renews the lease every third of it while the job runs (a thread); ``lost`` turns
    true when another worker took the job (this one had stalled past its lease)."""

    def __init__(self, engine: Engine, c: Claim) -> None:
        self.engine, self.claim = engine, c
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{c.job_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.claim.lease_seconds / 3):
            try:
                if not renew(self.engine, self.claim):
                    self.lost = True
                    return
            except Exception:  # noqa: BLE001 - a database hiccup: try again next beat
                continue

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        typ: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
