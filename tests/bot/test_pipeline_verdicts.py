"""Verdicts and exit statuses end to end (`mmubot check` and `mmubot diff` on the 6.1
tree): a finding is never hidden by a patch that does not apply, mmu-ci's own failure is
`internal-error` (exit 3) and never the patch's, benign normalisations are shown with the
verdict, and `check` and `diff` give the same exit status for the same verdict."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from bot import cli
from bot.commands.demo import out_of_scope_comment, refactor_nfc, zap_on_last_ref_nfc
from mmuci import proc
from mmukit.seriesgen import deliver, make_series
from tests.checks.edits import BENIGN, OUTSIDE

pytestmark = pytest.mark.slow

MMUBOT = [sys.executable, "-m", "bot.cli"]
BENIGN_LINE = "same, up to: ignore the pgd of an invalid slot — "


@pytest.fixture
def env(monkeypatch, data_dir, tmp_path, tree_61):
    monkeypatch.setenv("MMUCI_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MMUCI_TREES_DEFAULT", "debian-6.1")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return tmp_path


def _series(tree, ts, tmp_path: Path, sid: str):
    return make_series(tree.path, tree.commit, ts, workdir=tmp_path / sid, series_id=sid)


def _check(ref: str, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    out = tmp_path / "report.json"
    code = cli.main(["check", ref, "--json", str(out), *extra])
    return code, json.loads(out.read_text())


def _diff(gen, tmp_path: Path, *extra: str) -> tuple[int, dict]:
    out = tmp_path / "diff.json"
    code = cli.main(
        ["diff", "--tree", str(gen.clone), gen.base, gen.head, "--json", str(out), *extra]
    )
    return code, json.loads(out.read_text())


def test_a_difference_is_not_hidden_by_a_patch_that_does_not_apply(
    local_inbox, data_dir, tree_61, tmp_path
):
    gen = _series(tree_61, [zap_on_last_ref_nfc(), out_of_scope_comment()], tmp_path, "t-hide")
    mails = list(gen.mails)
    mails[2] = re.sub(rb"(?m)^ (int kvm_mmu_load\()", rb" static \1", mails[2])  # stale context
    deliver(local_inbox, mails)
    env = {
        "MMUCI_DATA_DIR": str(data_dir),
        "MMUCI_LORE_URL": local_inbox.url,
        "MMUCI_TREES_DEFAULT": "debian-6.1",
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
    }
    out = tmp_path / "r.json"
    r = proc.run([*MMUBOT, "check", gen.cover_message_id, "--json", str(out)], extra_env=env,
                 check=False)  # fmt: skip
    rep = json.loads(out.read_text())
    assert [p["verdict"] for p in rep["patches"]] == ["differs", "apply-error"], r.stderr
    assert r.returncode == 1 and rep["exit_status"] == 1  # the behaviour change decides
    assert rep["verdict"] == "differs"
    assert [p["exit_status"] for p in rep["patches"]] == [1, 2]
    rows = [ln for ln in r.stdout.splitlines() if re.match(r"\s*[12]\s", ln)]
    assert "differs" in rows[0] and "apply-error" in rows[1], r.stdout  # both shown
    assert "exit status: 1" in r.stdout


def test_our_own_failure_is_internal_error_never_the_patchs(env, tree_61, monkeypatch, capsys):
    from bot import runs

    def broken(*args, **kw):
        raise KeyError("root_role")

    gen = _series(tree_61, [refactor_nfc()], env, "t-internal")
    mbox = gen.write_mbox(env / "s.mbox")
    with monkeypatch.context() as m:
        m.setattr(runs, "not_covered", broken)  # our own code fails, not the patch
        code, rep = _check(str(mbox), env)
    (p,) = rep["patches"]
    assert p["verdict"] == rep["verdict"] == "internal-error" and code == 3 == rep["exit_status"]
    assert p["reason"].startswith("mmu-ci internal error while running the checks: KeyError at ")
    assert "bug in mmu-ci, not in the patch" in p["reason"] and "please report" in p["reason"]
    assert "internal-error" in capsys.readouterr().out

    from checks import engine

    monkeypatch.setattr(engine, "run", broken)
    code, doc = _diff(gen, env, "--check", "free_roots", "--check", "obsolete_roots")
    assert code == 3 == doc["exit_status"] and doc["verdict"] == "internal-error"
    for c in doc["checks"]:
        assert c["verdict"] == "internal-error"
        assert c["error"].startswith(f"mmu-ci internal error while running {c['name']}: KeyError")
    assert "free_roots: internal-error" in capsys.readouterr().out


def test_a_crash_of_the_bot_itself_exits_3(env, monkeypatch, capsys):
    from bot import pipeline

    def broken(*args, **kw):
        raise KeyError("prev_roots")

    monkeypatch.setattr(pipeline, "check", broken)
    assert cli.main(["check", "whatever@example.org"]) == 3
    err = capsys.readouterr().err
    head = "mmubot: internal-error: mmu-ci internal error while running the mmubot check command"
    assert f"{head}: KeyError" in err
    assert "please report it" in err


@pytest.mark.parametrize("case", [OUTSIDE[1], BENIGN], ids=lambda c: c.t.name)
def test_check_and_diff_give_the_same_exit_status(env, tree_61, case, capsys):
    gen = _series(tree_61, [case.t], env, f"t-same-exit-{case.t.name}")
    mbox = gen.write_mbox(env / "s.mbox")
    code, rep = _check(str(mbox), env)
    check_text = capsys.readouterr().out
    (p,) = rep["patches"]
    assert p["verdict"] == rep["verdict"] == case.verdict, p["reason"]
    dcode, doc = _diff(gen, env, "--check", case.check)
    diff_text = capsys.readouterr().out
    assert doc["verdict"] == case.verdict
    assert (
        code
        == dcode
        == rep["exit_status"]
        == doc["exit_status"]
        == (1 if case.verdict == "differs-outside-invariants" else 0)
    )
    if case is BENIGN:  # the normalisation is in the verdict, in both commands and JSONs
        (b,) = [b for b in p["benign"] if b["check"] == case.check]
        assert b["normalisation"] == "ignore the pgd of an invalid slot" and b["states"] > 0
        assert doc["benign"] == [b]
        assert f"verdict: {BENIGN_LINE}{b['states']:,} states (free_roots)" in diff_text
        assert f"{BENIGN_LINE}{b['states']:,} states (free_roots)" in check_text
        assert f"verdict: {BENIGN_LINE}" in check_text
