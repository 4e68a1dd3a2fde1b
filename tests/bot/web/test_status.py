"""The status page: queue length, workers from running jobs' leases, last poll per list,
failures — read from the tables the watcher and the jobs write."""

from __future__ import annotations

from datetime import timedelta

from bot.service.queue import enqueue
from bot.store import db
from bot.store.models import JobState, PollCursor, utcnow


def test_queue_workers_polls_and_failures(client, engine) -> None:
    now = utcnow()
    with db.session(engine) as s:
        jobs = [enqueue(s, key=f"rev:{i}@x", ref=f"{i}@x", trigger="watch")[0] for i in range(6)]
        for j, owner, until in ((jobs[0], "host-a:101", now + timedelta(minutes=5)),
                                (jobs[1], "host-a:101", now + timedelta(minutes=9)),
                                (jobs[2], "host-b:7", now - timedelta(minutes=1))):  # fmt: skip
            j.state, j.lease_owner, j.lease_until = JobState.RUNNING, owner, until
        jobs[3].state, jobs[3].reason, jobs[3].attempts = JobState.FAILED, "<fetch> 404", 3
        jobs[3].finished_at = now
        s.add(PollCursor(list_url="https://lore.kernel.org/kvm", last_poll_at=now,
                         messages_seen=42, last_error="HTTP 503 from lore"))  # fmt: skip
    d = client.get("/api/status").json()
    assert d["queue"]["queued"] == 2 and d["jobs"]["running"] == 3 and d["jobs"]["failed"] == 1
    workers = {w["owner"]: w for w in d["workers"]}
    assert workers["host-a:101"]["jobs"] == [jobs[0].id, jobs[1].id]
    assert workers["host-a:101"]["alive"] and not workers["host-b:7"]["alive"]
    (poll,) = d["polls"]
    assert poll["list"] == "https://lore.kernel.org/kvm" and poll["messages_seen"] == 42
    assert poll["last_error"] == "HTTP 503 from lore"
    (fail,) = d["failures"]
    assert fail["job"] == jobs[3].id and fail["reason"] == "<fetch> 404" and fail["attempts"] == 3
    html = client.get("/status").text
    assert "<strong>2</strong> job(s) queued" in html and "lease expired" in html
    assert "HTTP 503 from lore" in html and "&lt;fetch&gt; 404" in html


def test_an_empty_database(client) -> None:
    html = client.get("/status").text
    assert "No job is running" in html and "No list polled yet" in html
    assert "No failed job" in html
