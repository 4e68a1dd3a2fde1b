"""The status page: queue length, workers (the owners of running jobs' leases), the last
poll of each list, recent failures; with its /api/ twin. It only reads the tables the
watcher and the jobs write."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.store.models import Job, JobState, OutboxItem, PollCursor, Run, Series, utcnow
from bot.store.models import State as OutboxState
from bot.web.common import answer, iso

RECENT_FAILURES = 20


@dataclass(frozen=True)
class Worker:
    owner: str
    jobs: list[int]
    lease_until: datetime | None  # the latest of its leases
    alive: bool  # a lease still running; else it expired (the worker stopped or hangs)


@dataclass(frozen=True)
class StatusPage:
    now: datetime
    jobs: dict[str, int]  # per state
    queued: int
    oldest_queued: datetime | None
    workers: list[Worker]
    polls: list[PollCursor]
    failures: list[Job]
    outbox_failed: int
    series: int
    runs: int

    def to_json(self) -> dict[str, Any]:
        return {
            "now": iso(self.now),
            "queue": {"queued": self.queued, "oldest": iso(self.oldest_queued)},
            "jobs": self.jobs,
            "workers": [
                {
                    "owner": w.owner,
                    "jobs": w.jobs,
                    "lease_until": iso(w.lease_until),
                    "alive": w.alive,
                }
                for w in self.workers
            ],
            "polls": [
                {
                    "list": p.list_url,
                    "last_poll_at": iso(p.last_poll_at),
                    "last_received_at": iso(p.last_received_at),
                    "messages_seen": p.messages_seen,
                    "last_error": p.last_error,
                }
                for p in self.polls
            ],
            "failures": [
                {
                    "job": j.id,
                    "ref": j.ref,
                    "trigger": j.trigger,
                    "attempts": j.attempts,
                    "reason": j.reason,
                    "finished_at": iso(j.finished_at),
                }
                for j in self.failures
            ],
            "outbox_failed": self.outbox_failed,
            "series": self.series,
            "runs": self.runs,
        }


def status_page(s: Session) -> StatusPage:
    now = utcnow()
    counts = {str(st): 0 for st in JobState}
    for state, n in s.execute(select(Job.state, func.count()).group_by(Job.state)):
        counts[str(state)] = n
    oldest = s.scalar(select(func.min(Job.created_at)).where(Job.state == JobState.QUEUED))
    leases: dict[str, list[Job]] = {}
    running = select(Job).where(Job.state == JobState.RUNNING).order_by(Job.id)
    for j in s.scalars(running):
        leases.setdefault(j.lease_owner or "(no owner)", []).append(j)
    workers = []
    for owner, jobs in sorted(leases.items()):
        until = max((j.lease_until for j in jobs if j.lease_until), default=None)
        workers.append(
            Worker(owner, [j.id for j in jobs], until, until is not None and until > now)
        )
    failures = list(
        s.scalars(
            select(Job)
            .where(Job.state == JobState.FAILED)
            .order_by(Job.finished_at.desc(), Job.id.desc())
            .limit(RECENT_FAILURES)
        )
    )
    return StatusPage(
        now=now,
        jobs=counts,
        queued=counts[str(JobState.QUEUED)],
        oldest_queued=oldest,
        workers=workers,
        polls=list(s.scalars(select(PollCursor).order_by(PollCursor.list_url))),
        failures=failures,
        outbox_failed=s.scalar(select(func.count()).where(OutboxItem.state == OutboxState.FAILED))
        or 0,
        series=s.scalar(select(func.count()).select_from(Series)) or 0,
        runs=s.scalar(select(func.count()).select_from(Run)) or 0,
    )


def status_handler(request: Request) -> Response:
    with request.app.state.session() as s:
        data = status_page(s)
    return answer(request, "status.html", data, data.to_json())


def routes() -> list[Route]:
    return [Route("/status", status_handler), Route("/api/status", status_handler)]
