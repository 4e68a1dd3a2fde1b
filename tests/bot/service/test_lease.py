"""Claiming with a lease (SQLite): one holder at a time, attempts counted, a dead lease
taken up again, the cap turns the job `failed` with its reason, stale holders write
nothing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from bot import config
from bot.service import lease
from bot.service.queue import enqueue
from bot.store import db
from bot.store.models import Job, JobState, utcnow


@pytest.fixture
def engine(tmp_path):
    e = db.make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    db.upgrade(e)
    return e


def settings(**over: str) -> lease.JobSettings:
    env = {f"MMUCI_JOBS_{k.upper()}": v for k, v in over.items()}
    return lease.JobSettings.from_config(
        config.load(environ={"XDG_CONFIG_HOME": "/nonexistent", **env})
    )


def new_job(engine, key: str = "rev:a@b") -> int:
    with db.session(engine) as s:
        job, _ = enqueue(s, key=key, ref="a@b", trigger="watch")
        s.flush()
        return job.id


def expire(engine, job_id: int) -> None:
    """What a worker that died looks like to the others: a lease in the past."""
    with db.session(engine) as s:
        s.execute(
            update(Job).where(Job.id == job_id).values(lease_until=utcnow() - timedelta(seconds=1))
        )


def row(engine, job_id: int) -> Job:
    with db.session(engine) as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job


def test_one_holder_and_the_attempt_counted(engine):
    st = settings()
    jid = new_job(engine)
    c = lease.claim(engine, jid, "w1", st)
    assert c is not None and c.attempt == 1
    assert lease.claim(engine, jid, "w2", st) is None  # a live lease: a duplicate delivery
    j = row(engine, jid)
    assert j.state == JobState.RUNNING and j.lease_owner == "w1" and j.attempts == 1


def test_many_threads_claim_one_job_one_wins(engine):
    st = settings()
    jid = new_job(engine)
    got: list[lease.Claim | None] = []
    start = threading.Barrier(8)

    def grab(i: int) -> None:
        start.wait()
        got.append(lease.claim(engine, jid, f"w{i}", st))

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([c for c in got if c]) == 1
    assert row(engine, jid).attempts == 1


def test_a_dead_lease_is_taken_up_again_and_the_old_holder_writes_nothing(engine):
    st = settings()
    jid = new_job(engine)
    old = lease.claim(engine, jid, "host:1", st)
    assert old is not None
    expire(engine, jid)
    new = lease.claim(engine, jid, "host:2", st)
    assert new is not None and new.attempt == 2
    j = row(engine, jid)
    assert j.lease_owner == "host:2"
    assert j.reason and "attempt 1 lost: host:1 stopped renewing its lease" in j.reason
    assert not lease.renew(engine, old)
    with pytest.raises(lease.LeaseLost), db.session(engine) as s:
        lease.hold(s, old)
    with pytest.raises(lease.LeaseLost):
        lease.finish(engine, old, "done by the old holder")
    lease.finish(engine, new, "same: no difference")
    j = row(engine, jid)
    assert j.state == JobState.DONE and j.reason == "same: no difference"
    assert lease.claim(engine, jid, "host:3", st) is None  # done is done


def test_a_job_whose_workers_keep_dying_ends_failed_saying_why(engine):
    st = settings(max_attempts="2")
    jid = new_job(engine)
    for n in (1, 2):
        c = lease.claim(engine, jid, f"host:{n}", st)
        assert c is not None and c.attempt == n
        expire(engine, jid)
    assert lease.claim(engine, jid, "host:3", st) is None
    j = row(engine, jid)
    assert j.state == JobState.FAILED and j.attempts == 2 and j.finished_at is not None
    assert j.reason == (
        "attempt 2 lost: host:2 stopped renewing its lease (killed or stalled);"
        " no attempt left of 2"
    )


def test_a_failed_attempt_is_queued_again_then_failed_at_the_cap(engine):
    st = settings(max_attempts="2")
    jid = new_job(engine)
    c = lease.claim(engine, jid, "w", st)
    assert c is not None
    assert lease.fail_attempt(engine, c, "boom") == JobState.QUEUED
    j = row(engine, jid)
    assert j.reason == "attempt 1 of 2 failed: boom" and j.sent_at is None
    c = lease.claim(engine, jid, "w", st)
    assert c is not None and c.attempt == 2
    assert lease.fail_attempt(engine, c, "boom again") == JobState.FAILED
    j = row(engine, jid)
    assert j.state == JobState.FAILED and j.reason == "attempt 2 of 2 failed: boom again"
    assert lease.claim(engine, jid, "w", st) is None


def test_the_heartbeat_renews_the_lease_while_the_job_runs(engine):
    st = settings(lease_seconds="0.6")
    jid = new_job(engine)
    c = lease.claim(engine, jid, "w", st)
    assert c is not None
    first = row(engine, jid).lease_until
    renewed = threading.Event()
    with lease.Heartbeat(engine, c) as hb:
        for _ in range(100):
            if row(engine, jid).lease_until != first:
                renewed.set()
                break
            threading.Event().wait(0.05)
    assert renewed.is_set() and not hb.lost


def test_settings_refuse_what_cannot_work():
    with pytest.raises(lease.JobsConfigError, match="jobs.backend"):
        settings(backend="rabbit")
    with pytest.raises(lease.JobsConfigError, match="visibility_timeout"):
        settings(lease_seconds="100", visibility_timeout="50")
