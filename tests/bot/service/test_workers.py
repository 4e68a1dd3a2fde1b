"""Real `mmubot worker` processes killed with SIGKILL mid-job, on both backends.

Embedded pool on SQLite; Celery on a real redis-server with a throw-away PostgreSQL
cluster. Series are generated from the prepared 6.1 tree and posted to a real
public-inbox: one in-scope series whose check really extracts, builds and runs (a data
directory of its own, so nothing comes from another session's memo), and out-of-scope
ones. A worker is killed while it checks the in-scope series; the job is taken up again
and finishes once; two live workers share the rest; every job has exactly one Run and
exactly one reply in the outbox.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot import config
from bot.commands.demo import out_of_scope_comment, zap_on_last_ref_nfc
from bot.service import jobs
from bot.service.queue import enqueue
from bot.store import db
from bot.store.models import CheckRow, Job, JobState, Kind, OutboxItem, Run
from mmukit.seriesgen import deliver, make_series

from .servers import start_worker, stop, wait_for

pytestmark = pytest.mark.slow
N_OUT_OF_SCOPE = 3


def make_env(tmp_path: Path, data_dir: Path, inbox, database_url: str, **jobs_cfg: str):
    data = tmp_path / "data"  # its own build cache and memo; the prepared trees linked in
    data.mkdir()
    (data / "trees").symlink_to(data_dir / "trees")
    env = {
        "MMUCI_DATA_DIR": str(data),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "MMUCI_LORE_URL": inbox.url,
        "MMUCI_TREES_DEFAULT": "debian-6.1",
        "MMUCI_DATABASE_URL": database_url,
        "MMUCI_PUBLISH_WHEN": "always",  # one reply per job, found something or not
        "MMUCI_JOBS_LEASE_SECONDS": "3",
        "MMUCI_JOBS_POLL_SECONDS": "0.5",
        "MMUCI_JOBS_MAX_ATTEMPTS": "3",
    }
    env.update({f"MMUCI_JOBS_{k.upper()}": v for k, v in jobs_cfg.items()})
    return env


def post(tree, inbox, tmp_path: Path, sid: str, transformations) -> str:
    gen = make_series(
        tree.path, tree.commit, transformations, workdir=tmp_path / sid, series_id=sid
    )
    deliver(inbox, gen)
    return gen.cover_message_id


def add_job(engine, msgid: str) -> int:
    with db.session(engine) as s:
        job, new = enqueue(s, key=f"rev:{msgid.strip('<>')}", ref=msgid, trigger="watch")
        assert new
        s.flush()
        return job.id


def job(engine, job_id: int) -> Job:
    with db.session(engine) as s:
        j = s.get(Job, job_id)
        assert j is not None
        return j


def owner_pid(j: Job) -> int | None:
    """host:pid[:slot] -> pid."""
    return int(j.lease_owner.split(":")[1]) if j.lease_owner else None


def scenario(tmp_path: Path, env: dict[str, str], tree, inbox, worker_args: list[str]) -> None:
    cfg = config.load(environ=env)
    engine = db.open_engine(cfg)
    in_scope = post(tree, inbox, tmp_path, "jobs-kill-in", [zap_on_last_ref_nfc()])
    others = [
        post(
            tree,
            inbox,
            tmp_path,
            f"jobs-kill-out{i}",
            [dataclasses.replace(out_of_scope_comment(), subject=f"KVM: x86: comment {i}")],
        )
        for i in range(N_OUT_OF_SCOPE)
    ]
    logs = tmp_path / "logs"
    logs.mkdir()
    started = []
    try:
        target = add_job(engine, in_scope)
        jobs.dispatch(cfg, engine)  # what the watcher does after its poll
        a = start_worker(env, logs / "a.log", *worker_args)
        started.append(a)
        running = wait_for(
            "worker A to claim the in-scope job",
            lambda: (j := job(engine, target)).state == JobState.RUNNING and j,
            timeout=120,
        )
        assert owner_pid(running) == a.pid
        # Well inside the check (extraction, builds and runs take seconds), the worker dies.
        wait_for("a renewed lease", lambda: job(engine, target).lease_until != running.lease_until,
                 timeout=30)  # fmt: skip
        os.kill(a.pid, signal.SIGKILL)
        a.wait()
        killed = job(engine, target)
        assert killed.state == JobState.RUNNING and killed.attempts == 1  # it was mid-job
        with db.session(engine) as s:
            assert s.scalar(select(func.count()).select_from(Run)) == 0

        rest = [add_job(engine, m) for m in others]
        jobs.dispatch(cfg, engine)
        for name in ("b", "c"):  # two live workers share what is left
            started.append(start_worker(env, logs / f"{name}.log", *worker_args))
        ids = [target, *rest]
        wait_for(
            "every job to be done",
            lambda: all(job(engine, i).state == JobState.DONE for i in ids),
            timeout=600,
            every=0.5,
        )
    finally:
        for p in started:
            stop(p)
    log_tail = "".join((logs / f).read_text()[-3000:] for f in ("a.log", "b.log", "c.log"))

    done = job(engine, target)
    assert done.attempts == 2, log_tail  # taken up again once, after the lease ran out
    assert owner_pid(done) != a.pid
    assert all(job(engine, i).attempts == 1 for i in rest), log_tail
    with db.session(engine) as s:
        runs = {r.job_id: r for r in s.scalars(select(Run))}
        assert sorted(runs) == sorted(ids)  # exactly one Run per job, none twice
        assert runs[target].verdict == "differs"  # a real check ran in the worker
        n_checks = s.scalar(select(func.count()).where(CheckRow.run_id == runs[target].id))
        assert n_checks and n_checks > 0
        assert all(runs[i].verdict == "out-of-scope" for i in rest)
        mails = list(s.scalars(select(OutboxItem).where(OutboxItem.kind == Kind.MAIL)))
    by_series: dict[str, int] = {}
    for m in mails:
        by_series[m.series_msgid] = by_series.get(m.series_msgid, 0) + 1
    want = {m.strip("<>") for m in [in_scope, *others]}
    assert {k.strip("<>") for k in by_series} == want
    assert set(by_series.values()) == {1}  # one reply per job, no duplicate


def test_embedded_pool_process_killed_mid_job(tmp_path, data_dir, tree_61, local_inbox):
    env = make_env(
        tmp_path, data_dir, local_inbox, f"sqlite:///{tmp_path / 'mmu-ci.sqlite3'}",
        backend="embedded",
    )  # fmt: skip
    scenario(tmp_path, env, tree_61, local_inbox, ["--workers", "1"])


def test_celery_worker_killed_mid_job(
    tmp_path, data_dir, tree_61, local_inbox, postgres_url, redis_url
):
    env = make_env(
        tmp_path, data_dir, local_inbox, postgres_url,
        backend="celery", broker_url=redis_url, visibility_timeout="3600",
    )  # fmt: skip
    scenario(tmp_path, env, tree_61, local_inbox, ["--workers", "1"])
