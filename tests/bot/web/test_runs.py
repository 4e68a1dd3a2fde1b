"""Manual runs: POST /api/runs and the form need the token (401 without), queue a job
(trigger manual, a row in jobs), and are rate-limited per client."""

from __future__ import annotations

from sqlalchemy import select

from bot.store import db
from bot.store.models import Job, JobState
from tests.bot.web.conftest import TOKEN, make_report, store


def _jobs(engine) -> list[Job]:
    with db.session(engine) as s:
        return list(s.scalars(select(Job).order_by(Job.id)))


def test_without_the_token_401_and_nothing_queued(client, engine) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        r = client.post("/api/runs", json={"ref": "toy-1-0@example.org"}, headers=headers)
        assert r.status_code == 401, headers
        assert "token" in r.json()["error"]
    assert _jobs(engine) == []


def test_with_the_token_a_job_is_queued(client, engine) -> None:
    store(engine, make_report(1))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = client.post("/api/runs", json={"ref": "<toy-1-0@example.org>", "tree": "debian-6.12"},
                    headers=auth)  # fmt: skip
    assert r.status_code == 201, r.text
    job = r.json()["job"]
    (row,) = _jobs(engine)
    assert row.id == job["id"] and row.trigger == "manual" and row.state == JobState.QUEUED
    assert row.key.startswith("manual:toy-1-0@example.org:") and row.key.endswith("Z")
    assert row.ref == "https://lore.kernel.org/kvm/toy-1-0@example.org/"  # a URL, never a path
    assert row.tree == "debian-6.12" and row.revision_id == 1  # the revision it is known as
    # a lore URL is read as its message-id and its own list
    url = "https://lore.example.net/linux-kernel/new-1@example.net/T/#t"
    r = client.post("/api/runs", json={"ref": url}, headers=auth)
    assert r.status_code == 201
    new = _jobs(engine)[-1]
    assert new.ref == "https://lore.example.net/linux-kernel/new-1@example.net/"
    assert new.revision_id is None
    status = client.get("/api/status").json()
    assert status["queue"]["queued"] == 2


def test_bad_requests_say_what_to_send(client, engine) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for body, why in (
        (b"{", "not JSON"),
        (b"[]", "send a JSON object"),
        (b'{"ref": "/etc/passwd"}', "neither a message-id"),
        (b'{"ref": "a@b", "tree": "../x y"}', "not a tree name"),
        (b'{"ref": ""}', "give a message-id"),
    ):
        r = client.post("/api/runs", content=body, headers=auth)
        assert r.status_code == 400 and why in r.json()["error"], (body, r.text)
    assert _jobs(engine) == []


def test_a_large_body_is_refused(client, engine) -> None:
    r = client.post("/api/runs", content=b"x" * 20000, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 413 and "larger than 16384 bytes" in r.json()["error"]
    assert _jobs(engine) == []


def test_the_form_needs_the_token_too(client, engine) -> None:
    assert '<form method="post" action="/runs"' in client.get("/runs/new").text
    r = client.post("/runs", data={"ref": "toy-1-0@example.org", "token": "nope"})
    assert r.status_code == 401 and "a valid token is needed" in r.text
    assert _jobs(engine) == []
    r = client.post("/runs", data={"ref": "toy-1-0@example.org", "token": TOKEN})
    assert r.status_code == 201 and "Queued job 1" in r.text
    assert [j.trigger for j in _jobs(engine)] == ["manual"]


def test_manual_runs_are_rate_limited_per_client(client, engine) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    codes = [client.post("/api/runs", json={"ref": f"m{i}@x.org"}, headers=auth).status_code
             for i in range(7)]  # fmt: skip
    assert codes == [201] * 5 + [429, 429]  # web.runs_per_hour = 5 in these tests
    r = client.post("/api/runs", json={"ref": "late@x.org"}, headers=auth)
    assert int(r.headers["retry-after"]) > 0 and "too many" in r.json()["error"]
    assert len(_jobs(engine)) == 5
    # failed attempts count too: guessing the token is as slow
    r = client.post("/api/runs", json={"ref": "a@b"}, headers={"Authorization": "Bearer x"})
    assert r.status_code == 429


def test_no_token_configured_refuses_every_run(tmp_path) -> None:
    from starlette.testclient import TestClient

    from bot import config
    from bot.web.app import create_app

    cfg = config.load(environ={"MMUCI_DATA_DIR": str(tmp_path)})
    engine = db.open_engine(cfg)
    c = TestClient(create_app(cfg, engine))
    r = c.post("/api/runs", json={"ref": "a@b"}, headers={"Authorization": "Bearer "})
    assert r.status_code == 401 and "manual runs are off" in r.json()["error"]
    assert _jobs(engine) == []
    engine.dispose()


def test_everything_else_is_read_only(client) -> None:
    for path in ("/series", "/api/series", "/status", "/api/status", "/history"):
        assert client.post(path).status_code == 405, path
    assert client.get("/api/runs").status_code == 405
