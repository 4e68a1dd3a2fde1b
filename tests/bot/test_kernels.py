"""The registry of kernel trees: Debian's tarballs prepared once, git trees registered
without a change, and each tree's version (the tarball itself: test_tarball.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bot import kernels, tarball
from mmuci import proc
from mmuci.errors import MmuCiError
from mmucore import extract
from tests.debian import V61, V612

REPO = Path(__file__).resolve().parents[2]


def test_prepared_61(tree_61) -> None:
    assert tree_61.version == V61
    assert tree_61.tag == f"v{V61}" and tree_61.prepared
    assert proc.git(tree_61.path, "rev-parse", f"v{V61}^{{commit}}") == tree_61.commit
    assert proc.git(tree_61.path, "log", "-1", "--format=%s", tree_61.commit) == f"Linux {V61}"
    assert (tree_61.path / "arch/x86/kvm/mmu/mmu.c").is_file()
    assert not (tree_61.path / "drivers").exists(), "only the subset a KVM series touches"
    assert proc.git(tree_61.path, "status", "--porcelain") == ""


def test_prepared_612(tree_612) -> None:
    assert tree_612.version == V612 and tree_612.tag == f"v{V612}"
    assert (tree_612.path / "arch/x86/kvm/mmu/mmu.c").is_file()


def test_second_prepare_does_no_work(tree_61, data_dir: Path) -> None:
    tree, worked = kernels.prepare(data_dir, "6.1")
    assert not worked and tree == tree_61
    assert kernels.find_tree(data_dir, "6.1") == tree_61
    assert kernels.find_tree(data_dir, str(tree_61.path)) == tree_61


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
    assert tree.path == mine.resolve() and tree.version == V61
    assert tree.commit == tree_61.commit and tree.tag is None
    assert _snapshot(mine) == before
    assert kernels.find_tree(tmp_path / "data", "kvm") == tree


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
    assert str(tree_61.path) in r.stdout and V61 in r.stdout
    assert "already prepared" in r.stdout
    listed = _mmubot("kernel", "list", data_dir=data_dir)
    assert listed.returncode == 0 and str(tree_61.path) in listed.stdout


def test_cli_missing_tarball_is_a_clear_error(tmp_path: Path) -> None:
    r = _mmubot("kernel", "prepare", "9.9", data_dir=tmp_path)
    assert r.returncode == 2
    assert "apt knows no package linux-source-9.9" in r.stderr and "Traceback" not in r.stderr


def _makefile_less(tree_61, tmp_path: Path, name: str = "linux-5.19") -> Path:
    """A clone of the prepared tree whose HEAD has no top Makefile and no tag, as a
    snapshot of a tree in development can be."""
    proc.git(tmp_path, "clone", "-q", "--shared", str(tree_61.path), name)
    mine = tmp_path / name
    ident = {**tarball.GIT_IDENTITY, "GIT_CONFIG_GLOBAL": "/dev/null"}
    proc.git(mine, "rm", "-q", "Makefile")
    proc.git(mine, "commit", "-q", "-m", "snapshot without a Makefile", extra_env=ident)
    for tag in proc.git(mine, "tag").split():
        proc.git(mine, "tag", "-d", tag)
    return mine


def test_makefile_less_tree_version_from_git_describe(tree_61, tmp_path: Path) -> None:
    mine = _makefile_less(tree_61, tmp_path)
    proc.git(mine, "tag", "v5.19-rc3", "HEAD~1")  # only an ancestor is tagged
    r = _mmubot("kernel", "prepare", str(mine), data_dir=tmp_path / "data")
    assert r.returncode == 0, r.stderr
    described = proc.git(mine, "describe", "--tags")
    assert described.startswith("v5.19-rc3-1-g")
    assert f"version 5.19-rc3 (from git describe {described})" in r.stdout
    tree = kernels.find_tree(tmp_path / "data", "linux-5.19")
    assert tree.version == "5.19-rc3" and tree.version_from == f"git describe {described}"
    listed = _mmubot("kernel", "list", data_dir=tmp_path / "data")
    assert f"version 5.19-rc3 (from git describe {described})" in listed.stdout


def test_makefile_less_tree_version_from_a_tag(tree_61, tmp_path: Path) -> None:
    mine = _makefile_less(tree_61, tmp_path)
    # a "v" tag at HEAD is what `git describe` finds exactly
    proc.git(mine, "tag", "v5.19")
    tree, _ = kernels.prepare(tmp_path / "data", str(mine))
    assert (tree.version, tree.version_from) == ("5.19", "git describe v5.19")
    # a version tag of another spelling at HEAD: `git describe --match v*` ignores it
    proc.git(mine, "tag", "-d", "v5.19")
    proc.git(mine, "tag", "linux-5.19.4")
    tree, _ = kernels.prepare(tmp_path / "data", str(mine))
    assert (tree.version, tree.version_from) == ("5.19.4", "tag linux-5.19.4 at HEAD")


def test_makefile_less_tree_version_given(tree_61, tmp_path: Path) -> None:
    mine = _makefile_less(tree_61, tmp_path)
    proc.git(mine, "tag", "v5.18", "HEAD~1")
    r = _mmubot("kernel", "prepare", str(mine), "--version", "5.19", data_dir=tmp_path / "data")
    assert r.returncode == 0, r.stderr
    assert "version 5.19 (from --version)" in r.stdout  # the user's word beats a guess
    assert kernels.find_tree(tmp_path / "data", str(mine)).version_from == "--version"
    bad = _mmubot("kernel", "prepare", str(mine), "--version", "five", data_dir=tmp_path)
    assert bad.returncode == 2 and "not a kernel version" in bad.stderr
    two = _mmubot("kernel", "prepare", str(mine), "6.1", "--version", "5.19", data_dir=tmp_path)
    assert two.returncode == 2 and "prepare that tree alone" in two.stderr


def test_version_given_for_a_tree_with_a_makefile(tree_61, tmp_path: Path) -> None:
    proc.git(tmp_path, "clone", "-q", "--shared", str(tree_61.path), "kvm")
    with pytest.raises(MmuCiError, match=r"its Makefile says 6\.1\.192, not 5\.19: drop"):
        kernels.prepare(tmp_path / "data", str(tmp_path / "kvm"), version="5.19")
    tree, _ = kernels.prepare(tmp_path / "data", str(tmp_path / "kvm"), version="6.1.192")
    assert (tree.version, tree.version_from) == ("6.1.192", "Makefile")
    with pytest.raises(MmuCiError, match="drop --version"):
        kernels.prepare(tmp_path / "data", "6.1", version="6.1")


def test_makefile_less_tree_without_any_version_is_one_clear_line(tree_61, tmp_path) -> None:
    mine = _makefile_less(tree_61, tmp_path)
    r = _mmubot("kernel", "prepare", str(mine), data_dir=tmp_path / "data")
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "no top Makefile" in r.stderr and "git describe" in r.stderr
    assert f"`mmubot kernel prepare {mine} --version X.Y[.Z]`" in r.stderr
    assert kernels.load_registry(tmp_path / "data") == {}


def test_registry_written_by_a_newer_version_loads(tree_61, tmp_path: Path) -> None:
    kernels.save(tmp_path, tree_61)
    p = tmp_path / "trees" / "registry.json"
    raw = json.loads(p.read_text())
    raw["trees"]["debian-6.1"]["field_of_the_future"] = 1
    del raw["trees"]["debian-6.1"]["version_from"]  # and one of the past: the Makefile
    p.write_text(json.dumps(raw))
    assert kernels.load_registry(tmp_path) == {"debian-6.1": tree_61}


def test_extract_of_a_makefile_less_tree_says_the_registered_version(tree_61, tmp_path) -> None:
    mine = _makefile_less(tree_61, tmp_path)
    proc.git(mine, "tag", "v5.19")
    data = tmp_path / "data"
    kernels.prepare(data, str(mine))
    for spec in ("linux-5.19", str(mine)):  # by name and by path: the registry's version
        tree, version = kernels.resolve_tree(data, spec)
        assert (tree.resolve(), version) == (mine.resolve(), "5.19")
    r = _mmubot("extract", "--tree", "linux-5.19", data_dir=data)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Linux 5.19 at "), r.stdout.splitlines()[0]


def test_one_makefile_reading() -> None:
    text = "VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION = -rc3\nNAME = x\n"
    assert kernels.makefile_version(text) == extract.makefile_version(text) == "6.12-rc3"
    assert extract.makefile_version("# no version here\n") is None
    with pytest.raises(MmuCiError, match="no VERSION/PATCHLEVEL"):
        kernels.makefile_version("VERSION = six\nPATCHLEVEL = 1\n")
