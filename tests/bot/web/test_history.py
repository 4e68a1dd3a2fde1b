"""History: verdicts per week, time from posting to verdict, states per second, as SVG
made by matplotlib on the server, and the same data under /api/history."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

from bot.store import db
from bot.store.models import Job, Revision, Run, utcnow
from bot.web.history import week_of
from tests.bot.web.conftest import make_report, store


def test_the_plotted_data(client, engine) -> None:
    ids = store(engine, make_report(1), make_report(2, finding=False), make_report(3))
    now = utcnow()
    with db.session(engine) as s:
        for k, run_id in enumerate(ids):
            run = s.get(Run, run_id)
            run.created_at = now - timedelta(weeks=2 * k)
        # the third came through a job, posted 5 hours before its verdict
        job = Job(key="rev:toy-3-0@example.org", ref="x", trigger="watch")
        s.add(job)
        s.flush()
        run = s.get(Run, ids[2])
        run.job_id = job.id
        s.get(Revision, run.revision_id).posted_at = run.created_at - timedelta(hours=5)
    d = client.get("/api/history?weeks=8").json()
    weeks = [week_of((now - timedelta(weeks=w)).date()).isoformat() for w in (4, 3, 2, 1, 0)]
    assert d["weeks"] == weeks  # every week between the first and the last, empty ones too
    assert d["verdicts_per_week"] == {"differs": [1, 0, 0, 0, 1], "same": [0, 0, 1, 0, 0]}
    assert [p["median_hours"] for p in d["hours_to_verdict"]] == [5.0]  # imports have none
    speeds = d["states_per_second"]["free_roots"]
    # per day the mean over its runs' checks: a finding's two (200,000 states in 1 s and
    # in 2 s) make 150,000; a clean one's two 200,000
    assert sorted(p["states_per_second"] for p in speeds) == [150000.0, 150000.0, 200000.0]
    assert client.get("/api/history?weeks=1").json()["verdicts_per_week"] == {"differs": [1]}


def test_plots_are_svg_from_the_server(client, engine) -> None:
    store(engine, make_report(1))
    html = client.get("/history").text
    for name in ("verdicts", "latency", "speed"):
        assert f'src="/history/{name}.svg?weeks=26"' in html
        r = client.get(f"/history/{name}.svg")
        assert r.status_code == 200 and r.headers["content-type"] == "image/svg+xml"
        root = ET.fromstring(r.content)
        assert root.tag.endswith("svg")
        assert "Matplotlib" in r.text  # made by the plotting library, not by hand
    assert "differs" in client.get("/history/verdicts.svg").text  # its legend
    assert "no data yet" in client.get("/history/latency.svg").text  # an import has no Date:
    assert client.get("/history/nope.svg").status_code == 404
