"""Kernel trees the bot checks against: the registry, and how a tree gets into it.

`mmubot kernel prepare 6.1` has Debian's linux-source tarball made a git tree in
``<data>/trees/debian-6.1`` (the subset a KVM series touches, one reproducible commit:
bot/tarball.py) and records it in the registry. A second call finds the registry entry
(and the tarball's stamp) and does nothing. An existing git tree is only
registered, never modified; its version comes from its top Makefile, else from
`git describe --tags`, else from a version tag at HEAD, else from ``--version``
(a snapshot without a Makefile), and the registry says which.
"""

from __future__ import annotations

import fcntl
import json
import re
import shlex
import shutil
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from bot import tarball
from bot.tarball import Progress
from mmuci import proc
from mmuci.errors import MmuCiError
from mmucore import extract


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
    if (p / ".git").exists() or (p.is_file() and tarball.is_tarball(p)):
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
        debian = Path(tarball.DEBIAN_TARBALL.format(ver=spec))
        if not debian.is_file():
            raise MmuCiError(f"{debian} not found; " + tarball.package_hint(spec))
        return _prepare_tarball(data_dir, debian, f"debian-{spec}", progress)
    p = Path(spec).expanduser()
    if p.is_dir():
        return _register_git_tree(data_dir, p, version), False
    if p.is_file() and tarball.is_tarball(p):
        _no_version(version, spec)
        name = re.sub(r"\.(tar(\.\w+)?|tgz|txz)$", "", p.name)
        return _prepare_tarball(data_dir, p, name, progress)
    raise MmuCiError(
        f"{spec!r} is neither a Debian version (6.1, 6.12), a kernel tarball, nor a kernel git tree"
    )


# 5.19, 5.19.3, 5.19-rc3, 6.1.192-rt12: what a Makefile or a version tag says
VERSION_RE = re.compile(r"\d+\.\d+(?:\.\d+)?(?:-[0-9A-Za-z][0-9A-Za-z.+_-]*)?")


def _no_version(version: str | None, spec: str) -> None:
    if version is not None:
        raise MmuCiError(
            f"--version is for a git tree without a Makefile; {spec} has its own: drop --version"
        )


def _prepare_tarball(
    data_dir: Path, archive: Path, name: str, progress: Progress | None
) -> tuple[KernelTree, bool]:
    # Several processes (parallel test runs, a watcher) may prepare at once: one at a time.
    trees_dir(data_dir).mkdir(parents=True, exist_ok=True)
    with (trees_dir(data_dir) / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _prepare_tarball_locked(data_dir, archive, name, progress)


def _prepare_tarball_locked(
    data_dir: Path, archive: Path, name: str, progress: Progress | None
) -> tuple[KernelTree, bool]:
    st = archive.stat()
    stamp = {"tarball": str(archive.resolve()), "size": st.st_size, "mtime": int(st.st_mtime)}
    reg = load_registry(data_dir)
    if name in reg and _stamp_of(data_dir, name) == stamp and (reg[name].path / ".git").is_dir():
        return reg[name], False
    dest = trees_dir(data_dir) / name
    tmp = dest.with_name(name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    mtime = tarball.extract_subset(archive, tmp, progress)
    if not (tmp / "Makefile").is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        raise MmuCiError(f"{archive} has no top-level Makefile: is it a kernel source tarball?")
    version = makefile_version((tmp / "Makefile").read_text(errors="replace"))
    commit, tag = tarball.commit_subset(tmp, version, mtime, archive.name)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    tree = KernelTree(name, dest, version, commit, tag, str(archive), True)
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
