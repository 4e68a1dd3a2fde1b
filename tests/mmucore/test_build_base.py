"""The split build (mmucore/build_base.py) on the prepared trees: shared.o is compiled once
per shared text and reused, any change to that text or to the shim builds a new one, a
hostile revision is refused as before, and the verdicts are those of the whole-TU build."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from checks import driver, engine
from checks.result import CheckResult
from mmucore import build_base, tu
from mmucore.build import CFLAGS, Build, BuildError, Driver, build, own_code
from mmucore.extract import Extraction, extract
from mmucore.shim_api import SHIM_DIR
from mmucore.validate import RefusedInput
from mmukit.seriesgen import make_series
from mmukit.transforms import Transformation, at_body_start, regex_once
from tests.checks.conftest import build_cache, scratch, scratch_61, scratch_612  # noqa: F401
from tests.checks.edits import BEHAVIOUR, BENIGN, CRASH, MMU, OUTSIDE, REFACTORS, Case

pytestmark = pytest.mark.slow
MMU_FREE = "kvm_mmu_free_roots"


def _patched(tree, workdir: Path, name: str, edit, path: str = MMU) -> Extraction:
    t = Transformation(name, path, edit, f"KVM: x86/mmu: {name}")
    series = make_series(tree.path, tree.commit, [t], workdir=workdir)
    return extract(series.clone, "HEAD")


def _split_build(ex: Extraction, cache: Path) -> Build:
    return build(ex, engine._driver(driver.module_checks(ex), ex), cache_dir=cache)


def _shared_entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("_shared_*/shared.o"))


@pytest.fixture(scope="module")
def base_61(tree_61) -> Extraction:
    return extract(tree_61.path, tree_61.commit)


def test_the_tu_cuts_into_head_code_and_tail_at_its_own_markers(base_61: Extraction) -> None:
    texts = [p.text for p in base_61.pieces]
    parts = tu.split(base_61.tu, texts)
    assert parts.banner == base_61.tu.split("\n")[0] and base_61.rev in parts.banner
    assert tu.SHIM_C_INCLUDE in parts.head and "struct kvm_mmu {" in parts.head
    assert "kvm_mmu_free_roots(" in parts.code and "kvm_mmu_free_roots(" not in parts.head
    assert "mmu_shim_bitfield(" in parts.tail and "mmu_shim_bitfield(" not in parts.code
    lines = base_61.tu.split("\n")
    marks = [ln for ln in lines if ln.startswith("/* mmu-ci: ")]
    assert len(marks) == 2 and not any(m in base_61.tu.replace(m, "", 1) for m in marks)
    assert parts.head + marks[0] + "\n" + parts.code + marks[1] + "\n" + parts.tail == "\n".join(
        lines[1:]
    )
    # a piece cannot hold a marker: the markers carry the digest of every piece's text
    forged = base_61.tu.replace(marks[0], "/* mmu-ci: code 0 */")
    with pytest.raises(ValueError, match="not one"):
        tu.split(forged, texts)
    with pytest.raises(ValueError):
        tu.split(base_61.tu, [*texts, "one more piece"])


def test_shared_object_is_built_once_for_two_revisions(tree_61, base_61, tmp_path) -> None:
    cache = tmp_path / "cache"
    patched = _patched(
        tree_61, tmp_path / "p", "spell", regex_once(r"!--sp->root_count", "--sp->root_count == 0")
    )
    a = _split_build(base_61, cache)
    b = _split_build(patched, cache)
    assert a.key != b.key and a.path != b.path
    (shared,) = _shared_entries(cache)  # one shared.o for both revisions
    assert "compiled in" in a.log and f"shared part {shared} (reused;" in b.log
    # the module's C holds the revision's code but none of the shared part's
    rev_c = b.tu_path.read_text()
    assert "--sp->root_count == 0" in rev_c and "drv_free_roots_call(void)\n{" in rev_c
    assert "drv_free_roots_run_range(uint64_t lo" in rev_c  # its prototype only
    assert "mmu_shim_record(int kind" not in rev_c and "drv_setup(void)\n{" not in rev_c


def test_a_changed_shared_text_builds_a_new_shared_object(tree_61, base_61, tmp_path) -> None:
    cache = tmp_path / "cache"
    _split_build(base_61, cache)
    # a line atop a header the types come from moves them: another head, another shared.o
    header = "arch/x86/kvm/mmu/mmu_internal.h"
    moved = _patched(tree_61, tmp_path / "p", "moved", lambda text: "\n" + text, header)
    b = _split_build(moved, cache)
    assert len(_shared_entries(cache)) == 2 and "compiled in" in b.log
    assert len(list(cache.glob("_mmu_*/*.so"))) == 2


def test_a_changed_shim_builds_a_new_shared_object(base_61, tmp_path) -> None:
    ex = base_61
    drv = engine._driver(driver.module_checks(ex), ex)
    text = build_base.sources(ex.tu, [p.text for p in ex.pieces], drv.shared, drv.source).shared
    shim = tmp_path / "shim"
    shutil.copytree(SHIM_DIR, shim)

    def shared() -> build_base.Shared:
        return build_base.compile_shared(
            text, CFLAGS, own_code(), cache_dir=tmp_path / "cache", shim_dir=shim
        )

    one, again = shared(), shared()
    assert not one.cached and again.cached and again.path == one.path
    one.path.write_bytes(one.path.read_bytes()[:100])  # a truncated entry is built again
    fixed = shared()
    assert not fixed.cached and fixed.path.stat().st_size > 100
    with open(shim / "mmu_shim.c", "a") as f:
        f.write("\nint mmu_shim_changed(void) { return 1; }\n")
    other = shared()
    assert not other.cached and other.key != one.key


def test_a_hostile_revision_is_refused_by_the_split_build(tree_61, base_61, tmp_path) -> None:
    cache = tmp_path / "cache"
    _split_build(base_61, cache)
    # validate cannot see that mmu_fn is a function type; nm of the linked module can
    add = "\ttypedef int mmu_fn(const char *);\n\tmmu_fn system;\n\tvoid *volatile p = system;\n\n"
    hostile = _patched(tree_61, tmp_path / "p", "typedef-system", at_body_start(MMU_FREE, add))
    with pytest.raises(RefusedInput, match=r"calls system\(\)"):
        _split_build(hostile, cache)
    huge = "\t{\n\t\tstatic const char mmu_blob[200 << 20] = { 1 };\n\n\t}\n"
    blob = _patched(tree_61, tmp_path / "q", "blob", at_body_start(MMU_FREE, huge))
    with pytest.raises(BuildError, match="exceeds maximum object size"):
        _split_build(blob, cache)
    assert len(_shared_entries(cache)) == 1  # the shared part was reused, and still refused
    assert len(list(cache.glob("_mmu_*/*.so"))) == 1  # only the baseline's module


CORPUS = [*BEHAVIOUR, *REFACTORS, *OUTSIDE, BENIGN, CRASH]


_SPLIT_DRIVER = engine._driver


def _whole_driver(checks, ex, plain: bool = False) -> Driver:
    """The driver of a module built in one piece, as before the split."""
    assert not plain  # the checks never build the benchmarks' plain loop
    d = _SPLIT_DRIVER(checks, ex)
    return Driver(d.name, driver.module_source(checks, ex), d.cdef, exports_only=True)


def _comparable(r: CheckResult) -> dict:
    d = dataclasses.asdict(r)
    d.pop("timings")
    # what pruning skipped may differ: a whole-TU module has no revision part to image,
    # so it is never "same code" (checks/prune.py); every other field must agree
    d.pop("pruned")
    d.pop("pruning")
    return d


@pytest.fixture(scope="module")
def whole_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("whole-tu-builds")


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: f"{c.tree}-{c.check}-{c.t.name}")
def test_verdicts_are_those_of_the_whole_tu_build(
    scratch,  # noqa: F811 - the session fixture of tests/checks/conftest.py
    case: Case,
    whole_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = scratch[case.tree]
    split = s.diff(case.t, case.check)
    assert split.verdict == case.verdict, case.why
    base, patched = s.extraction(s.base), s.extraction(s.commit(case.t))
    monkeypatch.setattr(engine, "_driver", _whole_driver)
    (whole,) = engine.compare_each(base, patched, cache_dir=whole_cache, names=[case.check])
    assert not list(whole_cache.glob("_shared_*"))  # built in one piece indeed
    assert _comparable(whole) == _comparable(split)
