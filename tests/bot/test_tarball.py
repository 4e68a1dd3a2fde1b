"""Kernel source tarballs (bot/tarball.py): the subset extracted safely, one reproducible
commit, and the advice when Debian's tarball is missing."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from bot import kernels, tarball
from mmuci import proc
from mmuci.errors import MmuCiError


def test_missing_tarball_names_the_package(tmp_path: Path, monkeypatch) -> None:
    # apt knows linux-source-6.1 (make test installs it): the advice is to install it
    monkeypatch.setattr(tarball, "DEBIAN_TARBALL", str(tmp_path / "linux-source-{ver}.tar.xz"))
    with pytest.raises(MmuCiError, match=r"install it with `apt-get install linux-source-6\.1`"):
        kernels.prepare(tmp_path, "6.1")
    # no package linux-source-9.9 exists: no apt-get command that would fail
    with pytest.raises(MmuCiError, match="apt knows no package linux-source-9.9") as e:
        kernels.prepare(tmp_path, "9.9")
    assert "apt-get" not in str(e.value)
    with pytest.raises(MmuCiError, match="neither a Debian version"):
        kernels.prepare(tmp_path, str(tmp_path / "nothing-here"))


@pytest.mark.parametrize("suffix", ["gz", "xz", "bz2", ""])
def test_any_tarball(tmp_path: Path, suffix: str) -> None:
    """A tarball of our own making: only the subset is kept, the version comes from Makefile."""
    tarball = tmp_path / ("linux-toy.tar" + (f".{suffix}" if suffix else ""))
    files = {
        "linux-toy/Makefile": "VERSION = 6\nPATCHLEVEL = 7\nSUBLEVEL = 3\nEXTRAVERSION = -rc1\n",
        "linux-toy/arch/x86/kvm/toy.c": "int toy;\n",
        "linux-toy/drivers/other.c": "int other;\n",
    }
    with tarfile.open(tarball, f"w:{suffix}") as tf:
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


def _add(tf: tarfile.TarFile, name: str, text: str = "", **kw: object) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(text), kw.pop("mtime", 1700000000), kw.pop("mode", 0o644)
    for k, v in kw.items():
        setattr(info, k, v)
    tf.addfile(info, io.BytesIO(text.encode()) if info.isfile() else None)


def test_extract_subset_writes_nothing_outside_the_tree(tmp_path: Path) -> None:
    archive = tmp_path / "linux-x.tar"
    with tarfile.open(archive, "w") as tf:
        _add(tf, "linux-x/Makefile", "VERSION = 6\n", mtime=1600000000)
        _add(tf, "linux-x/arch/x86/kvm/run.sh", "#!/bin/sh\n", mode=0o755)
        _add(tf, "linux-x/arch/x86/kvm/../../../../escape.c", "int x;\n")
        _add(tf, "linux-x/drivers/other.c", "int other;\n")
        sym = tarfile.SYMTYPE
        _add(tf, "linux-x/include/linux/in.h", type=sym, linkname="types.h")
        _add(tf, "linux-x/include/linux/up.h", type=sym, linkname="../kvm/x.h")
        _add(tf, "linux-x/include/linux/out.h", type=sym, linkname="../../../../etc/passwd")
        _add(tf, "linux-x/include/linux/abs.h", type=sym, linkname="/etc/passwd")
    dest = tmp_path / "tree"
    dest.mkdir()
    seen: list[tuple[int, int]] = []
    mtime = tarball.extract_subset(archive, dest, lambda done, total: seen.append((done, total)))
    assert mtime == 1600000000  # the Makefile's: the commit date
    assert (dest / "arch/x86/kvm/run.sh").stat().st_mode & 0o777 == 0o755
    assert not (tmp_path / "escape.c").exists() and not (dest / "drivers").exists()
    assert (dest / "include/linux/in.h").is_symlink()
    # any ".." in a link is left out, even one that would stay inside
    assert not (dest / "include/linux/up.h").is_symlink()
    assert (
        not (dest / "include/linux/out.h").exists() and not (dest / "include/linux/abs.h").exists()
    )
    assert seen and seen[-1][0] == seen[-1][1] == archive.stat().st_size


def test_commit_subset_is_the_same_commit_anywhere(tmp_path: Path) -> None:
    commits = []
    for d in ("a", "b"):
        tree = tmp_path / d
        (tree / "arch").mkdir(parents=True)
        (tree / "arch/f.c").write_text("int f;\n")
        commit, tag = tarball.commit_subset(tree, "6.7", 1700000000, "linux-6.7.tar.xz")
        assert tag == "v6.7" and proc.git(tree, "rev-parse", "v6.7^{commit}") == commit
        commits.append(commit)
    assert commits[0] == commits[1]
    assert proc.git(tmp_path / "a", "log", "-1", "--format=%s") == "Linux 6.7"
