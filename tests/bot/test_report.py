"""The Report model: verdict order, exit status, JSON keys, text and HTML renderings."""

from __future__ import annotations

import json

import pytest

from bot.render_html import render_html
from bot.render_text import render_text
from bot.report import PatchReport, Report, worst
from checks.result import CheckResult, DiffGroup, Example


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
        reproduce="mmubot check m0@x",
    )


def test_worst_and_exit_status():
    assert worst(["same", "out-of-scope"]) == "same"
    assert worst(["out-of-scope"]) == "out-of-scope"
    assert worst(["same", "differs-outside-invariants", "differs"]) == "differs"
    assert worst(["differs", "apply-error"]) == "differs"
    assert worst(["not-covered", "same", "differs-outside-invariants"]) == "not-covered"
    assert worst(["build-error", "internal-error", "apply-error"]) == "internal-error"
    assert _report(["same", "out-of-scope"], [True, False]).exit_code == 0
    assert _report(["differs-outside-invariants"], [False]).exit_code == 1  # as in `diff`
    assert _report(["same", "differs"], [False, True]).exit_code == 1
    assert _report(["crash"], [False]).exit_code == 1
    assert _report(["same", "build-error"], [False, False]).exit_code == 2
    assert _report(["same", "not-covered"], [False, False]).exit_code == 2
    assert _report(["internal-error"], [False]).exit_code == 3
    # by precedence over all verdicts, not the worst: a finding is never hidden
    assert _report(["differs", "apply-error"], [True, False]).exit_code == 1
    assert _report(["internal-error", "differs-outside-invariants"], [False, False]).exit_code == 1
    assert _report(["apply-error", "internal-error"], [False, False]).exit_code == 3


def test_a_finding_of_one_check_is_not_hidden_by_the_patch_verdict():
    r = _report(["not-covered"], [False])  # worse by severity than its check's verdict ...
    r.patches[0].checks = [CheckResult("free_roots", "differs-outside-invariants", 10, 0, 1, ())]
    assert r.verdict == "not-covered" and r.exit_code == 1  # ... which still decides the exit
    assert r.patches[0].to_json()["exit_status"] == 1


def _benign_report() -> Report:
    r = _report(["same", "same"], [True, False])
    ex = Example(state={}, baseline=[], patched=[])
    g = DiffGroup(("root",), 71_000, True, (), "ignore the pgd of an invalid slot", ex, False, 280)
    r.patches[1].checks = [CheckResult("free_roots", "same", 100, 0, 0, (g,))]
    return r


def test_benign_is_shown_wherever_the_verdict_is():
    r = _benign_report()
    line = "same, up to: ignore the pgd of an invalid slot — 71,280 states"
    doc = json.loads(json.dumps(r.to_json()))
    want = {"check": "free_roots", "normalisation": "ignore the pgd of an invalid slot"}
    assert doc["patches"][1]["benign"] == [{**want, "states": 71_280}]
    assert doc["patches"][1]["checks"][0]["benign"] == [{**want, "states": 71_280}]
    assert doc["patches"][0]["benign"] == [] and doc["verdict"] == "same"
    assert doc["benign"] == [{"patch": 2, **want, "states": 71_280}]
    text = render_text(r, width=250)
    row = next(ln for ln in text.splitlines() if "p2" in ln)
    assert f"{line} (free_roots)" in row  # the per-patch table
    assert f"verdict: {line} (patch 2 free_roots)" in text  # the verdict line
    assert f"patch 2: {line}" in text  # the patch's details
    html = render_html(r)
    assert f'<span class="same">{line} (free_roots)</span>' in html
    assert f'Verdict: <span class="same">{line} (patch 2 free_roots)</span>' in html


def test_not_covered_is_shown_and_in_the_json():
    from bot.report import Uncovered

    r = _report(["not-covered"], [False])
    why = "run only by pgd_switch; pgd_switch skipped: fast_pgd_switch is not in this tree"
    r.patches[0].not_covered = (Uncovered("function is_root_usable", ("pgd_switch",), why),)
    doc = r.to_json()
    assert doc["patches"][0]["not_covered"] == [
        {"piece": "function is_root_usable", "name": "is_root_usable", "checks": ["pgd_switch"],
         "why": why}
    ]  # fmt: skip
    assert doc["exit_status"] == 2 == doc["patches"][0]["exit_status"]
    text = render_text(r, width=250)
    assert f"is_root_usable ({why})" in text and "verdict: not-covered" in text
    assert f"is_root_usable ({why})" in render_html(r)


def test_every_verdict_in_the_json_is_a_word_of_the_vocabulary():
    with pytest.raises(ValueError):
        CheckResult("free_roots", "mostly-same", 10, 0, 0, ())
    r = _report(["same"], [False])
    r.patches[0].verdict = "fine"  # type: ignore[assignment]
    with pytest.raises(ValueError):
        r.to_json()


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
    assert "verdict: differs" in text and "reproduce: mmubot check" in text
    html = render_html(r)
    assert html.startswith("<!doctype html>") and "S &lt;&amp;&gt;" in html
    assert '<span class="differs">differs</span>' in html and "claimed, but differs" in html
