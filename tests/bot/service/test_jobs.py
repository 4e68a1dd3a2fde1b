"""The job function on SQLite without a kernel tree: a failure of ours is a failed attempt,
retried up to jobs.max_attempts, then `failed` with its reason; a series that cannot be
checked is an outcome, not a retry loop; the embedded pool runs what dispatch hands it."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bot import config
from bot.publish.run import publish
from bot.service import jobs, lease
from bot.service.pool import Pool
from bot.service.queue import enqueue
from bot.service.results import store_report
from bot.store import db
from bot.store.models import Job, JobState, Kind, OutboxItem, Run, utcnow
from mmukit.seriesgen import write_mbox
from tests.bot.publish.conftest import mail, post_series, report_json

from .servers import wait_for

TOY_DIFF = (
    "---\n toy.c | 2 +-\n\ndiff --git a/toy.c b/toy.c\n--- a/toy.c\n+++ b/toy.c\n"
    "@@ -1 +1 @@\n-int x = 1;\n+int x = 2;\n-- \n2.39.5\n"
)


def toy_mbox(path: Path) -> Path:
    """One patch mail of our own toy C (no kernel code): a series intake accepts."""
    body = "Toy change.\n\nSigned-off-by: A. U. Thor <author@example.org>\n" + TOY_DIFF
    return write_mbox([mail("toy-1@example.org", "[PATCH] KVM: x86/mmu: toy", body)], path)


@pytest.fixture
def setup(tmp_path):
    data = tmp_path / "data"
    env = {
        "MMUCI_DATA_DIR": str(data),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "MMUCI_LORE_URL": "http://127.0.0.1:9/kvm/",  # never asked: the refs are files
        "MMUCI_JOBS_MAX_ATTEMPTS": "2",
        "MMUCI_JOBS_POLL_SECONDS": "0.2",
    }
    cfg = config.load(environ=env)
    return cfg, db.open_engine(cfg), tmp_path


def add_job(engine, ref: str, key: str) -> int:
    with db.session(engine) as s:
        job, _ = enqueue(s, key=key, ref=ref, trigger="manual")
        s.flush()
        return job.id


def job_row(engine, job_id: int) -> Job:
    with db.session(engine) as s:
        j = s.get(Job, job_id)
        assert j is not None
        return j


def test_a_job_failing_by_our_fault_is_retried_then_failed_with_its_reason(setup):
    cfg, engine, tmp = setup
    trees = cfg.data_dir / "trees"
    trees.mkdir(parents=True)
    (trees / "registry.json").write_text('{"trees": ')  # the bot's own state is broken
    jid = add_job(engine, str(toy_mbox(tmp / "toy.mbox")), "manual:toy")

    first = jobs.run_job(cfg, engine, jid, "w")
    assert first.claimed and first.state == JobState.QUEUED and first.attempt == 1
    j = job_row(engine, jid)
    assert j.state == JobState.QUEUED and j.reason is not None
    assert j.reason.startswith("attempt 1 of 2 failed: mmu-ci internal error while running job")
    assert "JSONDecodeError" in j.reason

    second = jobs.run_job(cfg, engine, jid, "w")
    assert second.state == JobState.FAILED and second.attempt == 2
    j = job_row(engine, jid)
    assert j.state == JobState.FAILED and j.attempts == 2 and j.finished_at is not None
    assert j.reason.startswith("attempt 2 of 2 failed: mmu-ci internal error")
    assert "JSONDecodeError" in j.reason and "kernels.py" in j.reason  # where it happened
    assert not jobs.run_job(cfg, engine, jid, "w").claimed  # no third attempt
    with db.session(engine) as s:
        assert s.query(Run).count() == 0


def test_a_series_that_cannot_be_checked_is_an_outcome_not_a_retry(setup):
    cfg, engine, tmp = setup
    junk = tmp / "junk.mbox"
    junk.write_bytes(b"\x00\x01 not a mail at all")
    jid = add_job(engine, str(junk), "manual:junk")
    out = jobs.run_job(cfg, engine, jid, "w")
    assert out.state == JobState.DONE and out.attempt == 1
    j = job_row(engine, jid)
    assert j.state == JobState.DONE and j.attempts == 1
    assert j.reason and j.reason.startswith("could not check: ") and "binary data" in j.reason
    assert not jobs.run_job(cfg, engine, jid, "w").claimed


def test_dispatch_wakes_the_embedded_pool_which_runs_each_job_once(setup):
    cfg, engine, tmp = setup
    cfg.values["jobs"]["poll_seconds"] = 3600.0  # idle threads sleep: only a wake runs jobs
    pool = Pool(cfg, engine, workers=2).start()
    try:
        time.sleep(0.5)  # both threads found nothing and sleep (late ones would only help)
        ids = []
        for i in range(3):
            junk = tmp / f"junk{i}.mbox"
            junk.write_text(f"nothing {i}\n")
            ids.append(add_job(engine, str(junk), f"manual:junk{i}"))
        assert jobs.dispatch(cfg, engine) == ids  # the claimable ids; the pool is woken
        wait_for(
            "the woken pool to finish three jobs",
            lambda: all(job_row(engine, i).state == JobState.DONE for i in ids),
            timeout=60,
        )
    finally:
        assert pool.stop(timeout=60)
    assert sorted(o.job_id for o in pool.outcomes) == ids  # each claimed once, by one thread
    assert all(job_row(engine, i).attempts == 1 for i in ids)
    assert jobs.dispatch(cfg, engine) == []  # nothing claimable is left


def test_a_job_whose_worker_died_after_storing_only_publishes_once(tmp_path, local_inbox):
    """The Run was stored, then the worker died before the reply: the next attempt finds
    the Run, publishes it (one mail), stores nothing twice; a further publish adds none."""

    ids = post_series(local_inbox, "jobs-resume")
    env = {
        "MMUCI_DATA_DIR": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "MMUCI_LORE_URL": local_inbox.url,
    }
    cfg = config.load(environ=env)
    engine = db.open_engine(cfg)
    report = report_json(ids, local_inbox.url)
    report["series"]["patches"] = [
        {"index": i, "subject": f"KVM: x86/mmu: toy {i}", "msgid": ids[i]} for i in (1, 2)
    ]
    jid = add_job(engine, ids[0], "rev:jobs-resume")
    st = lease.JobSettings.from_config(cfg)
    first = lease.claim(engine, jid, "host:1", st)
    assert first is not None
    with db.session(engine) as s:
        store_report(s, report, job=lease.hold(s, first))
        s.execute(update(Job).where(Job.id == jid).values(lease_until=utcnow() - timedelta(0, 1)))

    out = jobs.run_job(cfg, engine, jid, "host:2")
    assert out.state == JobState.DONE and out.attempt == 2 and out.run_id is not None
    assert "dry-run: mail" in out.reason
    with db.session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Run)) == 1
        mails = s.scalar(select(func.count()).where(OutboxItem.kind == Kind.MAIL))
        assert mails == 1
    notes = publish(report, cfg, engine)
    assert any("already in the outbox" in n for n in notes)
