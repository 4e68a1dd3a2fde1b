"""Which checks a change can affect, and what the patches tell about the whole series."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot import runs
from bot.commands.demo import cache_refactor_nfc, zap_on_last_ref_nfc
from bot.report import PatchReport
from checks.result import CheckResult, DiffGroup, Example
from checks.space import all_checks
from mmuci import proc
from mmucore import scope
from mmucore.extract import extract


def _clone(tree, tmp_path):
    """A throw-away clone of a prepared tree that can commit."""
    clone = tmp_path / "t"
    proc.git(tmp_path, "clone", "-q", "--shared", str(tree.path), "t")
    proc.git(clone, "config", "user.name", "t")
    proc.git(clone, "config", "user.email", "t@example.org")
    return clone


def _job(clone, t) -> runs.Job:
    before = proc.git(clone, "rev-parse", "HEAD")
    proc.git(clone, "commit", "-q", "-m", t.name, "--", *t.apply(clone))
    a, b = extract(clone, before), extract(clone, "HEAD")
    return runs.Job(a, b, scope.changed_pieces(a, b, code_only=True))


@pytest.mark.slow
def test_untouched_checks_follow_the_call_graph(tree_61, tmp_path):
    clone = _clone(tree_61, tmp_path)
    checks = {c.name: c for c in all_checks()}
    job = _job(clone, cache_refactor_nfc())
    assert job.changed == ("function is_root_usable",)
    assert not runs.untouched(checks["pgd_switch"], job)
    assert runs.untouched(checks["free_roots"], job)
    job = _job(clone, zap_on_last_ref_nfc())
    assert not any(runs.untouched(c, job) for c in checks.values())


def _r(name: str, verdict: str, groups: int = 0, skipped: str | None = None) -> CheckResult:
    ex = Example(state={}, baseline=[], patched=[])
    g = tuple(DiffGroup(("warn",), 1, True, (), None, ex) for _ in range(groups))
    return CheckResult(name, verdict, 10, groups, 0, g, skipped=skipped)


def _p(index: int, verdict: str, *checks: CheckResult) -> PatchReport:
    return PatchReport(index, f"p{index}", "", verdict, "", False, checks=list(checks))


def test_whole_series_from_the_patches():
    skip = runs.UNCHANGED
    reports = [
        _p(1, "same", _r("a", "same"), _r("b", "skipped", skipped=skip), _r("c", "same")),
        _p(2, "out-of-scope"),
        _p(3, "differs", _r("a", "same"), _r("b", "differs", 1), _r("c", "differs", 1)),
    ]
    known, notes = runs.whole_series_known(reports)
    assert isinstance(known["a"], str)  # same in every patch: equality chains
    assert known["b"] is reports[2].checks[1]  # only patch 3 changes its code
    assert "c" not in known  # two patches change it: must run
    assert notes == ["b: only patch 3 changes its code, its result"]
    # A check skipped for another reason (not applicable) is not "unchanged code".
    other = [_p(1, "same", _r("a", "skipped", skipped="not in this tree")), reports[2]]
    assert "a" not in runs.whole_series_known(other)[0]


@pytest.mark.slow
def test_chains_give_each_comparison_its_pairwise_result_once(tree_612, data_dir, tmp_path):

    from bot.memo import Memo
    from tests.checks.edits import BEHAVIOUR, REFACTORS

    clone = _clone(tree_612, tmp_path)
    names = ("bubble-up-while", "lru-rotation", "merge-early-returns")  # patch 2 differs
    ts = [next(c.t for c in REFACTORS + BEHAVIOUR if c.t.name == n) for n in names]
    jobs = [_job(clone, t) for t in ts]
    a, b = jobs[0].before, jobs[-1].after
    whole = runs.Job(a, b, scope.changed_pieces(a, b, code_only=True))
    cache, memo = data_dir / "build-cache", Memo(tmp_path / "memo")
    done = runs.run_chains(jobs, whole, cache, memo)
    assert len(done) == 4  # pgd_switch only: three patches and the whole series, one chain
    verdicts = []
    for job in [*jobs, whole]:
        chained = runs.run_checks(job, cache, memo, done=done)
        pairwise = runs.run_checks(job, cache, Memo(tmp_path / "fresh"))
        # how many states a revision did not run depends on what ran before it (in the
        # chain, a state an earlier revision skipped keeps that revision's probe word, which
        # stands for more changes), so only that count may differ
        assert [replace(r, timings={}, pruned=0) for r in chained.results] == [
            replace(r, timings={}, pruned=0) for r in pairwise.results
        ]
        verdicts.append(chained.verdict)
    assert verdicts == ["same", "differs", "same", "differs"]
    assert runs.run_chains(jobs, whole, cache, memo) == {}  # every pair memoised: no run


@pytest.mark.slow
def test_chains_run_two_at_a_time_once_built_and_give_the_same_results(tree_61, data_dir, tmp_path):

    from bot.commands.demo import refactor_nfc
    from bot.memo import Memo

    clone = _clone(tree_61, tmp_path)
    jobs = [_job(clone, refactor_nfc()), _job(clone, zap_on_last_ref_nfc())]
    a, b = jobs[0].before, jobs[-1].after
    whole = runs.Job(a, b, scope.changed_pieces(a, b, code_only=True))
    cache, memo = data_dir / "build-cache", Memo(tmp_path / "memo")
    builds = runs.prebuild(jobs, cache, memo, lambda done, total: None)
    together = runs.run_chains(jobs, whole, cache, memo, builds)
    assert builds.wait()  # every module was built: the chains ran two at a time
    assert len({key[1] for key in together}) >= 2  # more than one check's chain
    alone = runs.run_chains(jobs, whole, cache, Memo(tmp_path / "fresh"))  # one at a time
    assert {k: replace(r, timings={}) for k, r in together.items()} == {
        k: replace(r, timings={}) for k, r in alone.items()
    }


def test_a_benign_difference_is_named_in_the_reason(tmp_path):
    from bot.memo import Memo

    ex = Example(state={}, baseline=[], patched=[])
    g = DiffGroup(("root",), 5, True, (), "ignore the pgd of an invalid slot", ex)
    known = {
        c.name: CheckResult(c.name, "same", 10, 0, 0, (g,) if c.name == "free_roots" else ())
        for c in all_checks()
    }
    job = runs.Job(None, None, ())
    out = runs.run_checks(job, tmp_path, Memo(tmp_path / "memo"), known)
    assert out.verdict == "same" and not out.not_covered
    assert out.reason.startswith("same: free_roots (up to: ignore the pgd of an invalid slot), ")


@pytest.mark.slow
def test_an_object_like_macro_reaches_the_checks_that_use_it(tree_61, tmp_path):
    # KVM_MMU_ROOT_CURRENT is used as a value, not called: a change of it must still run
    # every check whose code reads it (neither a silent `same` nor `not-covered`).
    from mmukit.transforms import Transformation, replace_once

    clone = _clone(tree_61, tmp_path)
    t = Transformation(
        "root-current-spelled",
        "arch/x86/include/asm/kvm_host.h",
        replace_once(
            "#define KVM_MMU_ROOT_CURRENT\t\tBIT(0)", "#define KVM_MMU_ROOT_CURRENT\t\t(1UL << 0)"
        ),
        "KVM: x86/mmu: Spell KVM_MMU_ROOT_CURRENT as a shift",
    )
    job = _job(clone, t)
    assert job.changed == ("macro KVM_MMU_ROOT_CURRENT",)
    checks = {c.name: c for c in all_checks()}
    assert not runs.untouched(checks["free_roots"], job)
    ran = [CheckResult("free_roots", "same", 10, 0, 0, ())]
    assert runs.not_covered(job, ran, {}) == ()  # free_roots runs it: covered
    (u,) = runs.not_covered(job, [], {})
    assert "free_roots" in u.checks


@pytest.mark.slow
def test_unpruned_chains_run_every_state_and_agree(tree_61, data_dir, tmp_path):
    """`checks.prune = false`: builds without probes, every state in every revision, the
    same results as pruned ones but for what they say about pruning, memoised apart."""

    from bot.commands.demo import refactor_nfc
    from bot.memo import Memo

    clone = _clone(tree_61, tmp_path)
    jobs = [_job(clone, refactor_nfc()), _job(clone, zap_on_last_ref_nfc())]
    a, b = jobs[0].before, jobs[-1].after
    whole = runs.Job(a, b, scope.changed_pieces(a, b, code_only=True))
    cache, memo = data_dir / "build-cache", Memo(tmp_path / "memo")
    builds = runs.prebuild(jobs, cache, memo, lambda done, total: None, prune=False)
    unpruned = runs.run_chains(jobs, whole, cache, memo, builds, prune=False)
    assert builds.wait() and unpruned
    assert all(r.pruned == 0 and r.pruning.startswith("off: not asked") for r in unpruned.values())
    assert all(key[-1] == "unpruned" for key in unpruned)
    pruned = runs.run_chains(jobs, whole, cache, memo)  # not the unpruned memo entries
    assert len(pruned) == len(unpruned) and sum(r.pruned for r in pruned.values()) > 0

    def bare(r: CheckResult) -> CheckResult:
        return replace(r, timings={}, pruned=0, pruning="")

    assert {k[:-1]: bare(r) for k, r in unpruned.items()} == {k: bare(r) for k, r in pruned.items()}


@pytest.mark.slow
def test_a_revision_that_compiles_the_same_is_not_built(tree_61, tmp_path):
    """A respelling whose code compiles to the same machine code as its parent's is never
    built, by the prebuild or the chain: it runs its parent's module, every state that
    ran cleanly there not again (pruning "same code")."""
    from bot.commands.demo import refactor_nfc
    from bot.memo import Memo
    from checks import engine
    from checks.plan import Comparison
    from checks.result import SAME_CODE
    from mmukit.transforms import Transformation, replace_once, within_function

    clone = _clone(tree_61, tmp_path)
    respell = replace_once("!--sp->root_count", "--sp->root_count == 0")
    edit = within_function("mmu_free_root_page", respell)
    eq0 = Transformation("eq0", "arch/x86/kvm/mmu/mmu.c", edit, "KVM: x86/mmu: Spell it out")
    jobs = [_job(clone, refactor_nfc()), _job(clone, eq0)]
    cache, memo = tmp_path / "cache", Memo(tmp_path / "memo")
    builds = runs.prebuild(jobs, cache, memo, lambda done, total: None)
    done = runs.run_chains(jobs, None, cache, memo, builds)
    assert builds.wait() and done
    assert len(list(cache.glob("_mmu_*"))) == 2  # the base and the refactor, once each
    second = runs.run_checks(jobs[1], cache, memo, done=done)
    ran = [r for r in second.results if r.verdict != "skipped"]
    names = [r.name for r in ran]
    assert ran and second.verdict == "same"
    assert all(r.pruning == SAME_CODE and r.timings["build_patched"] == 0.0 for r in ran), [
        (r.name, r.pruning) for r in ran
    ]
    unpruned = runs.run_checks(jobs[1], cache, Memo(tmp_path / "fresh"), prune=False)
    assert all(r.timings["build_patched"] == 0.0 for r in unpruned.results if r.name in names)
    a, b = jobs[1].before, jobs[1].after
    plain = [  # the reference: each revision built, every state run in both
        engine.run(Comparison(c, a, b, prune=False, twins=False), cache_dir=cache)[0]
        for c in all_checks(names)
    ]

    def bare(r):
        return replace(r, timings={}, pruned=0, pruning="")

    assert [bare(r) for r in ran] == [bare(r) for r in plain]
    assert [bare(r) for r in ran] == [bare(r) for r in unpruned.results if r.name in names]
