"""The series list: newest first, filters, search, paging; the page and its /api/ twin."""

from __future__ import annotations

from tests.bot.web.conftest import make_report, store


def _fill(engine) -> None:
    store(engine, make_report(1, subject="KVM: x86/mmu: Tidy up root freeing"))
    store(engine, make_report(2, subject="KVM: x86/mmu: Cache roots", finding=False,
                              author="Rev Iewer <rev@example.org>"), list_name="lkml")  # fmt: skip
    store(engine, make_report(3, subject="KVM: x86/mmu: Zap obsolete roots", finding=False))


def test_newest_first_with_paging(client, engine) -> None:
    _fill(engine)
    first = client.get("/api/series").json()
    assert first["total"] == 3 and first["pages"] == 2 and first["page"] == 1
    subjects = [r["subject"] for r in first["series"]]
    assert subjects == ["KVM: x86/mmu: Zap obsolete roots", "KVM: x86/mmu: Cache roots"]
    second = client.get("/api/series?page=2").json()
    assert [r["subject"] for r in second["series"]] == ["KVM: x86/mmu: Tidy up root freeing"]
    row = second["series"][0]
    assert row["verdict"] == "differs" and row["tree"] == "debian-6.1" and row["revision"] == 1
    assert row["url"] == f"/series/{row['id']}" and row["msgid"] == "toy-1-0@example.org"
    html = client.get("/series").text
    assert "older →" in html and 'href="/series?page=2"' in html


def test_filters_and_search(client, engine) -> None:
    _fill(engine)

    def subjects(q: str) -> list[str]:
        r = client.get(f"/api/series?{q}")
        assert r.status_code == 200, r.text
        return sorted(x["subject"].split(": ")[-1] for x in r.json()["series"])

    assert subjects("verdict=differs") == ["Tidy up root freeing"]
    assert subjects("verdict=same") == ["Cache roots", "Zap obsolete roots"]
    assert subjects("verdict=crash") == []
    assert subjects("author=REV") == ["Cache roots"]  # any part of it, any case
    assert subjects("list=lkml") == ["Cache roots"]
    assert subjects("tree=debian-6.1&verdict=same&list=kvm") == ["Zap obsolete roots"]
    assert subjects("tree=other") == []
    assert subjects("q=obsolete") == ["Zap obsolete roots"]
    # by message-id: the cover letter's, a patch's, angle-bracketed or as a lore URL
    assert subjects("q=toy-2-0@example.org") == ["Cache roots"]
    assert subjects("q=%3Ctoy-3-2@example.org%3E") == ["Zap obsolete roots"]
    assert subjects("q=https://lore.kernel.org/kvm/toy-1-1@example.org/") == [
        "Tidy up root freeing"
    ]
    assert subjects("q=100%25") == []  # LIKE wildcards are text
    page = client.get("/series?verdict=same").text
    assert '<option value="same" selected>' in page and "Cache roots" in page


def test_a_series_not_run_yet_shows_so(client, engine) -> None:
    from bot.service.results import record_revision
    from bot.store import db

    with db.session(engine) as s:
        record_revision(s, make_report(9)["series"], list_name="kvm")
    rows = client.get("/api/series?verdict=none").json()["series"]
    assert [r["verdict"] for r in rows] == [None]
    assert "not run yet" in client.get("/series").text


def test_bad_parameters_are_400_and_say_why(client) -> None:
    r = client.get("/api/series?verdict=bogus")
    assert r.status_code == 400 and "one of crash, differs" in r.json()["error"]
    r = client.get("/series?page=zero")
    assert r.status_code == 400 and "page=&#39;zero&#39; is not a number" in r.text
