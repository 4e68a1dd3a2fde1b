"""Kernel trees from Debian's tarballs (and any tarball or git tree)."""

from __future__ import annotations

import io
import sys
import tarfile
import time
from pathlib import Path

import pytest

from bot import kernels
from mmucore import proc
from mmucore.errors import MmuCiError

REPO = Path(__file__).resolve().parents[2]


def test_prepared_61(tree_61) -> None:
    assert tree_61.version == "6.1.192"
    assert tree_61.tag == "v6.1.192" and tree_61.prepared
    assert proc.git(tree_61.path, "rev-parse", "v6.1.192^{commit}") == tree_61.commit
    assert proc.git(tree_61.path, "log", "-1", "--format=%s", tree_61.commit) == "Linux 6.1.192"
    assert (tree_61.path / "arch/x86/kvm/mmu/mmu.c").is_file()
    assert not (tree_61.path / "drivers").exists(), "only the subset a KVM series touches"
    assert proc.git(tree_61.path, "status", "--porcelain") == ""


def test_prepared_612(tree_612) -> None:
    assert tree_612.version == "6.12.117" and tree_612.tag == "v6.12.117"
    assert (tree_612.path / "arch/x86/kvm/mmu/mmu.c").is_file()


def test_second_prepare_does_no_work(tree_61, data_dir: Path) -> None:
    t0 = time.monotonic()
    tree, worked = kernels.prepare(data_dir, "6.1")
    assert not worked and tree == tree_61
    assert time.monotonic() - t0 < 1.0
    assert kernels.find_tree(data_dir, "6.1") == tree_61
    assert kernels.find_tree(data_dir, str(tree_61.path)) == tree_61


def test_missing_tarball_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(MmuCiError, match=r"apt-get install linux-source-9\.9"):
        kernels.prepare(tmp_path, "9.9")
    with pytest.raises(MmuCiError, match="neither a Debian version"):
        kernels.prepare(tmp_path, str(tmp_path / "nothing-here"))


def _snapshot(repo: Path) -> list[tuple[str, int, int]]:
    """Every file of a repository (work tree and .git) with its size and mtime."""
    return sorted(
        (str(p.relative_to(repo)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in repo.rglob("*")
        if p.is_file() and not p.is_symlink()
    )


def test_registering_a_git_tree_never_modifies_it(tree_61, tmp_path: Path) -> None:
    mine = tmp_path / "kvm"
    proc.git(tmp_path, "clone", "-q", "--shared", str(tree_61.path), "kvm")
    before = _snapshot(mine)
    tree, worked = kernels.prepare(tmp_path / "data", str(mine))
    assert not worked and not tree.prepared
    assert tree.path == mine.resolve() and tree.version == "6.1.192"
    assert tree.commit == tree_61.commit and tree.tag is None
    assert _snapshot(mine) == before
    assert kernels.find_tree(tmp_path / "data", "kvm") == tree


def test_any_tarball(tmp_path: Path) -> None:
    """A tarball of our own making: only the subset is kept, the version comes from Makefile."""
    tarball = tmp_path / "linux-toy.tar.gz"
    files = {
        "linux-toy/Makefile": "VERSION = 6\nPATCHLEVEL = 7\nSUBLEVEL = 3\nEXTRAVERSION = -rc1\n",
        "linux-toy/arch/x86/kvm/toy.c": "int toy;\n",
        "linux-toy/drivers/other.c": "int other;\n",
    }
    with tarfile.open(tarball, "w:gz") as tf:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(text), 1700000000
            tf.addfile(info, io.BytesIO(text.encode()))
    data = tmp_path / "data"
    tree, worked = kernels.prepare(data, str(tarball))
    assert worked and tree.name == "linux-toy" and tree.version == "6.7.3-rc1"
    assert (tree.path / "arch/x86/kvm/toy.c").read_text() == "int toy;\n"
    assert not (tree.path / "drivers").exists()
    assert proc.git(tree.path, "tag") == "v6.7.3-rc1"
    again, worked = kernels.prepare(data, str(tarball))
    assert not worked and again == tree
    # The commit id depends only on the content: a second data dir gives the same one.
    other, _ = kernels.prepare(tmp_path / "data2", str(tarball))
    assert other.commit == tree.commit


def _mmubot(*args: str, data_dir: Path) -> proc.Completed:
    return proc.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=REPO,
        extra_env={"MMUCI_DATA_DIR": str(data_dir)},
        check=False,
    )


def test_cli_prepare(tree_61, data_dir: Path) -> None:
    r = _mmubot("kernel", "prepare", "6.1", data_dir=data_dir)
    assert r.returncode == 0, r.stderr
    assert str(tree_61.path) in r.stdout and "6.1.192" in r.stdout
    assert "already prepared" in r.stdout
    listed = _mmubot("kernel", "list", data_dir=data_dir)
    assert listed.returncode == 0 and str(tree_61.path) in listed.stdout


def test_cli_missing_tarball_is_a_clear_error(tmp_path: Path) -> None:
    r = _mmubot("kernel", "prepare", "9.9", data_dir=tmp_path)
    assert r.returncode == 2
    assert "apt-get install linux-source-9.9" in r.stderr and "Traceback" not in r.stderr
