"""Kernel trees: Debian's linux-source tarballs (or any tarball) -> a git repository.

`mmubot kernel prepare 6.1` extracts the subset of files a KVM series touches into
``<data>/trees/debian-6.1``, commits it once with a fixed identity and date (so the
commit id is the same on every machine), tags it, and records it in a registry. A
second call finds the registry entry and does nothing. An existing git tree is only
registered, never modified; its version comes from its top Makefile, else from
`git describe --tags`, else from a version tag at HEAD, else from ``--version``
(a snapshot without a Makefile), and the registry says which.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import shlex
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mmuci import proc
from mmuci.errors import MmuCiError
from mmucore import extract

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


@dataclass(frozen=True)
class KernelTree:
    """A kernel git tree the bot may check series against."""

    name: str
    path: Path
    version: str
    commit: str
    tag: str | None
    source: str
    prepared: bool  # True: made by us from a tarball; False: the user's tree, read-only
    # where the version came from: "Makefile", "git describe v5.19-rc3-12-g...",
    # "tag linux-5.19 at HEAD" or "--version" (entries of older registries: the Makefile)
    version_from: str = "Makefile"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def trees_dir(data_dir: Path) -> Path:
    return data_dir / "trees"


def _registry_path(data_dir: Path) -> Path:
    return trees_dir(data_dir) / "registry.json"


def load_registry(data_dir: Path) -> dict[str, KernelTree]:
    p = _registry_path(data_dir)
    if not p.is_file():
        return {}
    raw = json.loads(p.read_text())
    known = {f.name for f in dataclass_fields(KernelTree)}  # a newer mmu-ci may have written more
    return {
        n: KernelTree(**{k: v for k, v in e.items() if k in known} | {"path": Path(e["path"])})
        for n, e in raw["trees"].items()
    }


def save(data_dir: Path, tree: KernelTree, stamp: dict[str, Any] | None = None) -> None:
    """Record ``tree`` in the registry of ``data_dir`` (replacing one of the same name)."""
    p = _registry_path(data_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    raw = json.loads(p.read_text()) if p.is_file() else {"trees": {}, "stamps": {}}
    raw["trees"][tree.name] = tree.to_json()
    if stamp is not None:
        raw.setdefault("stamps", {})[tree.name] = stamp
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(raw, indent=2, sort_keys=True))
    tmp.replace(p)


def _stamp_of(data_dir: Path, name: str) -> dict[str, Any] | None:
    p = _registry_path(data_dir)
    if not p.is_file():
        return None
    stamp: dict[str, Any] | None = json.loads(p.read_text()).get("stamps", {}).get(name)
    return stamp


def find_tree(data_dir: Path, name_or_path: str) -> KernelTree:
    """A registered tree by name (``debian-6.1``, or just ``6.1``) or by its path."""
    reg = load_registry(data_dir)
    for key in (name_or_path, f"debian-{name_or_path}"):
        if key in reg:
            return reg[key]
    p = Path(name_or_path).expanduser()
    for t in reg.values():
        if p.exists() and t.path.resolve() == p.resolve():
            return t
    known = ", ".join(sorted(reg)) or "none yet"
    raise MmuCiError(
        f"no kernel tree {name_or_path!r} is registered (known: {known}); "
        + prepare_hint(name_or_path)
    )


def prepare_hint(name_or_path: str) -> str:
    """How to register ``name_or_path``: a command that works as written, when there is one."""
    m = re.fullmatch(r"(?:debian-)?(\d+\.\d+)", name_or_path)
    if m:
        return f"run `mmubot kernel prepare {m.group(1)}`"
    p = Path(name_or_path).expanduser()
    if (p / ".git").exists() or (p.is_file() and _is_tarball(p)):
        return f"run `mmubot kernel prepare {shlex.quote(str(p.resolve()))}`"
    return (
        "give a registered name (`mmubot kernel list` shows them) "
        "or the path of a kernel git tree or tarball"
    )


def makefile_version(text: str) -> str:
    """'6.1.192' from a top-level kernel Makefile (the extractor's reading of it)."""
    version = extract.makefile_version(text)
    if version is None:
        raise MmuCiError("the tree's Makefile has no VERSION/PATCHLEVEL: is this a kernel tree?")
    return version


def resolve_tree(data_dir: Path, spec: str) -> tuple[Path, str | None]:
    """A registered tree by name, or any path to a kernel git tree: its path and the
    registry's version (None for a path that is not registered)."""
    p = Path(spec).expanduser()
    if (p / ".git").exists() or (p / "HEAD").is_file():
        try:
            return p, find_tree(data_dir, spec).version
        except MmuCiError:
            return p, None
    t = find_tree(data_dir, spec)
    return t.path, t.version


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


def _extract_subset(tarball: Path, dest: Path, progress: Progress | None) -> int:
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


def prepare(
    data_dir: Path, spec: str, progress: Progress | None = None, version: str | None = None
) -> tuple[KernelTree, bool]:
    """Prepare (or just register) a tree; returns it and whether any work was done.

    ``version`` (``--version``) names the version of a git tree whose HEAD has no top
    Makefile; a tree whose Makefile says otherwise is refused.
    """
    if version is not None and not VERSION_RE.fullmatch(version):
        raise MmuCiError(f"--version {version!r} is not a kernel version like 5.19 or 5.19.3")
    if re.fullmatch(r"\d+\.\d+", spec):
        _no_version(version, spec)
        tarball = Path(DEBIAN_TARBALL.format(ver=spec))
        if not tarball.is_file():
            raise MmuCiError(f"{tarball} not found; " + _package_hint(spec))
        return _prepare_tarball(data_dir, tarball, f"debian-{spec}", progress)
    p = Path(spec).expanduser()
    if p.is_dir():
        return _register_git_tree(data_dir, p, version), False
    if p.is_file() and _is_tarball(p):
        _no_version(version, spec)
        name = re.sub(r"\.(tar(\.\w+)?|tgz|txz)$", "", p.name)
        return _prepare_tarball(data_dir, p, name, progress)
    raise MmuCiError(
        f"{spec!r} is neither a Debian version (6.1, 6.12), a kernel tarball, nor a kernel git tree"
    )


def _is_tarball(p: Path) -> bool:
    return ".tar" in p.name or p.suffix in (".tgz", ".txz")


# 5.19, 5.19.3, 5.19-rc3, 6.1.192-rt12: what a Makefile or a version tag says
VERSION_RE = re.compile(r"\d+\.\d+(?:\.\d+)?(?:-[0-9A-Za-z][0-9A-Za-z.+_-]*)?")


def _no_version(version: str | None, spec: str) -> None:
    if version is not None:
        raise MmuCiError(
            f"--version is for a git tree without a Makefile; {spec} has its own: drop --version"
        )


def _package_hint(ver: str) -> str:
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


def _prepare_tarball(
    data_dir: Path, tarball: Path, name: str, progress: Progress | None
) -> tuple[KernelTree, bool]:
    # Several processes (parallel test runs, a watcher) may prepare at once: one at a time.
    trees_dir(data_dir).mkdir(parents=True, exist_ok=True)
    with (trees_dir(data_dir) / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _prepare_tarball_locked(data_dir, tarball, name, progress)


def _prepare_tarball_locked(
    data_dir: Path, tarball: Path, name: str, progress: Progress | None
) -> tuple[KernelTree, bool]:
    st = tarball.stat()
    stamp = {"tarball": str(tarball.resolve()), "size": st.st_size, "mtime": int(st.st_mtime)}
    reg = load_registry(data_dir)
    if name in reg and _stamp_of(data_dir, name) == stamp and (reg[name].path / ".git").is_dir():
        return reg[name], False
    dest = trees_dir(data_dir) / name
    tmp = dest.with_name(name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    mtime = _extract_subset(tarball, tmp, progress)
    if not (tmp / "Makefile").is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        raise MmuCiError(f"{tarball} has no top-level Makefile: is it a kernel source tarball?")
    version = makefile_version((tmp / "Makefile").read_text(errors="replace"))
    env = {
        **GIT_IDENTITY,
        "GIT_AUTHOR_DATE": f"@{mtime} +0000",
        "GIT_COMMITTER_DATE": f"@{mtime} +0000",
    }
    proc.git(tmp, "init", "-q", "-b", "master")
    proc.git(tmp, "config", "user.name", "mmu-ci")
    proc.git(tmp, "config", "user.email", "mmu-ci@localhost")
    proc.git(tmp, "config", "gc.auto", "0")
    proc.git(tmp, "add", "-A")
    msg = (
        f"Linux {version}\n\nSubset of {tarball.name} prepared by mmu-ci: "
        + ", ".join(SUBSET)
        + "\n"
    )
    proc.git(tmp, "commit", "-q", "--no-verify", "-m", msg, extra_env=env)
    tag = f"v{version}"
    proc.git(tmp, "tag", tag, extra_env=env)
    commit = proc.git(tmp, "rev-parse", "HEAD")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    tree = KernelTree(name, dest, version, commit, tag, str(tarball), True)
    save(data_dir, tree, stamp)
    return tree, True


def _register_git_tree(data_dir: Path, path: Path, version: str | None = None) -> KernelTree:
    path = path.resolve()
    try:
        top = Path(proc.git(path, "rev-parse", "--show-toplevel"))
    except MmuCiError as e:
        raise MmuCiError(f"{path} is not a git repository: {e}") from e
    found, where = git_tree_version(top, version)
    commit = proc.git(top, "rev-parse", "HEAD")
    tree = KernelTree(top.name, top, found, commit, None, str(top), False, where)
    save(data_dir, tree)
    return tree


def git_tree_version(top: Path, given: str | None = None) -> tuple[str, str]:
    """(version, where it came from) of a git tree's HEAD: its top Makefile, else
    ``given`` (``--version``), else `git describe --tags` on a version tag, else a
    version tag pointing at HEAD (``linux-5.19``, ``5.19``)."""
    makefile = proc.git(top, "show", "HEAD:Makefile", check=False)
    try:
        from_makefile = makefile_version(makefile) if makefile else None
    except MmuCiError:
        from_makefile = None
    if from_makefile:
        if given is not None and given != from_makefile:
            raise MmuCiError(
                f"{top}: its Makefile says {from_makefile}, not {given}: drop --version"
            )
        return from_makefile, "Makefile"
    if given is not None:
        return given, "--version"
    described = proc.git(top, "describe", "--tags", "--match", "v[0-9]*", "HEAD", check=False)
    tag = re.sub(r"-\d+-g[0-9a-f]+$", "", described)  # v5.19-rc3-12-gabcdef -> v5.19-rc3
    if VERSION_RE.fullmatch(tag[1:]):
        return tag[1:], f"git describe {described}"
    for tag in proc.git(top, "tag", "--points-at", "HEAD", check=False).split():
        m = re.fullmatch(rf"(?:v|linux-)?({VERSION_RE.pattern})", tag)
        if m:
            return m.group(1), f"tag {tag} at HEAD"
    what = "a Makefile without VERSION/PATCHLEVEL" if makefile else "no top Makefile"
    raise MmuCiError(
        f"{top}: cannot tell its kernel version ({what} at HEAD, and git describe --tags "
        f"finds no version tag); name it: "
        f"`mmubot kernel prepare {shlex.quote(str(top))} --version X.Y[.Z]`"
    )
