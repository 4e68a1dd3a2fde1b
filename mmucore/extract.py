"""Kernel tree at a revision -> the translation unit of the modelled functions.

The manifest's entry points are taken from the tree with every callee defined in the
model files (transitively), the macros, types and globals they use (from the tree's
own headers, with their dependencies), big structs pruned to the fields the code and
the checks use. A name the shim provides is the shim's. Each piece is placed after
a `#line` directive so compiler errors and sanitizer reports point at the kernel.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mmuci import proc
from mmuci.errors import MmuCiError
from mmucore import closure, cparse, cpp, generations, tu
from mmucore.closure import ExtractError
from mmucore.manifest import Manifest, default
from mmucore.shim_api import SHIM_DIR

__all__ = ["SHIM_DIR", "ExtractError", "Extraction", "ExtractedFunction", "Piece", "extract"]

SHIM_HEADERS = ("mmu_shim.h", "mmu_shim_kernel.h", "mmu_shim_stubs.h")
SHIM_SOURCES = (*SHIM_HEADERS, "mmu_shim.c")
# Names the shim provides only when the tree does not define them: their declaration.
FALLBACKS = {"tdp_mmu_enabled": "bool tdp_mmu_enabled;"}


@dataclass(frozen=True)
class Piece:
    """One untrusted fragment taken from the tree, as placed in the TU."""

    kind: str  # "function" | "macro" | "type" | "global"
    name: str
    file: str
    line: int
    text: str
    # the same lines as the tree has them, before conditionals were resolved and other
    # directives blanked: what validation reads to refuse a directive the text lost
    source: str = ""


@dataclass(frozen=True)
class ExtractedFunction:
    name: str
    file: str
    line: int
    static: bool
    return_type: str
    params: tuple[tuple[str, str], ...]
    calls: tuple[str, ...]


@dataclass(frozen=True)
class Extraction:
    tree: Path
    rev: str
    version: str
    features: frozenset[str]
    functions: Mapping[str, ExtractedFunction]
    entry_points: tuple[str, ...]
    missing: Mapping[str, str]
    shimmed: tuple[str, ...]
    structs: Mapping[str, tuple[str, ...]]
    pieces: tuple[Piece, ...]
    tu: str
    key: str


def read_files(tree: Path, rev: str, paths: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """The full commit id of rev and the text of each path that exists there."""
    try:
        sha = proc.git(tree, "rev-parse", "--verify", f"{rev}^{{commit}}")
    except MmuCiError as e:
        raise ExtractError(f"{tree}: no revision {rev!r}; give --rev a commit of that tree") from e
    query = "".join(f"{sha}:{p}\n" for p in paths)
    out = proc.run(["git", "-C", str(tree), "cat-file", "--batch"], input=query, binary=True)
    data: bytes = out.stdout  # type: ignore[assignment]
    files: dict[str, str] = {}
    pos = 0
    for p in paths:
        nl = data.index(b"\n", pos)
        header = data[pos:nl].split()
        pos = nl + 1
        if len(header) == 3 and header[1] == b"blob":
            size = int(header[2])
            files[p] = data[pos : pos + size].decode(errors="replace")
            pos += size + 1
    return sha, files


def makefile_version(text: str) -> str | None:
    """'6.1.192' from a top-level kernel Makefile; None when it names no VERSION.PATCHLEVEL."""
    f = {
        k: (m.group(1) if (m := re.search(rf"^{k}[ \t]*=[ \t]*(\S*)[ \t]*$", text, re.M)) else "")
        for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL", "EXTRAVERSION")
    }
    if not f["VERSION"].isdigit() or not f["PATCHLEVEL"].isdigit():
        return None
    v = f"{f['VERSION']}.{f['PATCHLEVEL']}"
    if f["SUBLEVEL"] and f["SUBLEVEL"] != "0":
        v += f".{f['SUBLEVEL']}"
    return v + f["EXTRAVERSION"]


def resolve_conditionals(files: dict[str, str], manifest: Manifest) -> dict[str, str]:
    """Each model file with inactive lines blanked, in the order includes reach them."""
    macros = dict(manifest.config)
    done: dict[str, str] = {}

    def visit(path: str) -> None:
        if path in done or path not in files:
            return
        done[path] = ""  # include guard: a cycle sees an empty file
        here = path.rsplit("/", 1)[0]

        def include(target: str) -> None:
            cands = [f"{here}/{target}"]
            cands += [
                d + target[len(p) :] for p, d in manifest.include_dirs if target.startswith(p)
            ]
            for c in cands:
                if c in files:
                    visit(c)
                    return

        done[path] = cpp.resolve(files[path], macros, include)

    for p in manifest.model_files:
        visit(p)
    return done


def _shim_names() -> frozenset[str]:
    names: set[str] = set()
    for h in SHIM_HEADERS:
        text = cpp.resolve((SHIM_DIR / h).read_text(), {})
        for d in cparse.parse(h, text).defs:
            names.add(d.name)
    return frozenset(names)


_SHIM_NAMES: frozenset[str] | None = None


def shim_names() -> frozenset[str]:
    """Every macro, function, type and global the shim headers define."""
    global _SHIM_NAMES
    if _SHIM_NAMES is None:
        _SHIM_NAMES = _shim_names()
    return _SHIM_NAMES


def shim_sources() -> str:
    return "".join((SHIM_DIR / s).read_text() for s in SHIM_SOURCES)


def _source(files: Mapping[str, str], file: str, line: int, text: str) -> str:
    """The lines ``line`` .. (as many as ``text`` has) of ``file`` as the tree has them."""
    lines = files.get(file, "").split("\n")
    return "\n".join(lines[line - 1 : line + text.count("\n")])


def extract(
    tree: Path, rev: str = "HEAD", manifest: Manifest | None = None, version: str | None = None
) -> Extraction:
    """Extract the manifest's entry points from tree at rev (see module doc). The version is
    the rev's Makefile's, else ``version`` (the registry's, for a tree without a Makefile)."""
    manifest = manifest or default()
    tree = Path(tree)
    sha, files = read_files(tree, rev, ("Makefile", *manifest.model_files))
    if manifest.model_files[0] not in files:
        raise ExtractError(
            f"{tree} at {rev}: no {manifest.model_files[0]}; is this a kernel tree with KVM?"
        )
    try:
        return _extract(tree, sha, files, manifest, version)
    except (RecursionError, MemoryError) as e:
        raise ExtractError(
            f"{tree} at {rev}: the model files are too deeply nested or too large to read "
            f"({type(e).__name__}); review the series by hand"
        ) from None


def _extract(
    tree: Path, sha: str, files: dict[str, str], manifest: Manifest, version: str | None
) -> Extraction:
    resolved = resolve_conditionals(files, manifest)
    index = closure.Index.build([cparse.parse(p, t) for p, t in resolved.items()])

    entry: list[str] = []
    missing: dict[str, str] = {}
    for alts in manifest.entry_points:
        found = next((n for n in alts if n in index.functions), None)
        if found:
            entry.append(found)
        else:
            missing[alts[0]] = (
                f"not defined in {manifest.model_files[0]} or its model headers at {sha[:12]}"
            )
    if not entry:
        raise ExtractError(f"{tree} at {sha[:12]}: none of the modelled functions is defined")

    needed = closure.close(index, entry, manifest, shim_names(), FALLBACKS)
    features = generations.detect(index.facts())
    functions = {
        d.name: ExtractedFunction(
            name=d.name,
            file=d.file,
            line=d.line,
            static=d.static,
            return_type=cparse.return_type(d.node),
            params=cparse.parameters(d.node),
            calls=tuple(sorted(needed.calls.get(d.name, ()))),
        )
        for d in needed.functions
        if d.node is not None
    }
    version = makefile_version(files.get("Makefile", "")) or version or "unknown"
    text, pieces = tu.assemble(needed, f"{version} {sha}")
    key = hashlib.sha256((text + "\0" + shim_sources()).encode()).hexdigest()
    return Extraction(
        tree=tree,
        rev=sha,
        version=version,
        features=features,
        functions=functions,
        entry_points=tuple(entry),
        missing=missing,
        shimmed=tuple(sorted(needed.shimmed)),
        structs=needed.structs,
        pieces=tuple(Piece(*p, source=_source(files, p[2], p[3], p[4])) for p in pieces),
        tu=text,
        key=key,
    )
