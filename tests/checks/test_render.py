"""The result model and its rendering, without a kernel tree."""

from __future__ import annotations

import json

from checks import render
from checks.result import CheckResult, DiffGroup, Example, verdict_for, worst_verdict
from checks.space import all_checks


def _group(inside: bool, benign: str | None = None, needs=(), any_=False) -> DiffGroup:
    ex = Example({"roots_to_free": "KVM_MMU_ROOT_CURRENT"}, ["write_lock(&kvm->mmu_lock)"], [], 7)
    return DiffGroup(("locks",), 3, inside, needs, benign, ex, any_)


def test_events_are_written_as_the_calls_they_stand_for() -> None:
    ev = render.render_event
    assert ev({"kind": "WRITE_LOCK", "a": 1}) == "write_lock(&kvm->mmu_lock)"
    assert ev({"kind": "READ_UNLOCK", "a": 1}) == "read_unlock(&kvm->mmu_lock)"
    assert ev({"kind": "PREPARE_ZAP", "a": 2}) == "kvm_mmu_prepare_zap_page(sp#2)"
    assert ev({"kind": "TDP_PUT_ROOT", "a": 4, "b": -1}) == "kvm_tdp_mmu_put_root(kvm, sp#4)"
    assert ev({"kind": "TDP_PUT_ROOT", "a": 4, "b": 0}) == "kvm_tdp_mmu_put_root(kvm, sp#4, false)"
    warn = {"kind": "WARN", "file": "arch/x86/kvm/mmu/mmu.c", "line": 3611, "cond": "!sp"}
    assert ev({**warn, "macro": "WARN_ON_ONCE"}) == "WARN_ON_ONCE(!sp) at mmu.c:3611"
    fail = {"kind": "LOCKDEP_FAIL", "a": 1, "b": 2, "file": "mmu.c", "line": 9}
    assert ev(fail) == "lockdep_assert_held_write(&kvm->mmu_lock) fails at mmu.c:9"
    named = ev({"kind": "PREPARE_ZAP", "a": 0}, {0: "pae_root"})
    assert named == "kvm_mmu_prepare_zap_page(pae_root)"


def test_hpas_are_named_by_page() -> None:
    assert render.hpa_name(render.INVALID_PAGE) == "INVALID_PAGE"
    assert render.hpa_name((0x1000 + 3) << 12) == "__pa(sp#3)"
    assert render.hpa_name(((0x1000 + 7) << 12) | 1) == "__pa(sp#7) | 0x1"
    assert render.hpa_name(0x0FF0 << 12) == "dummy root (zero page)"


def test_verdicts() -> None:
    assert verdict_for([], False) == "same"
    assert verdict_for([_group(True)], False) == "differs"
    assert verdict_for([_group(False)], False) == "differs-outside-invariants"
    assert verdict_for([_group(True, benign="ignore the pgd of an invalid slot")], False) == "same"
    assert verdict_for([_group(True)], True) == "crash"
    assert worst_verdict(["same", "skipped", "differs-outside-invariants"]) == (
        "differs-outside-invariants"
    )
    assert worst_verdict(["crash", "build-error"]) == "crash"  # checks/verdict.py's order
    assert worst_verdict(["skipped"]) == "same"


def test_text_and_json() -> None:
    r = CheckResult(
        "free_roots", "differs-outside-invariants", 10, 0, 3,
        (_group(False, needs=("I2", "I9"), any_=True),),
        invariants={"I2": "root kind matches the mode", "I9": "dummy only 6.6+"},
    )  # fmt: skip
    text = render.render_results([r], "a" * 40, "b" * 40)
    assert "free_roots: differs-outside-invariants" in text
    assert "needs I2 or I9 broken:" in text and "I2: root kind matches the mode" in text
    assert "roots_to_free = KVM_MMU_ROOT_CURRENT" in text
    assert text.rstrip().endswith("verdict: differs-outside-invariants")
    doc = json.loads(json.dumps(render.to_json([r], "a", "b", {"total": 1.0})))
    assert set(doc) == {
        "base", "patched", "checks", "verdict", "benign", "not_covered", "exit_status", "timings"
    }  # fmt: skip
    assert doc["exit_status"] == 1 and doc["benign"] == [] and doc["not_covered"] == []
    (c,) = doc["checks"]
    assert c["differing"] == 3 and c["groups"][0]["what"] == ["locks"]


def test_every_check_declares_the_same_things() -> None:
    checks = all_checks()
    assert [c.name for c in checks] == [
        "free_roots", "guest_mode_roots", "obsolete_roots", "pgd_switch"
    ]  # fmt: skip
    for c in checks:
        assert c.entry and c.dims and c.invariants and c.normalisations
        assert all(len(d.labels) >= 2 for d in c.dims)
        assert c.decode(0) == {d.name: d.labels[0] for d in c.dims}
        assert c.decode(c.size - 1) == {d.name: d.labels[-1] for d in c.dims}
    assert all_checks(["free_roots"])[0].size >= 10**7


def test_a_stored_check_reads_back_as_the_same_result() -> None:
    """result_from_json inverts result_to_json: a saved report is explained by the same
    functions as a fresh one (the dashboard renders stored reports)."""
    crash = Example({"mmu->root": "INVALID_PAGE"}, ["*** fault ***"], [], 3, ("I2",))
    r = CheckResult(
        "free_roots", "differs", 100, 7, 2,
        (_group(True), _group(False, needs=("I1", "I8"), any_=True), _group(True, "pgd")),
        crash=crash, invariants={"I1": "one", "I8": "eight"}, crash_outside=1,
        fixed_dims=("flush_on_reuse = false only: why",), stood_for=50, timings={"run": 0.5},
    )  # fmt: skip
    stored = json.loads(json.dumps(render.result_to_json(r)))
    back = render.result_from_json(stored)
    assert back == r
    assert render.render_result(back) == render.render_result(r)
    assert render.group_summary(back.groups[1], back.invariants) == [
        "  - locks differ: 3 states, only outside the invariants",
        "    needs I1 or I8 broken:",
        "      I1: one",
        "      I8: eight",
    ]
    assert render.crash_summary(back).startswith("crashes only outside the invariants (I2")
