"""Kernel source tarballs (Debian's linux-source packages, or any tarball) -> a git tree.

Only the subset of files a KVM series touches (`SUBSET`) is extracted, the first path
component stripped, nothing outside the destination written (no absolute path, no
``..``, no symlink leaving the tree). The subset is committed once with a fixed
identity and the Makefile's date, so the commit id is the same on every machine.
Registering the tree and preparing it only once is bot/kernels.py's.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from mmuci import proc
from mmuci.errors import MmuCiError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# What a KVM x86 MMU series touches, plus the headers the extractor reads.
SUBSET = (
    "Makefile",
    "arch/x86/kvm/",
    "arch/x86/include/",
    "include/linux/",
    "include/uapi/linux/",
    "include/asm-generic/",
    "include/kvm/",
    "virt/kvm/",
    "Documentation/virt/kvm/",
    "tools/testing/selftests/kvm/",
)
DEBIAN_TARBALL = "/usr/src/linux-source-{ver}.tar.xz"
DEBIAN_PACKAGE = "linux-source-{ver}"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "mmu-ci",
    "GIT_AUTHOR_EMAIL": "mmu-ci@localhost",
    "GIT_COMMITTER_NAME": "mmu-ci",
    "GIT_COMMITTER_EMAIL": "mmu-ci@localhost",
}

Progress = Callable[[int, int], None]


def _wanted(rel: str) -> bool:
    return any(rel == s or (s.endswith("/") and rel.startswith(s)) for s in SUBSET)


class _CountingReader(io.RawIOBase):
    """Wraps the compressed file to report how far extraction has got."""

    def __init__(self, f: io.BufferedIOBase, total: int, progress: Progress | None) -> None:
        super().__init__()
        self.f, self.total, self.progress, self.done = f, total, progress, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: WriteableBuffer) -> int:
        n = self.f.readinto(buf)
        self.done += n
        if self.progress:
            self.progress(self.done, self.total)
        return n


def _open_tar(path: Path, reader: _CountingReader) -> tarfile.TarFile:
    name = path.name
    if name.endswith((".tar.xz", ".txz")):
        return tarfile.open(fileobj=io.BufferedReader(reader), mode="r|xz")
    if name.endswith((".tar.gz", ".tgz")):
        return tarfile.open(fileobj=io.BufferedReader(reader), mode="r|gz")
    if name.endswith(".tar.bz2"):
        return tarfile.open(fileobj=io.BufferedReader(reader), mode="r|bz2")
    return tarfile.open(fileobj=io.BufferedReader(reader), mode="r|")


def extract_subset(tarball: Path, dest: Path, progress: Progress | None) -> int:
    """Extract the SUBSET (first path component stripped) into dest; returns the mtime of
    the Makefile, used as the commit date so the commit id is reproducible."""
    mtime = 0
    total = tarball.stat().st_size
    with tarball.open("rb") as raw:
        reader = _CountingReader(raw, total, progress)
        with _open_tar(tarball, reader) as tf:
            for m in tf:
                parts = PurePosixPath(m.name).parts[1:]
                if not parts or ".." in parts or PurePosixPath(m.name).is_absolute():
                    continue
                rel = "/".join(parts)
                if not _wanted(rel):
                    continue
                out = dest / rel
                if m.isdir():
                    out.mkdir(parents=True, exist_ok=True)
                elif m.isfile():
                    out.parent.mkdir(parents=True, exist_ok=True)
                    src = tf.extractfile(m)
                    assert src is not None
                    with out.open("wb") as f:
                        shutil.copyfileobj(src, f)
                    os.chmod(out, 0o755 if m.mode & 0o111 else 0o644)
                    if rel == "Makefile":
                        mtime = int(m.mtime)
                elif m.issym():
                    target = PurePosixPath(m.linkname)
                    inside = (
                        not target.is_absolute()
                        and ".." not in (PurePosixPath(rel).parent / target).parts
                    )
                    if inside:
                        out.parent.mkdir(parents=True, exist_ok=True)
                        if not out.is_symlink():
                            out.symlink_to(m.linkname)
    if progress:
        progress(total, total)
    return mtime


def is_tarball(p: Path) -> bool:
    return ".tar" in p.name or p.suffix in (".tgz", ".txz")


def package_hint(ver: str) -> str:
    """Install advice that works as written: apt-get only for a package apt knows."""
    pkg = DEBIAN_PACKAGE.format(ver=ver)
    try:
        known = proc.run(["apt-cache", "show", pkg], check=False).returncode == 0
    except MmuCiError:  # no apt on this machine
        known = False
    if known:
        return f"install it with `apt-get install {pkg}` (as root)"
    return (
        f"apt knows no package {pkg} (Debian 12 has linux-source-6.1 and linux-source-6.12); "
        "give a kernel tarball or the path of a kernel git tree instead"
    )


def commit_subset(tree: Path, version: str, mtime: int, tarball_name: str) -> tuple[str, str]:
    """Make the extracted ``tree`` a git repository with one commit (dated ``mtime``) and
    its version tag; returns (commit, tag)."""
    env = {
        **GIT_IDENTITY,
        "GIT_AUTHOR_DATE": f"@{mtime} +0000",
        "GIT_COMMITTER_DATE": f"@{mtime} +0000",
    }
    proc.git(tree, "init", "-q", "-b", "master")
    proc.git(tree, "config", "user.name", "mmu-ci")
    proc.git(tree, "config", "user.email", "mmu-ci@localhost")
    proc.git(tree, "config", "gc.auto", "0")
    proc.git(tree, "add", "-A")
    msg = (
        f"Linux {version}\n\nSubset of {tarball_name} prepared by mmu-ci: "
        + ", ".join(SUBSET)
        + "\n"
    )
    proc.git(tree, "commit", "-q", "--no-verify", "-m", msg, extra_env=env)
    tag = f"v{version}"
    proc.git(tree, "tag", tag, extra_env=env)
    return proc.git(tree, "rev-parse", "HEAD"), tag
