"""The scale-out backend: the job function as a Celery task on Redis.

The message carries only the job id; the database row is the truth and the lease decides
who runs it (bot/service/lease.py), so every delivery Celery makes more than once (a
redelivery after the visibility timeout, a requeue after a lost worker) is harmless.
Settings and why (BOTS.md §7, Celery's docs):

- ``task_acks_late``: the message is acknowledged after the job, so a worker that dies
  mid-job leaves it unacknowledged and Redis hands it out again;
- ``task_reject_on_worker_lost``: a pool child killed by a signal (prefork pool) is
  requeued instead of acknowledged; the cap on attempts (``jobs.max_attempts``, counted in
  the database) stops the message loop Celery warns of;
- ``worker_prefetch_multiplier = 1``: a worker reserves only the jobs it runs;
- ``visibility_timeout`` (``jobs.visibility_timeout``) above the longest job: below it a
  running job's message would be handed to a second worker (whose claim then refuses it).

`mmubot worker` runs the thread pool (``--pool threads``): a job's heavy work runs in child
processes and jails anyway, and a SIGKILLed worker takes its jobs with it instead of
leaving orphaned pool children running; its leases run out and the jobs are taken again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from typing import Any

from celery import Celery
from sqlalchemy import Engine

from bot.config import Config
from bot.service import lease
from bot.service.lease import JobSettings

TASK = "mmu_ci.run_job"
QUEUE = "mmu-ci"  # not Celery's "celery": a Redis shared with other apps stays apart
log = logging.getLogger("mmu-ci.celery")


def _conf(st: JobSettings) -> dict[str, Any]:
    return {
        "broker_url": st.broker_url,
        "broker_transport_options": {"visibility_timeout": st.visibility_timeout},
        "broker_connection_retry_on_startup": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,  # run_job records its failures itself
        "worker_prefetch_multiplier": 1,
        # A running job keeps running when Redis drops; its lease keeps the redelivered
        # message from starting it twice.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "task_default_queue": QUEUE,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,  # the result is the Run row
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
    }


def make_app(cfg: Config, engine: Engine | None = None) -> Celery:
    """A Celery app on ``jobs.broker_url``; with ``engine``, one that runs the task too."""
    st = JobSettings.from_config(cfg)
    app = Celery("mmu_ci", set_as_current=False)
    app.conf.update(_conf(st))
    if engine is not None:
        from bot.service.jobs import run_job

        @app.task(name=TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
        def run(job_id: int) -> str:
            worker = lease.worker_name(threading.current_thread().name)
            try:
                return run_job(cfg, engine, int(job_id), worker).line()
            except Exception:
                # Not even claimed (the database away): this message is acknowledged as
                # failed, so let the next dispatch send a new one.
                with contextlib.suppress(Exception):
                    lease.unsend(engine, int(job_id))
                raise

    return app


@functools.lru_cache(maxsize=4)
def _producer(broker_url: str, visibility_timeout: int) -> Celery:
    app = Celery("mmu_ci", set_as_current=False)
    st = JobSettings("celery", broker_url, 1, 1.0, 1, 1.0, visibility_timeout)
    app.conf.update(_conf(st))
    return app


def send(cfg: Config, job_id: int) -> None:
    """One message for job ``job_id`` (only the id) on the mmu-ci queue."""
    st = JobSettings.from_config(cfg)
    app = _producer(st.broker_url, st.visibility_timeout)
    app.send_task(TASK, args=[job_id], queue=QUEUE, retry=False)
