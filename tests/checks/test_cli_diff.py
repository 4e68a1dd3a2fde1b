"""`mmubot diff`: exit status and JSON document, on scratch commits of the 6.12 tree."""

from __future__ import annotations

import json

import pytest

from bot import cli
from mmukit.transforms import Transformation, replace_once, within_function
from tests.checks.edits import BEHAVIOUR, REFACTORS

pytestmark = pytest.mark.slow


@pytest.fixture
def env(monkeypatch, data_dir, tmp_path):
    # the build cache lives in the data directory: share the test session's one
    monkeypatch.setenv("MMUCI_DATA_DIR", str(data_dir))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return tmp_path


def _diff(s, rev: str, *extra: str) -> int:
    return cli.main(["diff", "--tree", str(s.path), s.base, rev, *extra])


def test_behaviour_change_exits_1_with_json(scratch_612, env, capsys) -> None:
    case = next(c for c in BEHAVIOUR if c.t.name == "obsolete-ignores-spless")
    rev = scratch_612.commit(case.t)
    out = env / "diff.json"
    assert _diff(scratch_612, rev, "--check", "obsolete_roots", "--json", str(out)) == 1
    doc = json.loads(out.read_text())
    assert {"base", "patched", "checks", "verdict", "exit_status", "timings"} <= set(doc)
    assert doc["exit_status"] == 1 and doc["not_covered"] == []
    assert doc["base"] == scratch_612.base and doc["patched"] == rev
    assert doc["verdict"] == "differs"
    (chk,) = doc["checks"]
    assert {"name", "verdict", "states", "differing", "groups"} <= set(chk)
    assert chk["name"] == "obsolete_roots" and chk["differing"] > 0 and chk["groups"]
    text = capsys.readouterr().out
    assert "obsolete_roots: differs" in text and "verdict: differs" in text


def test_refactor_exits_0(scratch_612, env) -> None:
    case = next(c for c in REFACTORS if c.t.name == "de-morgan")
    rev = scratch_612.commit(case.t)
    assert _diff(scratch_612, rev, "--check", "guest_mode_roots") == 0


def test_bad_input_exits_2(scratch_612, env, capsys) -> None:
    assert _diff(scratch_612, "no-such-rev") == 2
    assert "not a commit" in capsys.readouterr().err
    assert _diff(scratch_612, scratch_612.base, "--check", "no_such_check") == 2
    assert "unknown check" in capsys.readouterr().err


def test_build_error_exits_2(scratch_612, env, capsys) -> None:
    broken = Transformation(
        "does-not-compile",
        "arch/x86/kvm/mmu/mmu.c",
        within_function("is_obsolete_root", replace_once("return !sp ||", "return !sp->nope ||")),
        "KVM: x86/mmu: broken",
    )
    rev = scratch_612.commit(broken)
    assert _diff(scratch_612, rev, "--check", "obsolete_roots") == 2
    assert "obsolete_roots: build-error" in capsys.readouterr().out


def test_a_call_only_one_check_needs_breaks_only_that_check(scratch_612, env, data_dir) -> None:
    # fast_pgd_switch() takes its pgd and role the other way round: the kernel code
    # compiles, pgd_switch's call of it does not. The revision's module (every check's
    # driver) fails to compile; every other check still runs, in a module of its own.
    swapped = Transformation(
        "pgd-switch-swapped-args",
        "arch/x86/kvm/mmu/mmu.c",
        within_function(
            "fast_pgd_switch",
            replace_once(
                "gpa_t new_pgd, union kvm_mmu_page_role new_role)",
                "union kvm_mmu_page_role new_role, gpa_t new_pgd)",
            ),
        ),
        "KVM: x86/mmu: role before pgd",
    )
    rev = scratch_612.commit(swapped)
    out = env / "diff.json"
    assert _diff(scratch_612, rev, "--json", str(out)) == 2
    checks = {c["name"]: c for c in json.loads(out.read_text())["checks"]}
    broken = checks.pop("pgd_switch")
    assert broken["verdict"] == "build-error"
    assert "driver (drivers pgd_switch)" in broken["error"] and "fast_pgd_switch" in broken["error"]
    assert {c["verdict"] for c in checks.values()} == {"same"} and "free_roots" in checks
