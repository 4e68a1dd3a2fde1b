"""The difference page: each group explained as checks/render.py explains it, the example
state as a table, both traces side by side with the differing rows marked."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.store import db
from bot.store.models import CheckRow
from bot.web.diffs import side_by_side
from checks.render import group_summary, result_from_json
from tests.bot.web.conftest import make_report, store


def _differing(engine) -> int:
    with db.session(engine) as s:
        return s.scalar(select(CheckRow.id).where(CheckRow.verdict == "differs"))


def test_groups_examples_and_traces(client, engine) -> None:
    report = make_report(1)
    store(engine, report)
    cid = _differing(engine)
    html = client.get(f"/checks/{cid}").text
    stored = report["patches"][1]["checks"][0]
    r = result_from_json(stored)
    for g in r.groups:  # the explanation is the one the mail gives, line by line
        for line in group_summary(g, r.invariants):
            assert line.replace(">", "&gt;") in html
    assert "60,258 states, inside the invariants (and 12 more outside them)" in html
    assert "needs I8 broken" in html and "roots_to_free holds only KVM_MMU_ROOT_* bits" in html
    # the example state as a table of kernel fields
    assert re.search(r"<td>mmu-&gt;root</td><td>shadow sp#3</td>", html)
    # side by side: the call only the patched code makes and the differing field are marked
    marked = re.findall(r'<tr class=d><td class="mark">≠</td><td>(.*?)</td><td>(.*?)</td>', html)
    assert ("", "kvm_mmu_prepare_zap_page(sp#3)") in marked
    assert (
        "! sp#3 freed = no",
        "! sp#3 freed = freed by kvm_mmu_commit_zap_page  (was no)",
    ) in marked
    assert ("write_lock(&amp;kvm-&gt;mmu_lock)", "write_lock(&amp;kvm-&gt;mmu_lock)") not in marked
    api = client.get(f"/api/checks/{cid}").json()
    assert api["check"] == stored  # the same keys as `check --json`
    assert api["patch"]["index"] == 2 and api["series_id"] == 1
    sides = api["groups"][0]["example"]["sides"]
    assert {"baseline": "", "patched": "kvm_mmu_prepare_zap_page(sp#3)", "marked": True} in sides


def test_side_by_side_aligns_calls_and_fields() -> None:
    rows = side_by_side(
        ["lock", "unlock", "  a = 1", "! b = 2"],
        ["lock", "zap", "unlock", "  a = 1", "! b = 3  (was 2)"],
    )
    assert [(r.baseline, r.patched, r.marked) for r in rows] == [
        ("lock", "lock", False),
        ("", "zap", True),
        ("unlock", "unlock", False),
        ("  a = 1", "  a = 1", False),
        ("! b = 2", "! b = 3  (was 2)", True),
    ]


def test_an_unknown_check_result_is_404(client) -> None:
    r = client.get("/api/checks/99")
    assert r.status_code == 404 and "no check result 99" in r.json()["error"]
