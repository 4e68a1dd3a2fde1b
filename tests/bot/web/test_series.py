"""The series page: per-patch verdicts, NFC claims, base, links, reproduce; its /api/ twin
carries the stored report unchanged; untrusted text is escaped."""

from __future__ import annotations

from sqlalchemy import select

from bot.store import db
from bot.store.models import CheckRow
from tests.bot.web.conftest import make_report, store


def test_the_page_says_what_the_report_says(client, engine) -> None:
    report = make_report(1)
    (run_id,) = store(engine, report)
    html = client.get("/series/1").text
    assert "KVM: x86/mmu: toy series" in html and "v1" in html
    assert "claimed, but it differs" in html  # patch 2 claims NFC and differs
    assert "claimed, holds" in html  # patch 1 claims NFC and is the same
    assert "base-commit ad03f84ed25a found in debian-6.1" in html
    assert "mmubot check toy-1-0@example.org" in html  # reproduce
    assert 'href="https://lore.example.org/kvm/toy-1-2@example.org/"' in html
    with db.session(engine) as s:
        row = s.scalar(select(CheckRow).where(CheckRow.run_id == run_id, CheckRow.patch_index == 2))
    assert f'href="/checks/{row.id}"' in html
    api = client.get("/api/series/1").json()
    assert api["report"] == report  # the same keys (and values) as `check --json`
    assert api["check_ids"]["2:free_roots"] == row.id
    assert api["run"]["verdict"] == "differs" and api["revision"] == 1


def test_the_mail_link_by_message_id_and_revision(client, engine) -> None:
    store(engine, make_report(1))
    for path in ("/series/toy-1-0@example.org/v1", "/series/toy-1-2@example.org"):
        r = client.get(path)
        assert r.status_code == 200 and "toy series" in r.text, path
    r = client.get("/api/series/toy-1-0@example.org/v2")
    assert r.status_code == 404 and "has no v2 (it has v1)" in r.json()["error"]
    assert client.get("/series/77").status_code == 404
    assert client.get("/api/series/nobody@example.org").status_code == 404


def test_patchwork_links_when_configured(tmp_path) -> None:
    from starlette.testclient import TestClient

    from bot import config
    from bot.web.app import create_app

    cfg = config.load(
        environ={
            "MMUCI_DATA_DIR": str(tmp_path),
            "MMUCI_PATCHWORK_URL": "https://patchwork.example.org",
            "MMUCI_PATCHWORK_PROJECT": "kvm",
        }
    )
    engine = db.open_engine(cfg)
    store(engine, make_report(1))
    html = TestClient(create_app(cfg, engine)).get("/series/1").text
    assert 'href="https://patchwork.example.org/project/kvm/patch/toy-1-1%40example.org/"' in html
    engine.dispose()


def test_untrusted_text_is_escaped(client, engine) -> None:
    evil = "<script>alert(1)</script> \x1b[2J\u202e"
    store(engine, make_report(1, subject=evil, author="<img src=x onerror=alert(2)>",
                             trace_line="<b>WARN_ON(x < y && z > 0)</b>"))  # fmt: skip
    pages = [client.get(p).text for p in ("/series", "/series/1", "/checks/2", "/checks/1")]
    for html in pages:
        assert "<script>" not in html and "<img src=x" not in html and "<b>WARN" not in html
        assert "\x1b" not in html and "\u202e" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; \\x1b[2J\\u202e" in pages[0]
    assert "&lt;img src=x onerror=alert(2)&gt;" in pages[1]
    assert "&lt;b&gt;WARN_ON(x &lt; y &amp;&amp; z &gt; 0)&lt;/b&gt;" in pages[2] + pages[3]
    # and the browser would run no script anyway
    assert "script-src" not in client.get("/series").headers["content-security-policy"]
    assert "default-src 'none'" in client.get("/series").headers["content-security-policy"]
