"""The Report model: verdict order, exit status, JSON keys, text and HTML renderings."""

from __future__ import annotations

import json

from bot.render_html import render_html
from bot.render_text import render_text
from bot.report import PatchReport, Report, worst
from checks.result import CheckResult


def _report(verdicts: list[str], nfc: list[bool]) -> Report:
    patches = [
        PatchReport(i, f"KVM: x86/mmu: p{i}", f"m{i}@x", v, f"why {i}", c)
        for i, (v, c) in enumerate(zip(verdicts, nfc, strict=True), 1)
    ]
    patches[0].checks = [CheckResult("free_roots", verdicts[0], 10, 0, 0, ())]
    return Report(
        series={"subject": "S <&>", "revision": 2, "author": "A <a@x>"},
        base={"tree": "debian-6.1", "commit": "ab" * 20, "version": "6.1.192", "reason": "r"},
        patches=patches,
        verdict=worst(verdicts),
        reason="summary",
        timings={"total": 1.5},
        reproduce="pip install mmu-ci; mmubot check m0@x",
    )


def test_worst_and_exit_status():
    assert worst(["same", "out-of-scope"]) == "same"
    assert worst(["out-of-scope"]) == "out-of-scope"
    assert worst(["same", "differs-outside-invariants", "differs"]) == "differs"
    assert worst(["differs", "apply-error"]) == "apply-error"
    assert _report(["same", "out-of-scope"], [True, False]).exit_code == 0
    assert _report(["differs-outside-invariants"], [False]).exit_code == 0
    assert _report(["same", "differs"], [False, True]).exit_code == 1
    assert _report(["crash"], [False]).exit_code == 1
    assert _report(["same", "build-error"], [False, False]).exit_code == 2
    assert _report(["differs", "apply-error"], [True, False]).exit_code == 2


def test_json_contract_and_nfc_flag(tmp_path):
    r = _report(["differs", "same"], [True, True])
    r.write_json(tmp_path / "r.json")
    d = json.loads((tmp_path / "r.json").read_text())
    assert {"series", "base", "patches", "verdict", "timings"} <= set(d)
    for p in d["patches"]:
        assert {"index", "subject", "verdict", "checks", "nfc_claim"} <= set(p)
    assert d["nfc_contradicted"] == [1] and d["patches"][0]["nfc_contradicted"]
    assert d["patches"][0]["checks"][0]["name"] == "free_roots"
    assert d["exit_status"] == 1


def test_text_and_html():
    r = _report(["differs", "out-of-scope"], [True, False])
    text = render_text(r)
    assert "patch 1 says it makes no functional change, but its behaviour differs" in text
    assert "verdict: differs" in text and "reproduce: pip install mmu-ci" in text
    html = render_html(r)
    assert html.startswith("<!doctype html>") and "S &lt;&amp;&gt;" in html
    assert '<span class="differs">differs</span>' in html and "claimed, but differs" in html
