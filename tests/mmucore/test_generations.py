"""An older API generation (a fake 5.17-like tree): detected from the code, extracted,
built, and run in the sandbox through the vcpu-taking signature."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmucore import build, extract, sandbox
from tests.mmucore import fakelinux


@pytest.fixture(scope="module")
def old(tmp_path_factory: pytest.TempPathFactory) -> extract.Extraction:
    tree = fakelinux.make(tmp_path_factory.mktemp("fakelinux"))
    return extract.extract(tree)


def test_generation_is_detected_from_the_code(old) -> None:
    assert old.version == "5.17-fake"
    assert old.features == {"level_fields", "tdp_put_root_shared_arg", "new_pgd_caller"}
    assert "cached_root_available" in old.entry_points  # the older alternative
    assert "__kvm_mmu_new_pgd" in old.entry_points and "fast_pgd_switch" in old.functions
    assert {"is_obsolete_root", "cached_root_find_and_keep_current"} <= set(old.missing)
    f = old.functions["kvm_mmu_free_roots"]
    assert f.params[0] == ("struct kvm_vcpu *", "vcpu")


def test_structs_of_the_old_generation_are_pruned(old) -> None:
    mmu = old.structs["struct kvm_mmu"]
    assert {"root_hpa", "root_pgd", "shadow_root_level", "root_level", "direct_map"} <= set(mmu)
    assert "callback_we_do_not_need" not in mmu and "unused_counter" not in mmu
    assert old.structs["struct kvm_vcpu"] == ("kvm", "requests", "arch")
    assert old.structs["struct kvm_vcpu_arch"] == ("mmu", "root_mmu", "guest_mmu")
    assert old.structs["struct kvm"] == ("mmu_lock", "arch")
    assert "tdp_mmu_enabled" in old.shimmed  # the tree has none: the shim's fallback


def test_old_generation_builds_and_runs(old, tmp_path: Path) -> None:
    b = build.build(old, cache_dir=tmp_path)
    out = sandbox.run("tests.mmucore.helpers:free_roots_via_vcpu", {}, [b])
    assert out.ok, out.message + "\n" + out.detail
    v = out.value
    assert [e[0] for e in v["events"]] == ["WRITE_LOCK", "TDP_PUT_ROOT", "WRITE_UNLOCK"]
    assert v["events"][1][2] == 0  # put_root(kvm, sp, false)
    assert v["root_hpa"] == 2**64 - 1 and v["refs"] == 1
