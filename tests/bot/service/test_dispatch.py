"""dispatch on Celery (a real redis-server): one message per claimable job, carrying only
its id; a second dispatcher sends nothing more; a job whose worker died gets a new one."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
import redis
from sqlalchemy import update

from bot import config
from bot.service import jobs, lease
from bot.service.celery_app import QUEUE
from bot.service.queue import enqueue
from bot.store import db
from bot.store.models import Job, utcnow

pytestmark = pytest.mark.slow


def bodies(url: str) -> list[list]:
    r = redis.Redis.from_url(url)
    out = []
    for raw in r.lrange(QUEUE, 0, -1):
        msg = json.loads(raw)
        out.append(json.loads(base64.b64decode(msg["body"])))
    return out


def test_dispatch_sends_each_job_id_once_and_again_when_its_worker_died(tmp_path, redis_url):
    env = {
        "MMUCI_DATA_DIR": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "MMUCI_JOBS_BACKEND": "celery",
        "MMUCI_JOBS_BROKER_URL": redis_url,
    }
    cfg = config.load(environ=env)
    engine = db.open_engine(cfg)
    with db.session(engine) as s:
        ids = [enqueue(s, key=f"manual:{i}", ref=f"{i}@x", trigger="manual")[0] for i in range(2)]
        s.flush()
        ids = [j.id for j in ids]
    assert jobs.dispatch(cfg, engine) == ids
    assert jobs.dispatch(cfg, engine) == []  # the watcher and a worker's reaper: sent once
    assert sorted(b[0] for b in bodies(redis_url)) == [[i] for i in ids]  # only the id

    st = lease.JobSettings.from_config(cfg)
    c = lease.claim(engine, ids[0], "host:1", st)
    assert c is not None
    assert jobs.dispatch(cfg, engine) == []  # running on a live lease: no message
    with db.session(engine) as s:  # its worker died: the lease ran out (after the send)
        sent = s.get(Job, ids[0]).sent_at
        assert sent is not None and sent < utcnow()
        gone = sent + timedelta(microseconds=1)
        s.execute(update(Job).where(Job.id == ids[0]).values(lease_until=gone))
    assert jobs.dispatch(cfg, engine) == [ids[0]]
    assert jobs.dispatch(cfg, engine) == []
    assert len(bodies(redis_url)) == 3


def test_dispatch_to_a_broker_that_is_down_says_so_and_keeps_the_job(tmp_path):
    from .servers import free_port

    env = {
        "MMUCI_DATA_DIR": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "MMUCI_JOBS_BACKEND": "celery",
        "MMUCI_JOBS_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",  # nobody listens
    }
    cfg = config.load(environ=env)
    engine = db.open_engine(cfg)
    with db.session(engine) as s:
        enqueue(s, key="manual:down", ref="down@x", trigger="manual")
    with pytest.raises(jobs.DispatchError, match="is redis-server running there"):
        jobs.dispatch(cfg, engine)
    with db.session(engine) as s:
        job = s.query(Job).one()
        assert job.sent_at is None and job.state == "queued"
