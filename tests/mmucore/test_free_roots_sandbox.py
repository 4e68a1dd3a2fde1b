"""Must show: kvm_mmu_free_roots of the real tree, run in the sandbox on a state with a
valid shadow-page root: the lock is recorded, the root count drops, root.hpa is
INVALID_PAGE."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmucore import build, extract, sandbox

pytestmark = pytest.mark.slow
INVALID_PAGE = 2**64 - 1


@pytest.fixture(scope="module")
def builds(tree_61, tree_612, tmp_path_factory: pytest.TempPathFactory) -> dict[str, build.Build]:
    cache: Path = tmp_path_factory.mktemp("cache")
    return {
        "6.1": build.build(extract.extract(tree_61.path), cache_dir=cache),
        "6.12": build.build(extract.extract(tree_612.path), cache_dir=cache),
    }


@pytest.mark.parametrize("which", ["6.1", "6.12"])
def test_free_current_shadow_root(builds, which: str) -> None:
    out = sandbox.run("tests.mmucore.helpers:free_roots_on_sp_root", {}, [builds[which]])
    assert out.ok, out.message + "\n" + out.detail
    v = out.value
    kinds = [e[0] for e in v["events"]]
    assert kinds == ["WRITE_LOCK", "WRITE_UNLOCK"]  # shadow MMU: mmu_lock for write
    assert v["root_count"] == 0  # was 1
    assert v["root_hpa"] == INVALID_PAGE and v["root_pgd"] == 0
    assert not v["sp_freed"]  # a valid sp is not zapped when its last root goes


@pytest.mark.parametrize("which", ["6.1", "6.12"])
def test_free_invalid_shadow_root_zaps_it(builds, which: str) -> None:
    out = sandbox.run(
        "tests.mmucore.helpers:free_roots_on_sp_root", {"invalid": 1}, [builds[which]]
    )
    assert out.ok, out.message + "\n" + out.detail
    v = out.value
    assert [e[0] for e in v["events"]] == [
        "WRITE_LOCK",
        "PREPARE_ZAP",
        "COMMIT_ZAP",
        "FLUSH_REMOTE_TLBS",
        "ZAP_FREE",
        "WRITE_UNLOCK",
    ]
    assert v["events"][1][1] == 3  # page index, not a pointer
    assert v["sp_freed"] and v["root_hpa"] == INVALID_PAGE


@pytest.mark.parametrize("which", ["6.1", "6.12"])
def test_prev_root_without_sp_warns_at_the_kernel_line(builds, tree_61, tree_612, which) -> None:
    tree = tree_61 if which == "6.1" else tree_612
    payload = {"prev0_page": 9, "roots_to_free": 2}
    out = sandbox.run("tests.mmucore.helpers:free_roots_on_sp_root", payload, [builds[which]])
    assert out.ok, out.message + "\n" + out.detail
    assert out.value["prev0_hpa"] != INVALID_PAGE  # 5.18+: return early, slot untouched
    warns = [e for e in out.value["events"] if e[0] == "WARN"]
    assert warns, out.value["events"]
    file, line = warns[0][3].rsplit(":", 1)
    assert file == "arch/x86/kvm/mmu/mmu.c"
    src = (tree.path / file).read_text().splitlines()[int(line) - 1]
    assert "WARN_ON" in src


@pytest.mark.parametrize("which", ["6.1", "6.12"])
def test_free_tdp_root_puts_it_under_the_generations_lock(builds, which: str) -> None:
    out = sandbox.run("tests.mmucore.helpers:free_tdp_root", {}, [builds[which]])
    assert out.ok, out.message + "\n" + out.detail
    v = out.value
    ev = [e[:3] for e in v["events"]]
    if which == "6.1":  # write lock; put_root(kvm, sp, false)
        assert ev == [["WRITE_LOCK", 1, 0], ["TDP_PUT_ROOT", 4, 0], ["WRITE_UNLOCK", 1, 0]]
    else:  # 6.9+: read lock for a TDP MMU; put_root(kvm, sp)
        assert ev == [["READ_LOCK", 1, 0], ["TDP_PUT_ROOT", 4, -1], ["READ_UNLOCK", 1, 0]]
    assert v["refs"] == 1 and not v["freed"] and v["root_hpa"] == INVALID_PAGE


def test_last_tdp_reference_of_a_valid_root_is_a_kvm_bug(builds) -> None:
    out = sandbox.run("tests.mmucore.helpers:free_tdp_root", {"refs": 1}, [builds["6.12"]])
    assert out.ok, out.message + "\n" + out.detail
    kinds = [e[0] for e in out.value["events"]]
    assert kinds == ["READ_LOCK", "TDP_PUT_ROOT", "BUG", "TDP_ROOT_FREED", "READ_UNLOCK"]
