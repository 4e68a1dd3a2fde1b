"""The one job function: claim → fetch → check → store → publish → done; and dispatch.

``run_job(cfg, engine, job_id, worker)`` is what every backend runs (a thread of the
embedded pool, a Celery task): the row is the truth, a queue message is only its id.
Each step leaves its result in the database before the next starts, so a worker killed at
any point loses nothing: the report is stored (one Run per job) before it is published,
and a later attempt that finds the Run only publishes it again, which the outbox turns
into nothing when the mail is already there (its key is the reply's Message-ID).

A series that cannot be checked (bad mail, not found, no base: an MmuCiError of the
input) is an outcome, stored on the job (`done`, "could not check: ..."), not a retry
loop; a failure of ours (any other exception, a list we could not reach) is a failed
attempt with its reason, tried again until ``jobs.max_attempts``, then `failed`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update

from bot.config import Config
from bot.fetch import FetchError
from bot.service import lease
from bot.service.lease import Claim, JobSettings
from bot.store.db import session
from bot.store.models import Job, JobState, utcnow
from checks.verdict import internal_error_reason
from mmuci.errors import MmuCiError
from mmucore.textsafe import printable

log = logging.getLogger("mmu-ci.jobs")


class DispatchError(MmuCiError):
    """A job id could not be handed to the broker; the job stays queued."""


@dataclass(frozen=True)
class Outcome:
    """What one call of run_job did. ``claimed`` False: someone else has (or had) it."""

    job_id: int
    claimed: bool
    state: JobState | None = None
    attempt: int = 0
    reason: str = ""
    run_id: int | None = None

    def line(self) -> str:
        if not self.claimed:
            return f"job {self.job_id}: not claimed (done, failed or held by a live lease)"
        return f"job {self.job_id} attempt {self.attempt}: {self.state}: {self.reason}"


def _first_line(e: BaseException) -> str:
    return printable((str(e).strip().splitlines() or [type(e).__name__])[0])[:500]


def _ours(e: MmuCiError) -> bool:
    """An MmuCiError that is not the series' fault: the list could not be reached."""
    return isinstance(e, FetchError) or isinstance(e.__cause__, FetchError)


def _check(cfg: Config, c: Claim) -> dict[str, Any]:
    from bot import pipeline  # the pipeline loads the checks: only a worker needs them

    report = pipeline.check(c.ref, cfg, tree_name=c.tree, base=c.base)
    out: dict[str, Any] = json.loads(json.dumps(report.to_json()))
    return out  # what is published is what is stored, byte for byte


def _store(engine: Engine, c: Claim, report: dict[str, Any], list_name: str) -> int:
    from bot.service.results import store_report

    with session(engine) as s:
        job = lease.hold(s, c)  # fenced: a worker that lost the job stores nothing
        return store_report(s, report, job=job, list_name=list_name).id


def _publish(cfg: Config, engine: Engine, report: dict[str, Any]) -> list[str]:
    from bot.publish.run import publish

    return publish(report, cfg, engine)


def _work(cfg: Config, engine: Engine, c: Claim) -> tuple[str, int | None]:
    """Do the job; (reason for the done row, run id). Raises for a failed attempt."""
    stored = lease.stored_run(engine, c.job_id)
    run_id: int | None
    if stored is not None:  # a former attempt stored it and died before it was done
        run_id, report = stored[0], json.loads(stored[1])
    else:
        try:
            report = _check(cfg, c)
        except MmuCiError as e:
            if _ours(e):
                raise
            return f"could not check: {_first_line(e)}", None
        series = report.get("series") or {}
        run_id = _store(engine, c, report, str(series.get("lore_url") or cfg.get("lore", "url")))
    notes = _publish(cfg, engine, report)
    said = "; ".join(n for n in notes if n)[:1000]
    return f"{report.get('verdict')}: {report.get('reason', '')}" + (
        f"; {said}" if said else ""
    ), run_id


def run_job(cfg: Config, engine: Engine, job_id: int, worker: str) -> Outcome:
    """Claim job ``job_id`` and run it to its end, or do nothing when it is not claimable
    (a duplicate delivery, or another worker holds a live lease)."""
    st = JobSettings.from_config(cfg)
    c = lease.claim(engine, job_id, worker, st)
    if c is None:
        return Outcome(job_id, False)
    log.info(
        "job %d attempt %d/%d claimed by %s: %s", job_id, c.attempt, c.max_attempts, worker, c.ref
    )
    with lease.Heartbeat(engine, c):
        try:
            reason, run_id = _work(cfg, engine, c)
            lease.finish(engine, c, reason)
        except lease.LeaseLost as e:
            log.warning("%s", e)
            return Outcome(job_id, True, None, c.attempt, str(e))
        except Exception as e:  # noqa: BLE001 - our failure: the attempt says why
            why = (
                _first_line(e)
                if isinstance(e, MmuCiError)
                else internal_error_reason(e, f"running job {job_id}")
            )
            try:
                state = lease.fail_attempt(engine, c, why)
            except lease.LeaseLost as lost:
                return Outcome(job_id, True, None, c.attempt, str(lost))
            log.warning("job %d attempt %d failed: %s", job_id, c.attempt, why)
            return Outcome(job_id, True, state, c.attempt, why)
    log.info("job %d done: %s", job_id, reason)
    return Outcome(job_id, True, JobState.DONE, c.attempt, reason, run_id)


def _needs_message(st: JobSettings) -> Any:
    """A claimable job for which no message can still be on its way: never sent, sent
    before its lease ran out (its worker died holding the message), or sent longer ago
    than the broker's visibility timeout (the message was lost)."""
    now = utcnow()
    return and_(
        lease.claimable(),
        or_(
            Job.sent_at.is_(None),
            and_(Job.state == JobState.RUNNING, Job.sent_at < Job.lease_until),
            Job.sent_at < now - timedelta(seconds=st.visibility_timeout),
        ),
    )


def dispatch(cfg: Config, engine: Engine) -> list[int]:
    """Hand the queued, not yet sent job ids to the backend; the ids handed over.

    embedded: wakes the pools of this process (pools elsewhere poll every
    ``jobs.poll_seconds``). celery: one message per job id, marked sent in the database
    first, so two dispatchers (the watcher, every worker's reaper) send it once."""
    st = JobSettings.from_config(cfg)
    if st.backend == "embedded":
        from bot.service.pool import wake_all

        ids = lease.claimable_ids(engine)
        wake_all()
        return ids
    from bot.service.celery_app import send

    with session(engine) as s:
        candidates = list(s.scalars(select(Job.id).where(_needs_message(st)).order_by(Job.id)))
    sent = []
    for job_id in candidates:
        now = utcnow()
        with session(engine) as s:
            marked = lease.rows(
                s, update(Job).where(Job.id == job_id, _needs_message(st)).values(sent_at=now)
            )
            if marked != 1:
                continue  # another dispatcher sent it meanwhile
        try:
            send(cfg, job_id)
        except Exception as e:
            with session(engine) as s:  # not sent: the next dispatch tries again
                s.execute(
                    update(Job).where(Job.id == job_id, Job.sent_at == now).values(sent_at=None)
                )
            raise DispatchError(
                f"could not hand job {job_id} to the broker {st.broker_url}: {_first_line(e)};"
                " is redis-server running there (jobs.broker_url)? the job stays queued"
            ) from e
        sent.append(job_id)
    return sent
