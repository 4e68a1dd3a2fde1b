"""Enqueueing: idempotent by key, across sessions."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.service.queue import enqueue
from bot.store import db
from bot.store.models import Job, JobState


def test_one_key_one_job(engine):
    with db.session(engine) as s:
        job, new = enqueue(s, key="rev:a@b", ref="a@b", trigger="watch")
        assert new and job.state == JobState.QUEUED and job.attempts == 0
    with db.session(engine) as s:
        again, new = enqueue(s, key="rev:a@b", ref="a@b", trigger="command")
        assert not new and again.id == job.id and again.trigger == "watch"
        assert s.scalar(select(func.count()).select_from(Job)) == 1


def test_a_later_session_gets_the_first_job_beside_its_own_writes(engine):
    with db.session(engine) as s1:
        mine, _ = enqueue(s1, key="rev:x@y", ref="x@y", trigger="watch")
    with db.session(engine) as s2:
        s2.add(Job(key="rev:other@y", ref="o@y", trigger="watch", state=JobState.QUEUED))
        theirs, new = enqueue(s2, key="rev:x@y", ref="x@y", trigger="manual")
        assert not new and theirs.id == mine.id
    with db.session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 2


def test_an_unknown_trigger_is_refused(engine):
    with db.session(engine) as s, pytest.raises(ValueError, match="one of watch"):
        enqueue(s, key="k", ref="r", trigger="cron")


def test_message_ref_round_trips_through_intake() -> None:
    from bot.mbox import parse_ref
    from bot.service.queue import message_ref

    for mid in ("a/b@example.org", "<x+y=z@example.org>", "20260101.1234-1-a@b.c"):
        ref = message_ref("http://127.0.0.1:1/kvm/", mid)
        assert ref.startswith("http://127.0.0.1:1/kvm/") and ref.endswith("/")
        assert parse_ref(ref, "unused") == (mid.strip("<>"), "http://127.0.0.1:1/kvm")
