"""What every page shares: the request limit per client, the headers that forbid scripts
and foreign resources, its own static files, errors as pages or JSON, the /api index."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from bot import config
from bot.store import db
from bot.web.app import create_app
from bot.web.common import RateLimit


def test_rate_limit_window() -> None:
    lim = RateLimit(2, 60.0)
    assert lim.hit("a", 0.0) == 0 and lim.hit("a", 1.0) == 0
    assert lim.hit("a", 2.0) == 58.0  # until the first one leaves the window
    assert lim.hit("b", 2.0) == 0  # per client
    assert lim.hit("a", 60.5) == 0


def test_requests_per_minute_per_client(tmp_path) -> None:
    cfg = config.load(
        environ={"MMUCI_DATA_DIR": str(tmp_path), "MMUCI_WEB_REQUESTS_PER_MINUTE": "3"}
    )
    engine = db.open_engine(cfg)
    c = TestClient(create_app(cfg, engine))
    codes = [c.get("/api/status").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = c.get("/series")
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    engine.dispose()


def test_every_asset_is_its_own(client) -> None:
    html = client.get("/series").text
    refs = re.findall(r'(?:href|src)="([^"]+)"', html)
    assert refs and all(r.startswith("/") and not r.startswith("//") for r in refs), refs
    assert "<script" not in html
    for css in ("/static/style.css", "/verdicts.css"):
        r = client.get(css)
        assert r.status_code == 200 and "text/css" in r.headers["content-type"]
    assert ".v-differs { color: #cc0000; font-weight: bold; }" in client.get("/verdicts.css").text
    h = client.get("/series").headers
    assert h["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in h["content-security-policy"]


def test_errors_are_pages_or_json(client) -> None:
    r = client.get("/no/such/page")
    assert r.status_code == 404 and "start at /series" in r.text and "<html" in r.text
    r = client.get("/api/no/such")
    assert r.status_code == 404 and r.json() == {"error": "no such page; start at /series",
                                                 "status": 404}  # fmt: skip
    assert client.get("/", follow_redirects=False).headers["location"] == "/series"
    api = client.get("/api").json()["endpoints"]
    assert {"/api/series", "/api/series/<id>", "/api/checks/<id>", "/api/history",
            "/api/status", "POST /api/runs"} <= set(api)  # fmt: skip
