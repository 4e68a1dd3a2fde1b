"""`not-covered`: a change to modelled code that no check that ran executes is never `same`.

On small fake trees of our own C (tests/mmucore/fakelinux.py, 5.17-shaped) and on the
prepared 6.1 tree, through `runs.run_checks`, `mmubot check` and `mmubot diff`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot import cli, kernels, runs
from bot.memo import Memo
from mmuci import proc
from mmucore import scope
from mmucore.extract import extract
from mmukit.seriesgen import make_series
from mmukit.transforms import (
    Transformation,
    chain,
    function_span,
    rename,
    replace_once,
    within_function,
)
from tests.mmucore import fakelinux
from tests.mmucore.treeedit import IDENTITY

MMU_C = "arch/x86/kvm/mmu/mmu.c"
UNCHANGED_TEXT = "the code the checks run is unchanged"


def _drop_function(name: str):
    def edit(text: str) -> str:
        start, end = function_span(text, name)
        return text[:start] + text[end:]

    return edit


def _fake_tree(dest: Path, *, without: tuple[str, ...] = ()) -> Path:
    """fakelinux's tree, optionally without some of its functions (a tree lacking a
    check's entry function: that check cannot run there, whatever API it models)."""
    fakelinux.make(dest)
    if without:
        path = dest / MMU_C
        text = path.read_text()
        for name in without:
            if f" {name}(" in text:  # the fake tree of another API shape may lack it
                text = _drop_function(name)(text)
        path.write_text(text)
        proc.git(dest, "commit", "-q", "-a", "-m", "fake tree without " + ", ".join(without),
                 extra_env=IDENTITY)  # fmt: skip
    return dest


def _usable_ignores_direct() -> Transformation:
    """A behaviour change in the fake tree's is_root_usable (our own C)."""
    return Transformation(
        "usable-ignores-direct",
        MMU_C,
        within_function("is_root_usable", replace_once("want.direct || ", "")),
        "KVM: x86/mmu: Compare the pgd of direct roots too",
    )


def _commit(tree: Path, t: Transformation) -> tuple[str, str]:
    base = proc.git(tree, "rev-parse", "HEAD")
    t.apply(tree)
    proc.git(tree, "commit", "-q", "-a", "-m", t.subject, extra_env=IDENTITY)
    return base, proc.git(tree, "rev-parse", "HEAD")


def _outcome(tree: Path, base: str, head: str, tmp_path: Path) -> runs.Outcome:
    a, b = extract(tree, base), extract(tree, head)
    job = runs.Job(a, b, scope.changed_pieces(a, b, code_only=True))
    return runs.run_checks(job, tmp_path / "cache", Memo(tmp_path / "memo"))


def test_a_change_no_check_can_run_is_not_covered(tmp_path) -> None:
    tree = _fake_tree(tmp_path / "t", without=("__kvm_mmu_new_pgd", "fast_pgd_switch"))
    out = _outcome(tree, *_commit(tree, _usable_ignores_direct()), tmp_path)
    assert out.verdict == "not-covered", out.reason
    (u,) = out.not_covered
    assert u.piece == "function is_root_usable" and u.checks == ()
    assert "no check that ran reaches it" in u.why
    assert "pgd_switch skipped: baseline: fast_pgd_switch is not in this tree" in u.why
    assert (
        out.reason.startswith("not-covered: is_root_usable (") and UNCHANGED_TEXT not in out.reason
    )
    # without the change nothing is uncovered: comments/layout only stays `same`
    same = _outcome(tree, "HEAD~1", "HEAD~1", tmp_path)
    assert same.verdict == "same" and not same.not_covered and UNCHANGED_TEXT in same.reason


def test_a_change_only_a_skipped_check_runs_is_never_same(tmp_path) -> None:
    # 5.17-shaped: pgd_switch is the only check reaching is_root_usable. Whether it runs
    # on this API generation or is skipped, the verdict is never a silent `same`.
    tree = _fake_tree(tmp_path / "t")
    out = _outcome(tree, *_commit(tree, _usable_ignores_direct()), tmp_path)
    pgd = next(r for r in out.results if r.name == "pgd_switch")
    assert out.verdict != "same", out.reason
    if pgd.verdict == "skipped":
        assert out.verdict == "not-covered"
        (u,) = out.not_covered
        assert u.name == "is_root_usable" and u.checks == ("pgd_switch",)
        assert u.why.startswith("run only by pgd_switch; pgd_switch skipped: baseline: ")
    else:
        assert not out.not_covered


@pytest.mark.slow
def test_check_of_a_fake_tree_series_says_not_covered(tmp_path, monkeypatch, capsys) -> None:
    tree = _fake_tree(tmp_path / "t", without=("__kvm_mmu_new_pgd", "fast_pgd_switch"))
    data = tmp_path / "data"
    name = kernels.prepare(data, str(tree))[0].name
    gen = make_series(
        tree, "HEAD", [_usable_ignores_direct()], workdir=tmp_path / "w", series_id="t-nc-fake"
    )
    mbox = gen.write_mbox(tmp_path / "s.mbox")
    monkeypatch.setenv("MMUCI_DATA_DIR", str(data))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    out = tmp_path / "r.json"
    assert cli.main(["check", str(mbox), "--tree", name, "--json", str(out)]) == 2
    rep = json.loads(out.read_text())
    (p,) = rep["patches"]
    assert p["verdict"] == rep["verdict"] == "not-covered" and rep["exit_status"] == 2
    assert [u["name"] for u in p["not_covered"]] == ["is_root_usable"]
    assert UNCHANGED_TEXT not in p["reason"] and "is_root_usable" in p["reason"]
    text = capsys.readouterr().out
    assert "not-covered" in text and "fast_pgd_switch is not in this tree" in text


def _pgd_switch_renamed() -> Transformation:
    """On 6.1: fast_pgd_switch renamed (pgd_switch has no entry in the patched tree) and
    is_root_usable changed (the demo's refactor) in the same patch."""
    return Transformation(
        "pgd-switch-renamed",
        MMU_C,
        chain(
            rename("fast_pgd_switch", "kvm_mmu_fast_switch"),
            within_function("is_root_usable", replace_once("pgd == root->pgd", "root->pgd == pgd")),
        ),
        "KVM: x86/mmu: Rename fast_pgd_switch()",
        "No functional change intended.",
    )


@pytest.mark.slow
def test_on_61_check_and_diff_say_not_covered(tree_61, data_dir, tmp_path, monkeypatch, capsys):
    gen = make_series(
        tree_61.path, tree_61.commit, [_pgd_switch_renamed()], workdir=tmp_path / "w",
        series_id="t-nc-61",
    )  # fmt: skip
    mbox = gen.write_mbox(tmp_path / "s.mbox")
    monkeypatch.setenv("MMUCI_DATA_DIR", str(data_dir))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    out = tmp_path / "r.json"
    assert cli.main(["check", str(mbox), "--json", str(out)]) == 2
    rep = json.loads(out.read_text())
    (p,) = rep["patches"]
    assert p["verdict"] == "not-covered" and rep["exit_status"] == 2, p["reason"]
    names = {u["name"]: u for u in p["not_covered"]}
    assert {"is_root_usable", "fast_pgd_switch"} <= set(names)
    why = names["is_root_usable"]["why"]
    assert why.startswith("run only by pgd_switch; pgd_switch skipped: patched: ")
    assert "fast_pgd_switch is not in this tree" in why
    # the checks that do run still ran, and are same
    ran = {c["name"]: c["verdict"] for c in p["checks"] if c["verdict"] != "skipped"}
    assert ran and set(ran.values()) == {"same"}
    capsys.readouterr()
    jd = tmp_path / "d.json"
    assert cli.main(["diff", "--tree", str(gen.clone), gen.base, gen.head, "--json", str(jd)]) == 2
    doc = json.loads(jd.read_text())
    assert doc["verdict"] == "not-covered" and doc["exit_status"] == 2
    assert {u["name"] for u in doc["not_covered"]} == set(names)
    text = capsys.readouterr().out
    assert "not covered: changed code no check that ran executes" in text
    assert "verdict: not-covered" in text
