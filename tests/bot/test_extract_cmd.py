"""`mmubot extract`: writes the TU, the build log and the module; says what it took."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import cli

pytestmark = pytest.mark.slow


def test_extract_writes_tu_log_and_module(tree_612, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MMUCI_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "out"
    assert cli.main(["extract", "--tree", str(tree_612.path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"Linux {tree_612.version} at " in text
    assert "kvm_mmu_free_roots" in text and "arch/x86/kvm/mmu/mmu.c:" in text
    assert "root_to_sp" in text and "shimmed:" in text and "kvm_tdp_mmu_put_root" in text
    assert "build " in text and "compiled" in text
    assert (out / "tu.c").read_text().startswith("/* mmu-ci translation unit")
    assert "gcc" in (out / "build.log").read_text()
    assert list(out.glob("_mmu_*.so")) or list(out.glob("_mmu_*.cpython-*.so"))
    # the second time it is a cache hit
    assert cli.main(["extract", "--tree", str(tree_612.path)]) == 0
    assert "cache hit" in capsys.readouterr().out


def test_extract_bad_revision_exits_2(tree_61, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MMUCI_DATA_DIR", str(tmp_path / "data"))
    assert cli.main(["extract", "--tree", str(tree_61.path), "--rev", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no revision 'nope'" in err and "Traceback" not in err
